//! The detailed log: opened the way a root tool must, and the header line
//! each run starts with.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
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
                None => fail(e.to_string()),
            },
            _ => fail(e.to_string()),
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
        "# probe {} started pid={} kernel_pid={} attach={} unix_time={} ts_to_unix_ns=+{} pid_filter={} comm_filter={}",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        h.kernel_pid,
        h.method,
        realtime.as_secs(),
        offset,
        h.pid_filter.map_or("none".into(), |p| p.to_string()),
        h.comm_filter.map_or("none".into(), escaped),
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
