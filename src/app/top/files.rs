//! `probe top --by file`: what a (pid, fd) row is, by the link
//! /proc/PID/fd/N: a path, or `pipe:[INODE]`, `socket:[INODE]`,
//! `anon_inode:[eventfd]` as the kernel names them.
//!
//! The kernel's table knows only the pid and the fd number. The name is
//! looked up when the row is shown, and kept: an fd closed since shows the
//! name it had when last seen, with ` (closed)`; one never seen open shows
//! `(closed)`. An fd number reused for another file shows the new file: its
//! row holds the calls on both (the kernel cannot tell them apart by
//! number).

use std::collections::HashMap;

/// Names seen, at most this many (then the oldest half is forgotten).
const MAX_NAMES: usize = 4096;

#[derive(Default)]
pub struct FileNames {
    names: HashMap<(u32, i32), String>,
    /// Lookups made this interval; each row's link is read once per
    /// interval at most.
    fresh: HashMap<(u32, i32), bool>,
}

impl FileNames {
    /// A new interval: names are read again when shown.
    pub fn next_interval(&mut self) {
        self.fresh.clear();
        if self.names.len() > MAX_NAMES {
            let keep: Vec<(u32, i32)> = self.names.keys().copied().take(MAX_NAMES / 2).collect();
            self.names.retain(|k, _| keep.contains(k));
        }
    }

    /// The name of fd `fd` of process `pid`, as shown.
    pub fn name(&mut self, pid: u32, fd: i32) -> String {
        let key = (pid, fd);
        let open = *self.fresh.entry(key).or_insert_with(|| {
            match std::fs::read_link(format!("/proc/{pid}/fd/{fd}")) {
                Ok(target) => {
                    let mut b = Vec::new();
                    crate::app::output::format::push_escaped(
                        &mut b,
                        std::os::unix::ffi::OsStrExt::as_bytes(target.as_os_str()),
                        false,
                    );
                    self.names
                        .insert(key, String::from_utf8_lossy(&b).into_owned());
                    true
                }
                Err(_) => false,
            }
        });
        match (self.names.get(&key), open) {
            (Some(n), true) => n.clone(),
            (Some(n), false) => format!("{n} (closed)"),
            (None, _) => "(closed)".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn open_then_closed() {
        let path = std::env::temp_dir().join(format!("probe-files-{}.txt", std::process::id()));
        let f = std::fs::File::create(&path).unwrap();
        // A number no other test of this process opens meanwhile.
        let fd = 917;
        // SAFETY: dup2 onto an fd this test owns from here on.
        assert_eq!(unsafe { libc::dup2(f.as_raw_fd(), fd) }, fd);
        drop(f);
        let me = std::process::id();
        let mut names = FileNames::default();
        assert_eq!(names.name(me, fd), path.display().to_string());
        // SAFETY: closes the fd made above.
        unsafe { libc::close(fd) };
        // The same interval: as it was read.
        assert_eq!(names.name(me, fd), path.display().to_string());
        names.next_interval();
        assert_eq!(names.name(me, fd), format!("{} (closed)", path.display()));
        assert_eq!(names.name(me, 99999), "(closed)");
        let _ = std::fs::remove_file(&path);
    }
}
