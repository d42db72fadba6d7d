//! The log's lifecycle on the real kernel, with the real tools: a file
//! output whose disk fills and frees again marks the gap where it is (in
//! the log, and in JSON on stdout), `--log-max` rotates with nothing lost,
//! logrotate rotates a running probe both ways (create with SIGUSR1 from
//! `postrotate`, and copytruncate) with nothing lost across the files,
//! `--pid-file` is written safely and removed, and a log that cannot be
//! created says why, where.

#[macro_use]
mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// A tmpfs mounted for one test (`opts`: `size=64k`, `ro`, ...);
/// unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: PathBuf, opts: &str) -> Tmpfs {
        fs::create_dir_all(&at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", opts, "tmpfs"])
            .arg(&at)
            .output()
            .unwrap();
        assert!(out.status.success(), "mount: {out:?}");
        Tmpfs(at)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn require_logrotate() {
    let found = Command::new("logrotate")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "logrotate is needed: apt-get install logrotate (scripts/test installs it)"
    );
}

/// The `ts` of a log line.
fn ts(line: &str) -> u64 {
    field(line, "ts").parse().unwrap()
}

/// Every line of the files `names` in `dir`, read in that order (the
/// oldest first), each file's lines apart.
fn files(dir: &Path, names: &[&str]) -> Vec<(String, Vec<String>)> {
    names
        .iter()
        .map(|n| {
            let text = fs::read_to_string(dir.join(n)).unwrap_or_else(|e| panic!("{n}: {e}"));
            (n.to_string(), text.lines().map(String::from).collect())
        })
        .collect()
}

/// Checks files that together hold one run's log (oldest first): each
/// starts with the run's header and has no other `#` line; their events
/// are `writes` writes of `comm`, each once, in time order across the
/// files. Returns how many events there are in all.
fn one_run_across(files: &[(String, Vec<String>)], comm: &str) -> usize {
    let header = &files[0].1[0];
    assert!(header.starts_with("# probe "), "{header}");
    let mut last_ts = 0;
    let mut events = 0;
    for (name, lines) in files {
        assert_eq!(&lines[0], header, "{name} starts with the run's header");
        for line in &lines[1..] {
            assert!(!line.starts_with('#'), "{name}: {line}");
            assert_eq!(field(line, "comm"), comm, "{name}: {line}");
            assert_eq!(field(line, "syscall"), "write", "{name}: {line}");
            assert!(ts(line) >= last_ts, "{name}: in time order: {line}");
            last_ts = ts(line);
            events += 1;
        }
    }
    events
}

/// Waits until `path` holds `lines` event lines (at most 20 s).
fn wait_logged(path: &Path, lines: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = fs::read_to_string(path).unwrap_or_default();
        if event_lines(&text).len() >= lines {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} never got {lines} lines",
            path.display()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

// ------------------------------------------------------------ the gaps

#[test]
fn json_on_a_full_disk_marks_its_gap_with_an_object_that_is_no_event() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("gap-json");
    let tiny = Tmpfs::mount(dir.join("tiny"), "size=64k,mode=0700");
    fs::write(tiny.0.join("filler"), vec![b'f'; 56 << 10]).unwrap();
    let comm = unique_comm("gj");
    let out = fs::File::create(tiny.0.join("out.json")).unwrap();
    let mut probe = Probe::start_with(
        &dir,
        &["--attach", "tracepoint", "-c", &comm, "--json", "--no-log"],
        Stdio::from(out),
        false,
    );
    probe.wait_attached();
    loadgen(&comm, 2000, 0);
    thread::sleep(Duration::from_millis(400));
    fs::remove_file(tiny.0.join("filler")).unwrap();
    loadgen(&comm, 50, 0);
    thread::sleep(Duration::from_millis(400));
    let done = probe.stop(libc::SIGINT);

    assert_eq!(exit_code(&done.status), 4, "{:?}", done.stderr);
    assert_eq!(done.counts(), (2050, 0), "{:?}", done.stderr);
    let short = shortfall(&done.stderr, "stdout").expect("stdout fell short");
    assert_eq!(short.why, "No space left on device (os error 28)");
    let text = fs::read_to_string(tiny.0.join("out.json")).unwrap();
    let objects: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let gaps: Vec<usize> = (0..objects.len())
        .filter(|&i| objects[i].get("gap").is_some())
        .collect();
    assert_eq!(gaps.len(), 1, "one gap: {gaps:?}");
    let gap = &objects[gaps[0]];
    let keys: Vec<&str> = gap
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["gap"], "{gap}");
    assert!(gap.get("ts").is_none());
    let g = &gap["gap"];
    assert_eq!(g["events"], short.failed, "{gap}");
    assert_eq!(g["error"], "ENOSPC");
    let events = objects.len() - 1;
    assert_eq!(events as u64, short.written);
    assert_eq!(
        events as u64 + short.failed,
        2050,
        "objects + the gap's count"
    );
    assert!(events >= 50, "the last 50 came after room was made");
    let (from, to) = (g["from_ts"].as_u64().unwrap(), g["to_ts"].as_u64().unwrap());
    let at = gaps[0];
    assert!(at == 0 || objects[at - 1]["ts"].as_u64().unwrap() <= from);
    assert!(from <= to && to <= objects[at + 1]["ts"].as_u64().unwrap());
    drop(tiny);
    assert_nothing_left();
}

