//! `--pid-file PATH`: where logrotate's `postrotate` (or anyone) finds the
//! monitor to send it SIGUSR1. Root will later signal whatever pid the file
//! says, so it is written as the log is opened: never through a symlink,
//! never into a file another user owns or may write (they could make root
//! signal any process), never into one with another name; checked on the
//! opened file, not the path. Removed at exit if the name is still ours.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow};

use crate::app::output::{format, say};

/// A pid file written for this run; removed when dropped.
pub struct PidFile {
    path: PathBuf,
    /// (dev, ino) of the file written: only that file is removed.
    id: (u64, u64),
}

/// Opens `path` for writing under the rules above.
fn open(path: &Path) -> Result<File> {
    let fail = |why: String| {
        anyhow!(
            "cannot write pid file {}: {why}; remove it, or use another --pid-file",
            format::path(path)
        )
    };
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => fail("it is a symbolic link".into()),
            _ => fail(e.to_string()),
        })?;
    let meta = file.metadata().map_err(|e| fail(e.to_string()))?;
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if !meta.file_type().is_file() {
        return Err(fail("it is not a regular file".into()));
    }
    if meta.nlink() > 1 {
        return Err(fail(format!("it has {} hard links", meta.nlink())));
    }
    if meta.uid() != euid {
        return Err(fail(format!("it belongs to uid {}", meta.uid())));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(fail(format!(
            "its mode {:04o} lets others write it",
            meta.mode() & 0o7777
        )));
    }
    Ok(file)
}

impl PidFile {
    /// Writes this process's pid (as its own pid namespace sees it, where
    /// `kill` runs) to `path`, replacing what a run killed before left there.
    pub fn write(path: &Path) -> Result<PidFile> {
        let mut file = open(path)?;
        let meta = file.metadata()?;
        file.set_len(0)
            .and_then(|()| file.write_all(format!("{}\n", std::process::id()).as_bytes()))
            .map_err(|e| anyhow!("cannot write pid file {}: {e}", format::path(path)))?;
        Ok(PidFile {
            path: path.to_path_buf(),
            id: (meta.dev(), meta.ino()),
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let ours =
            std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.id);
        if !ours {
            return;
        }
        if let Err(e) = std::fs::remove_file(&self.path) {
            say(&format!(
                "cannot remove pid file {}: {e}",
                format::path(&self.path)
            ));
        }
    }
}
