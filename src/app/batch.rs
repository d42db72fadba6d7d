//! The `RecordSink` of the monitor: turns ring samples into events and
//! stores them in the queue the outputs read (see queue.rs). It never
//! blocks: when the queue's memory budget is used up, an event is dropped
//! here and counted.

use crate::app::abi::Event;
use crate::queue::Producer;
use crate::ring::RecordSink;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReaderStats {
    /// Samples decoded into events.
    pub decoded: u64,
    /// Samples too short to be an event.
    pub malformed: u64,
    /// Sum of PERF_RECORD_LOST counts: samples the ring had no room for.
    pub ring_lost: u64,
    /// Events older than one already delivered: they came later than the
    /// ordering window allows, and are written out of order.
    pub out_of_order: u64,
}

pub struct Batcher {
    queue: Producer<Event>,
    /// The newest timestamp delivered so far.
    newest: u64,
    pub stats: ReaderStats,
}

impl Batcher {
    pub fn new(queue: Producer<Event>) -> Batcher {
        Batcher {
            queue,
            newest: 0,
            stats: ReaderStats::default(),
        }
    }

    /// Events that come after everything the rings held: the calls still
    /// in flight when the monitor stopped (`--exit`), in the order they
    /// began. Not late: not counted out of order.
    pub fn push_unfinished(&mut self, events: &[Event]) {
        for &event in events {
            self.stats.decoded += 1;
            self.queue.push(event);
        }
    }

    /// Sends what is left to the outputs and closes the queue.
    pub fn finish(self) -> (ReaderStats, crate::queue::QueueStats) {
        (self.stats, self.queue.close())
    }
}

impl RecordSink for Batcher {
    #[inline]
    fn sample(&mut self, _cpu: u32, payload: &[u8]) {
        match Event::decode(payload) {
            Some(event) => {
                self.stats.decoded += 1;
                let key = event.order_key();
                if key < self.newest {
                    self.stats.out_of_order += 1;
                } else {
                    self.newest = key;
                }
                self.queue.push(event);
            }
            None => self.stats.malformed += 1,
        }
    }

    fn lost(&mut self, _cpu: u32, count: u64) {
        self.stats.ring_lost += count;
    }

    #[inline]
    fn timestamp(&self, payload: &[u8]) -> Option<u64> {
        Event::timestamp(payload)
    }

    fn end_of_pass(&mut self) {
        self.queue.end_of_pass();
    }
}
