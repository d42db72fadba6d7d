//! The detailed log: opened the way a root tool must, and the header line
//! each run starts with.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, anyhow};

use super::format;

fn not_regular(kind: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

const LOG_RULES: &str = "it must be a regular file, not a symlink; use --log PATH or --no-log";

/// The name of a uid, from /etc/passwd, or the number.
fn user_name(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                (f.nth(1)? == uid.to_string()).then(|| name.to_string())
            })
        })
        .map_or_else(
            || format!("uid {uid}"),
            |n| format!("{} (uid {uid})", format::printable(n.as_bytes())),
        )
}

/// Why an open that failed with EACCES failed, when the kernel's
/// fs.protected_regular is the reason: the file exists, belongs to
/// someone else, in a world- or group-writable sticky directory (/tmp).
fn protected_regular(path: &Path) -> Option<String> {
    let file = std::fs::symlink_metadata(path).ok()?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = std::fs::metadata(parent).ok()?;
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    let sticky_shared = dir.mode() & 0o1000 != 0 && dir.mode() & 0o022 != 0;
    (sticky_shared && file.uid() != euid && file.uid() != dir.uid()).then(|| {
        format!(
            "it belongs to {} in a shared sticky directory, and the kernel \
             (fs.protected_regular) refuses to let anyone else open it there",
            user_name(file.uid())
        )
    })
}

/// The log's path made absolute (from the working directory), for a
/// message that must say exactly where.
fn absolute(path: &Path) -> String {
    format::path(&std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()))
}

/// Why an open that broke none of the log's rules failed (a read-only
/// working directory, a missing one, ...): the real reason, where, and
/// what to do.
fn cannot_open(path: &Path, e: &std::io::Error) -> anyhow::Error {
    let exists = std::fs::symlink_metadata(path).is_ok();
    let verb = if exists { "open" } else { "create" };
    let dir = std::path::absolute(path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .map_or_else(|| ".".to_string(), |d| format::path(&d));
    let why = match e.raw_os_error() {
        Some(libc::EROFS) => format!("{dir} is on a read-only file system ({e})"),
        Some(libc::EACCES) if !exists => format!(
            "{dir} does not let root create files in it ({e}: root squashed on NFS, or a \
             security policy)"
        ),
        Some(libc::ENOENT) => format!("there is no directory {dir}"),
        _ => e.to_string(),
    };
    anyhow!(
        "cannot {verb} log {}: {why}; use --log PATH in a directory root can write, or --no-log",
        absolute(path)
    )
}

/// Opens the log the way a root tool must: never through a symlink, never
/// blocking on a FIFO, only a regular file with no other name, created
/// 0600, appended to; and only a file that is ours and that no one else
/// may read or write (checked on the opened file: a check of the path
/// before opening it could be raced).
pub fn open(path: &Path) -> Result<File> {
    let fail = |why: String| {
        anyhow!(
            "cannot open log {} ({LOG_RULES}): {why}",
            format::path(path)
        )
    };
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => fail("it is a symbolic link".into()),
            Some(libc::EISDIR) => fail("it is a directory".into()),
            // A FIFO nobody reads, or a device with nothing behind it.
            Some(libc::ENXIO) => match std::fs::symlink_metadata(path) {
                Ok(m) => fail(format!("it is {}", not_regular(m.file_type()))),
                Err(_) => fail(e.to_string()),
            },
            Some(libc::EACCES) => match protected_regular(path) {
                Some(why) => anyhow!(
                    "cannot open log {}: {why}; remove it, or use --log PATH or --no-log",
                    format::path(path)
                ),
                None => cannot_open(path, &e),
            },
            _ => cannot_open(path, &e),
        })?;
    let meta = file.metadata().map_err(|e| fail(e.to_string()))?;
    if !meta.file_type().is_file() {
        return Err(fail(format!("it is {}", not_regular(meta.file_type()))));
    }
    if meta.nlink() > 1 {
        return Err(fail(format!(
            "it has {} hard links, so it is also another file",
            meta.nlink()
        )));
    }
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if meta.uid() != euid {
        return Err(anyhow!(
            "cannot open log {}: it belongs to {}, who could read what the probe logs; \
             remove it, or use --log PATH or --no-log",
            format::path(path),
            user_name(meta.uid())
        ));
    }
    if meta.mode() & 0o066 != 0 {
        return Err(anyhow!(
            "cannot open log {}: its mode {:04o} lets others read or write it; \
             chmod 600 it, or use --log PATH or --no-log",
            format::path(path),
            meta.mode() & 0o7777
        ));
    }
    // SAFETY: fcntl on the fd we just opened.
    unsafe {
        let flags = libc::fcntl(file.as_raw_fd(), libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(file.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK);
        }
    }
    Ok(file)
}

