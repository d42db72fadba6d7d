//! SIGINT, SIGTERM and SIGHUP (the terminal closed) are blocked in every
//! thread from the first line of main and taken synchronously by the main
//! thread, so shutdown runs as ordinary code, not in a handler, and a
//! signal during start-up waits, pending, for the monitor to look (it does
//! between start-up steps, and stops before attaching). Under `nohup`,
//! SIGHUP stays ignored: an ignored signal is never pending.
//!
//! SIGUSR1 is blocked with them, so that it never kills a run (its default
//! action): it asks for the log to be reopened at its path (logrotate's
//! `postrotate`). It never stops anything: `wait` takes it, notes it for
//! `take_reopen`, and goes on waiting for the others.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};

fn set() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGHUP);
    set.add(Signal::SIGUSR1);
    set
}

/// A SIGUSR1 came and nobody has asked for it yet.
static REOPEN: AtomicBool = AtomicBool::new(false);

/// Must run before any thread is spawned: threads inherit the mask.
pub fn block() {
    let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set()), None);
}

/// Undoes `block` for a command that is not a run (inspect, help).
pub fn unblock() {
    let _ = pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&set()), None);
}

/// One sigtimedwait on `set` for at most `timeout`.
fn timed_wait(set: &SigSet, timeout: Duration) -> Option<Signal> {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: set and ts are valid for the call; no siginfo is wanted.
    let sig = unsafe { libc::sigtimedwait(set.as_ref(), std::ptr::null_mut(), &ts) };
    Signal::try_from(sig).ok()
}

/// Waits up to `timeout` for a signal of `set` other than SIGUSR1, which
/// is noted for `take_reopen` on the way.
fn wait_in(set: &SigSet, timeout: Duration) -> Option<Signal> {
    let deadline = Instant::now() + timeout;
    loop {
        match timed_wait(set, deadline.saturating_duration_since(Instant::now())) {
            Some(Signal::SIGUSR1) => REOPEN.store(true, Ordering::Relaxed),
            other => return other,
        }
    }
}

/// Waits up to `timeout` for SIGINT, SIGTERM or SIGHUP; returns it if one
/// came. A SIGUSR1 meanwhile is noted (`take_reopen`), not returned.
pub fn wait(timeout: Duration) -> Option<Signal> {
    wait_in(&set(), timeout)
}

/// True once after each SIGUSR1 that `wait` took (several before a look
/// count as one). The monitor's wait loop takes signals every 50 ms.
pub fn take_reopen() -> bool {
    REOPEN.swap(false, Ordering::Relaxed)
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
    wait_in(&set, timeout)
}
