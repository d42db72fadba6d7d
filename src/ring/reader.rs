//! All the rings, one per online CPU, drained by one thread, in time order.
//!
//! The thread sleeps in epoll until a ring passes its watermark, the
//! latency bound runs out, or it is told to stop; each wake drains every
//! ring (cheap: one load of `data_head` for an idle ring). On stop it
//! drains once more after the programs are detached, so records still
//! under the watermark are delivered, not dropped.
//!
//! **Time order.** Each ring is in the order its CPU wrote it, but a
//! thread that moves between CPUs leaves its calls in two rings, and
//! reading ring 0 then ring 1 would put them out of order. So a pass is a
//! merge: it always delivers the oldest record at the head of any ring,
//! by the timestamp the sink reads from each sample (CLOCK_MONOTONIC
//! nanoseconds, what `bpf_ktime_get_ns` returns). A pass delivers only
//! records older than `now - window`, `now` read before any head: a
//! record not yet in a ring when its head was read was committed after
//! `now`, and its timestamp was taken at most `window` before its commit
//! (the few hundred nanoseconds of the program between the two, unless
//! something interrupts it for longer), so it cannot belong before what was
//! delivered. Younger records stay in the ring, not copied anywhere, and
//! the thread wakes again when the oldest of them is old enough. A record
//! that still comes late is delivered anyway; the sink can tell by its
//! timestamp.
//!
//! **Map rings** (`--ring map`, map_ring.rs) have no fd to wake us: the
//! thread polls them, every `POLL_BUSY` while the last pass found
//! records and every `POLL_IDLE` otherwise (both well inside the latency
//! bound). The merge is the same.

use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use super::map_ring::{MapRing, MapRings};
use super::perf_ring::{Cursor, PerfRing, Record};
use crate::sys::epoll::{Epoll, EventFd, Ready};

/// Where records go. Implemented by the event side; the ring side never
/// looks inside a sample, except through `timestamp`.
pub trait RecordSink {
    /// A sample's payload (`PERF_SAMPLE_RAW`), borrowed from the ring.
    fn sample(&mut self, cpu: u32, payload: &[u8]);
    /// The ring could not take `count` samples (`PERF_RECORD_LOST`).
    fn lost(&mut self, cpu: u32, count: u64);
    /// When a sample was made, in CLOCK_MONOTONIC nanoseconds, to merge
    /// the rings in time order; None (the default) for a sample without a
    /// time, delivered as soon as it is at the head of its ring.
    fn timestamp(&self, _payload: &[u8]) -> Option<u64> {
        None
    }
    /// Called after each pass over all rings: the time to hand on a batch.
    fn end_of_pass(&mut self);
}

/// One CPU's ring, of either kind.
pub enum Ring {
    /// A perf ring, filled by `bpf_perf_event_output`.
    Perf(PerfRing),
    /// Event slots in mmapable arrays, filled by the programs directly.
    Map(MapRing),
}

impl Ring {
    fn cpu(&self) -> u32 {
        match self {
            Ring::Perf(r) => r.cpu(),
            Ring::Map(r) => r.cpu(),
        }
    }

    fn cursor(&self) -> Cursor {
        match self {
            Ring::Perf(r) => r.cursor(),
            Ring::Map(r) => r.cursor(),
        }
    }

    #[inline]
    fn peek(&mut self, c: &mut Cursor) -> Option<Record<'_>> {
        match self {
            Ring::Perf(r) => r.peek(c),
            Ring::Map(r) => r.peek(c),
        }
    }

    fn commit(&self, c: &Cursor) {
        match self {
            Ring::Perf(r) => r.commit(c),
            Ring::Map(r) => r.commit(c),
        }
    }
}

/// How often map rings are looked at while records keep coming, and while
/// none do.
const POLL_BUSY: Duration = Duration::from_millis(2);
const POLL_IDLE: Duration = Duration::from_millis(20);

