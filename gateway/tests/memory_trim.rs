//! The heap trim the ops thread runs every 10 s (`io/memory.rs`) really gives freed memory
//! back: in a process of its own (one test, so no other test allocates meanwhile), buffers the
//! size of a call's are allocated and touched, all but the last freed (so the free space is in
//! the middle of the heap, where `free` alone never returns it, as after call churn), and RSS
//! is read from `/proc/self/statm` before and after [`release_free_memory`].

use callway_gateway::io::release_free_memory;

fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux");
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4
}

#[test]
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn freed_buffers_between_live_ones_are_returned_to_the_system() {
    // 1 000 buffers of 16 KiB (a call's OpenAI receive buffer): 16 MB, below glibc's mmap
    // threshold, so they come from the heap like a call's.
    let mut bufs: Vec<Vec<u8>> = (0..1000).map(|i| vec![(i % 251) as u8 + 1; 16 * 1024]).collect();
    let pin = bufs.pop().unwrap(); // stays: the freed space is not at the top of the heap
    let touched = rss_kib();
    drop(bufs);
    let after_free = rss_kib();
    assert!(
        touched.saturating_sub(after_free) < 8 * 1024,
        "free() alone kept the pages ({touched} → {after_free} KiB): the case this trim is for"
    );
    assert!(release_free_memory(), "malloc_trim released nothing");
    let after_trim = rss_kib();
    assert!(
        after_free.saturating_sub(after_trim) > 12 * 1024,
        "the trim gave back less than 12 of the 16 MB freed: {after_free} → {after_trim} KiB"
    );
    std::hint::black_box(&pin);
}
