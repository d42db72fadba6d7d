//! One CPU's event ring in a pair of mmapable BPF arrays (`--ring map`):
//! the BPF programs on that CPU write fixed-size slots and move `head`; we
//! read up to it and move `tail`. The same shape as a perf ring (one
//! writer, one reader, no lock, acquire `head` and release `tail`) but
//! with no `bpf_perf_event_output` and no perf record machinery per event:
//! the program copies its event into a slot of a map it already has and
//! stores one word. What it gives up: the kernel does not wake us (the
//! reader polls), and the slots are of one size.
//!
//! Layout (bpf/event.h): `ring_pos[cpu]` is { head; 7 words; tail; 7
//! words } (128 bytes: producer and consumer each on a cache line), and
//! CPU c's slots are `ring_events[c * slots ..][..slots]`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::perf_ring::{Cursor, Record};
use crate::sys::mem::SharedMapping;

/// `struct ring_pos` of bpf/event.h.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct RingPos {
    /// The next slot the programs write (theirs; acquire to read).
    pub head: u64,
    /// Padding to the next cache line.
    pub pad1: [u64; 7],
    /// The next slot we read (ours; release to store).
    pub tail: u64,
    /// Padding to 128 bytes.
    pub pad2: [u64; 7],
}

const _: () = {
    use std::mem::offset_of;
    assert!(size_of::<RingPos>() == 128);
    assert!(offset_of!(RingPos, head) == 0);
    assert!(offset_of!(RingPos, tail) == 64);
};

/// The two arrays, mapped once and shared by every CPU's ring.
pub struct MapRings {
    /// `ring_pos`, one `RingPos` per possible CPU.
    pub positions: SharedMapping,
    /// `ring_events`, `slots` slots per possible CPU.
    pub events: SharedMapping,
    /// Slots per CPU, a power of two.
    pub slots: u64,
    /// Bytes per slot (the array's value size, a multiple of 8).
    pub slot_size: usize,
}

/// One CPU's ring (see the module comment).
pub struct MapRing {
    cpu: u32,
    rings: Arc<MapRings>,
    head_at: usize,
    tail_at: usize,
    first_slot: usize,
}

impl MapRing {
    /// CPU `cpu`'s ring in `rings`.
    pub fn new(cpu: u32, rings: Arc<MapRings>) -> MapRing {
        let pos = cpu as usize * size_of::<RingPos>();
        MapRing {
            cpu,
            head_at: pos + std::mem::offset_of!(RingPos, head),
            tail_at: pos + std::mem::offset_of!(RingPos, tail),
            first_slot: cpu as usize * rings.slots as usize,
            rings,
        }
    }

    /// The CPU it belongs to.
    pub fn cpu(&self) -> u32 {
        self.cpu
    }

    fn load(&self, at: usize, order: Ordering) -> u64 {
        // Out of the mapping only if the maps were made smaller than the
        // CPUs: then the ring reads as empty.
        self.rings
            .positions
            .atomic_u64(at)
            .map_or(0, |a| a.load(order))
    }

    /// From `tail` up to `head` (acquire: the slots before it are written).
    pub fn cursor(&self) -> Cursor {
        Cursor::at(
            self.load(self.tail_at, Ordering::Relaxed),
            self.load(self.head_at, Ordering::Acquire),
        )
    }

    /// The slot at the cursor, without consuming it; None at the head. A
    /// head more than a ring ahead of the tail (not something the programs
    /// write) ends the reading: the cursor jumps to the head.
    pub fn peek(&mut self, c: &mut Cursor) -> Option<Record<'_>> {
        let (tail, head) = (c.tail(), c.head());
        if tail >= head {
            return None;
        }
        if head - tail > self.rings.slots {
            c.jump_to_head();
            return None;
        }
        let slot = self.first_slot + (tail & (self.rings.slots - 1)) as usize;
        let size = self.rings.slot_size;
        // SAFETY: a slot between tail and head, which the programs do not
        // write until we move the tail past it (`commit`), after this
        // borrow of self has ended.
        let bytes = unsafe { self.rings.events.bytes(slot * size, size) };
        c.set_size(1);
        Some(bytes.map_or(Record::Other, Record::Sample))
    }

    /// Gives the slots consumed through `c` back (release: only after we
    /// are done reading them).
    pub fn commit(&self, c: &Cursor) {
        if let Some(a) = self.rings.positions.atomic_u64(self.tail_at) {
            a.store(c.tail(), Ordering::Release);
        }
    }
}