/// Every CPU's ring, and the epoll set that waits on them.
pub struct RingSet {
    rings: Vec<Ring>,
    /// Map rings: no fd wakes us, the thread polls.
    polled: bool,
    /// Per ring, during a pass: where reading stands, and the timestamp of
    /// the record at the cursor (None: the ring is read to its head).
    cursors: Vec<Cursor>,
    next: Vec<Option<u64>>,
    /// The oldest record left in a ring by the last pass.
    oldest_held: Option<u64>,
    window_ns: u64,
    epoll: Epoll,
    stop: Arc<EventFd>,
}

/// Wakes the reader thread and tells it to drain one last time and return.
#[derive(Clone)]
pub struct StopHandle(Arc<EventFd>);

impl StopHandle {
    /// Tells the reader to stop after a last drain.
    pub fn stop(&self) {
        // Cannot fail on a live eventfd short of 2^64 stops.
        let _ = self.0.signal();
    }
}

const STOP_TOKEN: u64 = u64::MAX;
/// Records read between two stores of a ring's tail during a pass.
const COMMIT_EVERY: usize = 512;

impl RingSet {
    /// One ring of `data_pages` pages (a power of two) per CPU in `cpus`,
    /// each waking the reader when a quarter full: early enough that the
    /// records held back for ordering, plus a reader that waits a while
    /// for a CPU, still fit.
    pub fn open(cpus: &[u32], data_pages: usize) -> io::Result<RingSet> {
        let epoll = Epoll::new()?;
        let stop = EventFd::new()?;
        epoll.add(stop.as_fd(), STOP_TOKEN)?;
        let watermark = (crate::sys::perf::page_size() * data_pages / 4) as u32;
        let mut rings = Vec::with_capacity(cpus.len());
        for (i, &cpu) in cpus.iter().enumerate() {
            let ring = PerfRing::open(cpu, data_pages, watermark)?;
            epoll.add(ring.as_fd(), i as u64)?;
            rings.push(Ring::Perf(ring));
        }
        RingSet::with(rings, false, epoll, stop)
    }

    /// The map ring of each CPU in `cpus` (see map_ring.rs), polled.
    pub fn open_map(cpus: &[u32], maps: Arc<MapRings>) -> io::Result<RingSet> {
        let epoll = Epoll::new()?;
        let stop = EventFd::new()?;
        epoll.add(stop.as_fd(), STOP_TOKEN)?;
        let rings = cpus
            .iter()
            .map(|&cpu| Ring::Map(MapRing::new(cpu, maps.clone())))
            .collect();
        RingSet::with(rings, true, epoll, stop)
    }

    fn with(rings: Vec<Ring>, polled: bool, epoll: Epoll, stop: EventFd) -> io::Result<RingSet> {
        Ok(RingSet {
            polled,
            cursors: vec![Cursor::default(); rings.len()],
            next: vec![None; rings.len()],
            oldest_held: None,
            window_ns: 0,
            rings,
            epoll,
            stop: Arc::new(stop),
        })
    }

    /// The perf rings, one per CPU (none for map rings).
    pub fn perf_rings(&self) -> impl Iterator<Item = &PerfRing> {
        self.rings.iter().filter_map(|r| match r {
            Ring::Perf(p) => Some(p),
            Ring::Map(_) => None,
        })
    }

