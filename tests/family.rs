//! `--syscalls`: the whole read/write family on this machine's kernel.
//! `loadgen --family` makes a fixed list of calls of every member through
//! syscall(2) (see src/bin/loadgen/family.rs) and prints each as its
//! caller saw it; the probe must report exactly those it follows, call for
//! call: the vector calls' count is the bytes of their first 16 entries.

#[macro_use]
mod common;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::Duration;

use common::*;

/// The family, in the probe's order.
const FAMILY: [&str; 10] = [
    "read", "write", "pread64", "pwrite64", "readv", "writev", "preadv", "pwritev", "preadv2",
    "pwritev2",
];

/// One call as loadgen printed it: `TID SYSCALL FD COUNT RET`.
#[derive(Clone, Debug)]
struct Made {
    tid: u32,
    syscall: String,
    fd: i64,
    count: u64,
    ret: i64,
}

impl Made {
    /// (syscall, fd, count, ret) with ret as the log writes it.
    fn completed(&self) -> (String, i64, u64, String) {
        let ret = match self.ret {
            -9 => "EBADF".to_string(),
            r if r < 0 => panic!("unexpected errno {r}"),
            r => r.to_string(),
        };
        (self.syscall.clone(), self.fd, self.count, ret)
    }

    /// (syscall, fd, count): what an entry reports.
    fn entry(&self) -> (String, i64, u64) {
        (self.syscall.clone(), self.fd, self.count)
    }
}

/// Runs `loadgen --comm COMM --family DIR` to completion: its calls, in
/// the order made (one thread).
fn family_load(comm: &str, dir: &Path) -> Vec<Made> {
    let out = Command::new(LOADGEN)
        .args(["--comm", comm, "--family"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "loadgen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let made: Vec<Made> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split(' ').collect();
            assert_eq!(f.len(), 5, "{line}");
            Made {
                tid: f[0].parse().unwrap(),
                syscall: f[1].to_string(),
                fd: f[2].parse().unwrap(),
                count: f[3].parse().unwrap(),
                ret: f[4].parse().unwrap(),
            }
        })
        .collect();
    // What the tests below rest on: every member called, successfully
    // more than once, and on a bad fd; one thread; readv and writev of 20
    // entries (1..=20 bytes) counted for their first 16 only.
    for name in FAMILY {
        let calls: Vec<&Made> = made.iter().filter(|c| c.syscall == name).collect();
        assert!(calls.iter().filter(|c| c.ret > 0).count() >= 2, "{name}");
        assert!(calls.iter().any(|c| c.ret == -9), "{name}");
    }
    assert!(made.iter().all(|c| c.tid == made[0].tid));
    for name in ["readv", "writev"] {
        assert!(
            made.iter()
                .any(|c| c.syscall == name && c.count == 136 && c.ret == 210),
            "{name} of 20 entries"
        );
    }
    made
}

/// `assert_nothing_left`, and none of the family's own programs either
/// (named as the kernel keeps them: 15 bytes).
fn assert_no_program_left() {
    assert_nothing_left();
    let ours: Vec<String> = FAMILY
        .iter()
        .flat_map(|name| {
            ["kprobe_", "kretprobe_", "tracepoint_"]
                .map(|prefix| format!("{prefix}{name}"))
                .into_iter()
                .chain([format!("tracepoint_{name}_exit")])
        })
        .map(|n| n[..n.len().min(15)].to_string())
        .collect();
    let left: Vec<String> = loaded_program_names()
        .into_iter()
        .filter(|n| ours.contains(n))
        .collect();
    assert!(left.is_empty(), "BPF programs left loaded: {left:?}");
}

/// The log's event lines.
fn log_lines(dir: &Path, name: &str) -> Vec<String> {
    let log = fs::read_to_string(dir.join(name)).unwrap();
    event_lines(&log).into_iter().map(String::from).collect()
}

/// The hello line of each call, in order.
fn hellos<'a>(calls: impl Iterator<Item = &'a Made>) -> String {
    calls
        .map(|c| format!("hello sys_{} was called\n", c.syscall))
        .collect()
}

#[test]
fn with_exit_every_call_of_the_family_is_reported_with_its_count_and_result() {
    require_root!();
    let _turn = serial();
    // The tracepoints per call, and the raw tracepoints (one program for
    // every syscall, which must tell the calls apart by number).
    // And both ways out of the kernel: perf rings and map rings.
    for (method, ring) in [
        ("tracepoint", "perf"),
        ("raw-tracepoint", "perf"),
        ("tracepoint", "map"),
        ("raw-tracepoint", "map"),
    ] {
        every_call_with_exit(method, ring);
    }
}

