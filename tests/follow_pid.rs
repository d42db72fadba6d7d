//! `-p PID` follows a process, not a number: the probe stops when the
//! process exits, and a process that reuses the pid at once (clone3 with
//! set_tid: `loadgen --reuse-pid`) is never reported, in the streaming
//! monitor and in `probe top`; with pidfd_open refused by a seccomp
//! filter, in a time namespace, and without kernel BTF (said, and then the
//! reuser is reported until the stop: what the identity check prevents).

#[macro_use]
mod common;

use std::fs;
use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use common::*;

/// `loadgen --reuse-pid K`: a target that makes K known writes once told,
/// then an impostor with its pid.
struct Lab {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    target: u32,
    /// The target's fd of /dev/null, which it writes to.
    fd: String,
}

impl Lab {
    fn start(comm: &str, writes: u64) -> Lab {
        Lab::start_with(comm, writes, &[])
    }

    /// `start`, with more flags for loadgen (`--from-thread`).
    fn start_with(comm: &str, writes: u64, more: &[&str]) -> Lab {
        let mut child = Command::new(LOADGEN)
            .args(["--comm", comm, "--reuse-pid", &writes.to_string()])
            .args(more)
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn loadgen --reuse-pid");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().expect("target=").unwrap();
        let (target, fd) = first
            .strip_prefix("target=")
            .and_then(|r| r.split_once(" fd="))
            .unwrap_or_else(|| panic!("{first}"));
        Lab {
            target: target.parse().unwrap(),
            fd: fd.to_string(),
            child,
            lines,
        }
    }

    /// The target makes its writes and exits; the impostor follows.
    fn go(&self) {
        // SAFETY: signalling the target, our grandchild, waiting in sigwait.
        unsafe { libc::kill(self.target as i32, libc::SIGUSR1) };
    }

    /// Waits for the impostor to be done; checks it had the target's pid.
    fn finish(mut self) {
        let line = self.lines.next().expect("impostor=").unwrap();
        assert!(self.child.wait().unwrap().success(), "{line}");
        assert_eq!(
            line,
            format!("impostor={} writes=300", self.target),
            "the impostor has the target's pid"
        );
    }
}

/// The hello line of target `t`'s write `i` with -v.
fn hello(t: u32, comm: &str, fd: &str, i: u64) -> String {
    hello_from(t, t, comm, fd, i)
}

/// The same made by thread `tid` of the target `t`.
fn hello_from(tid: u32, t: u32, comm: &str, fd: &str, i: u64) -> String {
    format!(
        "hello sys_write was called pid={tid} tgid={t} comm={comm} fd={fd} count=8 \
         data=known{i:03}\n"
    )
}

/// The probe's stderr without its `attached via` line (which names the
/// CPUs).
fn without_attached(stderr: &[String]) -> Vec<String> {
    stderr
        .iter()
        .filter(|l| !l.starts_with("probe: attached via "))
        .cloned()
        .collect()
}

