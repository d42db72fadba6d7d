//! A line buffer over a file descriptor that never loses a line without
//! counting it. Each output has its own, on its own thread, so each goes at
//! its own pace. Two kinds of file:
//!
//! - a **regular file** is written in large chunks, and only the disk can
//!   slow it down. A failed write (disk full) is said on stderr and every
//!   line in it counted as failed; the monitor goes on. A write cut short
//!   is trimmed back to its last whole line, so the file never holds half
//!   a line that a later write would glue to the next one. The lines that
//!   failed make a gap, and the first write that works again starts with a
//!   line marking it (`# N events not written here: ...`), so the file
//!   shows where lines are missing. The log may also be rotated or
//!   reopened between two writes (log_file.rs's `Lifecycle`);
//! - a **stream** (a pipe, a terminal, a socket) may be read slowly or not
//!   at all. It is written without blocking, through a non-blocking open
//!   file description of its own (a second open of /proc/self/fd/N, so the
//!   flag changes nothing for whoever shares ours; a socket is written
//!   with MSG_DONTWAIT instead), in whole lines of at most `PIPE_BUF` bytes
//!   (atomic on a pipe: all or nothing). With no room it waits, in short
//!   slices, for as long as the monitor runs: meanwhile the queue skips
//!   runs of events for it (queue.rs), so waiting costs the other outputs
//!   nothing. Once the monitor is finishing, a stream that makes no room
//!   for `PATIENCE` gives up what it holds, counted as skipped; so does
//!   every stream at a cutoff. A line a terminal took only half of is
//!   finished first at the next flush. Where no non-blocking write is
//!   possible, poll says when there is room before each write; a blocking
//!   write may then still hang on a reader that takes part of a chunk.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::Control;
use super::errno;
use super::format::Gap;
use super::log_file::Lifecycle;

/// A regular file is written when this much is buffered.
const FILE_CHUNK: usize = 256 << 10;
/// A stream is written in smaller pieces: what it shows stays fresh.
const STREAM_CHUNK: usize = 64 << 10;
/// How long a finishing stream, or a line for stderr, waits for room.
pub const PATIENCE: Duration = Duration::from_millis(100);
/// Writes to a pipe of at most this many bytes are atomic.
const PIPE_BUF: usize = libc::PIPE_BUF;

/// Counts the monitor may read while the writer runs (or is stuck).
#[derive(Debug, Default)]
pub struct Progress {
    /// Lines known to be written in full.
    pub written: AtomicU64,
    /// Lines not written because of an error (or a reader gone).
    pub failed: AtomicU64,
    /// Lines a stream did not show: too slow.
    pub skipped: AtomicU64,
}

pub struct LineWriter {
    name: String,
    file: File,
    /// Not a regular file: whole lines, never waiting long for room.
    stream: bool,
    /// `file` is our own O_NONBLOCK description of it, or a socket
    /// written with MSG_DONTWAIT: a write never blocks.
    nonblocking: bool,
    socket: bool,
    chunk: usize,
    buf: Vec<u8>,
    lines_buffered: u64,
    progress: Arc<Progress>,
    first_error: Option<io::Error>,
    /// The reader went away (EPIPE): nothing more will be written.
    closed: bool,
    /// A finishing stream already gave up once: it waits no more.
    gave_up: bool,
    control: Arc<Control>,
    /// A regular file: the `ts` of each line in `buf`, for a gap's range.
    line_ts: Vec<u64>,
    /// Lines a write error kept out of the file, not marked in it yet.
    gap: Option<Gap>,
    /// How this output's format marks a gap.
    gap_line: fn(&mut Vec<u8>, &Gap),
    /// The log: how to rotate and reopen it.
    lifecycle: Option<Lifecycle>,
    /// After a rotation failed: the size at which it is tried again.
    rotate_retry_at: u64,
    /// The log's size after our last write: a smaller one later means it
    /// was truncated under us (copytruncate), and gets the header again.
    known_end: u64,
}

