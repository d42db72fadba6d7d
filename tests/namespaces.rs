//! The monitor in containers (issue 9), on the host's real kernel: a pid
//! namespace of its own (`unshare --pid --fork --mount-proc`, as a
//! container runtime makes one), a rootless user namespace, and `--cgroup`.
//! Legacy kprobes shared between namespaced monitors are checked in the
//! VMs (scripts/vm/checks.sh), the host having no kprobes.

#[macro_use]
mod common;

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// `unshare --pid --fork --mount-proc`: the probe becomes pid 1 of a new
/// pid namespace, with a /proc that shows only that namespace.
const PID_NS: &[&str] = &["unshare", "--pid", "--fork", "--mount-proc"];

/// Waits until the wrapped probe has a child of its own (or 5 s).
fn child_of(pid: i32) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let children =
            fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        if let Some(c) = children.split_whitespace().next() {
            return c.parse().unwrap();
        }
        assert!(Instant::now() < deadline, "no child of {pid}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// A loadgen that waits for SIGUSR1 before its calls.
fn waiting_loadgen(comm: &str, writes: u64, reads: u64) -> Child {
    Command::new(LOADGEN)
        .args(["--comm", comm, "--wait-signal"])
        .args([
            "--writes",
            &writes.to_string(),
            "--reads",
            &reads.to_string(),
        ])
        .spawn()
        .unwrap()
}

fn go(pid: i32) {
    // SAFETY: signalling a loadgen of ours.
    unsafe { libc::kill(pid, libc::SIGUSR1) };
}

#[test]
fn in_a_pid_namespace_the_monitor_never_reports_itself() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("ns-self");
    // The monitor's own stdout thread is named out-stdout: a monitor that
    // took itself for someone else would report its own writes, forever.
    let args = [
        "--attach",
        "tracepoint",
        "-c",
        "out-stdout",
        "--json",
        "--no-log",
    ];
    let stdout = fs::File::create(dir.join("stdout")).unwrap();
    let mut probe = Probe::start_wrapped(&dir, PID_NS, &args, Stdio::from(stdout));
    probe.wait_attached();
    let inside = probe.probe_pid();
    assert_ne!(inside, probe.pid(), "the probe runs under unshare");
    let status = fs::read_to_string(format!("/proc/{inside}/status")).unwrap();
    let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
    assert!(nspid.ends_with("\t1"), "the probe is pid 1 inside: {nspid}");
    // Another process with that name: exactly its calls are reported.
    let mut load = Command::new(LOADGEN)
        .args(["--comm", "out-stdout", "--writes", "100", "--reads", "30"])
        .spawn()
        .unwrap();
    let load_pid = load.id();
    assert!(load.wait().unwrap().success());
    thread::sleep(Duration::from_millis(300));
    // SAFETY: signalling the probe we started (pid 1 of its namespace:
    // only signals it takes are delivered, and it takes SIGINT).
    unsafe { libc::kill(inside, libc::SIGINT) };
    let done = probe.wait(Duration::from_secs(10));
    assert_eq!(exit_code(&done.status), 0, "{:?}", done.stderr);
    let out = fs::read_to_string(dir.join("stdout")).unwrap();
    let tgids: Vec<u64> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["tgid"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(tgids.len(), 130, "{:?}", done.stderr);
    assert!(
        tgids.iter().all(|&t| t == load_pid as u64),
        "host ids: {tgids:?}"
    );
    assert_eq!(done.last_line(), "probe: received=130 lost=0");
    assert_nothing_left();
}

#[test]
fn in_a_pid_namespace_p_is_the_pid_seen_there_and_events_keep_host_ids() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("ns-p");
    let comm = unique_comm("np");
    // Inside the namespace: a loadgen waiting for SIGUSR1, and the probe,
    // as pid 1, filtering on the loadgen's pid *there*.
    let script = format!(
        "{LOADGEN} --comm {comm} --wait-signal --writes 60 --reads 25 & \
         exec {PROBE} --attach tracepoint -c {comm} -p $! --log p.log -q"
    );
    let mut wrapper: Vec<&str> = PID_NS.to_vec();
    wrapper.extend(["sh", "-c", &script]);
    let mut command = Command::new(wrapper[0]);
    command
        .args(&wrapper[1..])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(fs::File::create(dir.join("stderr")).unwrap());
    let mut unshare = command.spawn().unwrap();
    let probe = child_of(unshare.id() as i32);
    let wait_line = |prefix: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = fs::read_to_string(dir.join("stderr")).unwrap_or_default();
            if text.lines().any(|l| l.starts_with(prefix)) {
                return text;
            }
            assert!(Instant::now() < deadline, "no {prefix:?}: {text}");
            thread::sleep(Duration::from_millis(10));
        }
    };
    wait_line("probe: attached");
    let inner_load = child_of(probe);
    // The same name outside the namespace: not the process asked for.
    let mut outer = waiting_loadgen(&comm, 40, 0);
    thread::sleep(Duration::from_millis(100));
    go(outer.id() as i32);
    go(inner_load);
    assert!(outer.wait().unwrap().success());
    thread::sleep(Duration::from_millis(400));
    // SAFETY: signalling the probe (pid 1 inside, it takes SIGINT).
    unsafe { libc::kill(probe, libc::SIGINT) };
    assert!(unshare.wait().unwrap().success());
    let stderr = wait_line("probe: received=");
    assert_eq!(
        stderr.lines().last(),
        Some("probe: received=85 lost=0"),
        "{stderr}"
    );

    let log = fs::read_to_string(dir.join("p.log")).unwrap();
    let header = log.lines().next().unwrap();
    let inner_pid: u32 = field(header, "pid_filter").parse().unwrap();
    assert!(inner_pid < 10, "the pid as seen inside: {header}");
    assert_eq!(field(header, "pid"), "1");
    assert_eq!(field(header, "kernel_pid"), probe.to_string());
    let lines = event_lines(&log);
    assert_eq!(lines.len(), 85);
    for line in lines {
        assert_eq!(
            field(line, "tgid"),
            inner_load.to_string(),
            "host ids: {line}"
        );
    }
    assert_nothing_left();
}