#[test]
fn a_process_that_reuses_the_pid_at_once_is_never_reported_and_the_exit_stops_the_probe() {
    require_root!();
    let _turn = serial();
    // The target's writes from its group leader (one read of kernel memory
    // in the check) and from another thread (two), with and without --exit.
    for (method, exit, thread) in [
        ("tracepoint", false, false),
        ("raw-tracepoint", true, true),
        ("tracepoint", true, false),
        ("raw-tracepoint", false, true),
    ] {
        let what = format!("{method} exit={exit} thread={thread}");
        let dir = scratch_dir(&format!("reuse-{method}-{exit}-{thread}"));
        let comm = unique_comm("ru");
        let k = 7;
        let lab = Lab::start_with(&comm, k, if thread { &["--from-thread"] } else { &[] });
        let mut args = vec!["--attach", method, "-v", "-p"];
        let pid = lab.target.to_string();
        args.push(&pid);
        if exit {
            args.push("--exit");
        }
        let mut probe = Probe::start(&dir, &args);
        probe.wait_attached();
        lab.go();
        let (target, fd) = (lab.target, lab.fd.clone());
        lab.finish();
        // Not signalled: the target's exit stops it.
        let done = probe.wait(Duration::from_secs(10));
        assert_eq!(exit_code(&done.status), 0, "{what}: {:?}", done.stderr);
        assert_eq!(
            without_attached(&done.stderr),
            [
                format!("probe: process {target} ({comm}) exited: stopping"),
                format!("probe: received={k} lost=0"),
            ],
            "{what}"
        );
        let log = fs::read_to_string(dir.join("syscalls.log")).unwrap();
        let lines = event_lines(&log);
        assert_eq!(lines.len(), k as usize, "{what}: {log}");
        let tid: u32 = field(lines[0], "pid").parse().unwrap();
        assert_eq!(tid != target, thread, "{what}: {}", lines[0]);
        for (i, line) in lines.iter().enumerate() {
            assert_eq!(field(line, "pid"), tid.to_string(), "{line}");
            assert_eq!(field(line, "tgid"), target.to_string(), "{line}");
            assert_eq!(field(line, "comm"), comm, "{line}");
            assert_eq!(field(line, "data"), format!("known{i:03}"), "{line}");
        }
        let want: Vec<String> = (0..k)
            .map(|i| hello_from(tid, target, &comm, &fd, i))
            .collect();
        let shown: Vec<&str> = done.stdout.lines().collect();
        assert_eq!(shown.len(), k as usize, "{what}: {}", done.stdout);
        for (line, want) in shown.iter().zip(&want) {
            if exit {
                // --exit's lines carry the result and latency too.
                let (before, after) = want.trim_end().split_once(" data=").unwrap();
                assert!(
                    line.starts_with(&format!("{before} ret=8 lat_ns="))
                        && line.ends_with(&format!(" data={after}")),
                    "{what}: {line}"
                );
            } else {
                assert_eq!(*line, want.trim_end(), "{what}");
            }
        }
        assert!(
            !log.contains("impostor") && !log.contains("secret") && !done.stdout.contains("secret"),
            "{what}: the impostor was reported"
        );
        assert_nothing_left();
    }
}

#[test]
fn probe_top_p_stops_at_the_exit_and_never_counts_the_impostor() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("reuse-top");
    let comm = unique_comm("rt");
    let k = 9;
    let lab = Lab::start(&comm, k);
    let pid = lab.target.to_string();
    let mut probe = Probe::start(
        &dir,
        &[
            "top",
            "--attach",
            "tracepoint",
            "--json",
            "-i",
            "0.2",
            "-p",
            &pid,
        ],
    );
    probe.wait_attached();
    lab.go();
    let target = lab.target;
    lab.finish();
    let done = probe.wait(Duration::from_secs(10));
    assert_eq!(exit_code(&done.status), 0, "{:?}", done.stderr);
    let stderr = without_attached(&done.stderr);
    assert_eq!(
        stderr.first().map(String::as_str),
        Some(format!("probe: process {target} ({comm}) exited: stopping").as_str()),
        "{stderr:?}"
    );
    assert_eq!(done.last_line(), format!("probe: received={k} lost=0"));
    // Every row of every interval: the target's writes, k in all.
    let mut writes = 0;
    for line in done.stdout.lines() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(row["pid"], target, "{line}");
        assert_eq!(row["comm"], comm.as_str(), "{line}");
        assert_eq!(row["syscall"], "write", "{line}");
        writes += row["calls"].as_u64().unwrap();
        assert_eq!(row["bytes"], row["calls"].as_u64().unwrap() * 8, "{line}");
    }
    assert_eq!(writes, k, "{}", done.stdout);
    assert_nothing_left();
}