fn every_call_with_exit(method: &str, ring: &str) {
    let dir = scratch_dir("family");
    let comm = unique_comm("fa");
    let mut probe = Probe::start(
        &dir,
        &[
            "--exit",
            "--syscalls",
            "all",
            "--attach",
            method,
            "--ring",
            ring,
            "-c",
            &comm,
            "--log",
            "f.log",
        ],
    );
    probe.wait_attached();
    let made = family_load(&comm, &dir);
    thread::sleep(Duration::from_millis(200));
    let done = probe.stop(libc::SIGINT);
    assert_eq!(exit_code(&done.status), 0, "{:?}", done.stderr);
    assert_eq!(
        done.last_line(),
        format!("probe: received={} lost=0", made.len()),
        "{:?}",
        done.stderr
    );

    let lines = log_lines(&dir, "f.log");
    let got: Vec<_> = lines
        .iter()
        .map(|line| {
            assert_eq!(field(line, "pid"), made[0].tid.to_string(), "{line}");
            assert_eq!(field(line, "comm"), comm, "{line}");
            let lat: u64 = field(line, "lat_ns").parse().unwrap();
            assert!(lat > 0, "{line}");
            (
                field(line, "syscall").to_string(),
                field(line, "fd").parse().unwrap(),
                field(line, "count").parse().unwrap(),
                field(line, "ret").to_string(),
            )
        })
        .collect();
    let want: Vec<_> = made.iter().map(Made::completed).collect();
    // Call for call, in the order made.
    assert_eq!(got, want);
    assert_eq!(done.stdout, hellos(made.iter()));
    assert_no_program_left();
}

/// Runs the family's load under a probe started with `args` (entry
/// events, the log in LOG), and checks that exactly the calls of
/// `followed` were reported, call for call (syscall, fd, count), and
/// nothing else. Returns those calls and how the probe ended.
fn entries_of(tag: &str, args: &[&str], followed: &[&str]) -> (Vec<Made>, Finished) {
    let dir = scratch_dir(tag);
    let comm = unique_comm(&tag[..2]);
    let mut all = vec!["-c", &comm, "--log", "entries.log"];
    all.extend_from_slice(args);
    let mut probe = Probe::start(&dir, &all);
    probe.wait_attached();
    let made = family_load(&comm, &dir);
    thread::sleep(Duration::from_millis(200));
    let done = probe.stop(libc::SIGINT);
    assert_eq!(exit_code(&done.status), 0, "{:?}", done.stderr);

    let want: Vec<Made> = made
        .into_iter()
        .filter(|c| followed.contains(&c.syscall.as_str()))
        .collect();
    assert_eq!(want.len(), 10, "loadgen's calls of {followed:?}");
    assert_eq!(
        done.last_line(),
        format!("probe: received={} lost=0", want.len()),
        "{:?}",
        done.stderr
    );
    let got: Vec<_> = log_lines(&dir, "entries.log")
        .iter()
        .map(|line| {
            (
                field(line, "syscall").to_string(),
                field(line, "fd").parse().unwrap(),
                field(line, "count").parse().unwrap(),
            )
        })
        .collect();
    let want_entries: Vec<_> = want.iter().map(|c| c.entry()).collect();
    assert_eq!(got, want_entries);
    (want, done)
}

#[test]
fn by_default_only_read_and_write_are_followed() {
    require_root!();
    let _turn = serial();
    for method in ["tracepoint", "raw-tracepoint"] {
        let (want, done) = entries_of("familydef", &["--attach", method], &["read", "write"]);
        assert_eq!(done.stdout, hellos(want.iter()));
        assert_no_program_left();
    }
}

#[test]
fn syscalls_pread64_and_writev_follow_exactly_those() {
    require_root!();
    let _turn = serial();
    let (want, done) = entries_of(
        "familysome",
        &["--syscalls", "pread64,writev", "--attach", "raw-tracepoint"],
        &["pread64", "writev"],
    );
    let hello = hellos(want.iter());
    assert!(hello.contains("hello sys_pread64 was called\n"));
    assert!(hello.contains("hello sys_writev was called\n"));
    assert_eq!(done.stdout, hello);
    assert_no_program_left();
}

#[test]
fn an_unknown_name_in_syscalls_is_a_usage_error() {
    let names =
        "read, write, pread64, pwrite64, readv, writev, preadv, pwritev, preadv2, pwritev2, or all";
    let cases: &[(&[&str], String)] = &[
        (
            &["--syscalls", "read,bogus"],
            format!("probe: --syscalls read,bogus: \"bogus\" is not one of {names}"),
        ),
        (
            &["--syscalls", "read,,write"],
            format!("probe: --syscalls read,,write: \"\" is not one of {names}"),
        ),
        (
            &["--syscalls"],
            "probe: --syscalls needs a value".to_string(),
        ),
    ];
    for (args, message) in cases {
        let out = Command::new(PROBE).args(*args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        // The one line that says what is wrong, then the usage text.
        let mut lines = stderr.lines();
        assert_eq!(lines.next(), Some(message.as_str()), "{args:?}");
        assert!(
            lines.next().is_some_and(|l| l.starts_with("usage: probe")),
            "{args:?}"
        );
        assert_eq!(
            stderr.lines().filter(|l| l.starts_with("probe: ")).count(),
            1,
            "{stderr}"
        );
    }
}
