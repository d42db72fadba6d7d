//! A load of exactly known size for the tests and the benchmark: names
//! itself (comm) so a probe can filter on it, then makes exactly N one-byte
//! writes to /dev/null and M one-byte reads from /dev/zero, and nothing
//! else, until it renames itself again to report.
//!
//! loadgen [--comm NAME] [--writes N] [--reads M] [--cpu C] [--rate CALLS_PER_SEC]
//!         [--wait-signal] [--report]
//! loadgen --comm NAME --ring-threads T --rounds K
//!
//! loadgen --comm NAME --returns DIR
//! loadgen --comm NAME --blocked-readers N [--release-after MS]
//! loadgen --comm NAME --short-threads N
//! loadgen --comm NAME --family DIR
//! loadgen --comm NAME --short-procs N [--distinct]
//! loadgen --comm NAME --open-fds N [--hold-ms MS [--every-ms E]]
//! loadgen --comm NAME --ia32 N
//! loadgen [--comm NAME] --getppid N [--cpu C] [--report]
//! loadgen --comm NAME --reuse-pid K [--impostor-ms MS] [--from-thread]
//!
//! `--reuse-pid K` makes a process that writes K known lines and exits,
//! then at once another with the same pid, which writes `secret!!` (see
//! reuse.rs).
//!
//! loadgen --no-pidfd-open PROGRAM ARGS... runs PROGRAM with pidfd_open
//! refused (EPERM) by a seccomp filter, as a container's profile may.
//!
//! `--ia32 N` makes N rounds of 32-bit system calls from this 64-bit
//! program (`int $0x80`: the kernel runs them from its ia32 table, as for
//! a 32-bit program) whose ia32 numbers are those of the read/write
//! family on x86-64: 0 restart_syscall, 3 read, 4 write (of fd -1), 17
//! break, 18 oldstat, 19 lseek, 20 getpid, 295 openat, 296 mkdirat, 327
//! signalfd4, 328 eventfd2 (its fd closed again, ia32 6). Every one fails
//! or does nothing; none is a read or a write of x86-64's. Prints
//! `ia32_calls=C`.
//!
//! `--getppid N` makes N getppid calls (no read, no write: what a probe
//! costs the calls it does not follow), timed like the writes.
//!
//! `--returns DIR` makes calls whose results are known (see calls.rs) and
//! prints each as its caller saw it, `TID read|write FD COUNT RET`, then
//! `blocked_read_ns N`; `--blocked-readers` blocks N threads in reads,
//! releases them after MS ms (default 300; never, with a value of 0), and
//! prints the calls the same way.
//!
//! `--family DIR` makes a fixed list of calls of every syscall of the
//! read/write family (read, write, pread64, pwrite64, readv, writev,
//! preadv, pwritev, preadv2, pwritev2), each through syscall(2) with its
//! own number, all from one thread: on a file it makes in DIR (at offsets,
//! and at its end), on /dev/null and on fd 9999 (closed: EBADF); a readv
//! and a writev of 20 entries. It prints each as its caller saw it, `TID
//! SYSCALL FD COUNT RET`, COUNT the bytes asked for as the probe counts
//! them (for the vector calls, the iov_len of the first 16 entries), and
//! fails if any result is not the one it must be (see family.rs).
//!
//! `--short-procs N` forks N processes one after the other, each making
//! one 1-byte write to /dev/null and one read of fd -1 (EBADF) and exiting:
//! N pids that each made two calls and are gone (`probe top`'s table).
//! With `--distinct` child i names itself NAMEi (cut to 15 bytes) first:
//! N process names (the metrics' series).
//!
//! `--open-fds N` opens /dev/null N times (raising RLIMIT_NOFILE), writes
//! one byte to each fd, then holds them open for MS ms (default 0): N
//! (pid, fd) keys for `probe top --by file`. With `--every-ms E` it writes
//! a byte to each again every E ms while it holds them (every key changes
//! in every interval). Prints `writes=W` at the end.
//!
//! `--short-threads N` starts N threads one after the other, each making
//! one write to /dev/null and exiting: N thread ids that each made a call
//! and are gone.
//!
//! `--ring-threads T` makes T threads that pass bytes around a ring of
//! pipes instead: in round j, thread i writes `1 + (7j + i) % 13` bytes to
//! the next thread's pipe, then reads what the previous one wrote to its
//! own. They block on each other, so they keep moving between CPUs: the
//! load the time-order test compares with strace.
//!
//! `--wait-signal` waits for SIGUSR1 before starting, without a read or a
//! write, so a test can start a probe filtered on this pid first.

mod calls;
mod family;
mod nopidfd;
mod reuse;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