/// The name of the error a write failed with (`ENOSPC`).
fn error_name(e: &io::Error) -> String {
    e.raw_os_error()
        .and_then(|n| errno::name(n as u64))
        .map_or_else(|| format!("{:?}", e.kind()), str::to_string)
}

fn too_slow() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "too slow")
}

/// Waits for room to write on `fd`, in slices of at most 20 ms, while
/// `keep_waiting` says so. True when a write will not block (or will fail
/// at once: POLLERR and POLLHUP also end the wait).
fn wait_writable(fd: libc::c_int, keep_waiting: impl Fn() -> bool) -> bool {
    loop {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, 20) };
        if n > 0 {
            return true;
        }
        if n < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            // poll itself failed: let the write say why.
            return true;
        }
        if !keep_waiting() {
            return false;
        }
    }
}

/// Set once a stderr line found no room: later ones do not wait.
static STDERR_BLOCKED: AtomicBool = AtomicBool::new(false);

/// Writes `probe: TEXT` and a newline to stderr as one write, never
/// failing and never blocking for long: stderr may be the same pipe as a
/// stdout nobody reads (`probe 2>&1 | sleep 30`) or one whose reader is
/// gone (`probe 2>&1 | head`), where `eprintln!` would hang or panic. A
/// line that finds no room within `PATIENCE` is dropped, and so are the
/// lines after it that find none at once.
pub fn say(text: &str) {
    let line = format!("probe: {text}\n");
    let patience = if STDERR_BLOCKED.load(Ordering::Relaxed) {
        Duration::ZERO
    } else {
        PATIENCE
    };
    // Our own non-blocking description of a pipe or terminal on stderr.
    static TWIN: OnceLock<Option<File>> = OnceLock::new();
    let twin = TWIN.get_or_init(|| {
        // SAFETY: fd 2 is open for the whole run (std makes sure of it at
        // start); ManuallyDrop keeps this File from closing it.
        let stderr = std::mem::ManuallyDrop::new(unsafe {
            <File as std::os::fd::FromRawFd>::from_raw_fd(libc::STDERR_FILENO)
        });
        (!is_regular(&stderr))
            .then(|| nonblocking_twin(&stderr))
            .flatten()
    });
    let fd = twin.as_ref().map_or(libc::STDERR_FILENO, |f| f.as_raw_fd());
    let deadline = Instant::now() + patience;
    let mut done = 0;
    while done < line.len() {
        if twin.is_none() && !wait_writable(fd, || Instant::now() < deadline) {
            STDERR_BLOCKED.store(true, Ordering::Relaxed);
            return;
        }
        // SAFETY: writing from a live buffer to an open fd.
        let n = unsafe { libc::write(fd, line[done..].as_ptr() as *const _, line.len() - done) };
        if n > 0 {
            done += n as usize;
            continue;
        }
        let e = io::Error::last_os_error();
        if n == 0
            || !matches!(
                e.kind(),
                io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
            )
        {
            return;
        }
        if e.kind() == io::ErrorKind::WouldBlock && !wait_writable(fd, || Instant::now() < deadline)
        {
            STDERR_BLOCKED.store(true, Ordering::Relaxed);
            return;
        }
    }
    STDERR_BLOCKED.store(false, Ordering::Relaxed);
}

/// The end of the next write starting at `from`: whole lines of at most
/// `PIPE_BUF` bytes (one longer line alone, if there is one).
fn chunk_end(buf: &[u8], from: usize) -> usize {
    let limit = (from + PIPE_BUF).min(buf.len());
    if let Some(i) = buf[from..limit].iter().rposition(|&b| b == b'\n') {
        return from + i + 1;
    }
    match buf[limit..].iter().position(|&b| b == b'\n') {
        Some(i) => limit + i + 1,
        None => buf.len(),
    }
}

/// A second open file description of the pipe or terminal behind `file`,
/// with O_NONBLOCK, if the system allows one (not for a socket, nor a
/// FIFO with no reader left).
fn nonblocking_twin(file: &File) -> Option<File> {
    let meta = file.metadata().ok()?;
    let twin = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .ok()?;
    let same = twin
        .metadata()
        .is_ok_and(|t| (t.dev(), t.ino(), t.rdev()) == (meta.dev(), meta.ino(), meta.rdev()));
    same.then_some(twin)
}