/// What a run's header line says about it: plain values, not the CLI's.
pub struct Header<'a> {
    pub method: &'a str,
    /// The monitor's tgid as the kernel (and so every event) sees it.
    pub kernel_pid: u32,
    pub pid_filter: Option<u32>,
    pub comm_filter: Option<&'a [u8]>,
    pub cgroup_filter: Option<&'a Path>,
    /// The calls followed (`--syscalls`), by name.
    pub syscalls: &'a [&'a str],
    /// `--exit`: each line is a completed call, with ret and lat_ns.
    pub exit: bool,
}

/// The line each run starts with: who, how, and how to read `ts`. `pid=`
/// is the monitor's pid in its own namespace, `kernel_pid=` the one events
/// use (they differ in a container).
pub fn header(h: &Header) -> String {
    let realtime = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let monotonic = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32))
        .unwrap_or_default();
    let offset = realtime.saturating_sub(monotonic).as_nanos();
    let escaped = |bytes: &[u8]| {
        let mut s = Vec::new();
        format::push_escaped(&mut s, bytes, false);
        String::from_utf8_lossy(&s).into_owned()
    };
    let mut line = format!(
        "# probe {} started pid={} kernel_pid={} attach={} unix_time={} ts_to_unix_ns=+{} pid_filter={} comm_filter={} syscalls={}",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        h.kernel_pid,
        h.method,
        realtime.as_secs(),
        offset,
        h.pid_filter.map_or("none".into(), |p| p.to_string()),
        h.comm_filter.map_or("none".into(), escaped),
        h.syscalls.join(","),
    );
    if let Some(cgroup) = h.cgroup_filter {
        use std::os::unix::ffi::OsStrExt;
        line.push_str(&format!(
            " cgroup_filter={}",
            escaped(cgroup.as_os_str().as_bytes())
        ));
    }
    if h.exit {
        line.push_str(" events=exit");
    }
    line.push('\n');
    line
}

/// The log's path with `.N` appended: where rotation `N` keeps it.
fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// True when the name `path` is the file `file` is open on.
fn is_open_on(path: &Path, file: &File) -> bool {
    match (std::fs::symlink_metadata(path), file.metadata()) {
        (Ok(p), Ok(f)) => (p.dev(), p.ino()) == (f.dev(), f.ino()),
        _ => false,
    }
}

/// What the log's writer needs to start a new file: by itself (rotation,
/// `--log-max`) or when told to (SIGUSR1, after an external rotation).
/// Every new file is opened by `open`, with all its checks, and starts
/// with the run's header.
pub struct Lifecycle {
    pub path: PathBuf,
    /// The run's header line, repeated at the top of each new file.
    pub header: String,
    /// `--log-max`: no file grows past this many bytes.
    pub max: Option<u64>,
    /// `--log-keep`: rotated files kept, `PATH.1` (the newest) to
    /// `PATH.N`.
    pub keep: u32,
}

