//! `probe top --metrics-file PATH`: the exposition written for
//! node_exporter's textfile collector every interval, atomically: a new
//! file next to PATH (same directory, so the rename is atomic), mode
//! 0644, created exclusively and never through a symlink, written whole,
//! then renamed over PATH (which replaces a symlink there, never follows
//! it). A reader sees the old text or the new one, never half.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Where the metrics go.
pub struct TextFile {
    path: PathBuf,
    tmp: PathBuf,
}

impl TextFile {
    /// Checks that PATH can be written as described, by writing it once
    /// (empty of series but valid); the one-line error says what to fix.
    pub fn create(path: &Path, first: &[u8]) -> anyhow::Result<TextFile> {
        let shown = crate::app::output::format::path(path);
        let name = path
            .file_name()
            .ok_or_else(|| anyhow::anyhow!("--metrics-file {shown}: not a file name"))?;
        if !name.to_string_lossy().ends_with(".prom") {
            crate::app::output::say(&format!(
                "--metrics-file {shown}: node_exporter's textfile collector reads only *.prom files"
            ));
        }
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{}.tmp", std::process::id()));
        let t = TextFile {
            path: path.to_path_buf(),
            tmp: path.with_file_name(tmp_name),
        };
        t.write(first).map_err(|e| {
            anyhow::anyhow!("--metrics-file {shown}: cannot write it ({e}): is the directory there, and ours to write?")
        })?;
        Ok(t)
    }

    /// Replaces the file's content with `text`.
    pub fn write(&self, text: &[u8]) -> io::Result<()> {
        // A leftover of a run killed mid-write: ours (same pid) to remove.
        let _ = std::fs::remove_file(&self.tmp);
        let mut f: File = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&self.tmp)?;
        // The umask may have taken bits off: 0644 whatever it is.
        f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        let written = f.write_all(text).and_then(|()| f.sync_data());
        if let Err(e) = written {
            let _ = std::fs::remove_file(&self.tmp);
            return Err(e);
        }
        std::fs::rename(&self.tmp, &self.path).inspect_err(|_| {
            let _ = std::fs::remove_file(&self.tmp);
        })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn replaced_whole_with_mode_0644_and_a_symlink_is_replaced_not_followed() {
        let dir = std::env::temp_dir().join(format!("probe-textfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("elsewhere");
        std::fs::write(&target, b"keep").unwrap();
        let path = dir.join("probe.prom");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let t = TextFile::create(&path, b"a 1\n").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        assert_eq!(std::fs::read(&path).unwrap(), b"a 1\n");
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(meta.mode() & 0o777, 0o644);
        t.write(b"a 2\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"a 2\n");
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(left.len(), 2, "no temporary file left: {left:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