// ------------------------------------------------------------ --log-max

/// A probe of `comm` logging to `l.log` in `dir` with `extra` flags.
fn log_probe(dir: &Path, comm: &str, extra: &[&str]) -> Probe {
    let mut args = vec!["--attach", "tracepoint", "-q", "-c", comm, "--log", "l.log"];
    args.extend_from_slice(extra);
    let mut probe = Probe::start_with(dir, &args, Stdio::null(), false);
    probe.wait_attached();
    probe
}

#[test]
fn log_max_rotates_before_a_file_grows_past_it_with_the_header_in_each_and_nothing_lost() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("log-max");
    let comm = unique_comm("lm");
    let probe = log_probe(&dir, &comm, &["--log-max", "1M", "--log-keep", "5"]);
    // About 2.7 MB of lines: three or four files.
    loadgen(&comm, 30_000, 0);
    wait_logged(&dir.join("l.log"), 1);
    thread::sleep(Duration::from_millis(300));
    let done = probe.stop(libc::SIGINT);
    assert_eq!(exit_code(&done.status), 0, "{:?}", done.stderr);
    assert_eq!(done.counts(), (30_000, 0), "{:?}", done.stderr);
    assert_eq!(done.stderr.len(), 2, "nothing more said: {:?}", done.stderr);

    let mut names: Vec<String> = (1..=5)
        .rev()
        .map(|n| format!("l.log.{n}"))
        .filter(|n| dir.join(n).exists())
        .collect();
    names.push("l.log".into());
    assert!(names.len() >= 3, "rotated twice at least: {names:?}");
    assert!(names.len() <= 5, "{names:?}");
    for n in &names {
        let meta = fs::symlink_metadata(dir.join(n)).unwrap();
        assert!(meta.len() <= 1 << 20, "{n}: {} bytes", meta.len());
        assert_eq!(meta.mode() & 0o7777, 0o600, "{n}");
        assert_eq!((meta.uid(), meta.nlink()), (0, 1), "{n}");
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let all = files(&dir, &names);
    assert_eq!(one_run_across(&all, &comm), 30_000);
    // The header says what was followed.
    let header = &all[0].1[0];
    let keys: Vec<&str> = header
        .split(' ')
        .filter_map(|kv| kv.split_once('=').map(|(k, _)| k))
        .collect();
    assert_eq!(
        keys,
        [
            "pid",
            "kernel_pid",
            "attach",
            "unix_time",
            "ts_to_unix_ns",
            "pid_filter",
            "comm_filter",
            "syscalls"
        ],
        "{header}"
    );
    assert!(header.ends_with(" syscalls=read,write"), "{header}");
    assert_nothing_left();
}

#[test]
fn log_keep_drops_the_oldest_and_keeps_the_newest_events() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("log-keep");
    let comm = unique_comm("lk");
    let probe = log_probe(
        &dir,
        &comm,
        &[
            "--log-max",
            "1M",
            "--log-keep",
            "1",
            "--syscalls",
            "write,pread64",
        ],
    );
    loadgen(&comm, 30_000, 0);
    wait_logged(&dir.join("l.log"), 1);
    thread::sleep(Duration::from_millis(300));
    let done = probe.stop(libc::SIGINT);
    assert_eq!(exit_code(&done.status), 0, "{:?}", done.stderr);
    assert_eq!(done.counts(), (30_000, 0), "{:?}", done.stderr);
    assert!(!dir.join("l.log.2").exists(), "only one rotated file kept");
    let all = files(&dir, &["l.log.1", "l.log"]);
    assert!(
        all[0].1[0].ends_with(" syscalls=write,pread64"),
        "{}",
        all[0].1[0]
    );
    let kept = one_run_across(&all, &comm);
    assert!(kept < 30_000, "the oldest file was dropped: {kept}");
    assert!(kept > 10_000, "two files of about 1 MB: {kept}");
    assert_nothing_left();
}

// ------------------------------------------------------------ logrotate

