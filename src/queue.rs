//! The buffer between the ring reader and the outputs: one producer (the
//! reader thread), several consumers (one thread per output), each at its
//! own pace, within a memory budget.
//!
//! Items are written once, into chunks of memory mapped straight from the
//! kernel, and each consumer is sent `Segment`s: shared, read-only views of
//! a run of items, numbered by a sequence that counts every item pushed. So
//! an item is stored once however many outputs take it, and a consumer that
//! is sent no segment for a run (a slow terminal) sees the gap in the
//! sequence and knows exactly how many it skipped.
//!
//! - **Budget**: at most `max_chunks` chunks exist at once (filled, in
//!   flight, or kept for reuse). When none is free the item is dropped and
//!   counted: the producer never waits.
//! - **Given back**: a chunk no consumer holds any more is reused (up to
//!   `POOL` of them are kept) or unmapped at once, so the memory of a burst
//!   returns to the system when the burst is written.
//! - **Reliable consumers** (files) are sent every item. While one is busy
//!   its next segment grows, and is sent when it is idle again or the chunk
//!   is full, so a consumer that falls behind gets a few large segments
//!   rather than many small ones; at most one per chunk is queued for it.
//! - **Lossy consumers** (a terminal, a pipe) hold at most `LOSSY_LAG`
//!   segments in their queue: a run that finds it full is skipped for them
//!   (counted), so a slow stream pins a bounded amount of memory and never
//!   takes budget from the files.
//!
//! Why it is sound to share the chunks: the producer writes an item only at
//! an index no segment covers yet, and sends a segment only after writing
//! its items (the channel orders the send before the receive). A chunk is
//! written again only when `Arc::get_mut` proves the producer holds the
//! only reference, that is, no segment of it is alive anywhere.

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::sys::mem::AnonMapping;

/// Bytes per chunk (3,276 events of the probe, 80 bytes each; the mapping
/// is rounded up to whole pages, so a chunk costs exactly this).
pub const CHUNK_BYTES: usize = 256 << 10;
/// Free chunks kept mapped for reuse, so a steady state maps nothing.
const POOL: usize = 2;
/// Segments a lossy consumer may have queued before runs are skipped.
pub const LOSSY_LAG: usize = 4;

/// A fixed array of `T` in its own mapping.
pub struct Chunk<T> {
    map: AnonMapping,
    cap: usize,
    _items: PhantomData<T>,
}

impl<T: Copy> Chunk<T> {
    fn new(cap: usize) -> std::io::Result<Chunk<T>> {
        let bytes = cap
            .checked_mul(size_of::<T>())
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        Ok(Chunk {
            map: AnonMapping::new(bytes)?,
            cap,
            _items: PhantomData,
        })
    }

    fn ptr(&self) -> *mut T {
        self.map.as_ptr() as *mut T
    }
}

/// A run of items, shared with the producer and the other consumers.
pub struct Segment<T> {
    chunk: Arc<Chunk<T>>,
    start: usize,
    end: usize,
    seq: u64,
}

impl<T: Copy> Segment<T> {
    /// The items, in order.
    pub fn items(&self) -> &[T] {
        // SAFETY: start..end lies within the chunk, every item in it was
        // written before this segment was sent, and none is written again
        // while any segment of the chunk is alive (see the module comment).
        // The mapping is page-aligned, enough for any T.
        unsafe {
            std::slice::from_raw_parts(self.chunk.ptr().add(self.start), self.end - self.start)
        }
    }

    /// The sequence number of the first item: items pushed before it.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The sequence number just past the last item.
    pub fn end_seq(&self) -> u64 {
        self.seq + (self.end - self.start) as u64
    }
}

// SAFETY: a segment only reads its own immutable run of the chunk; the
// chunk's mapping is Send + Sync and T is plain data.
unsafe impl<T: Copy + Send> Send for Segment<T> {}