#[test]
fn without_kernel_btf_it_says_so_matches_the_number_until_the_stop_and_still_stops() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("reuse-nobtf");
    let comm = unique_comm("rn");
    let k = 4;
    let lab = Lab::start(&comm, k);
    let pid = lab.target.to_string();
    let mut probe = start_wrapped(
        &dir,
        &["env", "PROBE_BTF=/nonexistent"],
        &["--attach", "tracepoint", "-v", "-p", &pid, "--no-log"],
    );
    probe.wait_attached();
    lab.go();
    let (target, fd) = (lab.target, lab.fd.clone());
    lab.finish();
    let done = probe.wait(Duration::from_secs(10));
    assert_eq!(exit_code(&done.status), 0, "{:?}", done.stderr);
    let stderr = without_attached(&done.stderr);
    assert_eq!(
        stderr[..2],
        [
            format!(
                "probe: -p {target}: no kernel BTF to tell process {target} from another that \
                 reuses its pid (/nonexistent: No such file or directory): the kernel matches \
                 the number alone until the probe sees process {target} exit (within 50 ms) \
                 and detaches"
            ),
            format!("probe: process {target} ({comm}) exited: stopping"),
        ]
    );
    let (received, lost) = done.counts();
    assert_eq!(lost, 0);
    // The target's writes, all of them, first; then the impostor's made
    // before the probe stopped: what the kernel's identity check keeps
    // out when there is BTF (and so the proof that the test above can
    // fail).
    let lines: Vec<&str> = done.stdout.lines().collect();
    assert_eq!(lines.len() as u64, received);
    for (i, line) in lines.iter().take(k as usize).enumerate() {
        assert!(line.ends_with(&format!("comm={comm} fd={fd} count=8 data=known{i:03}")));
    }
    let impostor = lines[k as usize..]
        .iter()
        .filter(|l| {
            l.ends_with(&format!(
                "pid={target} tgid={target} comm=impostor fd={fd} count=8 data=secret!!"
            ))
        })
        .count();
    assert!(
        impostor > 0 && impostor as u64 == received - k,
        "{}",
        done.stdout
    );
    assert_nothing_left();
}

#[test]
fn with_pidfd_open_refused_it_watches_proc_and_still_never_reports_the_impostor() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("reuse-seccomp");
    let comm = unique_comm("rs");
    let k = 5;
    let lab = Lab::start(&comm, k);
    let pid = lab.target.to_string();
    // As a container's seccomp profile may: pidfd_open fails with EPERM.
    let mut probe = start_wrapped(
        &dir,
        &[LOADGEN, "--no-pidfd-open"],
        &["--attach", "tracepoint", "-v", "-p", &pid, "--no-log"],
    );
    probe.wait_attached();
    lab.go();
    let want: String = (0..k)
        .map(|i| hello(lab.target, &comm, &lab.fd, i))
        .collect();
    let target = lab.target;
    lab.finish();
    let done = probe.wait(Duration::from_secs(10));
    assert_eq!(exit_code(&done.status), 0, "{:?}", done.stderr);
    assert_eq!(
        without_attached(&done.stderr),
        [
            format!(
                "probe: -p {target}: pidfd_open refused (Operation not permitted): the exit of \
                 process {target} is found by reading /proc/{target}/stat every 50 ms instead"
            ),
            format!("probe: process {target} ({comm}) exited: stopping"),
            format!("probe: received={k} lost=0"),
        ]
    );
    assert_eq!(done.stdout, want);
    assert_nothing_left();
}

#[test]
fn in_a_time_namespace_the_start_time_is_matched_all_the_same() {
    require_root!();
    let _turn = serial();
    if !std::path::Path::new("/proc/self/ns/time").exists() {
        eprintln!("skipped: this kernel has no time namespaces (CONFIG_TIME_NS)");
        return;
    }
    let dir = scratch_dir("reuse-timens");
    let comm = unique_comm("rz");
    let k = 6;
    let lab = Lab::start(&comm, k);
    let pid = lab.target.to_string();
    // The probe's /proc/PID/stat and CLOCK_BOOTTIME run a day ahead of the
    // kernel's start times: its range must take the offset back off.
    let mut probe = start_wrapped(
        &dir,
        &["unshare", "--time", "--boottime", "86400", "--fork"],
        &["--attach", "tracepoint", "-v", "-p", &pid, "--no-log"],
    );
    probe.wait_attached();
    lab.go();
    let want: String = (0..k)
        .map(|i| hello(lab.target, &comm, &lab.fd, i))
        .collect();
    let target = lab.target;
    lab.finish();
    let done = probe.wait(Duration::from_secs(10));
    assert_eq!(exit_code(&done.status), 0, "{:?}", done.stderr);
    assert_eq!(
        without_attached(&done.stderr),
        [
            format!("probe: process {target} ({comm}) exited: stopping"),
            format!("probe: received={k} lost=0"),
        ]
    );
    assert_eq!(done.stdout, want);
    assert_nothing_left();
}

