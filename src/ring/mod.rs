//! Per-CPU perf rings: `perf_ring` reads one mmapped ring; `reader` opens one per
//! CPU and drains them all from a single thread. Neither knows what a sample
//! holds: samples are handed on as bytes to a `RecordSink`.

mod perf_ring;
mod reader;

pub use perf_ring::{
    Cursor, MMAP_PAGE_RING_AT, MmapPageRing, PerfEventHeader, PerfRecordLost, PerfRecordRaw,
    PerfRing, Record,
};
pub use reader::{RecordSink, RingSet, StopHandle};