struct Args {
    comm: String,
    writes: u64,
    reads: u64,
    cpu: Option<usize>,
    rate: Option<f64>,
    report: bool,
    wait_signal: bool,
    ring_threads: usize,
    rounds: u64,
    returns: Option<String>,
    blocked_readers: usize,
    release_after_ms: u64,
    short_threads: usize,
    family: Option<String>,
    short_procs: usize,
    open_fds: usize,
    hold_ms: u64,
    every_ms: Option<u64>,
    distinct: bool,
    ia32: u64,
    getppid: u64,
    reuse_pid: Option<u64>,
    impostor_ms: u64,
    from_thread: bool,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        comm: "loadgen".into(),
        writes: 0,
        reads: 0,
        cpu: None,
        rate: None,
        report: false,
        wait_signal: false,
        ring_threads: 0,
        rounds: 0,
        returns: None,
        blocked_readers: 0,
        release_after_ms: 300,
        short_threads: 0,
        family: None,
        short_procs: 0,
        open_fds: 0,
        hold_ms: 0,
        every_ms: None,
        distinct: false,
        ia32: 0,
        getppid: 0,
        reuse_pid: None,
        impostor_ms: 300,
        from_thread: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--report" => {
                a.report = true;
                continue;
            }
            "--wait-signal" => {
                a.wait_signal = true;
                continue;
            }
            "--distinct" => {
                a.distinct = true;
                continue;
            }
            "--from-thread" => {
                a.from_thread = true;
                continue;
            }
            _ => {}
        }
        let v = it.next().ok_or(format!("{flag} needs a value"))?;
        let bad = format!("{flag} {v}: bad value");
        match flag.as_str() {
            "--comm" => a.comm = v.clone(),
            "--writes" => a.writes = v.parse().map_err(|_| bad.clone())?,
            "--reads" => a.reads = v.parse().map_err(|_| bad.clone())?,
            "--cpu" => a.cpu = Some(v.parse().map_err(|_| bad.clone())?),
            "--rate" => a.rate = Some(v.parse().map_err(|_| bad.clone())?),
            "--ring-threads" => a.ring_threads = v.parse().map_err(|_| bad.clone())?,
            "--rounds" => a.rounds = v.parse().map_err(|_| bad.clone())?,
            "--returns" => a.returns = Some(v.clone()),
            "--blocked-readers" => a.blocked_readers = v.parse().map_err(|_| bad.clone())?,
            "--release-after" => a.release_after_ms = v.parse().map_err(|_| bad.clone())?,
            "--short-threads" => a.short_threads = v.parse().map_err(|_| bad.clone())?,
            "--family" => a.family = Some(v.clone()),
            "--short-procs" => a.short_procs = v.parse().map_err(|_| bad.clone())?,
            "--open-fds" => a.open_fds = v.parse().map_err(|_| bad.clone())?,
            "--hold-ms" => a.hold_ms = v.parse().map_err(|_| bad.clone())?,
            "--every-ms" => a.every_ms = Some(v.parse().map_err(|_| bad.clone())?),
            "--ia32" => a.ia32 = v.parse().map_err(|_| bad.clone())?,
            "--getppid" => a.getppid = v.parse().map_err(|_| bad.clone())?,
            "--reuse-pid" => a.reuse_pid = Some(v.parse().map_err(|_| bad.clone())?),
            "--impostor-ms" => a.impostor_ms = v.parse().map_err(|_| bad.clone())?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(a)
}

fn set_comm(name: &str) {
    let mut buf = [0u8; 16];
    let n = name.len().min(15);
    buf[..n].copy_from_slice(&name.as_bytes()[..n]);
    // SAFETY: PR_SET_NAME reads a NUL-terminated buffer of up to 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, buf.as_ptr() as libc::c_ulong, 0, 0, 0) };
}

fn pin(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t with one bit set, passed with its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn sigusr1() -> libc::sigset_t {
    // SAFETY: a sigset built on this thread.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGUSR1);
        set
    }
}

/// SIGUSR1 pending rather than fatal from now on (children inherit it).
fn block_sigusr1() {
    // SAFETY: a valid sigset; this thread's mask only.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &sigusr1(), std::ptr::null_mut()) };
}

/// Blocks SIGUSR1 and waits for it: no read or write on the way.
fn wait_for_sigusr1() {
    block_sigusr1();
    let mut sig = 0;
    // SAFETY: a valid sigset and an int to write to.
    unsafe { libc::sigwait(&sigusr1(), &mut sig) };
}

/// Bytes thread `i` writes in round `j` of the pipe ring.
fn ring_bytes(i: usize, j: u64) -> usize {
    1 + ((7 * j + i as u64) % 13) as usize
}

