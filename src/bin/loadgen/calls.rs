//! The scenarios of `--exit`'s tests: calls whose results are known, each
//! recorded as user space saw it (tid, call, fd, count, what it returned),
//! printed once the comm is changed back, so the tests can compare the
//! probe's report with the truth, call for call.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// One call as its caller saw it; `ret` is -errno on failure.
pub struct Call {
    pub tid: i32,
    pub write: bool,
    pub fd: i32,
    pub count: usize,
    pub ret: isize,
}

impl Call {
    pub fn line(&self) -> String {
        let name = if self.write { "write" } else { "read" };
        format!(
            "{} {name} {} {} {}",
            self.tid, self.fd, self.count, self.ret
        )
    }
}

fn tid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

fn errno() -> isize {
    -(std::io::Error::last_os_error().raw_os_error().unwrap_or(0) as isize)
}

/// read(2) or write(2) on `fd`, recorded.
fn call(log: &mut Vec<Call>, write: bool, fd: i32, buf: &mut [u8], count: usize) -> isize {
    assert!(count <= buf.len());
    // SAFETY: count bytes to or from a live buffer at least that long.
    let n = unsafe {
        if write {
            libc::write(fd, buf.as_ptr() as *const _, count)
        } else {
            libc::read(fd, buf.as_mut_ptr() as *mut _, count)
        }
    };
    let ret = if n < 0 { errno() } else { n as isize };
    log.push(Call {
        tid: tid(),
        write,
        fd,
        count,
        ret,
    });
    ret
}

fn pipe(flags: i32) -> (i32, i32) {
    let mut fds = [0; 2];
    // SAFETY: fds has room for two.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), flags) }, 0, "pipe");
    (fds[0], fds[1])
}

/// Made before the comm changes: what the scenario reads from.
pub struct Setup {
    data: File,
    closed_fd: i32,
    full: (i32, i32),
    blocking: (i32, i32),
    null: File,
    zero: File,
}

/// A file of 7,345 bytes to read 1,000 at a time, an fd number known to be
/// closed, a non-blocking pipe to fill, a blocking one to wait on.
pub fn setup(dir: &Path) -> Setup {
    let path = dir.join("loadgen-data");
    File::create(&path)
        .and_then(|mut f| f.write_all(&[b'd'; 7345]))
        .expect("data file");
    let data = File::open(&path).expect("data file");
    let full = pipe(libc::O_NONBLOCK | libc::O_CLOEXEC);
    let blocking = pipe(libc::O_CLOEXEC);
    let null = File::options()
        .write(true)
        .open("/dev/null")
        .expect("/dev/null");
    let zero = File::open("/dev/zero").expect("/dev/zero");
    // Opened last and closed: no file of the scenario has this number.
    let closed = File::open("/dev/null").expect("/dev/null");
    let closed_fd = closed.as_raw_fd();
    drop(closed);
    Setup {
        data,
        closed_fd,
        full,
        blocking,
        null,
        zero,
    }
}

/// Known results: 7 full reads, a short one (345), two at EOF (0); three
/// writes to a closed fd (EBADF); a pipe written until full (EAGAIN, three
/// times); a read that blocks about 50 ms; and three threads interleaving
/// writes and reads. Returns every call, and how long the blocking read
/// took as seen from user space.
pub fn known_results(s: &Setup) -> (Vec<Call>, Duration) {
    let mut log = Vec::new();
    let mut buf = vec![0u8; 4096];
    let fd = s.data.as_raw_fd();
    while call(&mut log, false, fd, &mut buf, 1000) > 0 {}
    call(&mut log, false, fd, &mut buf, 1000);
    for _ in 0..3 {
        call(&mut log, true, s.closed_fd, &mut buf, 5);
    }
    let mut eagain = 0;
    while eagain < 3 {
        if call(&mut log, true, s.full.1, &mut buf, 4096) == -(libc::EAGAIN as isize) {
            eagain += 1;
        }
    }
    // The writer waits 50 ms, then gives the reader one byte.
    let w = s.blocking.1;
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        let mut log = Vec::new();
        call(&mut log, true, w, &mut [b'z'], 1);
        log
    });
    let started = Instant::now();
    call(&mut log, false, s.blocking.0, &mut buf, 16);
    let blocked = started.elapsed();
    log.extend(writer.join().expect("writer"));
    let (null, zero) = (s.null.as_raw_fd(), s.zero.as_raw_fd());
    let threads: Vec<_> = (1..=3)
        .map(|i| {
            std::thread::spawn(move || {
                let mut log = Vec::new();
                let mut buf = [0u8; 8];
                for _ in 0..30 {
                    call(&mut log, true, null, &mut buf, i);
                    call(&mut log, false, zero, &mut buf, i);
                }
                log
            })
        })
        .collect();
    for t in threads {
        log.extend(t.join().expect("thread"));
    }
    (log, blocked)
}

/// `n` threads each blocked in a read of its own pipe until `release`
/// passes (or for good, if it never does), then one byte to each, then
/// each thread writes a byte to /dev/null: 3n calls, n of them long.
pub fn blocked_readers(s: &Setup, n: usize, release: Duration) -> Vec<Call> {
    let null = s.null.as_raw_fd();
    let (done_tx, done_rx) = mpsc::channel();
    let mut writers = Vec::new();
    for _ in 0..n {
        let (r, w) = pipe(libc::O_CLOEXEC);
        writers.push(w);
        let done = done_tx.clone();
        std::thread::spawn(move || {
            let mut log = Vec::new();
            let mut buf = [0u8; 1];
            call(&mut log, false, r, &mut buf, 1);
            call(&mut log, true, null, &mut buf, 1);
            let _ = done.send(log);
        });
    }
    drop(done_tx);
    std::thread::sleep(release);
    let mut log = Vec::new();
    for w in writers {
        call(&mut log, true, w, &mut [b'r'], 1);
    }
    log.extend(done_rx.iter().flatten());
    log
}
