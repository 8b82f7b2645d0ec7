//! Partition high watermarks as the client already knows them (librdkafka caches the high
//! watermark from every fetch response), without a broker round trip. rust-rdkafka has no
//! binding for `rd_kafka_get_watermark_offsets`, so this is a small FFI wrapper.

use std::ffi::CString;

use rdkafka::client::{Client, ClientContext};

/// The cached (low, high) watermarks of a partition, or None when not known yet.
pub fn cached<C: ClientContext>(
    client: &Client<C>,
    topic: &str,
    partition: i32,
) -> Option<(i64, i64)> {
    let topic = CString::new(topic).ok()?;
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: the client pointer is valid for the lifetime of `client`; the topic string
    // outlives the call; low/high are valid out-pointers.
    let err = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            client.native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (err == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0)
        .then_some((low, high))
}
