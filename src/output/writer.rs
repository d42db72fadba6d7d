//! A line buffer over a file descriptor that never loses a line without
//! counting it: a failed write is reported once on stderr and every line in
//! it is counted as not written; the monitor goes on.

use std::fs::File;
use std::io::{self, Write};

/// Flush when this much is buffered, even before the timer.
const CHUNK: usize = 256 << 10;

pub struct LineWriter {
    name: String,
    file: File,
    buf: Vec<u8>,
    lines_buffered: u64,
    written: u64,
    failed: u64,
    first_error: Option<io::Error>,
    /// The reader went away (EPIPE): nothing more will be written.
    closed: bool,
}

#[derive(Debug)]
pub struct WriterReport {
    pub name: String,
    pub written: u64,
    pub failed: u64,
    pub first_error: Option<io::Error>,
    pub closed: bool,
}

impl LineWriter {
    pub fn new(name: impl Into<String>, file: File) -> LineWriter {
        LineWriter {
            name: name.into(),
            file,
            buf: Vec::with_capacity(CHUNK + 4096),
            lines_buffered: 0,
            written: 0,
            failed: 0,
            first_error: None,
            closed: false,
        }
    }

    /// Where the next line is formatted.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// The line just formatted into `buffer()` is complete.
    pub fn line_done(&mut self) {
        self.lines_buffered += 1;
        if self.buf.len() >= CHUNK {
            self.flush();
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    pub fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let mut done = 0;
        let result = loop {
            if done == self.buf.len() {
                break Ok(());
            }
            match self.file.write(&self.buf[done..]) {
                Ok(0) => break Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        let complete = self.buf[..done].iter().filter(|&&b| b == b'\n').count() as u64;
        self.written += complete;
        if let Err(e) = result {
            self.failed += self.lines_buffered - complete;
            if e.kind() == io::ErrorKind::BrokenPipe {
                self.closed = true;
            } else if self.first_error.is_none() {
                eprintln!(
                    "probe: cannot write to {}: {e}; monitoring goes on, lost lines are counted",
                    self.name
                );
            }
            self.first_error.get_or_insert(e);
        }
        self.buf.clear();
        self.lines_buffered = 0;
    }

    pub fn report(mut self) -> WriterReport {
        self.flush();
        WriterReport {
            name: std::mem::take(&mut self.name),
            written: self.written,
            failed: self.failed,
            first_error: self.first_error.take(),
            closed: self.closed,
        }
    }
}
