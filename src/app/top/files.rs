//! `probe top --by file`: what a (pid, fd) row is, by the link
//! /proc/PID/fd/N: a path, or `pipe:[INODE]`, `socket:[INODE]`,
//! `anon_inode:[eventfd]` as the kernel names them.
//!
//! The kernel's table knows only the pid and the fd number. The name is
//! looked up when the row is shown, and kept: an fd closed since keeps the
//! name it had when last seen, marked closed; one never seen open has no
//! name. An fd number reused for another file shows the new file: its row
//! holds the calls on both (the kernel cannot tell them apart by number).
//!
//! The name is kept as the link's bytes, whatever they are (a path is any
//! bytes but NUL): each renderer escapes them once, its own way (the
//! table as comms are, JSON as JSON strings).

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;

use crate::app::output::format;

/// Names seen, at most this many (then the oldest half is forgotten).
const MAX_NAMES: usize = 4096;

/// What a row's fd was, as last seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileName {
    /// The link's bytes; None: never seen open (the process exited, or
    /// closed it, before its row was first shown).
    pub path: Option<Vec<u8>>,
    /// Open when looked at this interval.
    pub open: bool,
}

impl FileName {
    /// The table's cell: the path escaped as comms are (one token, safe on
    /// a terminal), then ` (closed)`; `(closed)` alone when never seen.
    pub fn cell(&self) -> String {
        let Some(path) = &self.path else {
            return "(closed)".into();
        };
        let mut b = Vec::new();
        format::push_escaped(&mut b, path, false);
        let mut cell = String::from_utf8_lossy(&b).into_owned();
        if !self.open {
            cell.push_str(" (closed)");
        }
        cell
    }

    /// The JSON members: `"file":"PATH"` (the exact path when it is UTF-8;
    /// null when never seen), `"file_hex"` with the path's bytes when they
    /// are not UTF-8 (`"file"` then has U+FFFD where they were), and
    /// `"closed":BOOL`.
    pub fn push_json(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(b",\"file\":");
        match &self.path {
            None => buf.extend_from_slice(b"null"),
            Some(path) => match std::str::from_utf8(path) {
                Ok(text) => format::push_json_string(buf, text),
                Err(_) => {
                    format::push_json_string(buf, &String::from_utf8_lossy(path));
                    buf.extend_from_slice(b",\"file_hex\":\"");
                    for byte in path {
                        buf.extend_from_slice(format!("{byte:02x}").as_bytes());
                    }
                    buf.push(b'"');
                }
            },
        }
        buf.extend_from_slice(if self.open {
            b",\"closed\":false"
        } else {
            b",\"closed\":true"
        });
    }
}

#[derive(Default)]
pub struct FileNames {
    names: HashMap<(u32, i32), Vec<u8>>,
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

    /// What fd `fd` of process `pid` is, as shown.
    pub fn name(&mut self, pid: u32, fd: i32) -> FileName {
        let key = (pid, fd);
        let open = *self.fresh.entry(key).or_insert_with(|| {
            match std::fs::read_link(format!("/proc/{pid}/fd/{fd}")) {
                Ok(target) => {
                    self.names
                        .insert(key, target.as_os_str().as_bytes().to_vec());
                    true
                }
                Err(_) => false,
            }
        });
        FileName {
            path: self.names.get(&key).cloned(),
            open,
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
        let bytes = path.as_os_str().as_bytes().to_vec();
        let open = FileName {
            path: Some(bytes.clone()),
            open: true,
        };
        assert_eq!(names.name(me, fd), open);
        assert_eq!(names.name(me, fd).cell(), path.display().to_string());
        // SAFETY: closes the fd made above.
        unsafe { libc::close(fd) };
        // The same interval: as it was read.
        assert_eq!(names.name(me, fd), open);
        names.next_interval();
        let closed = names.name(me, fd);
        assert_eq!(closed.path.as_deref(), Some(&bytes[..]));
        assert!(!closed.open);
        assert_eq!(closed.cell(), format!("{} (closed)", path.display()));
        assert_eq!(names.name(me, 99999).cell(), "(closed)");
        let _ = std::fs::remove_file(&path);
    }

    fn json(f: &FileName) -> String {
        let mut b = Vec::new();
        f.push_json(&mut b);
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn each_renderer_escapes_the_path_once() {
        let odd = FileName {
            path: Some(b"/t/a b\"q\\s\nn\xff.txt".to_vec()),
            open: false,
        };
        assert_eq!(odd.cell(), r#"/t/a\x20b\x22q\\s\x0an\xff.txt (closed)"#);
        assert_eq!(
            json(&odd),
            r#","file":"/t/a b\"q\\s\nn�.txt","file_hex":"2f742f61206222715c730a6eff2e747874","closed":true"#
        );
        let plain = FileName {
            path: Some("/t/é x".as_bytes().to_vec()),
            open: true,
        };
        assert_eq!(json(&plain), r#","file":"/t/é x","closed":false"#);
        let never = FileName {
            path: None,
            open: false,
        };
        assert_eq!(json(&never), r#","file":null,"closed":true"#);
    }
}
