//! The real `probe` binary against what a hostile or careless world does:
//! processes that name themselves with terminal escapes, logs that are
//! symlinks, a full disk, readers of stdout that quit or never read,
//! signals at awkward moments; and what the running monitor may still do.

#[macro_use]
mod common;

use std::fs;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// A comm with a terminal escape, a newline, a quote, a backslash and a
/// byte that is not UTF-8; and what every output must show for it.
const HOSTILE_COMM: &[u8] = b"\x1b[31m\n\"a\\\xff";
const HOSTILE_COMM_ESCAPED: &str = r#"\x1b[31m\x0a\x22a\\\xff"#;
/// What it writes: 8 bytes, the whole preview -v shows.
const HOSTILE_DATA: &[u8; 8] = b"\x1b[2J\n\"\\\xff";
const HOSTILE_DATA_ESCAPED: &str = r#"\x1b[2J\x0a\x22\\\xff"#;

/// key=value fields of a log line.
fn fields(line: &str) -> Vec<(&str, &str)> {
    line.split(' ')
        .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
        .collect()
}

/// The probe's stderr minus the attach lines: what it had to say besides.
fn remarks(stderr: &[String]) -> Vec<String> {
    stderr
        .iter()
        .filter(|l| !l.starts_with("probe: attached via "))
        .cloned()
        .collect()
}

fn status_field(path: &Path, key: &str) -> String {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix(':')))
        .unwrap_or_else(|| panic!("no {key} in {}", path.display()))
        .trim()
        .to_string()
}

/// A forked child that names itself `HOSTILE_COMM`, waits for SIGUSR1
/// (without a read or a write), then writes `HOSTILE_DATA` to /dev/null
/// `writes` times, reads 8 bytes from /dev/zero `reads` times, and exits.
/// Killed and reaped if the test fails first.
struct Hostile {
    pid: libc::pid_t,
    null_fd: i32,
    zero_fd: i32,
    reaped: bool,
}

impl Hostile {
    fn fork(writes: u32, reads: u32) -> Hostile {
        let mut comm = [0u8; 16];
        comm[..HOSTILE_COMM.len()].copy_from_slice(HOSTILE_COMM);
        // SAFETY: the child makes raw syscalls only (no allocation, no
        // locks), as a child forked from a threaded process must; SIGUSR1
        // is blocked across the fork so it waits pending for sigtimedwait.
        unsafe {
            let null_fd = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            let zero_fd = libc::open(c"/dev/zero".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            assert!(null_fd >= 0 && zero_fd >= 0);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR1);
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            let pid = libc::fork();
            if pid == 0 {
                libc::prctl(libc::PR_SET_NAME, comm.as_ptr() as libc::c_ulong, 0, 0, 0);
                libc::syscall(
                    libc::SYS_rt_sigtimedwait,
                    &set as *const libc::sigset_t,
                    std::ptr::null_mut::<libc::siginfo_t>(),
                    std::ptr::null::<libc::timespec>(),
                    8usize,
                );
                // On the stack, so the page is there when the probe copies
                // from it (a BPF program cannot fault a page in).
                let data: [u8; 8] = std::ptr::read_volatile(HOSTILE_DATA);
                let mut buf = [0u8; 8];
                for _ in 0..writes {
                    libc::write(null_fd, data.as_ptr() as *const _, 8);
                }
                for _ in 0..reads {
                    libc::read(zero_fd, buf.as_mut_ptr() as *mut _, 8);
                }
                libc::_exit(0);
            }
            libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
            assert!(pid > 0, "fork failed");
            Hostile {
                pid,
                null_fd,
                zero_fd,
                reaped: false,
            }
        }
    }

    /// Lets it run, and waits for it to end.
    fn go(&mut self) {
        // SAFETY: our own child, still unreaped.
        unsafe {
            libc::kill(self.pid, libc::SIGUSR1);
            let mut status = 0;
            assert_eq!(libc::waitpid(self.pid, &mut status, 0), self.pid);
            assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        }
        self.reaped = true;
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        // SAFETY: our own fd and child.
        unsafe {
            libc::close(self.null_fd);
            libc::close(self.zero_fd);
            if !self.reaped {
                libc::kill(self.pid, libc::SIGKILL);
                libc::waitpid(self.pid, std::ptr::null_mut(), 0);
            }
        }
    }
}

fn assert_plain_ascii_lines(what: &str, bytes: &[u8]) {
    assert!(bytes.ends_with(b"\n"), "{what} does not end a line");
    if let Some(b) = bytes
        .iter()
        .find(|&&b| b != b'\n' && !(0x20..0x7f).contains(&b))
    {
        panic!("{what} holds the raw byte {b:#04x}: {bytes:?}");
    }
}