fn is_regular(file: &File) -> bool {
    file.metadata().is_ok_and(|m| m.file_type().is_file())
}

/// A pipe, a socket or a terminal: something a reader drains at its own
/// pace. Anything else (a regular file, /dev/null) takes what it is given.
fn is_stream(file: &File) -> bool {
    use std::os::unix::fs::FileTypeExt;
    let kind = file.metadata().map(|m| m.file_type());
    // SAFETY: isatty only inspects the fd.
    let tty = unsafe { libc::isatty(file.as_raw_fd()) } == 1;
    tty || kind.is_ok_and(|k| k.is_fifo() || k.is_socket())
}

impl LineWriter {
    pub fn new(name: impl Into<String>, file: File, control: Arc<Control>) -> LineWriter {
        let stream = is_stream(&file);
        let socket = file.metadata().is_ok_and(|m| {
            use std::os::unix::fs::FileTypeExt;
            m.file_type().is_socket()
        });
        let (file, nonblocking) = match (stream && !socket)
            .then(|| nonblocking_twin(&file))
            .flatten()
        {
            Some(twin) => (twin, true),
            None => (file, socket),
        };
        let chunk = if stream { STREAM_CHUNK } else { FILE_CHUNK };
        LineWriter {
            name: name.into(),
            file,
            stream,
            nonblocking,
            socket,
            chunk,
            buf: Vec::with_capacity(chunk + 4096),
            lines_buffered: 0,
            progress: Arc::default(),
            first_error: None,
            closed: false,
            gave_up: false,
            control,
            line_ts: Vec::new(),
            gap: None,
            gap_line: super::format::gap_comment,
            lifecycle: None,
            rotate_retry_at: 0,
            known_end: 0,
        }
    }

    /// How a gap is marked in this output (`gap_comment` by default).
    pub fn set_gap_line(&mut self, gap_line: fn(&mut Vec<u8>, &Gap)) {
        self.gap_line = gap_line;
    }