struct Outlet<T> {
    tx: Sender<Segment<T>>,
    /// Items of the current chunk already sent (or skipped) to it.
    sent: usize,
    /// Items skipped for this consumer so far, readable at any time.
    skipped: Arc<AtomicU64>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
/// What the producer did.
pub struct QueueStats {
    /// Items stored: each has a sequence number, 0 to pushed - 1.
    pub pushed: u64,
    /// Items dropped because the budget was used up.
    pub dropped: u64,
    /// Most chunks alive at once.
    pub peak_chunks: usize,
    /// Chunks mapped in all (a steady state maps none).
    pub mapped: u64,
    /// Chunks unmapped in all.
    pub unmapped: u64,
}

/// The producer's end: it stores items and hands runs of them to the consumers.
pub struct Producer<T> {
    chunk_items: usize,
    max_chunks: usize,
    current: Option<Arc<Chunk<T>>>,
    /// Where the next item goes, and the end of the current chunk (0 when
    /// there is none): the fast path is one comparison.
    ptr: *mut T,
    len: usize,
    cap: usize,
    /// Sequence number of the current chunk's first item.
    base: u64,
    /// No chunk was free: items are dropped without looking again until
    /// the next pass, so dropping costs next to nothing.
    starved: bool,
    outlets: Vec<Outlet<T>>,
    in_flight: VecDeque<Arc<Chunk<T>>>,
    pool: Vec<Arc<Chunk<T>>>,
    /// What it did so far.
    pub stats: QueueStats,
}

// SAFETY: `ptr` points into `current`, which the producer owns; it is only
// a cache of that chunk's address.
unsafe impl<T: Copy + Send> Send for Producer<T> {}

impl<T: Copy> Producer<T> {
    /// A queue of at most `budget_bytes` of chunks (at least two).
    pub fn new(budget_bytes: usize) -> Producer<T> {
        let chunk_items = (CHUNK_BYTES / size_of::<T>().max(1)).max(1);
        let max_chunks = (budget_bytes / CHUNK_BYTES).max(2);
        Producer {
            chunk_items,
            max_chunks,
            current: None,
            ptr: std::ptr::null_mut(),
            len: 0,
            cap: 0,
            base: 0,
            starved: false,
            outlets: Vec::new(),
            in_flight: VecDeque::with_capacity(max_chunks),
            pool: Vec::with_capacity(POOL),
            stats: QueueStats::default(),
        }
    }

    /// Adds a consumer; returns its end of the queue and its live count of
    /// items skipped (always 0 for a reliable one).
    pub fn add_consumer(&mut self, lossy: bool) -> (Receiver<Segment<T>>, Arc<AtomicU64>) {
        // A reliable consumer has at most one segment per chunk queued, and
        // there are at most max_chunks: the send never finds it full.
        let (tx, rx) = bounded(if lossy {
            LOSSY_LAG
        } else {
            self.max_chunks + 1
        });
        let skipped = Arc::new(AtomicU64::new(0));
        self.outlets.push(Outlet {
            tx,
            sent: 0,
            skipped: skipped.clone(),
        });
        (rx, skipped)
    }

    /// The most memory it may map for items, bytes: whole chunks (the
    /// items of one may not fill it to the byte, the pages do).
    pub fn max_bytes(&self) -> usize {
        self.max_chunks * (self.chunk_items * size_of::<T>()).max(CHUNK_BYTES)
    }

    fn live_chunks(&self) -> usize {
        self.in_flight.len() + self.pool.len() + self.current.is_some() as usize
    }

    /// Stores one item; false (and counted) when the budget is used up.
    #[inline]
    pub fn push(&mut self, item: T) -> bool {
        if self.len == self.cap && (self.starved || !self.next_chunk()) {
            self.stats.dropped += 1;
            return false;
        }
        // SAFETY: len < cap, the current chunk's size; no segment covers
        // index len yet, so no consumer reads it.
        unsafe { self.ptr.add(self.len).write(item) };
        self.len += 1;
        self.stats.pushed += 1;
        true
    }