#[test]
fn a_process_named_with_escapes_and_invalid_utf8_cannot_break_any_output() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("hostile-name");
    let (writes, reads) = (3u32, 2u32);

    // Hello lines with -v, and the log.
    let mut child = Hostile::fork(writes, reads);
    let (pid, fd, read_fd) = (child.pid, child.null_fd, child.zero_fd);
    let pid_arg = pid.to_string();
    let mut probe = Probe::start(
        &dir,
        &[
            "--attach",
            "tracepoint",
            "-v",
            "-p",
            &pid_arg,
            "--log",
            "h.log",
        ],
    );
    probe.wait_attached();
    child.go();
    let done = probe.stop(libc::SIGINT);
    assert_eq!(exit_code(&done.status), 0, "{:?}", done.stderr);
    assert_eq!(done.last_line(), "probe: received=5 lost=0");
    let details = format!("pid={pid} tgid={pid} comm={HOSTILE_COMM_ESCAPED} fd");
    let write =
        format!("hello sys_write was called {details}={fd} count=8 data={HOSTILE_DATA_ESCAPED}\n");
    let read = format!("hello sys_read was called {details}={read_fd} count=8\n");
    let expected = write.repeat(writes as usize) + &read.repeat(reads as usize);
    assert_eq!(done.stdout, expected);
    assert_plain_ascii_lines("stdout", done.stdout.as_bytes());

    let log = fs::read(dir.join("h.log")).unwrap();
    assert_plain_ascii_lines("the log", &log);
    let log = String::from_utf8(log).unwrap();
    let lines = event_lines(&log);
    assert_eq!(lines.len(), 5, "{log}");
    for (i, line) in lines.iter().enumerate() {
        let f = fields(line);
        let keys: Vec<&str> = f.iter().map(|(k, _)| *k).collect();
        let is_write = i < writes as usize;
        let mut want = vec![
            "ts", "cpu", "pid", "tgid", "uid", "comm", "syscall", "fd", "count",
        ];
        if is_write {
            want.push("data");
        }
        assert_eq!(keys, want, "{line}");
        assert_eq!(f[5].1, HOSTILE_COMM_ESCAPED, "{line}");
        assert_eq!(f[6].1, if is_write { "write" } else { "read" });
        if is_write {
            assert_eq!(f[9].1, HOSTILE_DATA_ESCAPED, "{line}");
        }
    }
    assert_nothing_left();

    // JSON, data included.
    let mut child = Hostile::fork(writes, reads);
    let pid_arg = child.pid.to_string();
    let mut probe = Probe::start(
        &dir,
        &[
            "--attach",
            "tracepoint",
            "--json",
            "-v",
            "-p",
            &pid_arg,
            "--no-log",
        ],
    );
    probe.wait_attached();
    child.go();
    let done = probe.stop(libc::SIGINT);
    assert_eq!(exit_code(&done.status), 0, "{:?}", done.stderr);
    assert_eq!(done.last_line(), "probe: received=5 lost=0");
    assert_plain_ascii_lines("JSON", done.stdout.as_bytes());
    let objects: Vec<serde_json::Value> = done
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(objects.len(), 5);
    for (i, o) in objects.iter().enumerate() {
        assert_eq!(o["comm"], HOSTILE_COMM_ESCAPED, "{o}");
        assert_eq!(o["pid"], child.pid);
        if i < writes as usize {
            assert_eq!(o["syscall"], "write");
            assert_eq!(o["data"], HOSTILE_DATA_ESCAPED, "{o}");
        } else {
            assert_eq!(o["syscall"], "read");
            assert!(o.get("data").is_none(), "{o}");
        }
    }
    assert_nothing_left();
}

/// Runs the probe to its end with a log it must refuse.
fn refused(dir: &Path, log: &str) -> Vec<String> {
    let out = Command::new(PROBE)
        .args([
            "--attach",
            "tracepoint",
            "-q",
            "-c",
            "nothing",
            "--log",
            log,
        ])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr: Vec<String> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(out.status.code(), Some(1), "{log}: {stderr:?}");
    assert_eq!(stderr.len(), 1, "one line: {stderr:?}");
    stderr
}

#[test]
fn the_log_is_never_a_symlink_a_fifo_or_a_hard_link() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("log-refused");
    let rules = "it must be a regular file, not a symlink; use --log PATH or --no-log";
    fs::write(dir.join("precious"), "keep me\n").unwrap();
    fs::set_permissions(dir.join("precious"), fs::Permissions::from_mode(0o644)).unwrap();
    std::os::unix::fs::symlink("precious", dir.join("link.log")).unwrap();
    std::os::unix::fs::symlink("nowhere", dir.join("dangling.log")).unwrap();
    fs::hard_link(dir.join("precious"), dir.join("hard.log")).unwrap();
    let fifo = std::ffi::CString::new(dir.join("fifo.log").as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);

    std::os::unix::fs::symlink("precious", dir.join("new\nline\x1b.log")).unwrap();

    let cases = [
        ("link.log", "it is a symbolic link"),
        ("new\nline\x1b.log", "it is a symbolic link"),
        ("dangling.log", "it is a symbolic link"),
        ("fifo.log", "it is a FIFO"),
        (
            "hard.log",
            "it has 2 hard links, so it is also another file",
        ),
    ];
    for (log, why) in cases {
        let started = Instant::now();
        let stderr = refused(&dir, log);
        let shown = log.replace('\n', "\\x0a").replace('\x1b', "\\x1b");
        assert_eq!(
            stderr[0],
            format!("probe: cannot open log {shown} ({rules}): {why}")
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{log}: too slow"
        );
    }
    assert_eq!(
        fs::read_to_string(dir.join("precious")).unwrap(),
        "keep me\n"
    );
    let mode = fs::metadata(dir.join("precious"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o644, "target's mode untouched");
    assert!(
        !dir.join("nowhere").exists(),
        "a dangling link's target is not created"
    );
    assert_nothing_left();
}