    /// A handle that stops `run` from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(self.stop.clone())
    }

    /// How long after its timestamp a record may still be committed to
    /// its ring (see the module comment). 0 by default.
    pub fn set_order_window(&mut self, window: Duration) {
        self.window_ns = window.as_nanos().min(u64::MAX as u128) as u64;
    }

    /// One pass: every ring read to its head, in time order.
    pub fn drain(&mut self, sink: &mut impl RecordSink) -> usize {
        self.drain_until(sink, u64::MAX)
    }

    /// One pass: records delivered oldest first while their timestamp is
    /// at most `bound`; later ones stay in their ring. Returns how many
    /// records were consumed.
    pub fn drain_until(&mut self, sink: &mut impl RecordSink, bound: u64) -> usize {
        fn key(sink: &impl RecordSink, record: &Record) -> u64 {
            match record {
                Record::Sample(payload) => sink.timestamp(payload).unwrap_or(0),
                Record::Lost(_) | Record::Other => 0,
            }
        }
        for (i, ring) in self.rings.iter_mut().enumerate() {
            self.cursors[i] = ring.cursor();
            self.next[i] = ring.peek(&mut self.cursors[i]).map(|r| key(sink, &r));
        }
        let mut records = 0;
        loop {
            // The ring with the oldest record at its cursor, and the time of
            // the oldest record at any other ring's cursor.
            let mut first: Option<(usize, u64)> = None;
            let mut second = u64::MAX;
            for (i, next) in self.next.iter().enumerate() {
                let Some(k) = *next else { continue };
                match first {
                    Some((_, oldest)) if k >= oldest => second = second.min(k),
                    _ => {
                        if let Some((_, oldest)) = first {
                            second = second.min(oldest);
                        }
                        first = Some((i, k));
                    }
                }
            }
            let Some((i, oldest)) = first else { break };
            if oldest > bound {
                break;
            }
            // A run from that ring, up to where another ring (or the
            // bound) has the older record.
            let limit = bound.min(second);
            let ring = &mut self.rings[i];
            let cursor = &mut self.cursors[i];
            let cpu = ring.cpu();
            self.next[i] = loop {
                let Some(record) = ring.peek(cursor) else {
                    break None;
                };
                let k = key(sink, &record);
                if k > limit {
                    break Some(k);
                }
                match record {
                    Record::Sample(payload) => sink.sample(cpu, payload),
                    Record::Lost(count) => sink.lost(cpu, count),
                    Record::Other => {}
                }
                cursor.advance();
                records += 1;
                // Space goes back to the kernel as the pass goes, not only
                // at its end: a pass the scheduler interrupts must not
                // leave the ring looking full all that while.
                if records % COMMIT_EVERY == 0 {
                    ring.commit(cursor);
                }
            };
        }
        for (ring, cursor) in self.rings.iter().zip(&self.cursors) {
            ring.commit(cursor);
        }
        self.oldest_held = self.next.iter().flatten().min().copied();
        sink.end_of_pass();
        records
    }

    /// Sleeps until a watermark is passed, `max_latency` runs out, the
    /// oldest record held back for ordering is old enough, or the stop
    /// handle is used; drains after each wake. Returns after the final
    /// drain that follows a stop, which delivers everything.
    /// Returns an error only if epoll itself fails, which it cannot on
    /// our own epoll fd; the caller should then stop (the final drain has
    /// been done).
    pub fn run(mut self, sink: &mut impl RecordSink, max_latency: Duration) -> io::Result<()> {
        let mut ready = vec![Ready::default(); self.rings.len() + 1];
        let mut timeout = if self.polled {
            max_latency.min(POLL_IDLE)
        } else {
            max_latency
        };
        loop {
            // Whole milliseconds, rounded up: never a busy loop.
            let ms = timeout
                .as_micros()
                .div_ceil(1000)
                .clamp(1, i32::MAX as u128) as i32;
            let n = match self.epoll.wait(&mut ready, ms) {
                Ok(n) => n,
                Err(e) => {
                    self.drain(sink);
                    return Err(e);
                }
            };
            let stopping = ready[..n].iter().any(|r| r.token() == STOP_TOKEN);
            let bound = if stopping {
                u64::MAX
            } else {
                crate::sys::monotonic_ns().saturating_sub(self.window_ns)
            };
            let records = self.drain_until(sink, bound);
            if stopping {
                return Ok(());
            }
            // Records held back: come back when the oldest may go, but
            // not sooner than a window from now. Under a steady stream the
            // oldest is always about due, and waking every millisecond to
            // release a millisecond's worth costs more than the events.
            timeout = match self.oldest_held {
                Some(oldest) => {
                    let due = oldest.saturating_add(self.window_ns);
                    Duration::from_nanos(due.saturating_sub(crate::sys::monotonic_ns()))
                        .max(Duration::from_nanos(self.window_ns))
                        .min(max_latency)
                }
                None => max_latency,
            };
            if self.polled {
                let poll = if records > 0 { POLL_BUSY } else { POLL_IDLE };
                timeout = timeout.min(poll);
            }
        }
    }
}
