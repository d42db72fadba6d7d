//! The kernel's own files that setting up reads and writes: a trace
//! event's id and `kprobe_events` in tracefs, the kprobe PMU's description
//! in sysfs, the kernel's BTF. Each is told to `--explain` as one call,
//! with what the kernel said: `read(/sys/kernel/tracing/events/syscalls/
//! sys_enter_read/id) = "842"` (underneath, an open, reads and a close: the
//! narration is about what crossed, not how std reads a file).

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::fd::IntoRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::explain::{self, Fd};

/// A small text file (an id, a PMU's type), whole.
pub fn read_text(path: &Path) -> io::Result<String> {
    let r = fs::read_to_string(path);
    explain::tell(
        || format!("read({})", path.display()),
        || match &r {
            Ok(text) => format!("{:?}", text.trim()),
            Err(e) => explain::error(e),
        },
    );
    r
}

/// A binary file (the kernel's BTF), whole; told by its size.
pub fn read_bytes(path: &Path) -> io::Result<Vec<u8>> {
    let r = fs::read(path);
    explain::tell(
        || format!("read({})", path.display()),
        || match &r {
            Ok(bytes) => format!("<{} bytes>", bytes.len()),
            Err(e) => explain::error(e),
        },
    );
    r
}

/// Opens `path` to append (tracefs' `kprobe_events`): a permission check
/// when the fd is dropped at once (its close is told too).
pub fn open_append(path: &Path) -> io::Result<Fd> {
    let r = OpenOptions::new()
        .append(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        // SAFETY: a fresh fd from the kernel, handed over whole.
        .map(|f| unsafe { Fd::from_raw(f.into_raw_fd(), || path.display().to_string()) });
    explain::tell(
        || format!("open({}, O_WRONLY|O_APPEND|O_CLOEXEC)", path.display()),
        || Fd::told(&r),
    );
    r
}

/// Appends `text` to `path` in one write(2): a tracefs command such as
/// `p:probe_rs/x __x64_sys_read`, which the kernel takes or refuses whole.
pub fn append(path: &Path, text: &str) -> io::Result<()> {
    let r = OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()));
    explain::tell(
        || format!("write({}, {text:?})", path.display()),
        || match &r {
            Ok(()) => text.len().to_string(),
            Err(e) => explain::error(e),
        },
    );
    r
}
