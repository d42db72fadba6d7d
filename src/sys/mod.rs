//! Thin, typed wrappers over the raw system calls the loader needs: bpf(2),
//! perf_event_open(2) and its ioctls, mmap of a perf ring. Each returns an
//! `OwnedFd` so that closing, and so detaching, is tied to Rust ownership.

pub mod bpf;
pub mod perf;

use std::io;

/// A syscall's `long` result as `io::Result`, errno on failure.
fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}
