//! What the root tests share: running the real `probe` and `loadgen`
//! binaries, and asking the kernel what is still loaded afterwards.
#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

pub const PROBE: &str = env!("CARGO_BIN_EXE_probe");
pub const LOADGEN: &str = env!("CARGO_BIN_EXE_loadgen");

/// The tests that run a probe take turns: each checks afterwards that
/// nothing of any probe is left in the kernel.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// True as root (with tracefs mounted). Otherwise the test says it is
/// skipped and why, and returns false: `require_root!()` then returns from
/// it. Where every test must run (scripts/test sets PROBE_TESTS_NEED_ROOT,
/// and CI runs that as root), a missing root fails instead.
pub fn root_or_skip() -> bool {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        let test = std::thread::current()
            .name()
            .unwrap_or("this test")
            .to_string();
        assert!(
            std::env::var_os("PROBE_TESTS_NEED_ROOT").is_none(),
            "{test}: needs root (it loads BPF programs), and PROBE_TESTS_NEED_ROOT says skipping is not allowed"
        );
        eprintln!("{test}: skipped: it loads BPF programs, which needs root (sudo cargo test)");
        return false;
    }
    ensure_tracefs();
    true
}

/// Returns from the calling test, said skipped, when not root.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::common::root_or_skip() {
            return;
        }
    };
}

/// The tests compare the probe's stderr line by line, and the first run on
/// a machine without tracefs adds `probe: mounted tracefs on ...`: so the
/// suite starts with tracefs mounted, whatever ran before. (That the probe
/// mounts it itself is checked by scripts/vmtest, whose VMs boot without.)
fn ensure_tracefs() {
    // The tests of one binary run on parallel threads: one mounts, the
    // others wait for it (a second mount would fail "already mounted").
    static MOUNTED: std::sync::Once = std::sync::Once::new();
    MOUNTED.call_once(|| {
        if tracefs_mounted() {
            return;
        }
        let status = Command::new("mount")
            .args(["-t", "tracefs", "tracefs", "/sys/kernel/tracing"])
            .status()
            .expect("run mount");
        // Another test binary (or anything else) may have mounted it
        // between the check and the mount: what counts is that it is there.
        assert!(
            status.success() || tracefs_mounted(),
            "could not mount tracefs for the tests"
        );
    });
}

fn tracefs_mounted() -> bool {
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    mounts
        .lines()
        .any(|l| l.split(' ').nth(2) == Some("tracefs"))
}

/// A fresh directory for one test's files.
pub fn scratch_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("probe-test-{}-{tag}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A comm no other process on the machine has (at most 15 bytes).
pub fn unique_comm(tag: &str) -> String {
    let name = format!("t{}{}", tag, std::process::id() % 100_000);
    name[..name.len().min(15)].to_string()
}

pub struct Probe {
    pub child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
    pub stdout_path: PathBuf,
}

pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: Vec<String>,
}

impl Finished {
    pub fn last_line(&self) -> &str {
        self.stderr.last().map(String::as_str).unwrap_or("")
    }

    /// (received, lost) from `probe: received=N lost=M`.
    pub fn counts(&self) -> (u64, u64) {
        let line = self.last_line();
        let rest = line
            .strip_prefix("probe: received=")
            .unwrap_or_else(|| panic!("last stderr line is not the summary: {:?}", self.stderr));
        let (received, lost) = rest.split_once(" lost=").expect("lost=");
        (received.parse().unwrap(), lost.parse().unwrap())
    }
}

