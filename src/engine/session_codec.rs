//! The changelog encoding of one key's session windows (`ses/<operator>/<key>` values):
//! fixed-width binary (`engine::codec`) instead of JSON, so a flush copies a few bytes per
//! changed customer rather than formatting a JSON document. Byte 0 is the format version
//! ([`VERSION`]); a value that starts with `[` is the JSON array written by earlier
//! releases and still restores; any other first byte is an error naming it. Version 1,
//! after the version byte: the session count, then per session its window start and end,
//! the result slot's revision, its fired and pending flags, its member-segment sequence
//! numbers (a count, then each) and the aggregate in its [`BinaryForm`]. Counts are
//! checked against the bytes left and trailing bytes are rejected: a damaged value is an
//! error, never a panic or an outsized allocation.

use super::aggregate::{Aggregate, ResultSlot};
use super::codec::{self, BinaryForm, Reader};
use super::session::Session;
use super::window::Window;

/// The binary format this build writes (and the only binary one it reads).
pub const VERSION: u8 = 1;

/// The fewest bytes a session takes (window, revision, flags, segment count).
const MIN_SESSION: usize = 8 + 8 + 4 + 1 + 1 + 4;

/// Appends the version-1 encoding of `sessions` to `out`.
pub(super) fn encode<A: BinaryForm>(sessions: &[Session<A>], out: &mut Vec<u8>) {
    out.push(VERSION);
    codec::put_u32(out, sessions.len() as u32);
    for s in sessions {
        codec::put_i64(out, s.window.start);
        codec::put_i64(out, s.window.end);
        codec::put_u32(out, s.slot.revision);
        out.push(u8::from(s.slot.fired));
        out.push(u8::from(s.slot.pending));
        codec::put_u32(out, s.slot.segments.len() as u32);
        for &seq in &s.slot.segments {
            codec::put_u64(out, seq);
        }
        s.slot.agg.encode(out);
    }
}

/// Decodes a sessions value: version 1, or the legacy JSON.
pub(super) fn decode<A: Aggregate + BinaryForm>(v: &[u8]) -> Result<Vec<Session<A>>, String> {
    match v.first() {
        Some(&VERSION) => {
            let mut r = Reader::new(&v[1..]);
            let n = r.count(MIN_SESSION)?;
            let mut sessions = Vec::with_capacity(n);
            for _ in 0..n {
                let window = Window::new(r.i64()?, r.i64()?);
                let revision = r.u32()?;
                let (fired, pending) = (r.bool()?, r.bool()?);
                let segments = (0..r.count(8)?)
                    .map(|_| r.u64())
                    .collect::<Result<Vec<u64>, String>>()?;
                let agg = A::decode(&mut r)?;
                let slot = ResultSlot {
                    agg,
                    revision,
                    fired,
                    pending,
                    segments,
                    unflushed: false,
                };
                sessions.push(Session { window, slot });
            }
            r.finish()?;
            Ok(sessions)
        }
        Some(b'[') => serde_json::from_slice(v).map_err(|e| format!("legacy JSON sessions: {e}")),
        Some(b) => Err(format!(
            "unknown sessions format (first byte {b:#04x}; this build reads binary version \
             {VERSION} and the legacy JSON)"
        )),
        None => Err("empty sessions value".into()),
    }
}
