//! One perf ring buffer, mmapped: a metadata page, then 2^n data pages that
//! the kernel fills at `data_head` and we free by advancing `data_tail`.
//!
//! No lock: the kernel is the only writer of the data and of `data_head`, we
//! are the only writer of `data_tail`. An acquire load of `data_head` makes
//! the records before it visible; a release store of `data_tail` hands their
//! space back only after we are done reading it.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::sys::Fd;
use crate::sys::perf::{self, Mapping};

/// The ring's part of `struct perf_event_mmap_page`
/// (include/uapi/linux/perf_event.h), which starts at byte
/// `MMAP_PAGE_RING_AT` of the metadata page (tests/layouts.rs checks both
/// against the kernel's BTF).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct MmapPageRing {
    /// Where the kernel writes next (read with acquire ordering).
    pub data_head: u64,
    /// Where the reader reads next (stored with release ordering).
    pub data_tail: u64,
    /// Where the data area starts in the mapping (Linux 4.1+).
    pub data_offset: u64,
    /// The data area's size (Linux 4.1+).
    pub data_size: u64,
}
/// Where the ring's fields start in the metadata page.
pub const MMAP_PAGE_RING_AT: usize = 1024;

/// `struct perf_event_header`: every record starts with one.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct PerfEventHeader {
    /// The record's type (`PERF_RECORD_*`).
    pub type_: u32,
    /// Flags.
    pub misc: u16,
    /// The record's size, header included.
    pub size: u16,
}

/// A `PERF_RECORD_LOST`: the count is at 16, not 8.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct PerfRecordLost {
    /// Its header.
    pub header: PerfEventHeader,
    /// The event's id.
    pub id: u64,
    /// How many samples did not fit in the ring.
    pub lost: u64,
}

/// The start of a `PERF_RECORD_SAMPLE` of `PERF_SAMPLE_RAW` only: the raw
/// payload's size, then the payload.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct PerfRecordRaw {
    /// Its header.
    pub header: PerfEventHeader,
    /// The payload's size, padding included.
    pub size: u32,
}

const _: () = {
    use std::mem::offset_of;
    assert!(offset_of!(MmapPageRing, data_tail) == 8);
    assert!(offset_of!(MmapPageRing, data_size) == 24);
    assert!(size_of::<PerfEventHeader>() == 8);
    assert!(offset_of!(PerfEventHeader, size) == 6);
    assert!(offset_of!(PerfRecordLost, lost) == 16);
    assert!(offset_of!(PerfRecordRaw, size) == 8);
};

const DATA_HEAD: usize = MMAP_PAGE_RING_AT + std::mem::offset_of!(MmapPageRing, data_head);
const DATA_TAIL: usize = MMAP_PAGE_RING_AT + std::mem::offset_of!(MmapPageRing, data_tail);
const DATA_OFFSET: usize = MMAP_PAGE_RING_AT + std::mem::offset_of!(MmapPageRing, data_offset);
const DATA_SIZE: usize = MMAP_PAGE_RING_AT + std::mem::offset_of!(MmapPageRing, data_size);

const PERF_RECORD_LOST: u32 = 2;
const PERF_RECORD_SAMPLE: u32 = 9;
const HEADER_SIZE: usize = size_of::<PerfEventHeader>();
/// Where a raw sample's payload starts.
const RAW_AT: usize = size_of::<PerfRecordRaw>();
const LOST_AT: usize = std::mem::offset_of!(PerfRecordLost, lost);

/// A u32 or u16 of a record, little-endian like every x86-64 kernel's.
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// A record, borrowed from the ring (or from a copy when it wrapped).
#[derive(Debug)]
pub enum Record<'a> {
    /// A `PERF_SAMPLE_RAW` payload: what the BPF program output, padded by
    /// the kernel to keep records 8-byte aligned.
    Sample(&'a [u8]),
    /// `PERF_RECORD_LOST`: this many samples did not fit in the ring.
    Lost(u64),
    /// A record of another kind, or too short for its kind: skipped.
    Other,
}

/// A reading position in one ring (see `PerfRing::cursor`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Cursor {
    tail: u64,
    head: u64,
    /// Size of the record last peeked: what `advance` steps over.
    size: u64,
}

impl Cursor {
    /// A cursor from `tail` to `head` (a map ring's, in slots).
    pub(super) fn at(tail: u64, head: u64) -> Cursor {
        Cursor {
            tail,
            head,
            size: 0,
        }
    }

    pub(super) fn tail(&self) -> u64 {
        self.tail
    }

    pub(super) fn head(&self) -> u64 {
        self.head
    }

    /// What the next `advance` steps over.
    pub(super) fn set_size(&mut self, size: u64) {
        self.size = size;
    }

    /// Gives up on what is left: nothing more is read this pass.
    pub(super) fn jump_to_head(&mut self) {
        self.tail = self.head;
        self.size = 0;
    }

    /// Consumes the record last peeked.
    pub fn advance(&mut self) {
        self.tail += self.size;
        self.size = 0;
    }
}

/// One CPU's perf ring, mapped, read without a lock (see the module comment).
pub struct PerfRing {
    cpu: u32,
    map: Mapping,
    event: Fd,
    data_offset: usize,
    data_size: usize,
    /// Where a record that wraps past the end is put back together.
    scratch: Vec<u8>,
    wrapped_records: u64,
    last_wrapped: Option<u64>,
}

