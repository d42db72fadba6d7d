//! `probe top --metrics-file PATH`: the exposition written for
//! node_exporter's textfile collector every interval, atomically: a new
//! file next to PATH (same directory, so the rename is atomic), mode
//! 0644, created exclusively and never through a symlink, written whole,
//! then renamed over PATH (which replaces a symlink there, never follows
//! it). A reader sees the old text or the new one, never half.
//!
//! The new file's name is unpredictable (`.NAME.` and 16 random hex
//! digits, `.tmp`), and a name that is taken is never used: another user
//! of a world-writable directory (/tmp) cannot block it by making one
//! first, which a name made of the pid allowed (a directory of that name
//! froze the file for the whole run).

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Names tried, each new and random, before a write gives up: another
/// user cannot guess one, so a taken name is a collision of 64 random
/// bits, or a directory that lets no file be made.
const NAMES_TRIED: usize = 8;

/// Where the metrics go.
pub struct TextFile {
    path: PathBuf,
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
        let t = TextFile {
            path: path.to_path_buf(),
        };
        t.write(first).map_err(|e| {
            anyhow::anyhow!("--metrics-file {shown}: cannot write it ({e}): is the directory there, and ours to write?")
        })?;
        Ok(t)
    }

    /// Replaces the file's content with `text`.
    pub fn write(&self, text: &[u8]) -> io::Result<()> {
        let (tmp, mut f) = self.new_file()?;
        // The umask may have taken bits off: 0644 whatever it is.
        let written = f
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .and_then(|()| f.write_all(text))
            .and_then(|()| f.sync_data())
            .and_then(|()| std::fs::rename(&tmp, &self.path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }

    /// A file of a new random name beside PATH, made by us (O_EXCL): a
    /// name that exists already is left alone, and another drawn.
    fn new_file(&self) -> io::Result<(PathBuf, File)> {
        let mut last = io::Error::from(ErrorKind::AlreadyExists);
        for _ in 0..NAMES_TRIED {
            let tmp = self
                .path
                .with_file_name(temp_name(&self.path, random_u64()?));
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&tmp)
            {
                Ok(f) => return Ok((tmp, f)),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `.NAME.XXXXXXXXXXXXXXXX.tmp` for PATH's NAME (a dot file that does not
/// end in `.prom`: node_exporter reads none of it).
fn temp_name(path: &Path, random: u64) -> OsString {
    let mut name = OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(format!(".{random:016x}.tmp"));
    name
}

/// 64 bits from the kernel's random pool (getrandom(2), which does not
/// block once the pool is ready at boot).
fn random_u64() -> io::Result<u64> {
    let mut b = [0u8; 8];
    // SAFETY: b is a live buffer of b.len() bytes.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != b.len() as isize {
        return Err(io::Error::last_os_error());
    }
    Ok(u64::from_ne_bytes(b))
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

    #[test]
    fn temporary_names_are_dot_files_of_the_target_s_name_never_alike() {
        let path = Path::new("/d/probe.prom");
        assert_eq!(
            temp_name(path, 0xab),
            OsString::from(".probe.prom.00000000000000ab.tmp")
        );
        let drawn: std::collections::HashSet<u64> =
            (0..64).map(|_| random_u64().unwrap()).collect();
        assert_eq!(drawn.len(), 64);
    }
}