/// Runs `logrotate -f` with `config` (its state in `dir`).
fn logrotate(dir: &Path, config: &str) {
    let conf = dir.join("logrotate.conf");
    fs::write(&conf, config).unwrap();
    fs::set_permissions(&conf, fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new("logrotate")
        .arg("-f")
        .arg("-s")
        .arg(dir.join("logrotate.state"))
        .arg(&conf)
        .output()
        .unwrap();
    assert!(out.status.success(), "logrotate: {out:?}");
}

fn spawn_loadgen(comm: &str, writes: u64, rate: u64) -> Child {
    Command::new(LOADGEN)
        .args(["--comm", comm, "--writes", &writes.to_string()])
        .args(["--reads", "0", "--rate", &rate.to_string()])
        .spawn()
        .unwrap()
}

#[test]
fn logrotate_create_and_sigusr1_rotate_a_running_probe_with_nothing_lost() {
    require_root!();
    require_logrotate();
    let _turn = serial();
    let dir = scratch_dir("logrotate-create");
    let comm = unique_comm("lc");
    let pid_file = dir.join("probe.pid");
    let probe = log_probe(&dir, &comm, &["--pid-file", "probe.pid"]);
    assert_eq!(
        fs::read_to_string(&pid_file).unwrap(),
        format!("{}\n", probe.pid())
    );
    let config = format!(
        "{log} {{\n    rotate 5\n    create 0600 root root\n    nocompress\n    missingok\n    \
         postrotate\n        kill -USR1 $(cat {pid})\n    endscript\n}}\n",
        log = dir.join("l.log").display(),
        pid = pid_file.display()
    );
    // Two rotations while the load runs (3 s of 20,000 writes a second).
    let mut load = spawn_loadgen(&comm, 60_000, 20_000);
    thread::sleep(Duration::from_millis(900));
    logrotate(&dir, &config);
    thread::sleep(Duration::from_millis(900));
    logrotate(&dir, &config);
    assert!(load.wait().unwrap().success());
    thread::sleep(Duration::from_millis(300));
    let done = probe.stop(libc::SIGINT);
    assert_eq!(exit_code(&done.status), 0, "{:?}", done.stderr);
    assert_eq!(done.counts(), (60_000, 0), "{:?}", done.stderr);
    assert_eq!(done.stderr.len(), 2, "nothing more said: {:?}", done.stderr);
    assert!(!pid_file.exists(), "the pid file is removed at exit");

    let all = files(&dir, &["l.log.2", "l.log.1", "l.log"]);
    for (name, lines) in &all {
        assert!(
            lines.len() > 1000,
            "{name}: each got its share: {}",
            lines.len()
        );
    }
    assert_eq!(one_run_across(&all, &comm), 60_000);
    assert_nothing_left();
}

#[test]
fn logrotate_copytruncate_keeps_working_on_the_append_only_log() {
    require_root!();
    require_logrotate();
    let _turn = serial();
    let dir = scratch_dir("logrotate-copy");
    let comm = unique_comm("lt");
    let probe = log_probe(&dir, &comm, &[]);
    let config = format!(
        "{} {{\n    rotate 5\n    copytruncate\n    nocompress\n}}\n",
        dir.join("l.log").display()
    );
    // copytruncate loses what is written between its copy and its
    // truncation (logrotate says so): it rotates between two loads.
    loadgen(&comm, 20_000, 0);
    wait_logged(&dir.join("l.log"), 20_000);
    logrotate(&dir, &config);
    loadgen(&comm, 20_000, 0);
    wait_logged(&dir.join("l.log"), 20_000);
    thread::sleep(Duration::from_millis(300));
    let done = probe.stop(libc::SIGINT);
    assert_eq!(exit_code(&done.status), 0, "{:?}", done.stderr);
    assert_eq!(done.counts(), (40_000, 0), "{:?}", done.stderr);

    // Appended at the new end: no hole of zeros where the old lines were,
    // and the header again at the top.
    let log = fs::read(dir.join("l.log")).unwrap();
    assert!(
        !log.contains(&0),
        "a sparse file: written at the old offset"
    );
    let all = files(&dir, &["l.log.1", "l.log"]);
    assert_eq!(all[0].1.len(), 20_001);
    assert_eq!(all[1].1.len(), 20_001);
    assert_eq!(one_run_across(&all, &comm), 40_000);
    assert_nothing_left();
}

// ------------------------------------------------------------ --pid-file

/// Runs a probe that must refuse its `--pid-file`: its one line.
fn pid_file_refused(dir: &Path, pid_file: &str) -> String {
    let out = Command::new(PROBE)
        .args(["--attach", "tracepoint", "-q", "-c", "nothing", "--no-log"])
        .args(["--pid-file", pid_file])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr.trim_end().to_string()
}

#[test]
fn the_pid_file_is_never_a_symlink_nor_a_file_others_own_or_may_write() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("pid-file");
    fs::write(dir.join("precious"), "keep me\n").unwrap();
    std::os::unix::fs::symlink("precious", dir.join("link.pid")).unwrap();
    fs::write(dir.join("theirs.pid"), "1\n").unwrap();
    std::os::unix::fs::chown(dir.join("theirs.pid"), Some(65534), Some(65534)).unwrap();
    fs::write(dir.join("open.pid"), "1\n").unwrap();
    fs::set_permissions(dir.join("open.pid"), fs::Permissions::from_mode(0o666)).unwrap();
    let cases = [
        ("link.pid", "it is a symbolic link"),
        ("theirs.pid", "it belongs to uid 65534"),
        ("open.pid", "its mode 0666 lets others write it"),
    ];
    for (name, why) in cases {
        assert_eq!(
            pid_file_refused(&dir, name),
            format!(
                "probe: cannot write pid file {name}: {why}; remove it, or use another --pid-file"
            )
        );
    }
    assert_eq!(
        fs::read_to_string(dir.join("precious")).unwrap(),
        "keep me\n"
    );
    assert_eq!(fs::read_to_string(dir.join("theirs.pid")).unwrap(), "1\n");
    assert_eq!(fs::read_to_string(dir.join("open.pid")).unwrap(), "1\n");

    // One of ours left by a run that was killed is replaced, and removed.
    fs::write(dir.join("stale.pid"), "123456789\n").unwrap();
    let mut probe = Probe::start_with(
        &dir,
        &[
            "--attach",
            "tracepoint",
            "-q",
            "-c",
            "nothing",
            "--no-log",
            "--pid-file",
            "stale.pid",
        ],
        Stdio::null(),
        false,
    );
    probe.wait_attached();
    assert_eq!(
        fs::read_to_string(dir.join("stale.pid")).unwrap(),
        format!("{}\n", probe.pid())
    );
    let meta = fs::metadata(dir.join("stale.pid")).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o644);
    // SIGUSR1 with no log: nothing to reopen, and no stop.
    probe.signal(libc::SIGUSR1);
    thread::sleep(Duration::from_millis(200));
    assert!(
        probe.child.try_wait().unwrap().is_none(),
        "SIGUSR1 stopped it"
    );
    let done = probe.stop(libc::SIGHUP);
    assert_eq!(exit_code(&done.status), 0, "{:?}", done.stderr);
    assert_eq!(done.last_line(), "probe: received=0 lost=0");
    assert!(!dir.join("stale.pid").exists(), "removed at exit");
    assert_nothing_left();
}

