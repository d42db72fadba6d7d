//! pidfd_open(2), and whether a pidfd says its process has exited: a
//! handle on one process, which its pid number is not (a number is given
//! to another process once the first is reaped).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::explain::{self, Fd};

/// A pidfd for process `pid` (a thread-group leader, as the caller's pid
/// namespace numbers it): Linux 5.3+. EINVAL for a thread that is not a
/// leader, ESRCH for no such process; ENOSYS or EPERM where the call is
/// missing or refused (an old kernel, a seccomp profile).
pub fn pidfd_open(pid: u32) -> io::Result<Fd> {
    let raw = libc::pid_t::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
    // SAFETY: pidfd_open takes two integers; a fresh fd is ours alone.
    let r = super::check(unsafe { libc::syscall(libc::SYS_pidfd_open, raw, 0) })
        .map(|fd| unsafe { Fd::from_raw(fd as i32, || format!("pidfd:{pid}")) });
    explain::tell(|| format!("pidfd_open({pid}, 0)"), || Fd::told(&r));
    r
}

/// True once the process of `pidfd` has exited (its pidfd polls readable
/// when the whole thread group is gone, reaped or not). Never blocks; not
/// told to `--explain` (it is asked every few tens of ms while the probe
/// runs, not a step of set-up or teardown).
pub fn pidfd_exited(pidfd: BorrowedFd) -> bool {
    let mut pfd = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd; timeout 0.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    n > 0 && pfd.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
}

/// CLOCK_BOOTTIME in nanoseconds, as this process's time namespace shows
/// it (the kernel's own value plus the namespace's boottime offset).
pub fn boottime_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec to write to.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
