//! epoll(7) and eventfd(2), for the ring reader: one epoll set holding
//! every ring's perf event and an eventfd that tells the reader to stop.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::explain::{self, Fd};

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// An epoll instance; each fd added carries a token that `wait` returns.
pub struct Epoll(Fd);

/// One ready fd: its token.
#[derive(Clone, Copy)]
pub struct Ready(libc::epoll_event);

impl Ready {
    /// The token the fd was added with.
    pub fn token(&self) -> u64 {
        self.0.u64
    }
}

impl Default for Ready {
    fn default() -> Ready {
        Ready(libc::epoll_event { events: 0, u64: 0 })
    }
}

impl Epoll {
    /// A new, empty epoll set.
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: a plain fd-creating syscall; a fresh fd is ours alone.
        let r = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })
            .map(|fd| unsafe { Fd::from_raw(fd, || "epoll".into()) });
        explain::tell(|| "epoll_create1(EPOLL_CLOEXEC)".into(), || Fd::told(&r));
        r.map(Epoll)
    }

    /// Wakes `wait` when `fd` is readable, with `token`.
    pub fn add(&self, fd: BorrowedFd, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: both fds are open; ev is a valid epoll_event.
        let r = cvt(unsafe {
            libc::epoll_ctl(
                self.0.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                fd.as_raw_fd(),
                &mut ev,
            )
        });
        explain::tell(
            || {
                format!(
                    "epoll_ctl({}, EPOLL_CTL_ADD, {}, {{events=EPOLLIN, data={token}}})",
                    explain::fd(self.0.as_raw_fd()),
                    explain::borrowed(fd)
                )
            },
            || explain::result(&r),
        );
        r.map(drop)
    }

    /// Waits up to `timeout_ms` (-1: for ever) for ready fds; returns how
    /// many of `ready` were filled. Interrupted waits return 0.
    pub fn wait(&self, ready: &mut [Ready], timeout_ms: i32) -> io::Result<usize> {
        let max = ready.len().min(i32::MAX as usize) as i32;
        // SAFETY: Ready is a transparent epoll_event; `ready` has room for
        // the `max` the kernel may fill.
        let n = unsafe {
            libc::epoll_wait(
                self.0.as_raw_fd(),
                ready.as_mut_ptr() as *mut libc::epoll_event,
                max,
                timeout_ms,
            )
        };
        match cvt(n) {
            Ok(n) => Ok(n as usize),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(e),
        }
    }
}

/// A non-blocking eventfd: one thread signals, another's epoll wakes.
pub struct EventFd(Fd);

impl EventFd {
    /// A new eventfd at 0.
    pub fn new() -> io::Result<EventFd> {
        // SAFETY: a plain fd-creating syscall; a fresh fd is ours alone.
        let r = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })
            .map(|fd| unsafe { Fd::from_raw(fd, || "eventfd".into()) });
        explain::tell(
            || "eventfd2(0, EFD_CLOEXEC|EFD_NONBLOCK)".into(),
            || Fd::told(&r),
        );
        r.map(EventFd)
    }

    /// Its fd, to add to an epoll set.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.0)
    }

    /// Adds 1 to the counter, waking whoever polls it. Cannot block (the
    /// counter would have to reach 2^64 - 1); an error is returned as is.
    /// Told to `--explain` before anything the woken thread does.
    pub fn signal(&self) -> io::Result<()> {
        let one: u64 = 1;
        let write = || {
            // SAFETY: writing 8 bytes from a live u64 to our eventfd.
            let n = unsafe { libc::write(self.0.as_raw_fd(), &one as *const u64 as *const _, 8) };
            if n == 8 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        };
        explain::call_and_tell(
            write,
            || {
                format!(
                    "write({}, \"\\1\\0\\0\\0\\0\\0\\0\\0\", 8)",
                    explain::fd(self.0.as_raw_fd())
                )
            },
            |r| match r {
                Ok(()) => "8".into(),
                Err(e) => explain::error(e),
            },
        )
    }
}
