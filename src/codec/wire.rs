//! The Confluent wire format: byte 0 is the magic byte `0x00`, bytes 1–4 the schema id
//! as a big-endian u32, then the Avro binary datum (no container header). Newer Confluent
//! clients also define magic byte `0x01` (schema id in a header); that is not supported and
//! is rejected like any other wrong magic byte, so the record goes to the DLQ.

use super::error::DecodeError;

pub const MAGIC_BYTE: u8 = 0x00;
/// Magic byte plus the 4-byte schema id.
pub const HEADER_LEN: usize = 5;

/// Splits a framed message into its schema id and Avro payload.
pub fn parse(bytes: &[u8]) -> Result<(u32, &[u8]), DecodeError> {
    match bytes {
        [] => Err(DecodeError::Empty),
        [found, ..] if *found != MAGIC_BYTE => Err(DecodeError::BadMagicByte { found: *found }),
        [_, a, b, c, d, payload @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), payload)),
        _ => Err(DecodeError::TooShort { len: bytes.len() }),
    }
}

/// Appends the 5-byte header for `schema_id` to `out`; the datum follows.
pub fn write_header(schema_id: u32, out: &mut Vec<u8>) {
    out.push(MAGIC_BYTE);
    out.extend_from_slice(&schema_id.to_be_bytes());
}

/// Frames an Avro datum with its schema id.
pub fn frame(schema_id: u32, datum: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + datum.len());
    write_header(schema_id, &mut out);
    out.extend_from_slice(datum);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_magic_then_big_endian_id() {
        assert_eq!(frame(0x0102_0304, &[9]), vec![0, 1, 2, 3, 4, 9]);
        assert_eq!(parse(&[0, 0, 0, 1, 0, 7, 8]), Ok((256, &[7u8, 8][..])));
    }

    #[test]
    fn rejects_bad_frames() {
        assert_eq!(parse(&[]), Err(DecodeError::Empty));
        assert_eq!(
            parse(&[1, 0, 0, 0, 1, 2]),
            Err(DecodeError::BadMagicByte { found: 1 })
        );
        assert_eq!(
            parse(b"{\"a\":1}"),
            Err(DecodeError::BadMagicByte { found: b'{' })
        );
        assert_eq!(parse(&[0, 0, 0, 1]), Err(DecodeError::TooShort { len: 4 }));
        // A header with an empty datum is a valid frame; the datum decoder judges it.
        assert_eq!(parse(&[0, 0, 0, 0, 1]), Ok((1, &[][..])));
    }
}