#[test]
fn a_process_that_exits_while_the_probe_starts_stops_it_with_exact_totals() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("exit-at-start");
    let comm = unique_comm("es");
    // Waits for SIGUSR1, then exits with no read or write.
    let mut target = Command::new(LOADGEN)
        .args(["--comm", &comm, "--wait-signal"])
        .spawn()
        .unwrap();
    let pid = target.id();
    wait_in_sigwait(pid);
    let probe = Probe::start(
        &dir,
        &[
            "--attach",
            "tracepoint",
            "-vv",
            "-p",
            &pid.to_string(),
            "--no-log",
        ],
    );
    // The probe holds it (its start time read): now it goes, while the
    // probe loads and attaches.
    wait_for_line(&probe, &format!("probe: [loader] -p {pid}: process "));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid as i32, libc::SIGUSR1) };
    assert!(target.wait().unwrap().success());
    let done = probe.wait(Duration::from_secs(10));
    assert_eq!(exit_code(&done.status), 0, "{:?}", done.stderr);
    let exited = format!("probe: process {pid} (loadgen) exited: stopping");
    assert!(done.stderr.contains(&exited), "{:?}", done.stderr);
    assert_eq!(done.last_line(), "probe: received=0 lost=0");
    assert_nothing_left();
}

#[test]
fn a_zombie_or_a_thread_is_refused_in_one_line() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("zombie");
    // A child that exited and is not reaped yet: it still has its pid, and
    // will never make a call.
    let mut zombie = Command::new("true").spawn().unwrap();
    let pid = zombie.id();
    std::thread::sleep(Duration::from_millis(200));
    let probe = Probe::start(&dir, &["-p", &pid.to_string(), "--no-log"]);
    let done = probe.wait(Duration::from_secs(10));
    let _ = zombie.wait();
    assert_eq!(exit_code(&done.status), 1);
    assert_eq!(
        done.stderr,
        [format!(
            "probe: -p {pid}: process {pid} (true) exited while the probe was starting: \
             nothing was monitored"
        )]
    );

    // A thread's id is not a process's.
    let (tx, rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        // SAFETY: gettid has no preconditions.
        tx.send(unsafe { libc::gettid() }).unwrap();
        let _ = stop_rx.recv();
    });
    let tid = rx.recv().unwrap();
    let probe = Probe::start(&dir, &["-p", &tid.to_string(), "--no-log"]);
    let done = probe.wait(Duration::from_secs(10));
    drop(stop_tx);
    thread.join().unwrap();
    assert_eq!(exit_code(&done.status), 1);
    let me = std::process::id();
    assert_eq!(
        done.stderr,
        [format!(
            "probe: -p {tid}: {tid} is a thread of process {me}, not a process: use -p {me}"
        )]
    );
    assert_nothing_left();
}

/// `Probe::start` through `wrapper` (which execs or forks the probe),
/// stdout to a file.
fn start_wrapped(dir: &std::path::Path, wrapper: &[&str], args: &[&str]) -> Probe {
    let stdout = dir.join("stdout");
    let file = fs::File::create(&stdout).unwrap();
    let mut probe = Probe::start_wrapped(dir, wrapper, args, Stdio::from(file));
    probe.stdout_path = stdout;
    probe
}

/// Until process `pid` waits in rt_sigtimedwait (x86-64 syscall 128), so
/// that SIGUSR1 wakes it rather than kills it.
fn wait_in_sigwait(pid: u32) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while fs::read_to_string(format!("/proc/{pid}/syscall"))
        .unwrap_or_default()
        .split(' ')
        .next()
        != Some("128")
    {
        assert!(std::time::Instant::now() < deadline, "never in sigwait");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits (at most 20 s) for a stderr line starting with `prefix`.
fn wait_for_line(probe: &Probe, prefix: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !probe.stderr().iter().any(|l| l.starts_with(prefix)) {
        assert!(
            std::time::Instant::now() < deadline,
            "no {prefix:?}: {:?}",
            probe.stderr()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