/// `--ring-threads`: see the top of this file.
fn pipe_ring(threads: usize, rounds: u64) {
    let pipes: Vec<[libc::c_int; 2]> = (0..threads)
        .map(|_| {
            let mut fds = [0; 2];
            // SAFETY: fds has room for two.
            assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
            fds
        })
        .collect();
    let workers: Vec<_> = (0..threads)
        .map(|i| {
            let own = pipes[i][0];
            let next = pipes[(i + 1) % threads][1];
            std::thread::spawn(move || {
                let mut buf = [b'r'; 16];
                for j in 0..rounds {
                    let out = ring_bytes(i, j);
                    let want = ring_bytes((i + threads - 1) % threads, j);
                    // SAFETY: at most 16 bytes to and from a 16-byte buffer.
                    unsafe {
                        assert_eq!(
                            libc::write(next, buf.as_ptr() as *const _, out),
                            out as isize
                        );
                        let mut got = 0;
                        while got < want {
                            let n = libc::read(own, buf.as_mut_ptr() as *mut _, want - got);
                            assert!(n > 0, "read");
                            got += n as usize;
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker");
    }
}

/// `--short-procs`: see the top of this file.
fn short_procs(comm: &str, n: usize, distinct: bool) {
    let sink = File::options()
        .write(true)
        .open("/dev/null")
        .expect("/dev/null");
    let fd = sink.as_raw_fd();
    set_comm(comm);
    for i in 0..n {
        // SAFETY: the child makes two system calls and _exits, touching
        // nothing a fork could have left inconsistent.
        unsafe {
            match libc::fork() {
                0 => {
                    if distinct {
                        set_comm(&format!("{comm}{i}"));
                    }
                    libc::write(fd, b"p".as_ptr() as *const _, 1);
                    let mut b = [0u8; 1];
                    libc::read(-1, b.as_mut_ptr() as *mut _, 1);
                    libc::_exit(0);
                }
                -1 => panic!("fork: {}", std::io::Error::last_os_error()),
                child => {
                    let mut status = 0;
                    libc::waitpid(child, &mut status, 0);
                }
            }
        }
    }
    set_comm("loadgen-done");
}

/// `--open-fds`: see the top of this file.
fn open_fds(comm: &str, n: usize, hold_ms: u64, every_ms: Option<u64>) {
    let want = n as u64 + 64;
    let limit = libc::rlimit {
        rlim_cur: want,
        rlim_max: want,
    };
    // SAFETY: setrlimit reads one rlimit.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    let files: Vec<File> = (0..n)
        .map(|_| {
            File::options()
                .write(true)
                .open("/dev/null")
                .expect("open /dev/null (RLIMIT_NOFILE?)")
        })
        .collect();
    set_comm(comm);
    let until = Instant::now() + Duration::from_millis(hold_ms);
    let mut writes = 0u64;
    loop {
        for f in &files {
            // SAFETY: one byte from a live buffer to an open fd.
            unsafe { libc::write(f.as_raw_fd(), b"f".as_ptr() as *const _, 1) };
        }
        writes += files.len() as u64;
        if every_ms.is_none_or(|_| Instant::now() >= until) {
            break;
        }
        std::thread::sleep(Duration::from_millis(every_ms.unwrap_or(0)));
    }
    if every_ms.is_none() {
        std::thread::sleep(until.saturating_duration_since(Instant::now()));
    }
    set_comm("loadgen-done");
    println!("writes={writes}");
}

/// One 32-bit system call through `int $0x80`, arguments in ebx, ecx, edx
/// (ebx is LLVM's own: swapped in and out around the call).
fn int80(nr: u32, a: u32, b: u32, c: u32) -> i32 {
    let ret: i32;
    // SAFETY: the calls made here take no pointer the kernel writes
    // through (0 or -1 arguments); int 0x80 clobbers only eax, and r8-r11
    // are zeroed or kept by the kernel's compat entry.
    unsafe {
        std::arch::asm!(
            "xchg {a:e}, ebx",
            "int 0x80",
            "xchg {a:e}, ebx",
            a = inout(reg) a => _,
            inlateout("eax") nr => ret,
            in("ecx") b,
            in("edx") c,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _,
        );
    }
    ret
}

/// `--ia32`: see the top of this file.
fn ia32_calls(comm: &str, rounds: u64) {
    const NONE: u32 = u32::MAX; // -1
    set_comm(comm);
    let mut calls = 0u64;
    for _ in 0..rounds {
        for (nr, a, b, c) in [
            (0, 0, 0, 0),
            (3, NONE, 0, 1),
            (4, NONE, 0, 1),
            (17, 0, 0, 0),
            (18, 0, 0, 0),
            (19, NONE, 0, 0),
            (20, 0, 0, 0),
            (295, NONE, 0, 0),
            (296, NONE, 0, 0),
            (327, NONE, 0, 0),
        ] {
            int80(nr, a, b, c);
            calls += 1;
        }
        let fd = int80(328, 0, 0, 0);
        calls += 1;
        if fd >= 0 {
            int80(6, fd as u32, 0, 0);
            calls += 1;
        }
    }
    set_comm("loadgen-done");
    println!("ia32_calls={calls}");
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("--no-pidfd-open") {
        eprintln!("loadgen: {}", nopidfd::exec(&argv[2..]));
        std::process::exit(2);
    }
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::exit(2);
        }
    };
    if let Some(writes) = args.reuse_pid {
        std::process::exit(reuse::run(
            &args.comm,
            writes,
            args.impostor_ms,
            args.from_thread,
        ));
    }
    if let Some(dir) = &args.family {
        let mut setup = family::setup(std::path::Path::new(dir));
        set_comm(&args.comm);
        let log = family::run(&mut setup);
        // Renamed before any output: the probe filtering on the comm sees
        // none of what follows.
        set_comm("loadgen-done");
        family::check(&log);
        let mut out = String::new();
        for c in &log {
            out.push_str(&c.line());
            out.push('\n');
        }
        print!("{out}");
        return;
    }
    if args.returns.is_some() || args.blocked_readers > 0 {
        // glibc gives threads malloc arenas of their own, and past the
        // eighth reads /sys/devices/system/cpu/online to size its limit:
        // a read the tests would see but the scenario did not make. With
        // the limit set to one arena, glibc never reads it.
        // SAFETY: mallopt only sets a tunable.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
        let dir = args.returns.clone().unwrap_or_else(|| "/tmp".into());
        let setup = calls::setup(std::path::Path::new(&dir));
        set_comm(&args.comm);
        let (log, blocked) = if args.blocked_readers > 0 {
            let release = match args.release_after_ms {
                0 => Duration::MAX,
                ms => Duration::from_millis(ms),
            };
            (
                calls::blocked_readers(&setup, args.blocked_readers, release),
                Duration::ZERO,
            )
        } else {
            calls::known_results(&setup)
        };
        set_comm("loadgen-done");
        let mut out = String::new();
        for c in &log {
            out.push_str(&c.line());
            out.push('\n');
        }
        out.push_str(&format!("blocked_read_ns {}\n", blocked.as_nanos()));
        print!("{out}");
        return;
    }
    if args.ia32 > 0 {
        ia32_calls(&args.comm, args.ia32);
        return;
    }
    if args.short_procs > 0 {
        short_procs(&args.comm, args.short_procs, args.distinct);
        return;
    }
    if args.open_fds > 0 {
        open_fds(&args.comm, args.open_fds, args.hold_ms, args.every_ms);
        return;
    }
    if args.short_threads > 0 {
        let sink = File::options()
            .write(true)
            .open("/dev/null")
            .expect("/dev/null");
        let fd = sink.as_raw_fd();
        set_comm(&args.comm);
        for _ in 0..args.short_threads {
            std::thread::spawn(move || {
                // SAFETY: one byte from a live buffer to an open fd.
                unsafe { libc::write(fd, b"s".as_ptr() as *const _, 1) };
            })
            .join()
            .expect("thread");
        }
        set_comm("loadgen-done");
        return;
    }
    if args.ring_threads > 0 {
        // Threads take their name from the thread that makes them.
        set_comm(&args.comm);
        pipe_ring(args.ring_threads, args.rounds);
        set_comm("loadgen-done");
        return;
    }
    if let Some(cpu) = args.cpu {
        pin(cpu);
    }
    let sink = File::options()
        .write(true)
        .open("/dev/null")
        .expect("/dev/null");
    let source = File::open("/dev/zero").expect("/dev/zero");
    let (out_fd, in_fd) = (sink.as_raw_fd(), source.as_raw_fd());
    let mut byte = [b'x'];
    let total = args.writes + args.reads + args.getppid;
    // Paced runs check the clock every 64 calls; that costs no syscall.
    let interval = args.rate.map(|r| Duration::from_secs_f64(64.0 / r));

    if args.wait_signal {
        wait_for_sigusr1();
    }
    set_comm(&args.comm);
    let start = Instant::now();
    for i in 0..total {
        // SAFETY: one byte to or from a valid buffer and open fd.
        unsafe {
            if args.getppid > 0 {
                libc::getppid();
            } else if i < args.writes {
                libc::write(out_fd, byte.as_ptr() as *const _, 1);
            } else {
                libc::read(in_fd, byte.as_mut_ptr() as *mut _, 1);
            }
        }
        if let Some(interval) = interval
            && i % 64 == 63
        {
            let due = start + interval * ((i / 64 + 1) as u32);
            while Instant::now() < due {
                std::hint::spin_loop();
            }
        }
    }
    let elapsed = start.elapsed();
    set_comm("loadgen-done");
    if args.report {
        println!(
            "calls={} ns={} ns_per_call={:.1}",
            total,
            elapsed.as_nanos(),
            elapsed.as_nanos() as f64 / total.max(1) as f64
        );
    }
}