    /// The log: rotated by size, reopened when asked (`reopen`).
    pub fn set_lifecycle(&mut self, lifecycle: Lifecycle) {
        self.lifecycle = Some(lifecycle);
        self.known_end = self.file_end();
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A pipe, a terminal or a socket, which may fall behind and skip.
    pub fn is_stream(&self) -> bool {
        self.stream
    }

    /// Counts the monitor can read at any time.
    pub fn progress(&self) -> Arc<Progress> {
        self.progress.clone()
    }

    /// Where the next line is formatted.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// The line just formatted into `buffer()`, of the event at `ts`, is
    /// complete.
    #[inline]
    pub fn line_done(&mut self, ts: u64) {
        if !self.stream {
            self.line_ts.push(ts);
        }
        self.lines_buffered += 1;
        if self.buf.len() >= self.chunk {
            self.flush();
        }
    }

    /// Lines this output will not write, counted as failed (the reader
    /// went away, say) or skipped (too slow).
    pub fn count_unwritten(&self, lines: u64, skipped: bool) {
        let counter = if skipped {
            &self.progress.skipped
        } else {
            &self.progress.failed
        };
        counter.fetch_add(lines, Ordering::Relaxed);
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Drops the lines buffered and not yet written (a cutoff: stop now);
    /// returns how many, which the caller has not handed on after all.
    pub fn discard(&mut self) -> u64 {
        let lines = self.lines_buffered;
        self.buf.clear();
        self.line_ts.clear();
        self.lines_buffered = 0;
        lines
    }

    /// A finishing stream that already gave up: nothing more will be
    /// written, so lines need not even be formatted.
    pub fn gave_up(&self) -> bool {
        self.gave_up
    }

    /// True while a stream with no room should keep waiting for some.
    fn keep_waiting(&self, stalled_since: Instant) -> bool {
        let c = &self.control;
        !c.cutoff.load(Ordering::Relaxed)
            && !(c.finishing.load(Ordering::Relaxed)
                && (self.gave_up || stalled_since.elapsed() >= PATIENCE))
    }

    /// Writes `buf`; returns how far it got and why it stopped.
    fn write_out(&mut self) -> (usize, io::Result<()>) {
        let fd = self.file.as_raw_fd();
        let mut stalled_since = Instant::now();
        let mut done = 0;
        while done < self.buf.len() {
            let end = if self.stream {
                if !self.nonblocking && !wait_writable(fd, || self.keep_waiting(stalled_since)) {
                    return (done, Err(too_slow()));
                }
                chunk_end(&self.buf, done)
            } else {
                self.buf.len()
            };
            let chunk = &self.buf[done..end];
            let written = if self.socket {
                // SAFETY: sending from a live buffer on our own fd.
                let n = unsafe {
                    libc::send(
                        fd,
                        chunk.as_ptr() as *const _,
                        chunk.len(),
                        libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                    )
                };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            } else {
                (&self.file).write(chunk)
            };
            match written {
                Ok(0) => return (done, Err(io::Error::from(io::ErrorKind::WriteZero))),
                Ok(n) => {
                    done += n;
                    stalled_since = Instant::now();
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !wait_writable(fd, || self.keep_waiting(stalled_since)) {
                        return (done, Err(too_slow()));
                    }
                }
                Err(e) => return (done, Err(e)),
            }
        }
        (done, Ok(()))
    }

    /// The bytes after the last line end of the first `done` of `buf`.
    fn partial_tail(&self, done: usize) -> usize {
        self.buf[..done]
            .iter()
            .rev()
            .position(|&b| b == b'\n')
            .unwrap_or(done)
    }

    /// A regular file whose write stopped where it must not end (inside a
    /// line, or after a gap's mark with no line after it): cut its last
    /// `bytes` off again, so the next write starts on a line of its own.
    fn cut_back(&self, bytes: usize) {
        if self.stream || bytes == 0 {
            return;
        }
        let fd = self.file.as_raw_fd();
        // SAFETY: plain syscalls on our own fd.
        unsafe {
            let end = libc::lseek(fd, 0, libc::SEEK_CUR);
            if end >= bytes as libc::off_t {
                let cut = end - bytes as libc::off_t;
                libc::ftruncate(fd, cut);
                // Without O_APPEND (stdout redirected with `>`) the next
                // write goes where the offset is: back to the new end, or
                // it would leave a hole of zeros.
                libc::lseek(fd, cut, libc::SEEK_SET);
            }
        }
    }

    /// The mark of the gap not yet in the file, as this output writes it.
    fn gap_mark(&self) -> Vec<u8> {
        let mut mark = Vec::new();
        if let Some(gap) = &self.gap {
            (self.gap_line)(&mut mark, gap);
        }
        mark
    }

    /// What goes before the lines of the next write: the header again if
    /// someone truncated the log under us (logrotate's `copytruncate`),
    /// then the mark of a gap not marked yet (true: there is one). With
    /// `--log-max`, a write that would take the log past it goes to a new
    /// file instead (which starts with its header).
    fn lead(&mut self) -> (Vec<u8>, bool) {
        let mark = self.gap_mark();
        let marked = !mark.is_empty();
        let Some(lifecycle) = &self.lifecycle else {
            return (mark, marked);
        };
        let Ok(size) = self.file.metadata().map(|m| m.len()) else {
            return (mark, marked);
        };
        let mut lead = Vec::new();
        if size < self.known_end {
            lead.extend_from_slice(lifecycle.header.as_bytes());
        }
        lead.extend_from_slice(&mark);
        let after = size + (self.buf.len() + lead.len()) as u64;
        let due = lifecycle.max.is_some_and(|max| after > max)
            && size > 0
            && size >= self.rotate_retry_at;
        // A new file starts with its header: only the mark goes first.
        if due && self.rotate(size) {
            return (mark, marked);
        }
        (lead, marked)
    }

    /// Rotates the log (of `size` bytes now); true if a new file is open.
    /// A rotation that fails is said, and tried again once the file has
    /// grown by `--log-max` again; the lines go to the file still open.
    fn rotate(&mut self, size: u64) -> bool {
        let Some(lifecycle) = &self.lifecycle else {
            return false;
        };
        match lifecycle.rotate(&self.file) {
            Ok(file) => {
                self.file = file;
                self.rotate_retry_at = 0;
                self.known_end = self.file_end();
                true
            }
            Err(e) => {
                say(&format!(
                    "{e:#}; still writing to {} as it is, and trying again once it has grown by \
                     --log-max",
                    self.name
                ));
                self.rotate_retry_at = size + lifecycle.max.unwrap_or(0);
                false
            }
        }
    }

    /// The size of the file open now (0 if it cannot be known).
    fn file_end(&self) -> u64 {
        // SAFETY: lseek on our own fd; with O_APPEND the offset is only
        // where the next write would go anyway.
        let end = unsafe { libc::lseek(self.file.as_raw_fd(), 0, libc::SEEK_END) };
        end.max(0) as u64
    }

    /// SIGUSR1: what is buffered goes to the file open now, then the log
    /// is reopened at its path (after an external rotation moved it). If
    /// that fails, said, the file open now is kept.
    pub fn reopen(&mut self) {
        if self.lifecycle.is_none() {
            return;
        }
        self.flush();
        let Some(lifecycle) = &self.lifecycle else {
            return;
        };
        match lifecycle.reopen() {
            Ok(file) => {
                self.file = file;
                self.known_end = self.file_end();
            }
            Err(e) => say(&format!(
                "{e:#} (SIGUSR1); still writing to the file open until now"
            )),
        }
    }

    pub fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        if self.stream {
            self.flush_stream();
        } else {
            self.flush_file();
        }
    }

    /// A regular file: a gap not marked yet is marked first, in the same
    /// write as the lines after it. The mark counts as written only with
    /// at least one whole line after it (else it is cut off again and the
    /// gap goes on), so a disk that is still full never gets a mark where
    /// no line follows.
    fn flush_file(&mut self) {
        let (lead, marked) = self.lead();
        let lead_len = lead.len();
        if lead_len > 0 {
            self.buf.splice(0..0, lead);
        }
        let (done, result) = self.write_out();
        let lines_out = if done > lead_len {
            self.buf[lead_len..done]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
        } else {
            0
        };
        if result.is_err() {
            let cut = if lines_out == 0 {
                done
            } else {
                self.partial_tail(done)
            };
            self.cut_back(cut);
        }
        // (A lead cut off again with the rest stays due: the header after
        // a truncation is written by the next write that works.)
        if self.lifecycle.is_some() && (result.is_ok() || lines_out > 0) {
            self.known_end = self.file_end();
        }
        self.progress
            .written
            .fetch_add(lines_out as u64, Ordering::Relaxed);
        if marked && (result.is_ok() || lines_out > 0) {
            self.gap_marked();
        }
        if let Err(e) = result {
            let unwritten = self.lines_buffered - lines_out as u64;
            self.count_unwritten(unwritten, false);
            self.extend_gap(lines_out, e);
        }
        self.buf.clear();
        self.line_ts.clear();
        self.lines_buffered = 0;
    }

    /// The gap is marked in the file: said, and closed.
    fn gap_marked(&mut self) {
        if let Some(gap) = self.gap.take() {
            say(&format!(
                "{}: written again after {} events not written ({}); the gap is marked in it",
                self.name, gap.events, gap.error
            ));
        }
    }

    /// The lines of `buf` from line `from` on were not written because of
    /// `e`: they open a gap, or extend the one open. A new gap is said.
    fn extend_gap(&mut self, from: usize, e: io::Error) {
        let (Some(&first), Some(&last)) = (self.line_ts.get(from), self.line_ts.last()) else {
            return;
        };
        let events = (self.line_ts.len() - from) as u64;
        match &mut self.gap {
            Some(gap) => {
                gap.events += events;
                gap.to_ts = last;
            }
            None => {
                say(&format!(
                    "cannot write to {}: {e}; monitoring goes on, lines not written are counted \
                     and the gap is marked in the file once it can be written again",
                    self.name
                ));
                self.gap = Some(Gap {
                    events,
                    error: error_name(&e),
                    from_ts: first,
                    to_ts: last,
                });
            }
        }
        self.first_error.get_or_insert(e);
    }

    /// At the end: a gap still open is marked if the file takes its line
    /// now (the disk has room again, and no event came after it).
    fn mark_last_gap(&mut self) {
        if self.stream || self.gap.is_none() {
            return;
        }
        self.buf = self.gap_mark();
        let (done, result) = self.write_out();
        if result.is_ok() {
            self.gap_marked();
        } else {
            self.cut_back(done);
        }
        self.buf.clear();
    }

    /// A stream: whole lines, given up on when too slow.
    fn flush_stream(&mut self) {
        let (done, result) = if self.closed {
            (0, Err(io::Error::from(io::ErrorKind::BrokenPipe)))
        } else {
            self.write_out()
        };
        let complete = self.buf[..done].iter().filter(|&&b| b == b'\n').count() as u64;
        // A terminal took half a line: the rest must go out before any
        // other line, or both would be garbled. It stays buffered.
        let half_out = done > 0
            && self.buf[done - 1] != b'\n'
            && result
                .as_ref()
                .is_err_and(|e| e.kind() != io::ErrorKind::BrokenPipe);
        let unwritten = self.lines_buffered - complete - half_out as u64;
        self.progress.written.fetch_add(complete, Ordering::Relaxed);
        if half_out {
            let rest = self.buf[done..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(self.buf.len(), |i| done + i + 1);
            self.buf.truncate(rest);
            self.buf.drain(..done);
        } else {
            self.buf.clear();
        }
        self.lines_buffered = half_out as u64;
        match result {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                self.gave_up = true;
                self.count_unwritten(unwritten, true);
            }
            Err(e) => {
                self.count_unwritten(unwritten, false);
                if e.kind() == io::ErrorKind::BrokenPipe {
                    self.closed = true;
                } else if self.first_error.is_none() {
                    say(&format!(
                        "cannot write to {}: {e}; monitoring goes on, lines not written are counted",
                        self.name
                    ));
                }
                if !self.closed {
                    self.first_error.get_or_insert(e);
                }
            }
        }
    }

    /// Flushes, and counts what could still not be written.
    pub fn finish(mut self) -> WriterReport {
        self.flush();
        self.mark_last_gap();
        // Half a line that never got its end out.
        self.count_unwritten(self.lines_buffered, true);
        WriterReport {
            name: std::mem::take(&mut self.name),
            stream: self.stream,
            written: self.progress.written.load(Ordering::Relaxed),
            failed: self.progress.failed.load(Ordering::Relaxed),
            skipped: self.progress.skipped.load(Ordering::Relaxed),
            first_error: self.first_error.take(),
            closed: self.closed,
        }
    }
}

/// What one output did with the lines handed to it.
#[derive(Debug)]
pub struct WriterReport {
    pub name: String,
    pub stream: bool,
    pub written: u64,
    pub failed: u64,
    pub skipped: u64,
    pub first_error: Option<io::Error>,
    /// The reader went away (`probe | head`): not an error.
    pub closed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_end_on_line_ends() {
        let line = b"hello sys_write was called\n";
        let buf: Vec<u8> = line.repeat(1000);
        let mut from = 0;
        while from < buf.len() {
            let end = chunk_end(&buf, from);
            assert!(end - from <= PIPE_BUF);
            assert_eq!(buf[end - 1], b'\n');
            assert_eq!((end - from) % line.len(), 0);
            from = end;
        }
        let long = [vec![b'x'; PIPE_BUF * 2], b"\nab\n".to_vec()].concat();
        assert_eq!(chunk_end(&long, 0), PIPE_BUF * 2 + 1);
        assert_eq!(chunk_end(&long, PIPE_BUF * 2 + 1), long.len());
        assert_eq!(chunk_end(b"no end", 0), 6);
    }
}