#[test]
fn the_log_is_created_0600_and_each_run_appends_a_header_and_its_lines() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("log-append");
    let comm = unique_comm("ap");
    for (run, writes) in [(1, 7u64), (2, 4u64)] {
        let mut probe = Probe::start(
            &dir,
            &[
                "--attach",
                "tracepoint",
                "-q",
                "-c",
                &comm,
                "--log",
                "a.log",
            ],
        );
        probe.wait_attached();
        if run == 1 {
            let mode = fs::metadata(dir.join("a.log"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o7777, 0o600, "created 0600");
        }
        loadgen(&comm, writes, 0);
        let done = probe.stop(libc::SIGINT);
        assert_eq!(done.last_line(), format!("probe: received={writes} lost=0"));
    }
    let log = fs::read_to_string(dir.join("a.log")).unwrap();
    let kinds: String = log
        .lines()
        .map(|l| if l.starts_with("# probe ") { 'H' } else { 'e' })
        .collect();
    assert_eq!(kinds, "HeeeeeeeHeeee", "{log}");
    let mode = fs::metadata(dir.join("a.log"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o600);
    assert_nothing_left();
}

/// Sets a sysctl for one test and puts the old value back after.
struct Sysctl {
    path: &'static str,
    old: String,
}

impl Sysctl {
    fn set(path: &'static str, value: &str) -> Sysctl {
        let old = fs::read_to_string(path).unwrap();
        fs::write(path, value).unwrap();
        Sysctl { path, old }
    }
}

impl Drop for Sysctl {
    fn drop(&mut self) {
        let _ = fs::write(self.path, &self.old);
    }
}

const NOBODY: u32 = 65534;

/// A file of `nobody`'s, mode `mode`, planted at `path`.
fn plant(path: &Path, mode: u32) {
    fs::write(path, "planted\n").unwrap();
    std::os::unix::fs::chown(path, Some(NOBODY), Some(NOBODY)).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_log_that_someone_else_owns_or_can_read_is_refused() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("planted");
    let name = |uid: u32| {
        fs::read_to_string("/etc/passwd")
            .unwrap()
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f[2] == uid.to_string()).then(|| format!("{} (uid {uid})", f[0]))
            })
            .unwrap_or(format!("uid {uid}"))
    };

    // nobody plants a 0666 log in a shared sticky directory (a /tmp):
    // the kernel may refuse to open it at all (fs.protected_regular)...
    let shared = dir.join("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
    plant(&shared.join("syscalls.log"), 0o666);
    {
        let _guard = Sysctl::set("/proc/sys/fs/protected_regular", "1");
        assert_eq!(
            refused(&shared, "syscalls.log"),
            [format!(
                "probe: cannot open log syscalls.log: it belongs to {} in a shared sticky \
                 directory, and the kernel (fs.protected_regular) refuses to let anyone else \
                 open it there; remove it, or use --log PATH or --no-log",
                name(NOBODY)
            )]
        );
    }
    // ...and where it does not, the opened file is checked.
    let _guard = Sysctl::set("/proc/sys/fs/protected_regular", "0");
    let owned_by_nobody = [format!(
        "probe: cannot open log syscalls.log: it belongs to {}, who could read what the \
         probe logs; remove it, or use --log PATH or --no-log",
        name(NOBODY)
    )];
    assert_eq!(refused(&shared, "syscalls.log"), owned_by_nobody);
    // Never re-permissioned, never written.
    let meta = fs::metadata(shared.join("syscalls.log")).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (NOBODY, 0o666));
    assert_eq!(
        fs::read_to_string(shared.join("syscalls.log")).unwrap(),
        "planted\n"
    );

    // Owned by nobody even with mode 0600, in a directory of root's.
    plant(&dir.join("nobody.log"), 0o600);
    assert_eq!(
        refused(&dir, "nobody.log"),
        [owned_by_nobody[0].replace("syscalls.log", "nobody.log")]
    );
    // Root's own, but others may read it.
    for (mode, file) in [(0o644, "r644.log"), (0o620, "r620.log")] {
        fs::write(dir.join(file), "").unwrap();
        fs::set_permissions(dir.join(file), fs::Permissions::from_mode(mode)).unwrap();
        assert_eq!(
            refused(&dir, file),
            [format!(
                "probe: cannot open log {file}: its mode {mode:04o} lets others read or write \
                 it; chmod 600 it, or use --log PATH or --no-log"
            )]
        );
    }
    assert_nothing_left();
}

