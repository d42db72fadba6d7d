//! `--ring map`: events leave the kernel through a ring of slots per CPU in
//! mmapable BPF arrays (src/ring/map_ring.rs) instead of the perf rings.
//! What the other tests check on both kinds (exact contents and order in
//! tests/outputs.rs, every call of the family in tests/family.rs), this
//! file checks only here: a ring too small for the load loses events, and
//! says exactly how many; and the choice is a usage error when wrong.

#[macro_use]
mod common;

use std::fs;
use std::process::Command;
use std::thread;
use std::time::Duration;

use common::*;

#[test]
fn a_full_map_ring_loses_exactly_what_it_says() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("mapfull");
    let comm = unique_comm("mf");
    // 64 slots per CPU (--pages 1), a reader polled every few ms, and 4
    // processes writing as fast as they can: the rings overflow.
    let mut probe = Probe::start(
        &dir,
        &[
            "--ring", "map", "--pages", "1", "-q", "-c", &comm, "--log", "f.log",
        ],
    );
    probe.wait_attached();
    let made = 4 * 100_000u64;
    let loads: Vec<_> = (0..4)
        .map(|_| {
            Command::new(LOADGEN)
                .args(["--comm", &comm, "--writes", "100000"])
                .spawn()
                .unwrap()
        })
        .collect();
    for mut l in loads {
        assert!(l.wait().unwrap().success());
    }
    thread::sleep(Duration::from_millis(200));
    let done = probe.stop(libc::SIGINT);
    // Events were lost: exit status 4.
    assert_eq!(exit_code(&done.status), 4, "{:?}", done.stderr);
    let (received, lost) = done.counts();
    assert_eq!(received + lost, made, "{:?}", done.stderr);
    assert!(lost > 0, "64 slots per CPU never filled: {:?}", done.stderr);
    let said = format!(
        "probe: lost {lost} events: the kernel found the map rings full; \
         try a larger --pages (now 1), or filter with -c or -p [ring_full]"
    );
    assert!(done.stderr.contains(&said), "{:?}", done.stderr);
    let log = fs::read_to_string(dir.join("f.log")).unwrap();
    assert_eq!(event_lines(&log).len() as u64, received);
    assert_nothing_left();
}

#[test]
fn an_unknown_ring_is_a_usage_error() {
    let out = Command::new(PROBE)
        .args(["--ring", "bpf"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("probe: --ring bpf: unknown kind (perf, map)\n"),
        "{err}"
    );
}
