//! Formatting an event as a hello line, a log line or a JSON object, into
//! a caller's buffer with no allocation.
//!
//! A comm is whatever bytes a process chose (prctl PR_SET_NAME), terminal
//! escapes and newlines included, so it is always escaped the same way:
//! printable ASCII other than `\` and `"` as is, everything else `\xNN`,
//! `\` as `\\`. The result is one token with no spaces, safe on a terminal,
//! one line in the log, and valid inside a JSON string once its
//! backslashes are doubled.

use crate::app::abi::{Event, Syscall};

fn hello_text(s: Syscall) -> &'static [u8] {
    match s {
        Syscall::Read => b"hello sys_read was called",
        Syscall::Write => b"hello sys_write was called",
        Syscall::Pread64 => b"hello sys_pread64 was called",
        Syscall::Pwrite64 => b"hello sys_pwrite64 was called",
        Syscall::Readv => b"hello sys_readv was called",
        Syscall::Writev => b"hello sys_writev was called",
        Syscall::Preadv => b"hello sys_preadv was called",
        Syscall::Pwritev => b"hello sys_pwritev was called",
        Syscall::Preadv2 => b"hello sys_preadv2 was called",
        Syscall::Pwritev2 => b"hello sys_pwritev2 was called",
    }
}

pub fn push_u64(buf: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[i..]);
}