/// A tmpfs of `size` mounted for one test; unmounted when dropped.
struct TinyFs(PathBuf);

impl TinyFs {
    fn mount(at: PathBuf, size: &str) -> TinyFs {
        fs::create_dir_all(&at).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&at)
            .output()
            .unwrap();
        assert!(out.status.success(), "mount: {out:?}");
        TinyFs(at)
    }
}

impl Drop for TinyFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// (N, ERRNO, T1, T2) of a `# N events not written here: ERRNO from T1
/// to T2` line.
fn gap_mark(line: &str) -> Option<(u64, String, u64, u64)> {
    let rest = line.strip_prefix("# ")?;
    let (n, rest) = rest.split_once(" event")?;
    let rest = rest
        .strip_prefix("s not written here: ")
        .or_else(|| rest.strip_prefix(" not written here: "))?;
    let (errno, rest) = rest.split_once(" from ")?;
    let (from, to) = rest.split_once(" to ")?;
    Some((
        n.parse().ok()?,
        errno.to_string(),
        from.parse().ok()?,
        to.parse().ok()?,
    ))
}

#[test]
fn a_full_disk_is_said_counted_and_its_gap_marked_where_it_is() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("disk-full");
    let fs = TinyFs::mount(dir.join("tiny"), "64k");
    // Most of the room is taken, so the log fills up at once.
    fs::write(fs.0.join("filler"), vec![b'f'; 56 << 10]).unwrap();
    let comm = unique_comm("df");
    let mut probe = Probe::start(
        &dir,
        &[
            "--attach",
            "tracepoint",
            "-q",
            "-c",
            &comm,
            "--log",
            "tiny/l.log",
        ],
    );
    probe.wait_attached();
    loadgen(&comm, 3000, 0);
    thread::sleep(Duration::from_millis(400));
    // Room again: monitoring went on, so the next lines are written.
    fs::remove_file(fs.0.join("filler")).unwrap();
    loadgen(&comm, 100, 0);
    thread::sleep(Duration::from_millis(400));
    let done = probe.stop(libc::SIGINT);

    // Nothing lost on the way to the outputs, but lines of one that
    // could not be written: exit status 4.
    assert_eq!(exit_code(&done.status), 4, "{:?}", done.stderr);
    assert_eq!(done.counts(), (3100, 0), "{:?}", done.stderr);
    let short = shortfall(&done.stderr, "tiny/l.log").expect("unwritten lines reported");
    assert_eq!(short.why, "No space left on device (os error 28)");
    assert_eq!((short.of, short.skipped), (3100, 0));
    assert_eq!(short.written + short.failed, 3100);
    let failed = short.failed;
    assert!(failed > 0 && failed <= 3000, "the disk was full: {failed}");
    // Said once when it began, once when it ended, once at exit.
    assert_eq!(
        remarks(&done.stderr),
        [
            "probe: cannot write to tiny/l.log: No space left on device (os error 28); \
             monitoring goes on, lines not written are counted and the gap is marked in the \
             file once it can be written again"
                .to_string(),
            format!(
                "probe: tiny/l.log: written again after {failed} events not written (ENOSPC); \
                 the gap is marked in it"
            ),
            format!(
                "probe: tiny/l.log: {} of 3100 written, {failed} failed (No space left on \
                 device (os error 28))",
                3100 - failed
            ),
            "probe: received=3100 lost=0".to_string(),
        ],
    );

    let log = fs::read(fs.0.join("l.log")).unwrap();
    assert_plain_ascii_lines("the log", &log);
    let log = String::from_utf8(log).unwrap();
    let all: Vec<&str> = log.lines().collect();
    assert!(all[0].starts_with("# probe "), "{}", all[0]);
    // Exactly one mark, with the exact count, where the lines are missing.
    let marks: Vec<usize> = (1..all.len())
        .filter(|&i| all[i].starts_with('#'))
        .collect();
    assert_eq!(marks.len(), 1, "one mark: {marks:?}");
    let at = marks[0];
    let (n, errno, from, to) = gap_mark(all[at]).unwrap_or_else(|| panic!("{}", all[at]));
    assert_eq!((n, errno.as_str()), (failed, "ENOSPC"), "{}", all[at]);
    let lines = event_lines(&log);
    assert_eq!(lines.len() as u64 + n, 3100, "lines + the mark's count");
    assert_eq!(lines.len() as u64, short.written, "written");
    assert!(lines.len() >= 100, "the last 100 came after room was made");
    for line in &lines {
        let keys: Vec<&str> = fields(line).iter().map(|(k, _)| *k).collect();
        let want = [
            "ts", "cpu", "pid", "tgid", "uid", "comm", "syscall", "fd", "count",
        ];
        assert_eq!(keys, want, "a whole line: {line}");
    }
    // T1 and T2 are the first and last missing events': between the
    // lines around the mark, in time order.
    let ts = |line: &str| -> u64 { field(line, "ts").parse().unwrap() };
    let before = all[..at].iter().rev().find(|l| !l.starts_with('#'));
    assert!(before.is_none_or(|l| ts(l) <= from), "{before:?} {from}");
    assert!(from <= to);
    assert!(to <= ts(all[at + 1]), "{} {to}", all[at + 1]);
    drop(fs);
    assert_nothing_left();
}