impl Lifecycle {
    /// The log at its path, opened anew (created if it is gone), with the
    /// header at its top if it is empty.
    pub fn reopen(&self) -> Result<File> {
        let mut file = open(&self.path)?;
        let empty = file.metadata().map(|m| m.len() == 0).unwrap_or(false);
        if empty {
            file.write_all(self.header.as_bytes()).map_err(|e| {
                anyhow!(
                    "cannot write the header to {}: {e}",
                    format::path(&self.path)
                )
            })?;
        }
        Ok(file)
    }

    /// Rotation: `PATH.N` removed, `PATH.N-1` .. `PATH.1` moved up one,
    /// the log (`current`) moved to `PATH.1`, and a new log opened at the
    /// path. If the file at the path is no longer `current` (moved away
    /// by someone else's rotation), nothing is renamed: the log is only
    /// reopened. On an error nothing more is moved, so no file is lost;
    /// the caller goes on writing to `current`.
    pub fn rotate(&self, current: &File) -> Result<File> {
        if is_open_on(&self.path, current) {
            let gone_ok = |r: std::io::Result<()>, what: &Path| match r {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(anyhow!(
                    "cannot rotate log {}: {}: {e}",
                    format::path(&self.path),
                    format::path(what)
                )),
                _ => Ok(()),
            };
            let oldest = numbered(&self.path, self.keep);
            gone_ok(std::fs::remove_file(&oldest), &oldest)?;
            for n in (1..self.keep).rev() {
                let from = numbered(&self.path, n);
                gone_ok(std::fs::rename(&from, numbered(&self.path, n + 1)), &from)?;
            }
            gone_ok(
                std::fs::rename(&self.path, numbered(&self.path, 1)),
                &self.path,
            )?;
        }
        self.reopen()
    }
}

#[cfg(test)]
mod lifecycle_tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("probe-unit-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn rotation_moves_each_file_up_one_drops_the_oldest_and_starts_anew() {
        let d = dir("rotate");
        let path = d.join("l.log");
        let lifecycle = Lifecycle {
            path: path.clone(),
            header: "# header\n".into(),
            max: Some(1 << 20),
            keep: 2,
        };
        let mut current = open(&path).unwrap();
        current.write_all(b"# header\nnewest\n").unwrap();
        std::fs::write(d.join("l.log.1"), "older\n").unwrap();
        std::fs::write(d.join("l.log.2"), "oldest\n").unwrap();
        let new = lifecycle.rotate(&current).unwrap();
        let read = |n: &str| std::fs::read_to_string(d.join(n)).unwrap();
        assert_eq!(read("l.log.2"), "older\n");
        assert_eq!(read("l.log.1"), "# header\nnewest\n");
        assert_eq!(read("l.log"), "# header\n");
        assert!(!d.join("l.log.3").exists());
        assert!(is_open_on(&path, &new));
        let meta = new.metadata().unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o600);

        // Moved away by someone else: nothing renamed, only reopened.
        std::fs::rename(&path, d.join("moved")).unwrap();
        let again = lifecycle.rotate(&new).unwrap();
        assert_eq!(read("l.log.1"), "# header\nnewest\n");
        assert_eq!(read("l.log"), "# header\n");
        assert!(is_open_on(&path, &again));

        // A step that fails moves nothing further: the log stays.
        std::fs::remove_file(d.join("l.log.2")).unwrap();
        std::fs::create_dir(d.join("l.log.2")).unwrap();
        let e = lifecycle.rotate(&again).unwrap_err().to_string();
        assert!(e.starts_with("cannot rotate log "), "{e}");
        assert!(is_open_on(&path, &again), "the log was not moved");
        assert_eq!(read("l.log.1"), "# header\nnewest\n");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn numbered_appends_to_the_whole_name() {
        assert_eq!(
            numbered(Path::new("dir.d/syscalls.log"), 12),
            PathBuf::from("dir.d/syscalls.log.12")
        );
    }
}