    /// Sends each consumer what it has not had of the current chunk: a
    /// reliable one when it is idle or `whole` (the chunk is done); a lossy
    /// one likewise, but skipping the run if its queue is full.
    fn publish(&mut self, whole: bool) {
        let Some(chunk) = &self.current else { return };
        for o in &mut self.outlets {
            if o.sent == self.len || (!whole && !o.tx.is_empty()) {
                continue;
            }
            let segment = Segment {
                chunk: chunk.clone(),
                start: o.sent,
                end: self.len,
                seq: self.base + o.sent as u64,
            };
            if o.tx.try_send(segment).is_err() {
                // A lossy consumer behind by LOSSY_LAG segments (or one
                // that is gone): the run is skipped for it.
                o.skipped
                    .fetch_add((self.len - o.sent) as u64, Ordering::Relaxed);
            }
            o.sent = self.len;
        }
    }

    /// Chunks that no consumer holds any more: reused, or unmapped.
    fn reclaim(&mut self) {
        let mut i = 0;
        while i < self.in_flight.len() {
            if Arc::get_mut(&mut self.in_flight[i]).is_none() {
                i += 1;
                continue;
            }
            let Some(chunk) = self.in_flight.remove(i) else {
                break;
            };
            if self.pool.len() < POOL {
                self.pool.push(chunk);
            } else {
                self.stats.unmapped += 1;
            }
        }
    }

    /// Retires the full current chunk and starts another, if the budget
    /// allows one.
    #[cold]
    fn next_chunk(&mut self) -> bool {
        self.publish(true);
        if let Some(full) = self.current.take() {
            self.in_flight.push_back(full);
            self.ptr = std::ptr::null_mut();
            self.cap = 0;
            self.len = 0;
        }
        self.reclaim();
        let chunk = match self.pool.pop() {
            Some(c) => c,
            None if self.live_chunks() < self.max_chunks => match Chunk::new(self.chunk_items) {
                Ok(c) => {
                    self.stats.mapped += 1;
                    Arc::new(c)
                }
                // Out of memory below the budget: the same as over it.
                Err(_) => {
                    self.starved = true;
                    return false;
                }
            },
            None => {
                self.starved = true;
                return false;
            }
        };
        self.ptr = chunk.ptr();
        self.cap = chunk.cap;
        self.len = 0;
        self.base = self.stats.pushed;
        for o in &mut self.outlets {
            o.sent = 0;
        }
        self.current = Some(chunk);
        self.stats.peak_chunks = self.stats.peak_chunks.max(self.live_chunks());
        true
    }

    /// After each pass of the reader: what the idle consumers can take now
    /// goes to them, and chunks all consumers are done with are freed.
    pub fn end_of_pass(&mut self) {
        self.publish(false);
        if !self.in_flight.is_empty() {
            self.reclaim();
        }
        self.starved = false;
    }

