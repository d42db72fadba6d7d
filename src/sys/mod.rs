//! Thin, typed wrappers over the raw system calls the loader needs: bpf(2),
//! perf_event_open(2) and its ioctls, mmap of a perf ring or a BPF array,
//! epoll and eventfd, pidfd_open(2), and the kernel's files it reads and
//! writes (file.rs). Each new fd is an `Fd` (an owned fd that `--explain`
//! can name and whose close it tells), so that closing, and so detaching,
//! is tied to Rust ownership. Every call is told to `explain` when that is
//! on.

pub mod bpf;
pub mod epoll;
pub mod explain;
pub mod file;
pub mod mem;
pub mod perf;
pub mod process;

pub use explain::Fd;

use std::io;

/// A syscall's `long` result as `io::Result`, errno on failure.
fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// CLOCK_MONOTONIC in nanoseconds: the clock of `bpf_ktime_get_ns`, so the
/// probe's timestamps and this can be compared.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec to write to.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Returns once every CPU has passed through a quiescent state: a BPF
/// program running when this was called has finished (raw tracepoint
/// programs run inside an RCU read-side section, and closing their link
/// does not wait for them). MEMBARRIER_CMD_GLOBAL is a synchronize_rcu()
/// in the kernel (4.16+); it is refused on nohz_full machines, where a
/// pause of 50 ms (many grace periods) stands in for it.
pub fn wait_for_running_programs() {
    const MEMBARRIER_CMD_GLOBAL: libc::c_long = 1;
    // SAFETY: membarrier takes two integers and touches no memory of ours.
    let r = unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0) };
    explain::tell(
        || "membarrier(MEMBARRIER_CMD_GLOBAL, 0)".into(),
        || explain::result(&check(r)),
    );
    if r != 0 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Changes the calling thread's nice value by `by`, within -20..=19, and
/// so its share of a busy CPU (threads it makes later inherit it). Raising
/// it needs no privilege; lowering it needs CAP_SYS_NICE. Best effort:
/// false if refused, which changes nothing.
pub fn renice_this_thread(by: i32) -> bool {
    // SAFETY: plain syscalls about the calling thread.
    unsafe {
        let tid = libc::gettid() as libc::id_t;
        let now = libc::getpriority(libc::PRIO_PROCESS, tid);
        libc::setpriority(libc::PRIO_PROCESS, tid, (now + by).clamp(-20, 19)) == 0
    }
}
