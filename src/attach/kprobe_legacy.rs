//! Attaching a kprobe the old way: write a line to tracefs `kprobe_events`,
//! then attach to the trace event the kernel made of it.
//!
//! Such a kprobe outlives the process that made it. So: each event name
//! carries our pid, we remove ours when the link is dropped, and at start we
//! remove those whose process is gone (a monitor that was SIGKILLed).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::tracefs;
use crate::sys::perf;

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
    let mut file = OpenOptions::new()
        .append(true)
        .open(tracefs.join("kprobe_events"))?;
    file.write_all(format!("{line}\n").as_bytes())
}

/// Attaches `prog` to a new kprobe on `function`. The returned perf event
/// must be dropped before the `LegacyKprobe` (the kernel refuses to remove
/// a kprobe that is in use).
pub fn attach(prog: BorrowedFd, tracefs: &Path, function: &str) -> Result<(OwnedFd, LegacyKprobe)> {
    let events = tracefs.join("kprobe_events");
    if !events.exists() {
        bail!(
            "{} does not exist (kernel without CONFIG_KPROBE_EVENTS)",
            events.display()
        );
    }
    let safe: String = function
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let event = format!("{safe}_{}", std::process::id());
    write_kprobe_events(tracefs, &format!("p:{GROUP}/{event} {function}")).with_context(|| {
        format!(
            "could not add a kprobe on {function} to {}",
            events.display()
        )
    })?;
    let kprobe = LegacyKprobe {
        tracefs: tracefs.to_path_buf(),
        event,
    };
    let id = tracefs::event_id(tracefs, GROUP, &kprobe.event)?;
    let perf_event = perf::open_tracepoint(id)
        .with_context(|| format!("perf_event_open on kprobe {GROUP}/{}", kprobe.event))?;
    super::set_program_and_enable(perf_event.as_fd(), prog)?;
    Ok((perf_event, kprobe))
}

/// Removes our group's entries whose process no longer exists. Returns the
/// names removed.
pub fn remove_stale(tracefs: &Path) -> Vec<String> {
    let Ok(text) = fs::read_to_string(tracefs.join("kprobe_events")) else {
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
        let Some(pid) = name.rsplit('_').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if write_kprobe_events(tracefs, &format!("-:{GROUP}/{name}")).is_ok() {
            removed.push(name.to_string());
        }
    }
    removed
}