    /// Sends everything left and closes every consumer's queue: each sees
    /// the end once it has taken what was sent.
    pub fn close(mut self) -> QueueStats {
        self.publish(true);
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(rx: &Receiver<Segment<u64>>) -> Vec<Segment<u64>> {
        rx.try_iter().collect()
    }

    #[test]
    fn every_item_reaches_a_reliable_consumer_in_order_with_its_sequence() {
        let mut q = Producer::<u64>::new(4 * CHUNK_BYTES);
        let (rx, skipped) = q.add_consumer(false);
        let per_chunk = (CHUNK_BYTES / 8) as u64;
        let mut got = Vec::new();
        for i in 0..per_chunk * 3 + 5 {
            assert!(q.push(i));
            if i % 1000 == 0 {
                q.end_of_pass();
                for s in drain(&rx) {
                    assert_eq!(s.seq(), got.len() as u64);
                    got.extend_from_slice(s.items());
                }
            }
        }
        let stats = q.close();
        for s in drain(&rx) {
            assert_eq!(s.seq(), got.len() as u64);
            got.extend_from_slice(s.items());
        }
        assert_eq!(got, (0..per_chunk * 3 + 5).collect::<Vec<_>>());
        assert_eq!(stats.pushed, per_chunk * 3 + 5);
        assert_eq!(stats.dropped, 0);
        assert_eq!(skipped.load(Ordering::Relaxed), 0);
        // Consumed as it went: chunks were reused, not mapped anew.
        assert!(stats.mapped <= 3, "{stats:?}");
    }

    #[test]
    fn a_busy_consumer_gets_one_growing_segment_not_many_small_ones() {
        let mut q = Producer::<u64>::new(4 * CHUNK_BYTES);
        let (rx, _) = q.add_consumer(false);
        q.push(1);
        q.end_of_pass();
        for i in 0..10 {
            q.push(i);
            q.end_of_pass();
        }
        // The first went out at once; the rest wait for the queue to empty.
        let first = drain(&rx);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].items(), &[1]);
        q.end_of_pass();
        let rest = drain(&rx);
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].seq(), 1);
        assert_eq!(rest[0].items(), (0..10).collect::<Vec<u64>>());
    }

    #[test]
    fn over_budget_items_are_dropped_and_counted_and_memory_comes_back() {
        let mut q = Producer::<u64>::new(2 * CHUNK_BYTES);
        let (rx, _) = q.add_consumer(false);
        let per_chunk = CHUNK_BYTES / 8;
        // Nobody consumes: two chunks fill, the rest is dropped.
        for i in 0..per_chunk * 3 {
            q.push(i as u64);
        }
        assert_eq!(q.stats.pushed, (per_chunk * 2) as u64);
        assert_eq!(q.stats.dropped, per_chunk as u64);
        assert_eq!(q.live_chunks(), 2);
        // Until the next pass it does not even look for a free chunk.
        let held = drain(&rx);
        assert_eq!(held.len(), 2);
        drop(held);
        assert!(!q.push(7));
        // The consumer took everything: after a pass the chunks are free.
        q.end_of_pass();
        assert!(q.push(7));
        assert_eq!(q.stats.dropped, per_chunk as u64 + 1);
        assert!(q.live_chunks() <= POOL);
        assert_eq!(q.stats.peak_chunks, 2);
        assert_eq!(q.stats.mapped, 2);
    }

    #[test]
    fn a_lossy_consumer_skips_runs_without_costing_the_reliable_one() {
        let mut q = Producer::<u64>::new(64 * CHUNK_BYTES);
        let (log, _) = q.add_consumer(false);
        let (tty, skipped) = q.add_consumer(true);
        let per_chunk = (CHUNK_BYTES / 8) as u64;
        let total = per_chunk * 10;
        let mut logged = 0;
        for i in 0..total {
            q.push(i);
            // The log keeps up; the terminal takes nothing.
            for s in drain(&log) {
                assert_eq!(s.seq(), logged);
                logged = s.end_seq();
            }
        }
        let stats = q.close();
        for s in drain(&log) {
            logged = s.end_seq();
        }
        assert_eq!(logged, total);
        assert_eq!(stats.dropped, 0);
        let shown: Vec<_> = drain(&tty);
        assert_eq!(shown.len(), LOSSY_LAG);
        let shown_items: u64 = shown.iter().map(|s| s.items().len() as u64).sum();
        assert_eq!(shown_items + skipped.load(Ordering::Relaxed), total);
        // What it was sent is the oldest runs, in order; the gap after
        // them is what it skipped.
        assert_eq!(shown[0].seq(), 0);
        assert_eq!(shown[1].seq(), shown[0].end_seq());
    }

    #[test]
    fn a_held_segment_pins_only_its_own_chunk() {
        let mut q = Producer::<u64>::new(4 * CHUNK_BYTES);
        let (rx, _) = q.add_consumer(false);
        let per_chunk = (CHUNK_BYTES / 8) as u64;
        q.push(0);
        q.end_of_pass();
        let pinned = drain(&rx);
        // Many chunks pass through while the first is held.
        for i in 1..per_chunk * 20 {
            assert!(q.push(i), "dropped at {i}");
            if i % 512 == 0 {
                q.end_of_pass();
                drain(&rx);
            }
        }
        assert_eq!(q.stats.dropped, 0);
        drop(pinned);
    }
}
