//! `--reuse-pid K`: a process, and then another with the same pid, at once
//! (for `-p`: a probe following the first must never report the second).
//!
//! 1. A child, the target, named COMM, waits for SIGUSR1 (no read or write
//!    on the way), then makes K 8-byte writes to /dev/null, `known000`,
//!    `known001`, ..., and exits (with `--from-thread`, the writes are
//!    made by a second thread of it, not its group leader). This prints `target=PID fd=FD` first
//!    (FD: /dev/null's), so a test can start a probe with `-p PID` and
//!    then send the signal.
//! 2. As soon as the target has exited, this reaps it and makes the
//!    impostor with the same pid: clone3 with set_tid (Linux 5.5+; root,
//!    which may choose pids in its own pid namespace). The impostor names
//!    itself `impostor` and writes `secret!!` to /dev/null every
//!    millisecond for `--impostor-ms` ms (default 300), which is longer
//!    than a probe takes to see the target's exit and stop.
//! 3. Prints `impostor=PID writes=N` (PID is the target's, or clone3
//!    failed and this exits 1).

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;

/// The 8 bytes of the target's write `i` (i < 1000).
pub fn known(i: u64) -> [u8; 8] {
    let mut b = *b"known000";
    b[5] = b'0' + (i / 100 % 10) as u8;
    b[6] = b'0' + (i / 10 % 10) as u8;
    b[7] = b'0' + (i % 10) as u8;
    b
}

/// `struct clone_args` up to `set_tid_size` (CLONE_ARGS_SIZE_VER1, 5.5).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
}

/// A child with pid `pid` (in this pid namespace), like fork: 0 in the
/// child, the pid in the parent, or the error.
fn fork_as(pid: libc::pid_t) -> std::io::Result<libc::pid_t> {
    let tids = [pid];
    let args = CloneArgs {
        exit_signal: libc::SIGCHLD as u64,
        set_tid: tids.as_ptr() as u64,
        set_tid_size: 1,
        ..CloneArgs::default()
    };
    // SAFETY: clone3 without CLONE_VM is a fork: the child gets a copy of
    // this (single-threaded) process and returns here with 0; `args` and
    // `tids` live across the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            size_of::<CloneArgs>(),
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r as libc::pid_t)
    }
}

fn reap(pid: libc::pid_t) -> bool {
    let mut status = 0;
    // SAFETY: waiting for our own child.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    r == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
}

/// The whole `--reuse-pid` run; the process's exit code.
pub fn run(comm: &str, writes: u64, impostor_ms: u64, from_thread: bool) -> i32 {
    assert!(writes <= 1000, "--reuse-pid: at most 1000 writes");
    let sink = File::options()
        .write(true)
        .open("/dev/null")
        .expect("/dev/null");
    let fd = sink.as_raw_fd();
    let lines: Vec<[u8; 8]> = (0..writes).map(known).collect();
    // Named before the fork, so that the target has its name from its
    // first instant (a probe reads it at its start); SIGUSR1 blocked
    // before it too, so that it waits for the target's sigwait however
    // early it comes.
    super::set_comm(comm);
    super::block_sigusr1();
    // SAFETY: this process is single-threaded; the child makes only
    // async-signal-safe calls (sigwait, write) and _exits.
    let target = unsafe { libc::fork() };
    if target == 0 {
        super::wait_for_sigusr1();
        let write_all = move || {
            for line in &lines {
                // SAFETY: 8 bytes from a live buffer to an open fd.
                unsafe { libc::write(fd, line.as_ptr() as *const _, 8) };
            }
        };
        if from_thread {
            // The child of a single-threaded process: making a thread
            // here is as safe as in any new process.
            let _ = std::thread::spawn(write_all).join();
        } else {
            write_all();
        }
        // SAFETY: ends the child without running the parent's exit code.
        unsafe { libc::_exit(0) };
    }
    assert!(target > 0, "fork: {}", std::io::Error::last_os_error());
    super::set_comm("loadgen-lab");
    let mut out = std::io::stdout();
    let _ = writeln!(out, "target={target} fd={fd}");
    let _ = out.flush();
    if !reap(target) {
        eprintln!("loadgen: the target {target} failed");
        return 1;
    }
    match fork_as(target) {
        Ok(0) => impostor(fd, impostor_ms),
        Ok(pid) => {
            let ok = reap(pid);
            let _ = writeln!(out, "impostor={pid} writes={impostor_ms}");
            if ok { 0 } else { 1 }
        }
        Err(e) => {
            eprintln!("loadgen: clone3 with set_tid={target}: {e}");
            1
        }
    }
}

/// The impostor's life: `ms` writes of `secret!!`, a millisecond apart.
fn impostor(fd: libc::c_int, ms: u64) -> ! {
    super::set_comm("impostor");
    let pause = libc::timespec {
        tv_sec: 0,
        tv_nsec: 1_000_000,
    };
    // On the stack, so in memory the probe's fault-free copy can read: a
    // page of the binary's constants that nothing touched yet is not, and
    // a write to /dev/null never reads its buffer.
    let secret = std::hint::black_box(*b"secret!!");
    for _ in 0..ms {
        // SAFETY: 8 bytes from a live buffer to an open fd; a timespec
        // that lives across the call.
        unsafe {
            libc::write(fd, secret.as_ptr() as *const _, 8);
            libc::nanosleep(&pause, std::ptr::null_mut());
        }
    }
    // SAFETY: ends the child without running the parent's exit code.
    unsafe { libc::_exit(0) }
}
