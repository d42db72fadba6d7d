//! The real `probe` binary on the real kernel: exact counts, exact output,
//! signals, self-exclusion, filters, and nothing left behind.

#[macro_use]
mod common;

use std::collections::HashMap;
use std::fs;
use std::process::Command;
use std::time::Duration;

use common::*;

/// key=value fields of a log line.
fn fields(line: &str) -> HashMap<&str, &str> {
    line.split(' ')
        .filter_map(|kv| kv.split_once('='))
        .collect()
}

#[test]
fn counts_and_contents_are_exact_and_sigint_exits_cleanly() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("exact");
    let comm = unique_comm("ex");
    let mut probe = Probe::start(&dir, &["-c", &comm, "--log", "events.log"]);
    let attached = probe.wait_attached();
    assert!(attached.starts_with("probe: attached via "), "{attached}");
    let (writes, reads) = (300, 200);
    let pid = loadgen(&comm, writes, reads);
    let done = probe.stop(libc::SIGINT);

    assert_eq!(exit_code(&done.status), 0, "{:?}", done.stderr);
    assert_eq!(done.last_line(), "probe: received=500 lost=0");

    let mut expected = "hello sys_write was called\n".repeat(writes as usize);
    expected.push_str(&"hello sys_read was called\n".repeat(reads as usize));
    assert_eq!(done.stdout, expected, "hello lines, in the order made");

    let log = fs::read_to_string(dir.join("events.log")).unwrap();
    let headers: Vec<_> = log.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(headers.len(), 1, "one header line per run");
    assert!(headers[0].starts_with("# probe "), "{}", headers[0]);
    let lines = event_lines(&log);
    assert_eq!(lines.len(), 500);
    let mut last_ts = 0u64;
    for (i, line) in lines.iter().enumerate() {
        let f = fields(line);
        let keys: Vec<&str> = line
            .split(' ')
            .map(|kv| kv.split('=').next().unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "ts", "cpu", "pid", "tgid", "uid", "comm", "syscall", "fd", "count"
            ],
            "{line}"
        );
        assert_eq!(f["comm"], comm);
        assert_eq!(f["pid"], pid.to_string());
        assert_eq!(f["tgid"], pid.to_string());
        assert_eq!(f["uid"], "0");
        assert_eq!(f["count"], "1");
        let want = if i < writes as usize { "write" } else { "read" };
        assert_eq!(f["syscall"], want, "{line}");
        // loadgen opens /dev/null, then /dev/zero: the first two free fds.
        assert_eq!(f["fd"], if want == "write" { "3" } else { "4" }, "{line}");
        let ts: u64 = f["ts"].parse().unwrap();
        assert!(ts >= last_ts, "timestamps go forward: {line}");
        last_ts = ts;
    }
    assert_nothing_left();
}

#[test]
fn json_lines_parse_and_sigterm_exits_cleanly() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("json");
    let comm = unique_comm("js");
    let mut probe = Probe::start(&dir, &["-c", &comm, "--json", "--no-log"]);
    probe.wait_attached();
    let pid = loadgen(&comm, 40, 60);
    let done = probe.stop(libc::SIGTERM);

    assert_eq!(exit_code(&done.status), 0, "{:?}", done.stderr);
    assert_eq!(done.last_line(), "probe: received=100 lost=0");
    assert!(!dir.join("syscalls.log").exists(), "--no-log writes no log");
    let objects: Vec<serde_json::Value> = done
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(objects.len(), 100);
    for (i, o) in objects.iter().enumerate() {
        let keys: Vec<&str> = o.as_object().unwrap().keys().map(String::as_str).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            [
                "comm", "count", "cpu", "fd", "pid", "syscall", "tgid", "ts", "uid"
            ]
        );
        assert_eq!(o["comm"], comm.as_str());
        assert_eq!(o["tgid"], pid);
        assert_eq!(o["count"], 1);
        assert_eq!(o["syscall"], if i < 40 { "write" } else { "read" });
    }
    assert_nothing_left();
}

#[test]
fn verbose_adds_details_and_the_kernel_copies_written_bytes() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("verbose");
    let comm = unique_comm("vb");
    let mut probe = Probe::start(&dir, &["-v", "-c", &comm]);
    probe.wait_attached();
    let pid = loadgen(&comm, 3, 2);
    let done = probe.stop(libc::SIGINT);
    assert_eq!(done.last_line(), "probe: received=5 lost=0");
    let write =
        format!("hello sys_write was called pid={pid} tgid={pid} comm={comm} fd=3 count=1 data=x");
    let read = format!("hello sys_read was called pid={pid} tgid={pid} comm={comm} fd=4 count=1");
    let expected = format!("{write}\n{write}\n{write}\n{read}\n{read}\n");
    assert_eq!(done.stdout, expected);
    let log = fs::read_to_string(dir.join("syscalls.log")).unwrap();
    let lines = event_lines(&log);
    assert_eq!(lines.len(), 5);
    for (i, line) in lines.iter().enumerate() {
        let tail = if i < 3 {
            " syscall=write fd=3 count=1 data=x"
        } else {
            " syscall=read fd=4 count=1"
        };
        assert!(line.ends_with(tail), "{line}");
    }
    assert_nothing_left();
}

