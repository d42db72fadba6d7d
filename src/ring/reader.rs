//! All the rings, one per online CPU, drained by one thread.
//!
//! The thread sleeps in epoll until a ring passes its watermark, the
//! latency bound runs out, or it is told to stop; each wake drains every
//! ring to its head (cheap: one load of `data_head` for an idle ring). On
//! stop it drains once more after the programs are detached, so records
//! still under the watermark are delivered, not dropped.

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use super::perf_ring::{PerfRing, Record};

/// Where records go. Implemented by the event side; the ring side never
/// looks inside a sample.
pub trait RecordSink {
    fn sample(&mut self, cpu: u32, payload: &[u8]);
    fn lost(&mut self, cpu: u32, count: u64);
    /// Called after each pass over all rings: the time to hand on a batch.
    fn end_of_pass(&mut self);
}

pub struct RingSet {
    rings: Vec<PerfRing>,
    epoll: OwnedFd,
    stop: Arc<OwnedFd>,
}

/// Wakes the reader thread and tells it to drain one last time and return.
#[derive(Clone)]
pub struct StopHandle(Arc<OwnedFd>);

impl StopHandle {
    pub fn stop(&self) {
        let one: u64 = 1;
        // SAFETY: writing 8 bytes from a live u64 to our eventfd.
        unsafe { libc::write(self.0.as_raw_fd(), &one as *const u64 as *const _, 8) };
    }
}

const STOP_TOKEN: u64 = u64::MAX;

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn epoll_add(epoll: &OwnedFd, fd: libc::c_int, token: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: token,
    };
    // SAFETY: both fds are open; ev is a valid epoll_event.
    cvt(unsafe { libc::epoll_ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) }).map(drop)
}

impl RingSet {
    /// One ring of `data_pages` pages (a power of two) per CPU in `cpus`,
    /// each waking the reader when half full.
    pub fn open(cpus: &[u32], data_pages: usize) -> io::Result<RingSet> {
        // SAFETY: plain fd-creating syscalls; results are checked.
        let epoll = unsafe { OwnedFd::from_raw_fd(cvt(libc::epoll_create1(libc::EPOLL_CLOEXEC))?) };
        let stop = unsafe {
            OwnedFd::from_raw_fd(cvt(libc::eventfd(
                0,
                libc::EFD_CLOEXEC | libc::EFD_NONBLOCK,
            ))?)
        };
        epoll_add(&epoll, stop.as_raw_fd(), STOP_TOKEN)?;
        let watermark = (crate::sys::perf::page_size() * data_pages / 2) as u32;
        let mut rings = Vec::with_capacity(cpus.len());
        for (i, &cpu) in cpus.iter().enumerate() {
            let ring = PerfRing::open(cpu, data_pages, watermark)?;
            epoll_add(&epoll, ring.as_fd().as_raw_fd(), i as u64)?;
            rings.push(ring);
        }
        Ok(RingSet {
            rings,
            epoll,
            stop: Arc::new(stop),
        })
    }

    pub fn rings(&self) -> &[PerfRing] {
        &self.rings
    }

    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(self.stop.clone())
    }

    /// One pass: every ring read to its head.
    pub fn drain(&mut self, sink: &mut impl RecordSink) -> usize {
        let mut records = 0;
        for ring in &mut self.rings {
            let cpu = ring.cpu();
            records += ring.read(|record| match record {
                Record::Sample(payload) => sink.sample(cpu, payload),
                Record::Lost(count) => sink.lost(cpu, count),
            });
        }
        sink.end_of_pass();
        records
    }

    /// Sleeps until a watermark is passed, `max_latency` runs out or the
    /// stop handle is used; drains after each wake. Returns after the final
    /// drain that follows a stop.
    pub fn run(mut self, sink: &mut impl RecordSink, max_latency: Duration) {
        let timeout = max_latency.as_millis().min(i32::MAX as u128) as i32;
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; self.rings.len() + 1];
        loop {
            // SAFETY: events has room for the number we pass.
            let n = unsafe {
                libc::epoll_wait(
                    self.epoll.as_raw_fd(),
                    events.as_mut_ptr(),
                    events.len() as i32,
                    timeout,
                )
            };
            let stopping = n > 0 && events[..n as usize].iter().any(|e| e.u64 == STOP_TOKEN);
            self.drain(sink);
            if stopping {
                return;
            }
        }
    }
}