#[test]
fn piped_into_head_it_exits_quietly_by_itself() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("head");
    let comm = unique_comm("hd");
    let (read_end, write_end) = pipe();
    let mut probe = Probe::start_with(
        &dir,
        &["--attach", "tracepoint", "-c", &comm, "--no-log"],
        Stdio::from(write_end),
        false,
    );
    let head = Command::new("head")
        .arg("-5")
        .stdin(Stdio::from(read_end))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    probe.wait_attached();
    // All 100 lines fit in the pipe; head takes 5 and goes. No write fails
    // after that: the probe must notice by itself.
    loadgen(&comm, 100, 0);
    let out = head.wait_with_output().unwrap();
    assert_eq!(
        out.stdout,
        "hello sys_write was called\n".repeat(5).as_bytes()
    );
    let done = probe.wait(Duration::from_secs(3));
    assert_eq!(exit_code(&done.status), 0, "{:?}", done.stderr);
    assert_eq!(
        done.stderr,
        [
            "probe: attached via tracepoint to read and write on 2 CPUs"
                .replace('2', &probe::cpus::online().unwrap().len().to_string()),
            "probe: received=100 lost=0".to_string(),
        ]
    );
    assert_nothing_left();
}

/// Sends each signal in `signals` (after the gap before it), then returns
/// how long the probe took to exit after the first one.
fn stop_timed(probe: &mut Probe, signals: &[(Duration, i32)]) -> Duration {
    let mut first = None;
    for &(gap, sig) in signals {
        thread::sleep(gap);
        probe.signal(sig);
        first.get_or_insert_with(Instant::now);
    }
    let first = first.unwrap();
    loop {
        if probe.child.try_wait().unwrap().is_some() {
            return first.elapsed();
        }
        assert!(first.elapsed() < Duration::from_secs(10), "no exit");
        thread::sleep(Duration::from_millis(2));
    }
}

/// Runs a probe whose stdout is a pipe nobody reads while loadgen makes
/// `writes` writes, stops it with `signals`; checks what every output
/// must: exit 0 within a second, and each event either printed, reported
/// unprinted, or lost, exactly.
fn stuck_stdout(
    tag: &str,
    extra: &[&str],
    line_ok: impl Fn(&str) -> bool,
    signals: &[(Duration, i32)],
) -> (Finished, u64, PathBuf) {
    stuck(tag, extra, line_ok, signals, pipe())
}

/// A terminal in raw mode: (master, slave).
fn pty() -> (OwnedFd, OwnedFd) {
    // SAFETY: the usual sequence on fds we own; results checked.
    unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(master >= 0);
        assert_eq!(libc::grantpt(master), 0);
        assert_eq!(libc::unlockpt(master), 0);
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(master, name.as_mut_ptr(), name.len()), 0);
        let slave = libc::open(
            name.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        assert!(slave >= 0);
        let mut t: libc::termios = std::mem::zeroed();
        assert_eq!(libc::tcgetattr(slave, &mut t), 0);
        libc::cfmakeraw(&mut t);
        assert_eq!(libc::tcsetattr(slave, libc::TCSANOW, &t), 0);
        (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave))
    }
}

/// Everything readable from `fd` now, up to its end.
fn read_all_now(fd: OwnedFd) -> Vec<u8> {
    // SAFETY: our own fd.
    unsafe {
        let flags = libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&fd), libc::F_GETFL);
        libc::fcntl(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            libc::F_SETFL,
            flags | libc::O_NONBLOCK,
        );
    }
    let mut file = fs::File::from(fd);
    let mut all = Vec::new();
    let mut buf = [0u8; 65536];
    // A pipe ends with EOF, a terminal whose other side is closed with EIO.
    while let Ok(n @ 1..) = file.read(&mut buf) {
        all.extend_from_slice(&buf[..n]);
    }
    all
}

