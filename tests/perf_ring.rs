//! The ring reader on real perf rings, fed by a real BPF program
//! (bpf/tests/ring_writer.c) that writes numbered samples of a chosen size
//! on each getppid() of this process.

#[macro_use]
mod common;

use std::os::fd::{AsFd, AsRawFd};

use probe::attach::{self, Attachment, Method};
use probe::loader::Loaded;
use probe::ring::{RecordSink, RingSet};
use probe::{cpus, obj};

const WRITER: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/ring_writer.bpf.o"));
const PAGE: usize = 4096;

#[derive(Default)]
struct Collect {
    samples: Vec<Vec<u8>>,
    lost: u64,
}

impl RecordSink for Collect {
    fn sample(&mut self, _cpu: u32, payload: &[u8]) {
        self.samples.push(payload.to_vec());
    }
    fn lost(&mut self, _cpu: u32, count: u64) {
        self.lost += count;
    }
    fn end_of_pass(&mut self) {}
}

struct Writer {
    loaded: Loaded,
    rings: RingSet,
    _attachment: Attachment,
}

fn pin_to(cpu: u32) {
    // SAFETY: a zeroed cpu_set_t with one bit, for the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut set);
        assert_eq!(
            libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set),
            0
        );
    }
}

/// A one-CPU ring of `pages` on CPU 0, the writer attached, sending
/// samples of `words` 8-byte words on each getppid() of this process.
fn writer(pages: usize, words: u32) -> Writer {
    writer_on(&[0], pages, words)
}

/// Like `writer`, with a ring on each CPU of `on`.
fn writer_on(on: &[u32], pages: usize, words: u32) -> Writer {
    probe::loader::raise_memlock();
    pin_to(on[0]);
    let possible = cpus::possible_count().unwrap();
    let loaded = Loaded::create_maps(obj::parse(WRITER).unwrap(), possible).unwrap();
    let rings = RingSet::open(on, pages).unwrap();
    for ring in rings.perf_rings() {
        let ring_fd = ring.as_fd().as_raw_fd() as u32;
        loaded
            .map("ring_events")
            .unwrap()
            .update(&ring.cpu().to_ne_bytes(), &ring_fd.to_ne_bytes())
            .unwrap();
    }
    let mut config = [0u8; 16];
    config[0..4].copy_from_slice(&std::process::id().to_ne_bytes());
    config[4..8].copy_from_slice(&words.to_ne_bytes());
    loaded
        .map("writer_config")
        .unwrap()
        .update(&0u32.to_ne_bytes(), &config)
        .unwrap();
    let attachment = attach::attach(&loaded, Some(Method::Tracepoint)).unwrap();
    Writer {
        loaded,
        rings,
        _attachment: attachment,
    }
}

fn trigger(n: usize) {
    for _ in 0..n {
        // SAFETY: getppid has no preconditions.
        unsafe { libc::syscall(libc::SYS_getppid) };
    }
}

fn failed_in_kernel(w: &Writer) -> u64 {
    let mut v = [0u8; 8];
    w.loaded
        .map("writer_failed")
        .unwrap()
        .lookup(&0u32.to_ne_bytes(), &mut v)
        .unwrap();
    u64::from_ne_bytes(v)
}

/// Every sample is `words` copies of its sequence number, then the
/// kernel's 4 bytes of padding.
fn sequence(samples: &[Vec<u8>], words: usize) -> Vec<u64> {
    samples
        .iter()
        .map(|s| {
            assert_eq!(
                s.len(),
                words * 8 + 4,
                "raw payload is padded to 8 bytes with its size"
            );
            let seq = u64::from_le_bytes(s[..8].try_into().unwrap());
            for w in s[..words * 8].chunks_exact(8) {
                assert_eq!(
                    u64::from_le_bytes(w.try_into().unwrap()),
                    seq,
                    "torn sample"
                );
            }
            seq
        })
        .collect()
}

#[test]
fn records_that_wrap_the_end_of_the_ring_arrive_whole_and_in_order() {
    require_root!();
    let _turn = common::serial();
    // 11 words: 104-byte records, which do not divide a 4 KiB ring, so
    // records keep straddling its end.
    let words = 11;
    let mut w = writer(1, words as u32);
    let mut sink = Collect::default();
    for _ in 0..40 {
        trigger(30);
        w.rings.drain(&mut sink);
    }
    let seqs = sequence(&sink.samples, words);
    assert_eq!(seqs, (0..1200).collect::<Vec<u64>>());
    assert_eq!(sink.lost, 0);
    assert_eq!(failed_in_kernel(&w), 0);
    // 1200 records of 104 bytes cross 30 ends of the 4096-byte ring; the
    // 13th and 26th crossings fall between two records (13 * 4096 is a
    // multiple of 104), the other 28 inside one.
    assert_eq!(w.rings.perf_rings().next().unwrap().wrapped_records(), 28);
}

/// Samples whose first word is their time: the writer's sequence number.
#[derive(Default)]
struct Timed(Vec<u64>);