impl Probe {
    /// Starts `probe ARGS` in `dir` with stdout to a file there, stderr
    /// collected line by line.
    pub fn start(dir: &Path, args: &[&str]) -> Probe {
        let stdout_path = dir.join("stdout");
        let file = fs::File::create(&stdout_path).expect("stdout file");
        let mut probe = Probe::start_with(dir, args, Stdio::from(file), false);
        probe.stdout_path = stdout_path;
        probe
    }

    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits for `probe: attached`; panics with its stderr if it exits or
    /// takes more than 20 s.
    pub fn wait_attached(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(line) = self
                .stderr()
                .into_iter()
                .find(|l| l.starts_with("probe: attached"))
            {
                return line;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                thread::sleep(Duration::from_millis(100));
                panic!(
                    "probe exited ({status}) before attaching: {:?}",
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "probe did not attach: {:?}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// Sends `sig` and waits (at most 10 s) for the probe to exit.
    pub fn stop(self, sig: i32) -> Finished {
        self.signal(sig);
        self.wait(Duration::from_secs(10))
    }

    pub fn wait(mut self, limit: Duration) -> Finished {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("probe did not exit within {limit:?}: {:?}", self.stderr());
            }
            thread::sleep(Duration::from_millis(10));
        };
        // Let the stderr thread read the last lines.
        thread::sleep(Duration::from_millis(50));
        Finished {
            status,
            stdout: fs::read_to_string(&self.stdout_path).unwrap_or_default(),
            stderr: self.stderr(),
        }
    }
}

pub fn exit_code(status: &ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Runs loadgen to completion: exactly `writes` writes and `reads` reads
/// under `comm`. Returns its pid.
pub fn loadgen(comm: &str, writes: u64, reads: u64) -> u32 {
    let mut child = Command::new(LOADGEN)
        .args([
            "--comm",
            comm,
            "--writes",
            &writes.to_string(),
            "--reads",
            &reads.to_string(),
        ])
        .spawn()
        .expect("spawn loadgen");
    let pid = child.id();
    assert!(child.wait().expect("loadgen").success());
    pid
}

/// Names of every BPF program loaded in the kernel right now.
pub fn loaded_program_names() -> Vec<String> {
    const BPF_PROG_GET_NEXT_ID: i32 = 11;
    const BPF_PROG_GET_FD_BY_ID: i32 = 13;
    const BPF_OBJ_GET_INFO_BY_FD: i32 = 15;
    let bpf = |cmd: i32, attr: &mut [u8]| unsafe {
        // SAFETY: attr is a zeroed bpf_attr prefix of the size passed.
        libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len() as u32)
    };
    let mut names = Vec::new();
    let mut id = 0u32;
    loop {
        let mut attr = [0u8; 16];
        attr[..4].copy_from_slice(&id.to_ne_bytes());
        if bpf(BPF_PROG_GET_NEXT_ID, &mut attr) != 0 {
            break;
        }
        id = u32::from_ne_bytes(attr[4..8].try_into().unwrap());
        let mut attr = [0u8; 16];
        attr[..4].copy_from_slice(&id.to_ne_bytes());
        let fd = bpf(BPF_PROG_GET_FD_BY_ID, &mut attr);
        if fd < 0 {
            continue;
        }
        // struct bpf_prog_info: name[16] is at byte 64.
        let mut info = [0u8; 256];
        let mut attr = [0u8; 16];
        attr[..4].copy_from_slice(&(fd as u32).to_ne_bytes());
        attr[4..8].copy_from_slice(&(info.len() as u32).to_ne_bytes());
        attr[8..16].copy_from_slice(&(info.as_mut_ptr() as u64).to_ne_bytes());
        if bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr) == 0 {
            let name = &info[64..80];
            let end = name.iter().position(|&b| b == 0).unwrap_or(16);
            names.push(String::from_utf8_lossy(&name[..end]).into_owned());
        }
        // SAFETY: closing the fd we were just given.
        unsafe { libc::close(fd as i32) };
    }
    names
}

/// Fails if any program of the probe is still loaded or any kprobe_events
/// entry is left.
pub fn assert_nothing_left() {
    // As the kernel keeps them (15 bytes): every program of the family,
    // `kprobe_pread64`, `tracepoint_writ`, ..., the raw tracepoint ones
    // and the identity probe.
    let ours = |n: &str| {
        ["whoami", "raw_enter", "raw_exit"].contains(&n)
            || ["kprobe_", "kretprobe_", "tracepoint_"].iter().any(|p| {
                n.strip_prefix(p).is_some_and(|rest| {
                    [
                        "read", "writ", "pread64", "pwrite64", "readv", "writev", "preadv",
                        "pwritev",
                    ]
                    .iter()
                    .any(|c| rest.starts_with(c))
                })
            })
    };
    // A raw tracepoint link is freed after an RCU tasks-trace grace
    // period (6.x: syscall tracepoints may fault), and its program with
    // it: gone a little after its process, not at once.
    let deadline = Instant::now() + Duration::from_secs(3);
    let left = loop {
        let left: Vec<_> = loaded_program_names()
            .into_iter()
            .filter(|n| ours(n))
            .collect();
        let raw_only = left.iter().all(|n| n.starts_with("raw_"));
        if left.is_empty() || !raw_only || Instant::now() > deadline {
            break left;
        }
        thread::sleep(Duration::from_millis(20));
    };
    assert!(left.is_empty(), "BPF programs left loaded: {left:?}");
    for root in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        if let Ok(events) = fs::read_to_string(format!("{root}/kprobe_events")) {
            assert_eq!(events.trim(), "", "kprobe_events not empty under {root}");
        }
    }
}