// ------------------------------------------------------------ the log's open

#[test]
fn a_read_only_working_directory_is_said_with_its_absolute_path() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("ro-cwd");
    let ro = Tmpfs::mount(dir.join("ro"), "ro,mode=0755");
    let out = Command::new(PROBE)
        .args(["--attach", "tracepoint", "-q", "-c", "nothing"])
        .current_dir(&ro.0)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let at = ro.0.display();
    assert_eq!(
        stderr,
        format!(
            "probe: cannot create log {at}/syscalls.log: {at} is on a read-only file system \
             (Read-only file system (os error 30)); use --log PATH in a directory root can \
             write, or --no-log\n"
        )
    );
    drop(ro);
    assert_nothing_left();
}

#[test]
fn the_new_flags_refuse_what_makes_no_sense() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--log-max", "512K"],
            "probe: --log-max 512K: a size from 1M to 1T, in bytes or with K, M, G or T \
             (1024-based)",
        ),
        (
            &["--log-max", "1M", "--no-log"],
            "probe: --log-max rotates the log: not with --no-log",
        ),
        (
            &["--log-keep", "3"],
            "probe: --log-keep applies to the files --log-max rotates: give --log-max SIZE too",
        ),
        (
            &["--log-max", "1M", "--log-keep", "0"],
            "probe: --log-keep 0: a number of files from 1 to 1000",
        ),
        (&["--pid-file", ""], "probe: --pid-file needs a path"),
    ];
    for (args, message) in cases {
        let out = Command::new(PROBE).args(*args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().next(), Some(*message), "{args:?}");
    }
    let help = Command::new(PROBE).arg("--help").output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    for said in [
        "--log-max SIZE",
        "--log-keep N",
        "--pid-file PATH",
        "SIGUSR1 reopens the log",
        "4 done, but events were lost",
    ] {
        assert!(help.contains(said), "{said}");
    }
}