fn stuck(
    tag: &str,
    extra: &[&str],
    line_ok: impl Fn(&str) -> bool,
    signals: &[(Duration, i32)],
    (read_end, write_end): (OwnedFd, OwnedFd),
) -> (Finished, u64, PathBuf) {
    let dir = scratch_dir(tag);
    let comm = unique_comm(tag);
    // Only a pipe's writes of whole lines are all or nothing.
    let is_pipe = {
        use std::os::unix::fs::FileTypeExt;
        fs::File::from(write_end.try_clone().unwrap())
            .metadata()
            .unwrap()
            .file_type()
            .is_fifo()
    };
    let mut args = vec!["--attach", "tracepoint", "-c", &comm];
    args.extend_from_slice(extra);
    let mut probe = Probe::start_with(&dir, &args, Stdio::from(write_end), false);
    probe.wait_attached();
    let generated = 200_000;
    loadgen(&comm, generated, 0);
    // Time for the monitor to say stdout is behind (it looks every 50 ms).
    thread::sleep(Duration::from_millis(200));
    let took = stop_timed(&mut probe, signals);
    let done = probe.wait(Duration::from_secs(1));
    // Lines stdout skipped are no loss; events a second signal cut off,
    // or the log's lines it kept from being written, are: exit status 4.
    let (_, lost) = done.counts();
    let log_failed = shortfall(&done.stderr, "t.log").is_some_and(|s| s.failed > 0);
    let want = if lost > 0 || log_failed { 4 } else { 0 };
    assert_eq!(exit_code(&done.status), want, "{:?}", done.stderr);
    assert!(took < Duration::from_secs(1), "took {took:?} to exit");

    let printed = String::from_utf8(read_all_now(read_end)).unwrap();
    // A terminal or a socket may have taken half of the last line (it was
    // counted unwritten); a pipe never.
    let (whole, half) = printed.split_at(printed.rfind('\n').map_or(0, |i| i + 1));
    if !half.is_empty() {
        assert!(
            !is_pipe && "hello sys_write was called".starts_with(half),
            "half a line: {half:?}"
        );
    }
    let lines = whole.lines().count() as u64;
    let bad = whole.lines().find(|l| !line_ok(l));
    assert!(bad.is_none(), "unexpected line {bad:?}");

    // Every event is received or lost, and the only loss there may be is
    // what a second signal cut off; what stdout could not show it skipped.
    let (received, lost) = done.counts();
    assert_eq!(received + lost, generated, "{:?}", done.stderr);
    assert_eq!(lost, cut_off(&done.stderr), "{:?}", done.stderr);
    let short = shortfall(&done.stderr, "stdout").expect("skipped lines reported");
    assert_eq!(short.of, received);
    assert_eq!(short.written, lines, "{:?}", done.stderr);
    assert_eq!(short.failed, 0, "{:?}", done.stderr);
    assert_eq!(short.written + short.skipped, received, "{:?}", done.stderr);
    assert!(lines < received, "stdout was stuck: {lines} of {received}");
    // Said while it lasted, never more than was skipped.
    let notices = skip_notices(&done.stderr, "stdout");
    assert!(!notices.is_empty(), "{:?}", done.stderr);
    assert!(notices.iter().sum::<u64>() <= short.skipped);
    eprintln!(
        "{tag}: exit {took:?} after the first signal; printed {lines}, skipped {}",
        short.skipped
    );
    assert_nothing_left();
    (done, received, dir)
}

/// N from `probe: lost N events: still buffered, ...`, or 0.
fn cut_off(stderr: &[String]) -> u64 {
    stderr
        .iter()
        .find_map(|l| {
            let rest = l.strip_prefix("probe: lost ")?;
            let (n, why) = rest.split_once(" events: ")?;
            why.starts_with("still buffered")
                .then(|| n.parse().unwrap())
        })
        .unwrap_or(0)
}

/// A stdout nobody reads, of the kind `ends` makes (read end, write end):
/// nothing blocks, and every event is printed or reported skipped,
/// exactly; stderr says so and nothing else.
fn nobody_reads(tag: &str, ends: (OwnedFd, OwnedFd)) {
    let (done, _, _) = stuck(
        tag,
        &["--no-log"],
        |l| l == "hello sys_write was called",
        &[(Duration::ZERO, libc::SIGINT)],
        ends,
    );
    assert_eq!(done.counts().1, 0, "{:?}", done.stderr);
    for line in remarks(&done.stderr) {
        assert!(
            line.starts_with("probe: stdout too slow: ")
                && line.ends_with(" events not shown (no log)")
                || line.starts_with("probe: stdout: ")
                || line.starts_with("probe: received="),
            "{line}"
        );
    }
}

#[test]
fn a_stdout_nobody_reads_blocks_nothing_and_loses_nothing_silently() {
    require_root!();
    let _turn = serial();
    nobody_reads("stuck", pipe());
}

#[test]
fn a_terminal_nobody_reads_is_counted_exactly_too() {
    require_root!();
    let _turn = serial();
    nobody_reads("tty", pty());
}

#[test]
fn a_socket_nobody_reads_is_counted_exactly_too() {
    require_root!();
    let _turn = serial();
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    nobody_reads("sock", (OwnedFd::from(ours), OwnedFd::from(theirs)));
}

