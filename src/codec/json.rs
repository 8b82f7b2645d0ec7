//! The JSON codec: serde_json for every model type, with the limits a consumer of
//! untrusted input needs. Oversized records and nesting beyond the configured depth are
//! rejected before parsing (the depth scan is a single pass over the bytes, so a record of
//! ten thousand `[` cannot exhaust the stack); parse failures are classified into syntax
//! errors, missing fields, wrong types and invalid values.

use serde::{de::DeserializeOwned, Serialize};

use super::error::{DecodeError, EncodeError};

/// Limits applied to every input record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest accepted payload, in bytes (JSON text or framed Avro).
    pub max_record_bytes: usize,
    /// Deepest accepted JSON nesting of objects and arrays (at most 127, serde_json's own
    /// recursion limit, which also applies).
    pub max_json_depth: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_record_bytes: 1024 * 1024,
            max_json_depth: 32,
        }
    }
}

/// Decodes and encodes model types as JSON.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonCodec {
    limits: DecodeLimits,
}

impl JsonCodec {
    pub fn new(limits: DecodeLimits) -> JsonCodec {
        JsonCodec { limits }
    }

    pub fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, DecodeError> {
        if bytes.len() > self.limits.max_record_bytes {
            return Err(DecodeError::Oversized {
                len: bytes.len(),
                limit: self.limits.max_record_bytes,
            });
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(DecodeError::Empty);
        }
        check_depth(bytes, self.limits.max_json_depth)?;
        serde_json::from_slice(bytes).map_err(|e| classify(e, self.limits.max_json_depth))
    }

    pub fn encode<T: Serialize>(&self, value: &T) -> Result<Vec<u8>, EncodeError> {
        serde_json::to_vec(value).map_err(|e| EncodeError::Serialize {
            record: std::any::type_name::<T>(),
            detail: e.to_string(),
        })
    }
}

fn classify(e: serde_json::Error, limit: usize) -> DecodeError {
    use serde_json::error::Category;
    let message = e.to_string();
    match e.classify() {
        Category::Data => DecodeError::from_data_error(message),
        _ if message.starts_with("recursion limit exceeded") => DecodeError::TooDeep { limit },
        _ => DecodeError::JsonSyntax { detail: message },
    }
}

/// Rejects JSON whose object/array nesting exceeds `limit`, ignoring brackets in strings.
fn check_depth(bytes: &[u8], limit: usize) -> Result<(), DecodeError> {
    // Nesting is never deeper than the number of `{` and `[` bytes (in strings or not):
    // counting them is a branch-free loop the compiler vectorises, and only a record with
    // more openers than the limit needs the exact scan below (about 2 % of stage 1's time
    // when every record took it).
    let openers: usize = bytes
        .iter()
        .map(|&b| usize::from(b == b'{' || b == b'['))
        .sum();
    if openers <= limit {
        return Ok(());
    }
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > limit {
                    return Err(DecodeError::TooDeep { limit });
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_ignores_brackets_inside_strings() {
        assert!(check_depth(br#"{"a":"[[[[[[[["}"#, 2).is_ok());
        assert!(check_depth(br#"{"a":"\"[[[["}"#, 1).is_ok());
        assert_eq!(
            check_depth(b"[[[1]]]", 2),
            Err(DecodeError::TooDeep { limit: 2 })
        );
        // More openers than the limit, but not nested that deep: the exact scan decides.
        assert!(check_depth(b"[[1],[2],[3]]", 2).is_ok());
        assert!(check_depth(br#"{"a":"[[[","b":[[1]]}"#, 3).is_ok());
        assert_eq!(
            check_depth(br#"{"a":"[[[","b":[[[1]]]}"#, 3),
            Err(DecodeError::TooDeep { limit: 3 })
        );
    }

    #[test]
    fn depth_check_agrees_with_an_exact_scan() {
        // The reference: the exact scan alone, without the shortcut on the opener count.
        fn exact(bytes: &[u8]) -> usize {
            let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0, false, false);
            for &b in bytes {
                if in_string {
                    match b {
                        _ if escaped => escaped = false,
                        b'\\' => escaped = true,
                        b'"' => in_string = false,
                        _ => {}
                    }
                    continue;
                }
                match b {
                    b'"' => in_string = true,
                    b'{' | b'[' => {
                        depth += 1;
                        max = max.max(depth);
                    }
                    b'}' | b']' => depth = depth.saturating_sub(1),
                    _ => {}
                }
            }
            max
        }
        let alphabet = b"{}[]\"\\a,";
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 24) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|i| alphabet[((seed >> (i % 60)) as usize + i * 7) % alphabet.len()])
                .collect();
            for limit in 0..6 {
                assert_eq!(
                    check_depth(&bytes, limit).is_ok(),
                    exact(&bytes) <= limit,
                    "{:?} limit {limit}",
                    String::from_utf8_lossy(&bytes)
                );
            }
        }
    }

    #[test]
    fn classifies_json_errors() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct T {
            a: i32,
        }
        let codec = JsonCodec::default();
        let reason = |b: &[u8]| codec.decode::<T>(b).unwrap_err().reason();
        assert_eq!(reason(b"{\"a\":"), "json_syntax");
        assert_eq!(reason(b"{}"), "missing_field");
        assert_eq!(reason(b"{\"a\":\"x\"}"), "wrong_type");
        assert_eq!(reason(b"  "), "empty_payload");
        let deep = "[".repeat(100_000);
        assert_eq!(reason(deep.as_bytes()), "json_too_deep");
    }
}
