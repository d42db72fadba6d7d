//! Per-CPU rings: `perf_ring` reads one mmapped perf ring, `map_ring` one
//! CPU's ring of event slots in mmapable BPF arrays (`--ring map`);
//! `reader` drains every CPU's from a single thread. None knows what a
//! sample holds: samples are handed on as bytes to a `RecordSink`.

mod map_ring;
mod perf_ring;
mod reader;

pub use map_ring::{MapRing, MapRings, RingPos};
pub use perf_ring::{
    Cursor, MMAP_PAGE_RING_AT, MmapPageRing, PerfEventHeader, PerfRecordLost, PerfRecordRaw,
    PerfRing, Record,
};
pub use reader::{RecordSink, RingSet, StopHandle};