impl Probe {
    /// Like `start`, but stdout goes to `stdout` (a pipe, say; `stdout_path`
    /// is then unused), and with `sigint_pending` the probe begins life
    /// with SIGINT and SIGTERM blocked and a SIGINT already pending: as if
    /// Ctrl+C came at its very first instruction.
    pub fn start_with(dir: &Path, args: &[&str], stdout: Stdio, sigint_pending: bool) -> Probe {
        Probe::spawn(dir, &[], args, stdout, sigint_pending)
    }

    /// Like `start_with`, but run through `wrapper` (`unshare --pid
    /// --fork`, say): `wrapper... PROBE args...`. The child is then the
    /// wrapper; `Probe::probe_pid` finds the probe itself.
    pub fn start_wrapped(dir: &Path, wrapper: &[&str], args: &[&str], stdout: Stdio) -> Probe {
        Probe::spawn(dir, wrapper, args, stdout, false)
    }

    /// The probe's own pid: the child's, or its child's when wrapped.
    pub fn probe_pid(&self) -> i32 {
        let me = self.pid();
        let children =
            fs::read_to_string(format!("/proc/{me}/task/{me}/children")).unwrap_or_default();
        match children.split_whitespace().next() {
            Some(child) => child.parse().unwrap(),
            None => me,
        }
    }

    fn spawn(
        dir: &Path,
        wrapper: &[&str],
        args: &[&str],
        stdout: Stdio,
        sigint_pending: bool,
    ) -> Probe {
        use std::os::unix::process::CommandExt;
        let mut command = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(PROBE);
                c
            }
            None => Command::new(PROBE),
        };
        command
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::piped());
        if sigint_pending {
            // SAFETY: only async-signal-safe calls between fork and exec.
            // A blocked signal stays pending across exec.
            unsafe {
                command.pre_exec(|| {
                    let mut set: libc::sigset_t = std::mem::zeroed();
                    libc::sigemptyset(&mut set);
                    libc::sigaddset(&mut set, libc::SIGINT);
                    libc::sigaddset(&mut set, libc::SIGTERM);
                    libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
                    libc::kill(libc::getpid(), libc::SIGINT);
                    Ok(())
                });
            }
        }
        let mut child = command.spawn().expect("spawn probe");
        drop(command);
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let pipe = child.stderr.take().expect("stderr");
        let lines = stderr.clone();
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        Probe {
            child,
            stderr,
            stdout_path: dir.join("stdout-not-used"),
        }
    }
}

/// An output's exit line: `probe: NAME: W of R written, S skipped (too
/// slow), F failed (WHY)`, each part after the first only when not 0.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Shortfall {
    pub written: u64,
    pub of: u64,
    pub skipped: u64,
    pub failed: u64,
    pub why: String,
}

/// The exit line of output `name`, if it fell short.
pub fn shortfall(stderr: &[String], name: &str) -> Option<Shortfall> {
    let prefix = format!("probe: {name}: ");
    stderr.iter().find_map(|l| {
        let rest = l.strip_prefix(&prefix)?;
        let (written, rest) = rest.split_once(" of ")?;
        let (of, rest) = rest.split_once(" written, ")?;
        let mut s = Shortfall {
            written: written.parse().ok()?,
            of: of.parse().ok()?,
            ..Shortfall::default()
        };
        let mut rest = rest;
        if let Some((n, after)) = rest.split_once(" skipped (too slow)") {
            s.skipped = n.parse().ok()?;
            rest = after.strip_prefix(", ").unwrap_or(after);
        }
        if let Some((n, why)) = rest.split_once(" failed (") {
            s.failed = n.parse().ok()?;
            s.why = why.strip_suffix(')')?.to_string();
        }
        Some(s)
    })
}

/// The counts of `probe: NAME too slow: N events not shown...` lines.
pub fn skip_notices(stderr: &[String], name: &str) -> Vec<u64> {
    let prefix = format!("probe: {name} too slow: ");
    stderr
        .iter()
        .filter_map(|l| {
            let rest = l.strip_prefix(&prefix)?;
            rest.split_once(" events not shown")?.0.parse().ok()
        })
        .collect()
}

/// The event lines of a log: every line but the `#` headers.
pub fn event_lines(log: &str) -> Vec<&str> {
    log.lines().filter(|l| !l.starts_with('#')).collect()
}

/// The value of `key=` in a log line.
pub fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split(' ')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key} in {line}"))
}

/// A pipe: (read end, write end).
pub fn pipe() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: fds has room for two.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both just made, ours alone.
    unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    }
}