#[test]
fn without_verbose_the_kernel_copies_no_data() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("quiet");
    let comm = unique_comm("nv");
    let mut probe = Probe::start(&dir, &["-q", "-c", &comm]);
    probe.wait_attached();
    loadgen(&comm, 4, 0);
    let done = probe.stop(libc::SIGINT);
    assert_eq!(done.last_line(), "probe: received=4 lost=0");
    assert_eq!(done.stdout, "", "-q prints no event lines");
    let log = fs::read_to_string(dir.join("syscalls.log")).unwrap();
    let lines = event_lines(&log);
    assert_eq!(lines.len(), 4);
    assert!(lines.iter().all(|l| !l.contains("data=")), "{lines:?}");
    assert_nothing_left();
}

/// Waits until loadgen `pid` sits in sigwait (rt_sigtimedwait, syscall 128
/// on x86-64), so SIGUSR1 will start it rather than kill it.
fn wait_in_sigwait(pid: u32) {
    for _ in 0..500 {
        let syscall = fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
        if syscall.split(' ').next() == Some("128") {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("loadgen never reached sigwait");
}

/// Kills a child still running when a test fails.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn pid_filter_reports_exactly_that_process() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("pid");
    let comm = unique_comm("pf");
    let mut load = KillOnDrop(
        Command::new(LOADGEN)
            .args([
                "--wait-signal",
                "--comm",
                &comm,
                "--writes",
                "70",
                "--reads",
                "30",
            ])
            .spawn()
            .unwrap(),
    );
    let pid = load.0.id();
    wait_in_sigwait(pid);
    let mut probe = Probe::start(&dir, &["-q", "-p", &pid.to_string()]);
    probe.wait_attached();
    // Another process with the same comm must not be counted.
    loadgen(&comm, 5, 5);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid as i32, libc::SIGUSR1) };
    assert!(load.0.wait().unwrap().success());
    let done = probe.stop(libc::SIGINT);
    assert_eq!(
        done.last_line(),
        "probe: received=100 lost=0",
        "{:?}",
        done.stderr
    );
    let log = fs::read_to_string(dir.join("syscalls.log")).unwrap();
    let lines = event_lines(&log);
    assert_eq!(lines.len(), 100);
    assert!(lines.iter().all(|l| fields(l)["tgid"] == pid.to_string()));
    assert_nothing_left();
}

#[test]
fn the_monitor_never_reports_itself() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("self");
    // Both monitors are named "probe": A watches that name, so it would see
    // its own log and stdout writes, endlessly, were it not excluded.
    let mut a = Probe::start(&dir, &["-c", "probe", "--log", "a.log"]);
    a.wait_attached();
    let other_dir = scratch_dir("self-b");
    let mut b = Probe::start(
        &other_dir,
        &["-q", "--no-log", "-c", "nothing", "-d", "0.3"],
    );
    b.wait_attached();
    let b_pid = b.pid();
    let b_done = b.wait(Duration::from_secs(10));
    assert_eq!(exit_code(&b_done.status), 0);
    std::thread::sleep(Duration::from_millis(300));
    let a_pid = a.pid();
    let done = a.stop(libc::SIGINT);
    assert_eq!(exit_code(&done.status), 0);
    let log = fs::read_to_string(dir.join("a.log")).unwrap();
    let tgids: Vec<String> = event_lines(&log)
        .iter()
        .map(|l| fields(l)["tgid"].to_string())
        .collect();
    assert!(!tgids.contains(&a_pid.to_string()), "A reported itself");
    assert!(
        tgids.contains(&b_pid.to_string()),
        "A saw nothing of B, so the test proves nothing: {tgids:?}"
    );
    let (received, lost) = done.counts();
    assert_eq!((received as usize, lost), (tgids.len(), 0));
    assert_nothing_left();
}