#[test]
fn a_second_sigint_while_draining_exits_at_once_and_still_counts() {
    require_root!();
    let _turn = serial();
    let (done, received, dir) = stuck_stdout(
        "twice",
        &["-v", "--log", "t.log"],
        |l| l.starts_with("hello sys_write was called pid=") && l.ends_with(" fd=3 count=1 data=x"),
        &[
            (Duration::ZERO, libc::SIGINT),
            (Duration::from_millis(20), libc::SIGINT),
        ],
    );
    // The log has every event received but what the second signal cut
    // off before it was written, counted.
    let log = fs::read_to_string(dir.join("t.log")).unwrap();
    let not_written = shortfall(&done.stderr, "t.log").map_or(0, |s| {
        assert_eq!(
            (s.skipped, s.why.as_str()),
            (0, "not written before the stop")
        );
        s.failed
    });
    assert_eq!(
        event_lines(&log).len() as u64 + not_written,
        received,
        "{:?}",
        done.stderr
    );
}

#[test]
fn sigint_during_start_up_exits_cleanly_with_nothing_attached() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("early");
    let args = ["--attach", "tracepoint", "-q", "--no-log", "-c", "nothing"];
    let interrupted = "probe: SIGINT before attaching: stopped, nothing was monitored";

    // Pending from the first instruction: taken before anything is made.
    let probe = Probe::start_with(&dir, &args, Stdio::null(), true);
    let done = probe.wait(Duration::from_secs(5));
    assert_eq!(exit_code(&done.status), 0, "{:?}", done.stderr);
    assert_eq!(done.stderr, [interrupted, "probe: received=0 lost=0"]);
    assert_nothing_left();

    // At every moment of start-up.
    let (mut before, mut after, mut killed) = (0, 0, 0);
    // Start-up takes a few ms: finely at first, then coarser.
    let delays = (0..=16u64)
        .map(|i| i * 250)
        .chain([6_000, 8_000, 10_000, 12_000, 15_000, 20_000]);
    for micros in delays {
        let step = Duration::from_micros(micros);
        let mut probe = Probe::start_with(&dir, &args, Stdio::null(), false);
        thread::sleep(step);
        let took = stop_timed(&mut probe, &[(Duration::ZERO, libc::SIGINT)]);
        let done = probe.wait(Duration::from_secs(1));
        if done.status.code().is_none() {
            // Only before main blocks SIGINT, that is before it does
            // anything at all.
            assert_eq!(exit_code(&done.status), 128 + libc::SIGINT);
            assert!(done.stderr.is_empty(), "{:?}", done.stderr);
            killed += 1;
        } else {
            assert_eq!(exit_code(&done.status), 0, "at {step:?}: {:?}", done.stderr);
            assert_eq!(done.last_line(), "probe: received=0 lost=0");
            assert!(done.stderr.iter().all(|l| l.starts_with("probe: ")));
            if done.stderr.iter().any(|l| l == interrupted) {
                assert_eq!(done.stderr.len(), 2, "{:?}", done.stderr);
                before += 1;
            } else {
                assert_eq!(done.stderr.len(), 2, "{:?}", done.stderr);
                assert!(done.stderr[0].starts_with("probe: attached via tracepoint"));
                after += 1;
            }
        }
        assert!(took < Duration::from_secs(1), "at {step:?}: took {took:?}");
        assert_nothing_left();
    }
    eprintln!(
        "SIGINT 0 to 20 ms after spawn: {killed} before main, {before} before attaching, {after} after"
    );
    assert!(before > 0, "no run was interrupted during start-up");

    // The terminal closing (SIGHUP) ends a run the same clean way.
    let mut probe = Probe::start(&dir, &args);
    probe.wait_attached();
    let done = probe.stop(libc::SIGHUP);
    assert_eq!(exit_code(&done.status), 0, "{:?}", done.stderr);
    assert_eq!(done.last_line(), "probe: received=0 lost=0");
    assert_nothing_left();
}

/// What the monitor must keep after attaching: nothing on Linux 6.5 and
/// later, where a lookup in a map whose fd we hold needs no capability;
/// before that, CAP_BPF (or CAP_SYS_ADMIN before 5.8) for it when
/// unprivileged BPF is disabled.
fn expected_caps() -> u64 {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut parts = release.trim().split(['.', '-']);
    let major: u32 = parts.next().unwrap().parse().unwrap();
    let minor: u32 = parts.next().unwrap().parse().unwrap();
    let disabled = fs::read_to_string("/proc/sys/kernel/unprivileged_bpf_disabled")
        .map(|s| s.trim() != "0")
        .unwrap_or(false);
    if (major, minor) >= (6, 5) || !disabled {
        0
    } else if (major, minor) >= (5, 8) {
        1 << 39
    } else {
        1 << 21
    }
}

