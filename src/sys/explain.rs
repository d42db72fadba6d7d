//! `--explain`: the loader tells every system call it makes to set up and
//! tear down, decoded the way strace would show it, so a learner can watch
//! an eBPF program being loaded, attached and removed:
//!
//! ```text
//! bpf(BPF_MAP_CREATE, {map_type=BPF_MAP_TYPE_ARRAY, key_size=4, value_size=56, max_entries=1, map_flags=0, map_name="config_map"}) = 4<map:config_map>
//! ioctl(9<perf:syscalls/sys_enter_read>, PERF_EVENT_IOC_SET_BPF, 7<prog:tracepoint_read>) = 0
//! ```
//!
//! File descriptors are shown with what they are, like `strace -y`. The
//! narration goes to a sink the program installs (the probe's stderr); with
//! none installed nothing is formatted, so it costs nothing.

use std::collections::HashMap;
use std::fmt::Display;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, OnceLock};

type Sink = Box<dyn Fn(&str) + Send + Sync>;

static SINK: OnceLock<Sink> = OnceLock::new();
/// Held while a line is told, and by `call_and_tell` across its call too.
static ORDER: Mutex<()> = Mutex::new(());
/// What each open fd is, for the narration (only kept while explaining).
static LABELS: Mutex<Option<HashMap<RawFd, String>>> = Mutex::new(None);

/// Starts the narration: every call after this is told to `sink`, one line
/// each. Can be set once per process.
pub fn set_sink(sink: impl Fn(&str) + Send + Sync + 'static) {
    if SINK.set(Box::new(sink)).is_ok() {
        *LABELS.lock().unwrap_or_else(|e| e.into_inner()) = Some(HashMap::new());
    }
}

/// True when calls are being told.
pub fn enabled() -> bool {
    SINK.get().is_some()
}

/// Tells one call: `text` is the call, `result` what it returned.
pub(crate) fn tell(text: impl FnOnce() -> String, result: impl FnOnce() -> String) {
    if let Some(sink) = SINK.get() {
        let _order = ORDER.lock().unwrap_or_else(|e| e.into_inner());
        sink(&format!("{} = {}", text(), result()));
    }
}

/// Makes `call` and tells it with no other thread's line in between: for
/// a call that wakes another thread (the reader's stop), whose own calls
/// must then be told after it, as they happen after it. `call` must tell
/// nothing itself.
pub(crate) fn call_and_tell<T>(
    call: impl FnOnce() -> T,
    text: impl FnOnce() -> String,
    result: impl FnOnce(&T) -> String,
) -> T {
    let Some(sink) = SINK.get() else {
        return call();
    };
    let _order = ORDER.lock().unwrap_or_else(|e| e.into_inner());
    let r = call();
    sink(&format!("{} = {}", text(), result(&r)));
    r
}

/// `N<label>` for an fd that was labelled, else `N`.
pub(crate) fn fd(fd: RawFd) -> String {
    let labels = LABELS.lock().unwrap_or_else(|e| e.into_inner());
    match labels.as_ref().and_then(|l| l.get(&fd)) {
        Some(label) => format!("{fd}<{label}>"),
        None => fd.to_string(),
    }
}

pub(crate) fn borrowed(f: BorrowedFd) -> String {
    fd(f.as_raw_fd())
}

fn label(fd: RawFd, label: String) {
    if let Some(labels) = LABELS.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        labels.insert(fd, label);
    }
}

fn forget(fd: RawFd) {
    if let Some(labels) = LABELS.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        labels.remove(&fd);
    }
}

/// The errno's name, as strace shows it.
fn errno_name(e: &io::Error) -> String {
    let name = match e.raw_os_error() {
        Some(libc::EPERM) => "EPERM",
        Some(libc::ENOENT) => "ENOENT",
        Some(libc::ESRCH) => "ESRCH",
        Some(libc::EINTR) => "EINTR",
        Some(libc::EIO) => "EIO",
        Some(libc::E2BIG) => "E2BIG",
        Some(libc::EBADF) => "EBADF",
        Some(libc::EAGAIN) => "EAGAIN",
        Some(libc::ENOMEM) => "ENOMEM",
        Some(libc::EACCES) => "EACCES",
        Some(libc::EFAULT) => "EFAULT",
        Some(libc::EBUSY) => "EBUSY",
        Some(libc::EEXIST) => "EEXIST",
        Some(libc::ENODEV) => "ENODEV",
        Some(libc::EINVAL) => "EINVAL",
        Some(libc::EMFILE) => "EMFILE",
        Some(libc::ENOSPC) => "ENOSPC",
        Some(libc::ENOSYS) => "ENOSYS",
        Some(libc::EOPNOTSUPP) => "EOPNOTSUPP",
        // The kernel-internal ENOTSUPP that BPF returns.
        Some(524) => "ENOTSUPP",
        Some(n) => return format!("-1 errno {n} ({e})"),
        None => return format!("-1 ({e})"),
    };
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    format!("-1 {name} ({text})")
}

/// The result of a call that returns a number.
pub(crate) fn result<T: Display>(r: &io::Result<T>) -> String {
    match r {
        Ok(v) => v.to_string(),
        Err(e) => errno_name(e),
    }
}

/// The result of a call that returns 0 or fails.
pub(crate) fn status(r: &io::Result<()>) -> String {
    match r {
        Ok(()) => "0".into(),
        Err(e) => errno_name(e),
    }
}

/// A failed call's `-1 ERRNO (text)`.
pub(crate) fn error(e: &io::Error) -> String {
    errno_name(e)
}

/// A new fd from the kernel, labelled for the narration; closed, and the
/// close told, when dropped.
pub struct Fd(OwnedFd);

impl Fd {
    /// Takes ownership of `raw`, a fresh fd from the kernel.
    ///
    /// # Safety
    /// `raw` must be an open fd that nothing else owns or will close.
    pub(crate) unsafe fn from_raw(raw: RawFd, what: impl FnOnce() -> String) -> Fd {
        if enabled() {
            label(raw, what());
        }
        // SAFETY: the caller hands us sole ownership of an open fd.
        Fd(unsafe { OwnedFd::from_raw_fd(raw) })
    }

    /// The result of a call that returns a new fd, labelled.
    pub(crate) fn told(r: &io::Result<Fd>) -> String {
        match r {
            Ok(f) => fd(f.0.as_raw_fd()),
            Err(e) => errno_name(e),
        }
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        if !enabled() {
            return;
        }
        // Told now, closed just after (OwnedFd's own drop, which cannot
        // fail in a way anyone could act on).
        let raw = self.0.as_raw_fd();
        tell(|| format!("close({})", fd(raw)), || "0".into());
        forget(raw);
    }
}

impl AsFd for Fd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl IntoRawFd for Fd {
    fn into_raw_fd(self) -> RawFd {
        let raw = self.0.as_raw_fd();
        forget(raw);
        // Keep our Drop from telling a close that will not happen here.
        let me = std::mem::ManuallyDrop::new(self);
        // SAFETY: me is never used or dropped again; its OwnedFd is moved
        // out exactly once.
        unsafe { std::ptr::read(&me.0) }.into_raw_fd()
    }
}

impl std::fmt::Debug for Fd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fd({})", self.0.as_raw_fd())
    }
}
