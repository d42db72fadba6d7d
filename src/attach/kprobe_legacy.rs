//! Attaching a kprobe the old way: write a line to tracefs `kprobe_events`,
//! then attach to the trace event the kernel made of it.
//!
//! Such a kprobe outlives the process that made it, and the list of them is
//! the machine's, shared by every container. So:
//!
//! - each event name carries the monitor's tgid *as the kernel sees it*
//!   (identity.rs), unique on the machine where two containers may each
//!   have a pid 1;
//! - we remove ours when the link is dropped;
//! - at start we remove the stale ones (a monitor that was SIGKILLed). What
//!   is stale is not decided by looking for a process, which a monitor in
//!   another pid namespace cannot see: the kernel refuses (EBUSY) to remove
//!   a kprobe that a perf event still uses, in any namespace, so each entry
//!   of our group is simply removed, and a refusal means a live monitor;
//! - another monitor's start can remove our entry in the moment between our
//!   writing it and opening a perf event on it (it is not in use yet): then
//!   the open finds it gone, and we make it again.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use super::{AttachError, tracefs};
use crate::sys::{Fd, file, perf};

/// The tracefs group every event of ours goes in.
pub const GROUP: &str = "probe_rs";

/// A kprobe_events entry we made; removed on drop.
pub struct LegacyKprobe {
    tracefs: PathBuf,
    event: String,
}

impl Drop for LegacyKprobe {
    fn drop(&mut self) {
        let _ = write_kprobe_events(&self.tracefs, &format!("-:{GROUP}/{}", self.event));
    }
}

fn write_kprobe_events(tracefs: &Path, line: &str) -> std::io::Result<()> {
    file::append(&tracefs.join("kprobe_events"), &format!("{line}\n"))
}

/// This kernel makes kprobes through tracefs, and we may write there.
pub fn check(tracefs: &Path) -> Result<(), AttachError> {
    let events = tracefs.join("kprobe_events");
    // Absent only if the kernel says so: a tracefs we may not search
    // (mode 0700, not root) hides it too, and that is a refusal.
    if let Err(e) = std::fs::metadata(&events) {
        return Err(match e.kind() {
            std::io::ErrorKind::NotFound => AttachError::Unsupported(format!(
                "{} does not exist (kernel without CONFIG_KPROBE_EVENTS)",
                events.display()
            )),
            _ => AttachError::from_io(events.display(), &e),
        });
    }
    // Opening for append is the permission check a write makes, with no
    // effect of its own.
    file::open_append(&events)
        .map(drop)
        .map_err(|e| AttachError::from_io(events.display(), &e))
}

/// Times an entry may be made again after another monitor's clean-up
/// removed it before we could use it.
const ATTEMPTS: usize = 5;
/// maxactive of our return probes unless asked otherwise: the most calls
/// each can follow at once (the kernel's limit, KRETPROBE_MAXACTIVE_MAX).
/// The kernel's own default is far lower (max(10, 2 x CPUs) on most), and a
/// return beyond it is missed: a thread that blocks in read holds one.
pub const DEFAULT_MAXACTIVE: u32 = 4096;

/// Attaches `prog` to a new kprobe on `function`. The returned perf event
/// must be dropped before the `LegacyKprobe` (the kernel refuses to remove
/// a kprobe that is in use).
/// With `maxactive`, a return probe (`r`) that follows that many calls in
/// flight at most.
pub fn attach(
    prog: BorrowedFd,
    tracefs: &Path,
    function: &str,
    maxactive: Option<u32>,
) -> Result<(Fd, LegacyKprobe), AttachError> {
    let events = tracefs.join("kprobe_events");
    let safe: String = function
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let tgid = crate::identity::kernel_tgid().map_err(|e| AttachError::Failed(e.to_string()))?;
    let (kind, event) = match maxactive {
        Some(n) => (format!("r{n}"), format!("{safe}_ret_{tgid}")),
        None => ("p".to_string(), format!("{safe}_{tgid}")),
    };
    let mut last = None;
    for _ in 0..ATTEMPTS {
        write_kprobe_events(tracefs, &format!("{kind}:{GROUP}/{event} {function}")).map_err(
            |e| {
                AttachError::from_io(
                    format_args!(
                        "could not add a kprobe on {function} to {}",
                        events.display()
                    ),
                    &e,
                )
            },
        )?;
        let kprobe = LegacyKprobe {
            tracefs: tracefs.to_path_buf(),
            event: event.clone(),
        };
        // Gone already (removed by another monitor's clean-up) shows as
        // no id, or an id perf no longer knows.
        let name = format!("{GROUP}/{}", kprobe.event);
        let opened = tracefs::event_id(tracefs, GROUP, &kprobe.event).and_then(|id| {
            perf::open_tracepoint(id, &name).map_err(|e| {
                AttachError::from_io(format_args!("perf_event_open on kprobe {name}"), &e)
            })
        });
        match opened {
            Ok(perf_event) => {
                super::set_program_and_enable(perf_event.as_fd(), prog)?;
                return Ok((perf_event, kprobe));
            }
            Err(e) => {
                // Not ours to remove if it is gone; dropping tries anyway.
                drop(kprobe);
                last = Some(e);
            }
        }
    }
    Err(last.unwrap_or_else(|| {
        AttachError::Failed(format!("could not attach to kprobe {GROUP}/{event}"))
    }))
}

/// Removes our group's entries that no perf event uses (the kernel refuses
/// with EBUSY to remove one in use: a live monitor's, in any namespace).
/// Returns the names removed.
pub fn remove_stale(tracefs: &Path) -> Vec<String> {
    let Ok(text) = file::read_text(&tracefs.join("kprobe_events")) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for line in text.lines() {
        // "p:probe_rs/__x64_sys_read_1234 __x64_sys_read"
        let Some(name) = line
            .split_whitespace()
            .next()
            .and_then(|spec| spec.split_once(':'))
            .and_then(|(_, name)| name.strip_prefix(GROUP))
            .and_then(|name| name.strip_prefix('/'))
        else {
            continue;
        };
        if write_kprobe_events(tracefs, &format!("-:{GROUP}/{name}")).is_ok() {
            removed.push(name.to_string());
        }
    }
    removed
}
