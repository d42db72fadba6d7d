//! SIGINT, SIGTERM and SIGHUP (the terminal closed) are blocked in every
//! thread from the first line of main and taken synchronously by the main
//! thread, so shutdown runs as ordinary code, not in a handler, and a
//! signal during start-up waits, pending, for the monitor to look (it does
//! between start-up steps, and stops before attaching). Under `nohup`,
//! SIGHUP stays ignored: an ignored signal is never pending.

use std::time::Duration;

use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};

fn set() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGHUP);
    set
}

/// Must run before any thread is spawned: threads inherit the mask.
pub fn block() {
    let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set()), None);
}

/// Undoes `block` for a command that is not a run (inspect, help).
pub fn unblock() {
    let _ = pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&set()), None);
}

/// Waits up to `timeout` for SIGINT, SIGTERM or SIGHUP; returns it if one
/// came.
pub fn wait(timeout: Duration) -> Option<Signal> {
    let set = set();
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: set and ts are valid for the call; no siginfo is wanted.
    let sig = unsafe { libc::sigtimedwait(set.as_ref(), std::ptr::null_mut(), &ts) };
    Signal::try_from(sig).ok()
}

/// `probe top` on a terminal: SIGWINCH (the terminal was resized) is
/// blocked too, and taken by `wait_or_resize`.
pub fn block_resize() {
    let mut set = SigSet::empty();
    set.add(Signal::SIGWINCH);
    let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None);
}

/// `wait`, returning SIGWINCH as well (once `block_resize` blocked it).
pub fn wait_or_resize(timeout: Duration) -> Option<Signal> {
    let mut set = set();
    set.add(Signal::SIGWINCH);
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: set and ts are valid for the call; no siginfo is wanted.
    let sig = unsafe { libc::sigtimedwait(set.as_ref(), std::ptr::null_mut(), &ts) };
    Signal::try_from(sig).ok()
}