impl PerfRing {
    /// Opens the BPF output event for `cpu` and maps 1 + `data_pages` pages.
    /// The reader is woken when `watermark` bytes are waiting.
    pub fn open(cpu: u32, data_pages: usize, watermark: u32) -> io::Result<PerfRing> {
        // perf maps only a power of two of data pages.
        if !data_pages.is_power_of_two() {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        let event = perf::open_bpf_output(cpu, watermark)?;
        let page = perf::page_size();
        let map = Mapping::new(event.as_fd(), page * (1 + data_pages))?;
        let mut ring = PerfRing {
            cpu,
            map,
            event,
            data_offset: page,
            data_size: page * data_pages,
            scratch: Vec::new(),
            wrapped_records: 0,
            last_wrapped: None,
        };
        // Kernels since 4.1 say where the data is; older ones leave zeros
        // and use the layout assumed above.
        let (offset, size) = (ring.meta(DATA_OFFSET), ring.meta(DATA_SIZE));
        // The kernel's ring sizes are powers of two: positions wrap with a
        // mask, not a division, on every record.
        if size.is_power_of_two() && offset as usize + size as usize <= ring.map.len() {
            ring.data_offset = offset as usize;
            ring.data_size = size as usize;
        }
        perf::enable(ring.event.as_fd())?;
        Ok(ring)
    }

    /// The CPU it belongs to.
    pub fn cpu(&self) -> u32 {
        self.cpu
    }

    /// The data area's size in bytes.
    pub fn data_size(&self) -> usize {
        self.data_size
    }

    /// How many records so far had to be copied because they wrapped.
    pub fn wrapped_records(&self) -> u64 {
        self.wrapped_records
    }

    fn meta(&self, offset: usize) -> u64 {
        // SAFETY: the metadata page is mapped and these fields are aligned.
        unsafe { std::ptr::read_volatile(self.map.as_ptr().add(offset) as *const u64) }
    }

    fn atomic(&self, offset: usize) -> &AtomicU64 {
        // SAFETY: an aligned u64 in the mapped metadata page, shared with
        // the kernel, which accesses it atomically too.
        unsafe { &*(self.map.as_ptr().add(offset) as *const AtomicU64) }
    }

    /// Where reading stands: from `tail` (ours) up to `head` (the kernel's,
    /// loaded once with acquire ordering, so every record before it is
    /// visible). Records are consumed by `advance`, and their space given
    /// back to the kernel only by `commit`.
    pub fn cursor(&self) -> Cursor {
        Cursor {
            head: self.atomic(DATA_HEAD).load(Ordering::Acquire),
            tail: self.atomic(DATA_TAIL).load(Ordering::Relaxed),
            size: 0,
        }
    }

    /// The record at the cursor, without consuming it; None at the head. A
    /// header the kernel could not have written (a corrupt ring) ends the
    /// reading: the cursor jumps to the head rather than read garbage.
    #[inline]
    pub fn peek(&mut self, c: &mut Cursor) -> Option<Record<'_>> {
        if c.tail >= c.head {
            return None;
        }
        let pos = (c.tail & (self.data_size as u64 - 1)) as usize;
        let header = self.bytes(pos, HEADER_SIZE);
        let kind = u32_at(header, std::mem::offset_of!(PerfEventHeader, type_));
        let at = std::mem::offset_of!(PerfEventHeader, size);
        let size = u16::from_le_bytes([header[at], header[at + 1]]) as usize;
        if size < HEADER_SIZE || size as u64 > c.head - c.tail {
            c.tail = c.head;
            c.size = 0;
            return None;
        }
        c.size = size as u64;
        let record = if pos + size <= self.data_size {
            self.bytes(pos, size)
        } else {
            // Counted once, however often it is peeked.
            if self.last_wrapped != Some(c.tail) {
                self.last_wrapped = Some(c.tail);
                self.wrapped_records += 1;
            }
            self.unwrap_record(pos, size)
        };
        Some(match kind {
            PERF_RECORD_SAMPLE if size >= RAW_AT => {
                let len = u32_at(record, std::mem::offset_of!(PerfRecordRaw, size));
                let end = RAW_AT.saturating_add(len as usize).min(size);
                Record::Sample(&record[RAW_AT..end])
            }
            PERF_RECORD_LOST if size >= size_of::<PerfRecordLost>() => Record::Lost(
                u64::from_le_bytes(record[LOST_AT..LOST_AT + 8].try_into().unwrap_or_default()),
            ),
            _ => Record::Other,
        })
    }

    /// Gives the records consumed through `c` back to the kernel (release
    /// ordering: only after we are done reading them).
    pub fn commit(&self, c: &Cursor) {
        self.atomic(DATA_TAIL).store(c.tail, Ordering::Release);
    }

    /// Reads every record up to the current head; returns how many.
    pub fn read(&mut self, mut on_record: impl FnMut(Record)) -> usize {
        let mut c = self.cursor();
        let mut records = 0;
        while let Some(record) = self.peek(&mut c) {
            on_record(record);
            c.advance();
            records += 1;
        }
        self.commit(&c);
        records
    }

    /// `len` bytes of the data area from `pos`, which must not wrap.
    fn bytes(&self, pos: usize, len: usize) -> &[u8] {
        debug_assert!(pos + len <= self.data_size);
        // SAFETY: inside the mapping, and between tail and head, where the
        // kernel does not write until we move the tail past it; the borrow
        // of self ends before `read` stores the new tail.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(self.data_offset + pos), len) }
    }

    #[cold]
    fn unwrap_record(&mut self, pos: usize, size: usize) -> &[u8] {
        let first = self.data_size - pos;
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        scratch.extend_from_slice(self.bytes(pos, first));
        scratch.extend_from_slice(self.bytes(0, size - first));
        self.scratch = scratch;
        &self.scratch
    }
}

impl AsFd for PerfRing {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.event.as_fd()
    }
}
