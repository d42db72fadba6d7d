//! Finding tracefs, mounting it where nobody has.

use std::fs;
use std::path::{Path, PathBuf};

use super::AttachError;
use crate::sys::explain;

/// Where tracefs is mounted when nobody has.
pub const DEFAULT_MOUNT: &str = "/sys/kernel/tracing";

/// A tracefs mount found or made.
pub struct Tracefs {
    /// Its mount point.
    pub root: PathBuf,
    /// True when this process mounted it (it stays mounted: another tool
    /// may be using it by the time we exit).
    pub mounted_by_us: bool,
}

/// The tracefs mount from /proc/self/mounts, or a fresh mount of it at
/// /sys/kernel/tracing.
pub fn find_or_mount() -> Result<Tracefs, AttachError> {
    if let Some(root) = find_mounted() {
        return Ok(Tracefs {
            root,
            mounted_by_us: false,
        });
    }
    let target = Path::new(DEFAULT_MOUNT);
    if !target.is_dir() {
        return Err(AttachError::Unsupported(format!(
            "tracefs is not mounted and {DEFAULT_MOUNT} does not exist (kernel without tracefs?)"
        )));
    }
    let r = nix::mount::mount(
        Some("tracefs"),
        target,
        Some("tracefs"),
        nix::mount::MsFlags::MS_NOSUID
            | nix::mount::MsFlags::MS_NODEV
            | nix::mount::MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(std::io::Error::from);
    explain::tell(
        || {
            format!(
                "mount(\"tracefs\", \"{DEFAULT_MOUNT}\", \"tracefs\", MS_NOSUID|MS_NODEV|MS_NOEXEC, NULL)"
            )
        },
        || explain::status(&r),
    );
    r.map_err(|e| {
        AttachError::from_io(
            format_args!("tracefs is not mounted and mounting it on {DEFAULT_MOUNT} failed"),
            &e,
        )
    })?;
    Ok(Tracefs {
        root: target.to_path_buf(),
        mounted_by_us: true,
    })
}

fn find_mounted() -> Option<PathBuf> {
    let mounts = fs::read_to_string("/proc/self/mounts").ok()?;
    let mut debugfs = None;
    for line in mounts.lines() {
        let mut fields = line.split(' ');
        let (_, point, kind) = (fields.next()?, fields.next()?, fields.next()?);
        match kind {
            "tracefs" => return Some(PathBuf::from(point)),
            "debugfs" => debugfs = Some(PathBuf::from(point).join("tracing")),
            _ => {}
        }
    }
    // Older systems only mount debugfs, which shows tracefs at tracing/.
    debugfs.filter(|p| p.join("events").is_dir())
}

/// The numeric id of a trace event, as perf_event_open wants it.
pub fn event_id(tracefs: &Path, category: &str, name: &str) -> Result<u64, AttachError> {
    let path = tracefs.join("events").join(category).join(name).join("id");
    let text = crate::sys::file::read_text(&path).map_err(|e| {
        AttachError::from_io(
            format_args!(
                "no trace event {category}/{name} ({} unreadable)",
                path.display()
            ),
            &e,
        )
    })?;
    text.trim()
        .parse()
        .map_err(|_| AttachError::Failed(format!("{} does not hold a number", path.display())))
}
