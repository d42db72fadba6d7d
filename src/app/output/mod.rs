//! The outputs: each one (the log, stdout) is a thread of its own that
//! takes segments of events from the queue, formats them into its line
//! buffer and writes it: in large chunks while events keep coming, and
//! as soon as none is waiting, so a quiet system's events are not held.

pub mod errno;
pub mod format;
pub mod log_file;
mod writer;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crossbeam_channel::{Receiver, never, select};

pub use writer::{LineWriter, PATIENCE, Progress, WriterReport, say};

use crate::app::abi::Event;
use crate::queue::Segment;

/// How much the output threads yield to the ring reader (nice values
/// above the reader's).
const OUTPUT_NICE: i32 = 10;

/// What the monitor tells the output threads while they run.
#[derive(Debug, Default)]
pub struct Control {
    /// The rings are drained and the queue closed: a stream that makes no
    /// room for `PATIENCE` gives up the rest.
    pub finishing: AtomicBool,
    /// Stop now: take nothing more; the rest is counted by the monitor.
    pub cutoff: AtomicBool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `syscalls.log`: every field, key=value.
    Log,
    /// `hello sys_read was called`, with details when verbose.
    Hello { verbose: bool },
    /// One JSON object per event.
    Json,
}

impl Format {
    #[inline]
    fn write(self, buf: &mut Vec<u8>, event: &Event) {
        match self {
            Format::Log => format::log(buf, event),
            Format::Hello { verbose } => format::hello(buf, event, verbose),
            Format::Json => format::json(buf, event),
        }
    }

    /// How a gap (lines a write error kept out of a file) is marked.
    fn gap_line(self) -> fn(&mut Vec<u8>, &format::Gap) {
        match self {
            Format::Json => format::gap_json,
            Format::Log | Format::Hello { .. } => format::gap_comment,
        }
    }
}

/// One output: how it formats, where it writes.
pub struct Output {
    pub format: Format,
    pub writer: LineWriter,
    /// The log: a message here reopens it (SIGUSR1).
    pub reopen: Option<Receiver<()>>,
}

/// What an output thread did, for the monitor's accounting.
#[derive(Debug)]
pub struct OutputReport {
    pub writer: WriterReport,
    /// Every event before this sequence number was written, skipped or
    /// failed here (`written + skipped + failed == position`).
    pub position: u64,
    /// It took everything the queue sent until the queue closed (false:
    /// it was cut off, and stopped at `position`).
    pub finished: bool,
}

/// The next segment, None once the queue is closed and empty. A reopen
/// asked meanwhile is done first, at once even when no event comes
/// (logrotate may compress the old file right after its `postrotate`).
fn next_segment(
    segments: &Receiver<Segment<Event>>,
    reopen: &mut Receiver<()>,
    writer: &mut LineWriter,
) -> Option<Segment<Event>> {
    loop {
        select! {
            recv(segments) -> segment => return segment.ok(),
            recv(reopen) -> asked => match asked {
                Ok(()) => writer.reopen(),
                Err(_) => *reopen = never(),
            },
        }
    }
}

/// Runs one output until its queue is closed and empty, or `control`
/// says cut off. `position` is kept up to date for a monitor that has to
/// stop without this thread (blocked in a write to a hung disk, say).
/// Sets `closed` when the reader of a stream has gone away (`probe |
/// head`), so the monitor can stop.
pub fn run(
    output: Output,
    segments: Receiver<Segment<Event>>,
    control: Arc<Control>,
    position: Arc<AtomicU64>,
    closed: Arc<AtomicBool>,
) -> OutputReport {
    let Output {
        format,
        mut writer,
        reopen,
    } = output;
    writer.set_gap_line(format.gap_line());
    let mut reopen = reopen.unwrap_or_else(never);
    // The reader thread is the one that loses events when it waits for a
    // CPU (the rings fill); an output that waits only uses more of the
    // queue's budget. So on a busy machine the outputs yield to it.
    crate::sys::renice_this_thread(OUTPUT_NICE);
    let mut at = 0u64;
    let mut finished = true;
    'segments: while let Some(segment) = next_segment(&segments, &mut reopen, &mut writer) {
        if control.cutoff.load(Ordering::Relaxed) {
            at -= writer.discard();
            position.store(at, Ordering::Relaxed);
            finished = false;
            break;
        }
        // A gap before this segment: a run the queue skipped for us.
        writer.count_unwritten(segment.seq() - at, true);
        at = segment.seq();
        let events = segment.items();
        if writer.is_closed() {
            writer.count_unwritten(events.len() as u64, false);
        } else if writer.gave_up() {
            writer.count_unwritten(events.len() as u64, true);
        } else {
            for (i, event) in events.iter().enumerate() {
                // A cutoff is looked for every so often, not per event.
                if i % 1024 == 1023 && control.cutoff.load(Ordering::Relaxed) {
                    // What is formatted but not written is not taken.
                    at += i as u64 - writer.discard();
                    position.store(at, Ordering::Relaxed);
                    finished = false;
                    break 'segments;
                }
                format.write(writer.buffer(), event);
                writer.line_done(event.ts_ns);
            }
        }
        at = segment.end_seq();
        drop(segment);
        if segments.is_empty() {
            writer.flush();
        }
        position.store(at, Ordering::Relaxed);
        if writer.is_closed() {
            closed.store(true, Ordering::Relaxed);
        }
    }
    let writer = writer.finish();
    if writer.closed {
        closed.store(true, Ordering::Relaxed);
    }
    OutputReport {
        writer,
        position: at,
        finished,
    }
}
