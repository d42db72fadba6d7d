//! The `RecordSink` that turns ring samples into events and hands them to
//! the output thread in batches over a bounded channel. It never blocks: a
//! reader that waited on a slow terminal would let the kernel rings fill,
//! so a batch the output side has no room for is dropped here and counted.

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::abi::Event;
use crate::ring::RecordSink;

/// Events per batch: big enough to amortise the channel, small enough that
/// a quiet system's events move on at every pass.
pub const BATCH_EVENTS: usize = 4096;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReaderStats {
    /// Samples decoded into events.
    pub decoded: u64,
    /// Samples too short to be an event.
    pub malformed: u64,
    /// Sum of PERF_RECORD_LOST counts: samples the ring had no room for.
    pub ring_lost: u64,
    /// Events dropped because the output side was behind.
    pub output_dropped: u64,
}

pub struct Batcher {
    batch: Vec<Event>,
    to_output: Sender<Vec<Event>>,
    /// Emptied batches coming back, so steady state allocates nothing.
    spare: Receiver<Vec<Event>>,
    pub stats: ReaderStats,
}

impl Batcher {
    pub fn new(to_output: Sender<Vec<Event>>, spare: Receiver<Vec<Event>>) -> Batcher {
        Batcher {
            batch: Vec::with_capacity(BATCH_EVENTS),
            to_output,
            spare,
            stats: ReaderStats::default(),
        }
    }

    fn send(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let next = self
            .spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BATCH_EVENTS));
        let full = std::mem::replace(&mut self.batch, next);
        match self.to_output.try_send(full) {
            Ok(()) => {}
            Err(TrySendError::Full(mut b) | TrySendError::Disconnected(mut b)) => {
                self.stats.output_dropped += b.len() as u64;
                b.clear();
                self.batch = b;
            }
        }
    }
}

impl RecordSink for Batcher {
    fn sample(&mut self, _cpu: u32, payload: &[u8]) {
        match Event::decode(payload) {
            Some(event) => {
                self.stats.decoded += 1;
                self.batch.push(event);
                if self.batch.len() >= BATCH_EVENTS {
                    self.send();
                }
            }
            None => self.stats.malformed += 1,
        }
    }

    fn lost(&mut self, _cpu: u32, count: u64) {
        self.stats.ring_lost += count;
    }

    fn end_of_pass(&mut self) {
        self.send();
    }
}
