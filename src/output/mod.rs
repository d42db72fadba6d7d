//! The output side: one thread that formats event batches into the console
//! and log buffers and writes them in large chunks, at least every 200 ms.

pub mod format;
pub mod log_file;
mod writer;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

pub use writer::{LineWriter, PATIENCE, Progress, WriterReport, say};

use crate::abi::Event;

pub const FLUSH_INTERVAL: Duration = Duration::from_millis(200);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsoleFormat {
    Hello,
    Json,
}

pub struct Outputs {
    pub console: Option<(ConsoleFormat, LineWriter)>,
    pub log: Option<LineWriter>,
    pub verbose: bool,
}

#[derive(Debug, Default)]
pub struct OutputReport {
    /// Events taken from the channel and formatted.
    pub processed: u64,
    pub console: Option<WriterReport>,
    pub log: Option<WriterReport>,
}

impl Outputs {
    fn write_event(&mut self, event: &Event) {
        if let Some((format, console)) = &mut self.console
            && !console.is_closed()
        {
            match format {
                ConsoleFormat::Hello => format::hello(console.buffer(), event, self.verbose),
                ConsoleFormat::Json => format::json(console.buffer(), event),
            }
            console.line_done();
        }
        if let Some(log) = &mut self.log {
            format::log(log.buffer(), event);
            log.line_done();
        }
    }

    fn flush(&mut self) {
        if let Some((_, console)) = &mut self.console {
            console.flush();
        }
        if let Some(log) = &mut self.log {
            log.flush();
        }
    }

    fn console_closed(&self) -> bool {
        self.console.as_ref().is_some_and(|(_, c)| c.is_closed())
    }
}

/// Runs until the channel is closed and empty. Sets `console_closed` when
/// the reader of stdout has gone away (`probe | head`), so the monitor can
/// stop; counts events taken in `processed`, which the monitor reads even
/// if this thread never returns (blocked in a write to a socket that does
/// not read, say; a pipe or a terminal cannot block it, see writer.rs).
pub fn run(
    mut outputs: Outputs,
    batches: Receiver<Vec<Event>>,
    spare: Sender<Vec<Event>>,
    console_closed: Arc<AtomicBool>,
    processed: Arc<AtomicU64>,
) -> OutputReport {
    let mut next_flush = Instant::now() + FLUSH_INTERVAL;
    loop {
        let wait = next_flush.saturating_duration_since(Instant::now());
        match batches.recv_timeout(wait) {
            Ok(mut batch) => {
                for event in &batch {
                    // Counted first: should this thread block for good in
                    // a write, every event it took is counted received,
                    // and every line of it not known written, failed.
                    processed.fetch_add(1, Ordering::Relaxed);
                    outputs.write_event(event);
                }
                batch.clear();
                let _ = spare.try_send(batch);
                if Instant::now() >= next_flush {
                    outputs.flush();
                    next_flush = Instant::now() + FLUSH_INTERVAL;
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                outputs.flush();
                next_flush = Instant::now() + FLUSH_INTERVAL;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if outputs.console_closed() {
            console_closed.store(true, Ordering::Relaxed);
        }
    }
    outputs.flush();
    if outputs.console_closed() {
        console_closed.store(true, Ordering::Relaxed);
    }
    OutputReport {
        processed: processed.load(Ordering::Relaxed),
        console: outputs.console.map(|(_, c)| c.report()),
        log: outputs.log.map(|l| l.report()),
    }
}