#[test]
fn flushes_within_the_interval_while_running() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("flush");
    let comm = unique_comm("fl");
    let mut probe = Probe::start(&dir, &["-c", &comm]);
    probe.wait_attached();
    loadgen(&comm, 7, 0);
    // Reader wakes within 100 ms, the output flushes within 200 ms.
    std::thread::sleep(Duration::from_millis(600));
    let stdout = fs::read_to_string(&probe.stdout_path).unwrap();
    let log = fs::read_to_string(dir.join("syscalls.log")).unwrap();
    assert_eq!(stdout.lines().count(), 7, "stdout flushed while running");
    assert_eq!(event_lines(&log).len(), 7, "log flushed while running");
    let done = probe.stop(libc::SIGINT);
    assert_eq!(done.last_line(), "probe: received=7 lost=0");
    assert_nothing_left();
}

#[test]
fn kprobe_without_kernel_support_is_one_clear_error() {
    require_root!();
    if std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists() {
        return; // this kernel has kprobes: the VM tests cover that path
    }
    let _turn = serial();
    let out = Command::new(PROBE)
        .args(["--attach", "kprobe", "--no-log", "-q"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("probe: could not attach with kprobe: this kernel has no kprobe PMU"),
        "{stderr}"
    );
    assert_nothing_left();
}

/// On a kernel without kprobes, `auto` passes over the two kprobe methods
/// without a word (they are absent on every run there), and says why with
/// -v.
#[test]
fn auto_says_which_methods_this_kernel_lacks_only_with_v() {
    require_root!();
    if std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists() {
        return;
    }
    let _turn = serial();
    let dir = scratch_dir("auto");
    let attached = format!(
        "probe: attached via tracepoint to read and write on {} CPUs",
        online_cpus()
    );
    let mut probe = Probe::start(&dir, &["-q", "--no-log", "-c", "nothing"]);
    assert_eq!(probe.wait_attached(), attached);
    let done = probe.stop(libc::SIGINT);
    assert_eq!(
        done.stderr,
        [attached.clone(), "probe: received=0 lost=0".into()]
    );
    let mut probe = Probe::start(&dir, &["-q", "--no-log", "-c", "nothing", "-v"]);
    assert_eq!(probe.wait_attached(), attached);
    let done = probe.stop(libc::SIGINT);
    assert_eq!(
        done.stderr[..2],
        [
            "probe: not attached via kprobe: this kernel has no kprobe PMU \
             (/sys/bus/event_source/devices/kprobe/type missing: CONFIG_KPROBES off, \
             or older than 4.17)",
            "probe: not attached via kprobe-legacy: /sys/kernel/tracing/kprobe_events \
             does not exist (kernel without CONFIG_KPROBE_EVENTS)",
        ]
    );
    assert_eq!(done.stderr[2], attached);
    // Asked for by name, the method's absence is the run's error.
    let out = std::process::Command::new(PROBE)
        .args(["--attach", "kprobe", "-q", "--no-log", "-d", "0.1"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "probe: could not attach with kprobe: this kernel has no kprobe PMU \
         (/sys/bus/event_source/devices/kprobe/type missing: CONFIG_KPROBES off, \
         or older than 4.17)\n"
    );
    assert_nothing_left();
}

fn online_cpus() -> usize {
    probe::cpus::online().unwrap().len()
}

#[test]
fn without_privileges_it_says_so_and_exits_1() {
    require_root!();
    use std::os::unix::process::CommandExt;
    let out = Command::new(PROBE)
        .args(["--no-log"])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "probe: this needs root (or the capabilities CAP_BPF and CAP_PERFMON): run it with sudo\n"
    );
}

#[test]
fn bad_usage_exits_2_with_a_message() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--pages", "3"],
            "probe: --pages 3: must be a power of two from 1 to 65536",
        ),
        (
            &["--pid", "abc"],
            "probe: --pid abc: not a process id (a whole number above 0)",
        ),
        (
            &["--duration", "-1"],
            "probe: --duration -1: not a number of seconds above 0",
        ),
        (
            &["--comm", "a_name_of_16_byt"],
            "probe: --comm a_name_of_16_byt: a process name is 1 to 15 bytes (the kernel keeps no more)",
        ),
        (
            &["--attach", "uprobe"],
            "probe: --attach uprobe: unknown method (auto, kprobe, kprobe-legacy, tracepoint, raw-tracepoint)",
        ),
        (&["--frobnicate"], "probe: unknown option --frobnicate"),
        (&["-p"], "probe: --pid needs a value"),
    ];
    for (args, message) in cases {
        let out = Command::new(PROBE).args(*args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().next(), Some(*message), "{args:?}");
        assert!(stderr.contains("usage: probe"), "{args:?}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn help_and_version() {
    let out = Command::new(PROBE).arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("usage: probe"));
    let out = Command::new(PROBE).arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("probe {}\n", env!("CARGO_PKG_VERSION"))
    );
}
