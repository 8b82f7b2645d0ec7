//! Dedup state size and exactness at one million remembered transaction ids, measured
//! with a counting global allocator (the real heap bytes the deduplicator holds), not an
//! estimate.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use shopstream::engine::dedup::id::format_uuid;
use shopstream::engine::{DedupConfig, Deduplicator};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        System.realloc(p, l, new)
    }
}

#[global_allocator]
static A: Counting = Counting;

const N: u64 = 1_000_000;

/// Random-looking lowercase UUIDs, as the generator produces (v4 layout).
fn uuid(i: u64) -> String {
    let x = u128::from(i).wrapping_mul(0x2545_f491_4f6c_dd1d_9e37_79b9_7f4a_7c15);
    format_uuid((x & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62))
}

#[test]
fn one_million_ids_fit_in_32_bytes_each_and_none_is_lost() {
    let ids: Vec<String> = (0..N).map(uuid).collect();
    let mut d = Deduplicator::new(DedupConfig::default());
    d.set_changelog(false); // measure the remembered ids, not a pending changelog buffer
    let before = LIVE.load(Ordering::SeqCst);
    for (i, id) in ids.iter().enumerate() {
        assert!(
            !d.check_and_insert(id, i as i64, 0),
            "distinct id {id} reported as duplicate"
        );
    }
    let bytes = LIVE.load(Ordering::SeqCst) - before;
    assert_eq!(d.len() as u64, N);
    let per_id = bytes as f64 / N as f64;
    println!(
        "dedup: {N} ids, {bytes} heap bytes, {per_id:.2} bytes/id (table estimate {})",
        d.allocated_bytes()
    );
    assert!(per_id <= 32.0, "{per_id:.2} bytes per remembered id");
    // The table's own accounting matches the allocator, up to the empty 64-slot table
    // allocated before the measurement started.
    assert!((d.allocated_bytes() as isize - bytes).abs() <= 64 * 20);
    // Exact: every id is remembered, and near-identical ids are not confused with them.
    for id in &ids {
        assert!(d.check_and_insert(id, 0, 0));
    }
    let known: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
    let mut flipped = 0;
    for id in ids.iter().take(100_000) {
        // Change one hex digit: a distinct id that a lossy fingerprint might confuse.
        let mut s = id.clone().into_bytes();
        s[35] = if s[35] == b'0' { b'1' } else { b'0' };
        let other = String::from_utf8(s).unwrap();
        if !known.contains(other.as_str()) {
            assert!(!d.check_and_insert(&other, 0, 0), "{other} is not {id}");
            flipped += 1;
        }
    }
    assert!(flipped > 99_000);
}