impl RecordSink for Timed {
    fn sample(&mut self, _cpu: u32, payload: &[u8]) {
        self.0
            .push(u64::from_le_bytes(payload[..8].try_into().unwrap()));
    }
    fn lost(&mut self, _cpu: u32, _count: u64) {}
    fn timestamp(&self, payload: &[u8]) -> Option<u64> {
        Some(u64::from_le_bytes(payload[..8].try_into().unwrap()))
    }
    fn end_of_pass(&mut self) {}
}

#[test]
fn the_rings_are_merged_in_time_order_up_to_the_bound() {
    require_root!();
    let _turn = common::serial();
    let online = cpus::online().unwrap();
    if online.len() < 2 {
        eprintln!("skipped: merging rings needs two CPUs, this machine has one");
        return;
    }
    let mut w = writer_on(&online[..2], 4, 1);
    // 0-9 on the first CPU, 10-19 on the second, 20-29 on the first:
    // read ring after ring, that would be 0-9, 20-29, 10-19.
    for cpu in [online[0], online[1], online[0]] {
        pin_to(cpu);
        trigger(10);
    }
    let mut sink = Timed::default();
    // Up to 14: the rest stays in the rings for the next pass.
    assert_eq!(w.rings.drain_until(&mut sink, 14), 15);
    assert_eq!(sink.0, (0..15).collect::<Vec<u64>>());
    assert_eq!(w.rings.drain(&mut sink), 15);
    assert_eq!(sink.0, (0..30).collect::<Vec<u64>>());
    pin_to(online[0]);
}

#[test]
fn a_flood_into_a_one_page_ring_is_counted_exactly() {
    require_root!();
    let _turn = common::serial();
    let words = 11;
    let mut w = writer(1, words as u32);
    let flood = 1000;
    trigger(flood);
    let mut sink = Collect::default();
    w.rings.drain(&mut sink);
    let fitted = sink.samples.len() as u64;
    assert_eq!(fitted, (PAGE / 104) as u64, "a full ring holds this many");
    // The kernel reports the loss only when it next has room to: one
    // more sample brings the PERF_RECORD_LOST with it.
    trigger(1);
    w.rings.drain(&mut sink);
    let received = sink.samples.len() as u64;
    let failed = failed_in_kernel(&w);
    assert_eq!(received + sink.lost, flood as u64 + 1);
    assert_eq!(sink.lost, flood as u64 - fitted);
    // The program saw each refusal too: the same count, from both sides.
    assert_eq!(failed, sink.lost);
    // What did get through is the start of the sequence, then the last.
    let seqs = sequence(&sink.samples, words);
    let mut expected: Vec<u64> = (0..fitted).collect();
    expected.push(flood as u64);
    assert_eq!(seqs, expected);
}

#[test]
fn the_reader_thread_drains_what_is_left_below_the_watermark_at_stop() {
    require_root!();
    let _turn = common::serial();
    // 64 pages: 50 small samples never reach the half-ring watermark.
    let w = writer(64, 1);
    trigger(50);
    let stop = w.rings.stop_handle();
    let Writer { rings, .. } = w;
    let reader = std::thread::spawn(move || {
        let mut sink = Collect::default();
        // A latency bound far longer than the test: only stop wakes it.
        rings
            .run(&mut sink, std::time::Duration::from_secs(3600))
            .unwrap();
        sink
    });
    std::thread::sleep(std::time::Duration::from_millis(100));
    stop.stop();
    let sink = reader.join().unwrap();
    assert_eq!(sequence(&sink.samples, 1), (0..50).collect::<Vec<u64>>());
}

const SUBPROG: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/subprog.bpf.o"));

#[test]
fn linked_subprograms_pass_the_verifier_and_run() {
    require_root!();
    let _turn = common::serial();
    probe::loader::raise_memlock();
    let possible = cpus::possible_count().unwrap();
    let loaded = Loaded::create_maps(obj::parse(SUBPROG).unwrap(), possible).unwrap();
    let attachment = attach::attach(&loaded, Some(Method::Tracepoint)).unwrap();
    let counter = |slot: u32| {
        let mut v = [0u8; 8];
        loaded
            .map("counters")
            .unwrap()
            .lookup(&slot.to_ne_bytes(), &mut v)
            .unwrap();
        u64::from_ne_bytes(v)
    };
    let before: Vec<u64> = (0..4).map(counter).collect();
    for _ in 0..25 {
        // SAFETY: getpid and getppid have no preconditions.
        unsafe { libc::syscall(libc::SYS_getpid) };
    }
    trigger(7);
    attachment.detach();
    // Other processes call getpid too: at least ours, and bump_twice
    // bumps slots 0 and 1 together, so they moved by the same amount.
    let after: Vec<u64> = (0..4).map(counter).collect();
    let delta: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    assert!(delta[0] >= 25, "{delta:?}");
    assert_eq!(delta[0], delta[1], "bump_twice ran both calls");
    assert_eq!(delta[2], 0);
    assert!(delta[3] >= 7, "{delta:?}");
}