#[test]
fn in_a_pid_namespace_a_pid_that_is_not_there_is_refused() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("ns-nopid");
    // Pid 4242 may exist on the host; in a new namespace there is only 1.
    let probe = Probe::start_wrapped(
        &dir,
        PID_NS,
        &["--attach", "tracepoint", "-p", "4242", "--no-log"],
        Stdio::null(),
    );
    let done = probe.wait(Duration::from_secs(10));
    assert_eq!(exit_code(&done.status), 1);
    assert_eq!(
        done.stderr,
        ["probe: -p 4242: there is no process 4242 in this pid namespace"]
    );
    assert_nothing_left();
}

#[test]
fn as_pid_1_of_a_namespace_duration_and_sigterm_work() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("ns-pid1");
    let args = ["--attach", "tracepoint", "-c", "nothing", "--no-log", "-q"];
    let started = Instant::now();
    let probe = Probe::start_wrapped(
        &dir,
        PID_NS,
        &[&args[..], &["-d", "1"]].concat(),
        Stdio::null(),
    );
    let done = probe.wait(Duration::from_secs(10));
    assert_eq!(exit_code(&done.status), 0, "{:?}", done.stderr);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(done.last_line(), "probe: received=0 lost=0");

    let mut probe = Probe::start_wrapped(&dir, PID_NS, &args, Stdio::null());
    probe.wait_attached();
    let inside = probe.probe_pid();
    // SAFETY: signalling the probe we started.
    unsafe { libc::kill(inside, libc::SIGTERM) };
    let done = probe.wait(Duration::from_secs(10));
    assert_eq!(exit_code(&done.status), 0, "{:?}", done.stderr);
    assert_eq!(done.last_line(), "probe: received=0 lost=0");
    assert_nothing_left();
}

#[test]
fn in_a_rootless_user_namespace_it_says_it_cannot_trace() {
    require_root!();
    let dir = scratch_dir("userns");
    let out = Command::new("unshare")
        .args(["--user", "--map-root-user", PROBE, "--no-log"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "probe: running in a user namespace (a rootless container?), where capabilities \
         cannot load tracing programs: run it as root on the host, or in a container \
         with the host's root (docker run --privileged)\n"
    );
}

/// Where cgroup v2 is mounted (on a hybrid system, beside v1's).
fn cgroup2_root() -> Option<PathBuf> {
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap();
    mounts.lines().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        (f[2] == "cgroup2").then(|| PathBuf::from(f[1]))
    })
}

/// A cgroup made for one test: `parent/inner`; removed after.
struct TestCgroup(PathBuf);

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = fs::remove_dir(self.0.join("inner"));
        let _ = fs::remove_dir(&self.0);
    }
}

#[test]
fn cgroup_selects_the_tasks_in_a_cgroup_and_below_it() {
    require_root!();
    let _turn = serial();
    let Some(root) = cgroup2_root() else {
        panic!("no cgroup2 mount: mount -t cgroup2 none /sys/fs/cgroup");
    };
    let dir = scratch_dir("cgroup");
    let cg = TestCgroup(root.join(format!("probe-test-{}", std::process::id())));
    fs::create_dir_all(cg.0.join("inner")).unwrap();
    let comm = unique_comm("cg");
    let cgroup_arg = cg.0.to_string_lossy().into_owned();
    let mut probe = Probe::start(
        &dir,
        &[
            "--attach",
            "tracepoint",
            "-c",
            &comm,
            "--cgroup",
            &cgroup_arg,
            "--log",
            "c.log",
        ],
    );
    probe.wait_attached();
    // One loadgen in a cgroup below the one asked for, one outside it.
    let mut inside = waiting_loadgen(&comm, 70, 30);
    let mut outside = waiting_loadgen(&comm, 55, 0);
    fs::write(cg.0.join("inner/cgroup.procs"), inside.id().to_string()).unwrap();
    go(inside.id() as i32);
    go(outside.id() as i32);
    assert!(inside.wait().unwrap().success() && outside.wait().unwrap().success());
    let done = probe.stop(libc::SIGINT);
    assert_eq!(exit_code(&done.status), 0, "{:?}", done.stderr);
    assert_eq!(done.last_line(), "probe: received=100 lost=0");
    let log = fs::read_to_string(dir.join("c.log")).unwrap();
    assert!(
        log.lines()
            .next()
            .unwrap()
            .ends_with(&format!(" cgroup_filter={cgroup_arg}"))
    );
    let lines = event_lines(&log);
    assert_eq!(lines.len(), 100);
    assert!(
        lines
            .iter()
            .all(|l| field(l, "tgid") == inside.id().to_string())
    );

    // What is not a cgroup v2 directory is refused, with one line.
    for (path, why) in [
        (
            "/nonexistent-cgroup",
            "No such file or directory (os error 2)".to_string(),
        ),
        (
            dir.to_str().unwrap(),
            "not a cgroup v2 directory (give one under the cgroup2 mount, e.g. \
             /sys/fs/cgroup/system.slice/docker-ID.scope)"
                .to_string(),
        ),
    ] {
        let out = Command::new(PROBE)
            .args(["--attach", "tracepoint", "--no-log", "--cgroup", path])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!("probe: --cgroup {path}: {why}\n")
        );
    }
    drop(cg);
    assert_nothing_left();
}