pub fn push_i64(buf: &mut Vec<u8>, v: i64) {
    if v < 0 {
        buf.push(b'-');
    }
    push_u64(buf, v.unsigned_abs());
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Escapes `bytes` as described above; `json` doubles each backslash so the
/// same text can sit inside a JSON string.
pub fn push_escaped(buf: &mut Vec<u8>, bytes: &[u8], json: bool) {
    let slash: &[u8] = if json { b"\\\\" } else { b"\\" };
    for &b in bytes {
        match b {
            b'\\' => {
                buf.extend_from_slice(slash);
                buf.extend_from_slice(slash);
            }
            0x21..=0x7e if b != b'"' => buf.push(b),
            _ => {
                buf.extend_from_slice(slash);
                buf.extend_from_slice(&[b'x', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
            }
        }
    }
}

/// Emits an event's fields in one of the two syntaxes: ` key=value` pairs
/// (the log, and the hello line's details) or JSON members. The list of
/// fields, and their order, is written once, in `fields`.
struct Fields<'a> {
    buf: &'a mut Vec<u8>,
    json: bool,
    first: bool,
}

impl Fields<'_> {
    fn key(&mut self, key: &[u8]) {
        match (self.json, self.first) {
            (true, first) => {
                self.buf
                    .extend_from_slice(if first { b"{\"" } else { b",\"" });
                self.buf.extend_from_slice(key);
                self.buf.extend_from_slice(b"\":");
            }
            (false, first) => {
                if !first {
                    self.buf.push(b' ');
                }
                self.buf.extend_from_slice(key);
                self.buf.push(b'=');
            }
        }
        self.first = false;
    }

    fn num(&mut self, key: &[u8], v: u64) {
        self.key(key);
        push_u64(self.buf, v);
    }

    fn int(&mut self, key: &[u8], v: i64) {
        self.key(key);
        push_i64(self.buf, v);
    }

    /// `ret=6` or `ret=EBADF` (a name when there is one); in JSON the
    /// number always, and `"errno":"EBADF"` beside it.
    fn ret(&mut self, ret: i64) {
        let name = (ret < 0)
            .then(|| super::errno::name(ret.unsigned_abs()))
            .flatten();
        match (self.json, name) {
            (false, Some(name)) => self.text(b"ret", name.as_bytes()),
            (true, Some(name)) => {
                self.int(b"ret", ret);
                self.text(b"errno", name.as_bytes());
            }
            _ => self.int(b"ret", ret),
        }
    }

    /// A call still in flight at the stop: `ret=unfinished`, or in JSON
    /// `"ret":null,"unfinished":true`.
    fn unfinished(&mut self) {
        if self.json {
            self.key(b"ret");
            self.buf.extend_from_slice(b"null");
            self.key(b"unfinished");
            self.buf.extend_from_slice(b"true");
        } else {
            self.text(b"ret", b"unfinished");
        }
    }

    fn text(&mut self, key: &[u8], bytes: &[u8]) {
        self.key(key);
        if self.json {
            self.buf.push(b'"');
        }
        push_escaped(self.buf, bytes, self.json);
        if self.json {
            self.buf.push(b'"');
        }
    }
}

/// Every field (`full`), or the hello line's details: pid, tgid, comm, fd,
/// count. `data` comes last, when the kernel copied a preview (`-v`).
fn fields(f: &mut Fields, e: &Event, full: bool) {
    if full {
        f.num(b"ts", e.ts_ns);
        f.num(b"cpu", e.cpu as u64);
    }
    f.num(b"pid", e.pid as u64);
    f.num(b"tgid", e.tgid as u64);
    if full {
        f.num(b"uid", e.uid as u64);
    }
    f.text(b"comm", e.comm());
    if full {
        f.text(b"syscall", e.syscall().name().as_bytes());
    }
    f.int(b"fd", e.fd as i64);
    f.num(b"count", e.count);
    if e.completed() {
        f.ret(e.ret);
        f.num(b"lat_ns", e.lat_ns);
    } else if e.unfinished() {
        f.unfinished();
        f.num(b"lat_ns", e.lat_ns);
    }
    if let Some(data) = e.preview() {
        f.text(b"data", data);
    }
}

/// `hello sys_read was called`, with details appended when `verbose`.
pub fn hello(buf: &mut Vec<u8>, e: &Event, verbose: bool) {
    buf.extend_from_slice(hello_text(e.syscall()));
    if verbose {
        let mut f = Fields {
            buf: &mut *buf,
            json: false,
            first: false,
        };
        fields(&mut f, e, false);
    }
    buf.push(b'\n');
}

/// `ts=.. cpu=.. pid=.. tgid=.. uid=.. comm=.. syscall=.. fd=.. count=..`
pub fn log(buf: &mut Vec<u8>, e: &Event) {
    let mut f = Fields {
        buf: &mut *buf,
        json: false,
        first: true,
    };
    fields(&mut f, e, true);
    buf.push(b'\n');
}

/// One JSON object with the log's keys.
pub fn json(buf: &mut Vec<u8>, e: &Event) {
    let mut f = Fields {
        buf: &mut *buf,
        json: true,
        first: true,
    };
    fields(&mut f, e, true);
    buf.extend_from_slice(b"}\n");
}

/// `text` as a JSON string, quotes included, exact: a decoder gets `text`
/// back. `"` and `\` are escaped, and every control character (C0, DEL, C1)
/// and U+2028/U+2029 becomes `\uXXXX`: the line stays one line, safe on a
/// terminal, and valid JavaScript too. Everything else is UTF-8 as is.
pub fn push_json_string(buf: &mut Vec<u8>, text: &str) {
    buf.push(b'"');
    for c in text.chars() {
        match c {
            '"' => buf.extend_from_slice(b"\\\""),
            '\\' => buf.extend_from_slice(b"\\\\"),
            '\n' => buf.extend_from_slice(b"\\n"),
            '\t' => buf.extend_from_slice(b"\\t"),
            '\r' => buf.extend_from_slice(b"\\r"),
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                buf.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
            }
            c => {
                let mut b = [0u8; 4];
                buf.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
    buf.push(b'"');
}

/// A run of events a file output could not write (a write error, such as
/// a full disk), marked in the file where they are missing once writing
/// works again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gap {
    pub events: u64,
    /// The write error: its errno name (`ENOSPC`).
    pub error: String,
    /// `ts` of the first and the last event missing.
    pub from_ts: u64,
    pub to_ts: u64,
}

/// `# 50031 events not written here: ENOSPC from 653028640151 to
/// 653029640151`: a comment line, as the header is, for the log and the
/// hello lines.
pub fn gap_comment(buf: &mut Vec<u8>, g: &Gap) {
    buf.extend_from_slice(b"# ");
    push_u64(buf, g.events);
    buf.extend_from_slice(if g.events == 1 {
        b" event not written here: "
    } else {
        b" events not written here: "
    });
    buf.extend_from_slice(g.error.as_bytes());
    buf.extend_from_slice(b" from ");
    push_u64(buf, g.from_ts);
    buf.extend_from_slice(b" to ");
    push_u64(buf, g.to_ts);
    buf.push(b'\n');
}

/// `{"gap":{"events":50031,"error":"ENOSPC","from_ts":..,"to_ts":..}}`:
/// no event has a `gap` key, nor lacks `ts`.
pub fn gap_json(buf: &mut Vec<u8>, g: &Gap) {
    buf.extend_from_slice(b"{\"gap\":{\"events\":");
    push_u64(buf, g.events);
    buf.extend_from_slice(b",\"error\":\"");
    push_escaped(buf, g.error.as_bytes(), true);
    buf.extend_from_slice(b"\",\"from_ts\":");
    push_u64(buf, g.from_ts);
    buf.extend_from_slice(b",\"to_ts\":");
    push_u64(buf, g.to_ts);
    buf.extend_from_slice(b"}}\n");
}

/// Text a user gave (a path, say) made safe for one line on a terminal:
/// control characters and bytes that are not UTF-8 become `\xNN`; the
/// rest, spaces included, stays as it is.
pub fn printable(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() {
                let mut b = [0u8; 4];
                for byte in c.encode_utf8(&mut b).bytes() {
                    out.push_str(&format!("\\x{byte:02x}"));
                }
            } else {
                out.push(c);
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out
}

/// A path as the user's messages show it: one line, whatever its bytes.
pub fn path(p: &std::path::Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    printable(p.as_os_str().as_bytes())
}

#[cfg(test)]
mod gap_tests {
    use super::*;

    #[test]
    fn a_gap_is_one_comment_line_or_one_json_object_that_is_no_event() {
        let g = Gap {
            events: 50031,
            error: "ENOSPC".into(),
            from_ts: 653028640151,
            to_ts: 653029640151,
        };
        let mut buf = Vec::new();
        gap_comment(&mut buf, &g);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "# 50031 events not written here: ENOSPC from 653028640151 to 653029640151\n"
        );
        let mut buf = Vec::new();
        gap_comment(
            &mut buf,
            &Gap {
                events: 1,
                ..g.clone()
            },
        );
        assert!(buf.starts_with(b"# 1 event not written here: ENOSPC"));
        let mut buf = Vec::new();
        gap_json(&mut buf, &g);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "{\"gap\":{\"events\":50031,\"error\":\"ENOSPC\",\"from_ts\":653028640151,\
             \"to_ts\":653029640151}}\n"
        );
    }
}

#[cfg(test)]
mod printable_tests {
    use super::printable;

    #[test]
    fn control_bytes_and_invalid_utf8_are_escaped() {
        assert_eq!(printable(b"my log.txt"), "my log.txt");
        assert_eq!(printable("é/ü".as_bytes()), "é/ü");
        assert_eq!(printable(b"a\nb\x1b[0m\xff"), "a\\x0ab\\x1b[0m\\xff");
    }

    #[test]
    fn json_strings_are_exact_and_one_line() {
        let json = |s: &str| {
            let mut b = Vec::new();
            super::push_json_string(&mut b, s);
            String::from_utf8(b).unwrap()
        };
        assert_eq!(json("plain name"), "\"plain name\"");
        assert_eq!(json("a\"b\\c\nd\te"), r#""a\"b\\c\nd\te""#);
        assert_eq!(
            json("\x1b[0m\x7f\u{9b}é\u{2028}"),
            r#""\u001b[0m\u007f\u009bé\u2028""#
        );
    }
}

#[cfg(test)]
mod exit_tests {
    use super::*;
    use crate::app::abi::{EVENT_COMPLETED, EVENT_UNFINISHED};

    fn event(flags: u16, ret: i64) -> Event {
        let mut comm = [0u8; 16];
        comm[..2].copy_from_slice(b"sh");
        Event {
            ts_ns: 10,
            count: 4,
            fd: 5,
            pid: 7,
            tgid: 7,
            cpu: 1,
            syscall: 1,
            flags,
            comm,
            ret,
            lat_ns: 1500,
            ..Event::default()
        }
    }

    fn text(f: fn(&mut Vec<u8>, &Event), e: &Event) -> String {
        let mut buf = Vec::new();
        f(&mut buf, e);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn results_are_numbers_or_errno_names_then_the_latency() {
        let tail = |ret| {
            let line = text(log, &event(EVENT_COMPLETED, ret));
            line.split_once("count=4 ").unwrap().1.to_string()
        };
        assert_eq!(tail(4), "ret=4 lat_ns=1500\n");
        assert_eq!(tail(0), "ret=0 lat_ns=1500\n");
        assert_eq!(tail(-9), "ret=EBADF lat_ns=1500\n");
        assert_eq!(tail(-512), "ret=ERESTARTSYS lat_ns=1500\n");
        // No name: the number.
        assert_eq!(tail(-4000), "ret=-4000 lat_ns=1500\n");
        assert_eq!(
            text(json, &event(EVENT_COMPLETED, -11)),
            "{\"ts\":10,\"cpu\":1,\"pid\":7,\"tgid\":7,\"uid\":0,\"comm\":\"sh\",\
             \"syscall\":\"write\",\"fd\":5,\"count\":4,\"ret\":-11,\"errno\":\"EAGAIN\",\
             \"lat_ns\":1500}\n"
        );
    }

    #[test]
    fn an_unfinished_call_says_so_and_an_entry_has_no_result() {
        let line = text(log, &event(EVENT_UNFINISHED, 0));
        assert!(
            line.ends_with(" count=4 ret=unfinished lat_ns=1500\n"),
            "{line}"
        );
        let line = text(json, &event(EVENT_UNFINISHED, 0));
        assert!(
            line.ends_with(",\"count\":4,\"ret\":null,\"unfinished\":true,\"lat_ns\":1500}\n"),
            "{line}"
        );
        let line = text(log, &event(0, 0));
        assert!(line.ends_with(" count=4\n"), "{line}");
    }
}