#[test]
fn after_attaching_it_keeps_no_capability_it_does_not_need() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("caps");
    let comm = unique_comm("cp");
    let mut probe = Probe::start(
        &dir,
        &["--attach", "tracepoint", "-c", &comm, "--log", "c.log"],
    );
    probe.wait_attached();
    let expected = format!("{:016x}", expected_caps());
    let tasks: Vec<PathBuf> = fs::read_dir(format!("/proc/{}/task", probe.pid()))
        .unwrap()
        .map(|e| e.unwrap().path().join("status"))
        .collect();
    let names: Vec<String> = tasks.iter().map(|t| status_field(t, "Name")).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["out-log", "out-stdout", "probe", "ring-reader"],
        "every thread checked"
    );
    for task in &tasks {
        for key in ["CapEff", "CapPrm", "CapBnd"] {
            assert_eq!(
                status_field(task, key),
                expected,
                "{key} of {}",
                task.display()
            );
        }
        for key in ["CapInh", "CapAmb"] {
            assert_eq!(status_field(task, key), "0000000000000000", "{key}");
        }
        assert_eq!(status_field(task, "NoNewPrivs"), "1");
    }
    // And it still does all it must: record, write, detach, count.
    loadgen(&comm, 12, 3);
    let done = probe.stop(libc::SIGINT);
    assert_eq!(exit_code(&done.status), 0, "{:?}", done.stderr);
    assert_eq!(done.last_line(), "probe: received=15 lost=0");
    assert_eq!(done.stdout.lines().count(), 15);
    let log = fs::read_to_string(dir.join("c.log")).unwrap();
    assert_eq!(event_lines(&log).len(), 15);
    assert_eq!(remarks(&done.stderr).len(), 1, "{:?}", done.stderr);
    assert_nothing_left();
}

/// Spawns the probe with stdout and stderr both on `pipe_write`, as
/// `probe 2>&1 | ...` does.
fn probe_2_and_1(dir: &Path, comm: &str, pipe_write: OwnedFd) -> std::process::Child {
    let err = pipe_write.try_clone().unwrap();
    Command::new(PROBE)
        .args(["--attach", "tracepoint", "-c", comm, "--no-log"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(pipe_write))
        .stderr(Stdio::from(err))
        .spawn()
        .unwrap()
}

fn wait_exit(child: &mut std::process::Child, limit: Duration) -> i32 {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return exit_code(&status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("no exit within {limit:?}");
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until a probe writing to `pipe` has said it is attached: the
/// pipe holds bytes.
fn wait_pipe_holds_bytes(pipe: &fs::File) {
    let start = Instant::now();
    loop {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD into a live int.
        unsafe {
            libc::ioctl(
                std::os::fd::AsRawFd::as_raw_fd(pipe),
                libc::FIONREAD,
                &mut n,
            )
        };
        if n > 0 {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "probe never spoke"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn stderr_on_the_same_pipe_neither_panics_nor_hangs() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("two-on-one");
    let attached = format!(
        "probe: attached via tracepoint to read and write on {} CPUs",
        probe::cpus::online().unwrap().len()
    );

    // probe 2>&1 | head -3: the summary finds no reader, which is no error.
    let comm = unique_comm("2h");
    let (read_end, write_end) = pipe();
    let read_end = fs::File::from(read_end);
    let mut probe = probe_2_and_1(&dir, &comm, write_end);
    wait_pipe_holds_bytes(&read_end);
    let head = Command::new("head")
        .arg("-3")
        .stdin(Stdio::from(read_end))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    loadgen(&comm, 100, 0);
    let out = head.wait_with_output().unwrap();
    let hello = "hello sys_write was called\n";
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{attached}\n{hello}{hello}")
    );
    assert_eq!(wait_exit(&mut probe, Duration::from_secs(3)), 0);
    assert_nothing_left();

    // probe 2>&1 | sleep 30: the summary finds no room; SIGINT still ends
    // it at once, and what did go out is whole lines.
    let comm = unique_comm("2s");
    let (read_end, write_end) = pipe();
    let mut read_end = fs::File::from(read_end);
    let mut probe = probe_2_and_1(&dir, &comm, write_end);
    wait_pipe_holds_bytes(&read_end);
    loadgen(&comm, 50_000, 0);
    thread::sleep(Duration::from_millis(300));
    let sent = Instant::now();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(probe.id() as i32, libc::SIGINT) };
    assert_eq!(wait_exit(&mut probe, Duration::from_secs(3)), 0);
    let took = sent.elapsed();
    assert!(took < Duration::from_secs(1), "took {took:?}");
    let mut text = String::new();
    read_end.read_to_string(&mut text).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], attached);
    assert!(text.ends_with('\n'));
    assert!(
        lines[1..]
            .iter()
            .all(|l| *l == "hello sys_write was called"),
        "whole lines only"
    );
    assert!(lines.len() < 50_000, "the pipe was full");
    assert_nothing_left();
}

#[test]
fn a_hostile_argument_is_quoted_on_one_line() {
    let out = Command::new(PROBE)
        .args(["--pid", "1\n2\u{1b}[31m"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let mut lines = stderr.lines();
    assert_eq!(
        lines.next(),
        Some(r"probe: --pid 1\x0a2\x1b[31m: not a process id (a whole number above 0)")
    );
    assert_eq!(
        lines.next().map(|l| l.starts_with("usage: probe")),
        Some(true)
    );
}
