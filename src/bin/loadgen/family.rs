//! `--family DIR`: a fixed list of calls of every syscall of the read/write
//! family, made through `syscall(2)` with the kernel's own numbers (no libc
//! wrapper picks another call), from one thread, on a file made in DIR, on
//! /dev/null and on an fd known to be closed. Each is recorded as its caller
//! saw it and checked against the result it must have: the list is the
//! same on every run, call for call.
//!
//! `count` is the bytes asked for as the probe defines it: the count of
//! the scalar calls, and for the vector calls the sum of iov_len over the
//! first `IOV_SUMMED` entries only (bpf/event.h).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

/// The entries of a vector the probe sums (bpf/event.h IOV_SUMMED).
pub const IOV_SUMMED: usize = 16;

/// The fd of the bad-fd calls, checked closed before the calls.
const BAD_FD: i32 = 9999;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sys {
    Read,
    Write,
    Pread64,
    Pwrite64,
    Readv,
    Writev,
    Preadv,
    Pwritev,
    Preadv2,
    Pwritev2,
}

impl Sys {
    fn name(self) -> &'static str {
        match self {
            Sys::Read => "read",
            Sys::Write => "write",
            Sys::Pread64 => "pread64",
            Sys::Pwrite64 => "pwrite64",
            Sys::Readv => "readv",
            Sys::Writev => "writev",
            Sys::Preadv => "preadv",
            Sys::Pwritev => "pwritev",
            Sys::Preadv2 => "preadv2",
            Sys::Pwritev2 => "pwritev2",
        }
    }

    fn vector(self) -> bool {
        matches!(
            self,
            Sys::Readv | Sys::Writev | Sys::Preadv | Sys::Pwritev | Sys::Preadv2 | Sys::Pwritev2
        )
    }
}

/// Which fd a step uses.
#[derive(Clone, Copy)]
enum On {
    /// The file in DIR, opened for writing (its position moves with
    /// write, writev).
    FileOut,
    /// The same file, opened again for reading (its own position).
    FileIn,
    Null,
    Bad,
}

/// One call of the list: the call, its fd, the sizes (one for the scalar
/// calls, the iov_len of each entry for the vector ones), the offset of
/// the positioned calls, and the result it must have (-errno on failure).
struct Step {
    sys: Sys,
    on: On,
    sizes: &'static [usize],
    offset: i64,
    expect: isize,
}

const fn s(sys: Sys, on: On, sizes: &'static [usize], offset: i64, expect: isize) -> Step {
    Step {
        sys,
        on,
        sizes,
        offset,
        expect,
    }
}

const EBADF: isize = -(libc::EBADF as isize);

/// 1, 2, ... 20: twenty entries, of which the probe sums the first 16
/// (136 bytes) while the call moves all 210.
const TWENTY: &[usize] = &[
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
];

/// The calls, in order. The writes come first and leave the file 6,040
/// bytes long (positioned writes at 1000, 2000, 3000, 4000, 5000 and 6000
/// with holes between); the reads then go through it on a second fd.
#[rustfmt::skip]
const STEPS: &[Step] = &[
    // Writes: the file's position goes 0 -> 100 -> 300.
    s(Sys::Write, On::FileOut, &[100], 0, 100),
    s(Sys::Write, On::FileOut, &[200], 0, 200),
    s(Sys::Write, On::Null, &[7], 0, 7),
    s(Sys::Write, On::Bad, &[5], 0, EBADF),
    // At offsets: the position stays at 300.
    s(Sys::Pwrite64, On::FileOut, &[50], 1000, 50),
    s(Sys::Pwrite64, On::FileOut, &[60], 2000, 60),
    s(Sys::Pwrite64, On::Null, &[9], 0, 9),
    s(Sys::Pwrite64, On::Bad, &[5], 0, EBADF),
    // Position 300 -> 360 -> 570.
    s(Sys::Writev, On::FileOut, &[10, 20, 30], 0, 60),
    s(Sys::Writev, On::FileOut, TWENTY, 0, 210),
    s(Sys::Writev, On::Null, &[4, 5], 0, 9),
    s(Sys::Writev, On::Null, &[], 0, 0),
    s(Sys::Writev, On::Bad, &[3, 4], 0, EBADF),
    s(Sys::Pwritev, On::FileOut, &[11, 22], 3000, 33),
    s(Sys::Pwritev, On::FileOut, &[5, 6, 7], 4000, 18),
    s(Sys::Pwritev, On::Null, &[8], 0, 8),
    s(Sys::Pwritev, On::Bad, &[1, 2], 0, EBADF),
    s(Sys::Pwritev2, On::FileOut, &[13, 14], 5000, 27),
    s(Sys::Pwritev2, On::FileOut, &[40], 6000, 40),
    s(Sys::Pwritev2, On::Null, &[3], 0, 3),
    s(Sys::Pwritev2, On::Bad, &[1], 0, EBADF),
    // Reads of the 6,040 bytes: position 0 -> 1000 -> 3000.
    s(Sys::Read, On::FileIn, &[1000], 0, 1000),
    s(Sys::Read, On::FileIn, &[2000], 0, 2000),
    s(Sys::Read, On::Null, &[8], 0, 0),
    s(Sys::Read, On::Bad, &[5], 0, EBADF),
    s(Sys::Pread64, On::FileIn, &[100], 0, 100),
    s(Sys::Pread64, On::FileIn, &[300], 6000, 40),
    s(Sys::Pread64, On::FileIn, &[10], 7000, 0),
    s(Sys::Pread64, On::Null, &[4], 0, 0),
    s(Sys::Pread64, On::Bad, &[4], 0, EBADF),
    // Position 3000 -> 4100 -> 4310.
    s(Sys::Readv, On::FileIn, &[500, 600], 0, 1100),
    s(Sys::Readv, On::FileIn, TWENTY, 0, 210),
    s(Sys::Readv, On::Null, &[2, 3], 0, 0),
    s(Sys::Readv, On::Bad, &[2, 3], 0, EBADF),
    s(Sys::Preadv, On::FileIn, &[64, 32], 0, 96),
    s(Sys::Preadv, On::FileIn, &[128], 5990, 50),
    s(Sys::Preadv, On::Null, &[1], 0, 0),
    s(Sys::Preadv, On::Bad, &[1], 0, EBADF),
    s(Sys::Preadv2, On::FileIn, &[16, 16, 16], 100, 48),
    s(Sys::Preadv2, On::FileIn, &[256], 1024, 256),
    s(Sys::Preadv2, On::Null, &[1], 0, 0),
    s(Sys::Preadv2, On::Bad, &[1], 0, EBADF),
    // The rest of the file (4310 -> 6040), then at its end: 0, twice.
    s(Sys::Read, On::FileIn, &[5000], 0, 1730),
    s(Sys::Read, On::FileIn, &[10], 0, 0),
    s(Sys::Readv, On::FileIn, &[4, 4], 0, 0),
];

/// The longest step: a buffer this big holds every entry of any vector
/// side by side.
const BUF_LEN: usize = 8192;

/// One call as its caller saw it; `ret` is -errno on failure.
pub struct Call {
    tid: i32,
    sys: Sys,
    fd: i32,
    count: usize,
    ret: isize,
    expect: isize,
}

impl Call {
    pub fn line(&self) -> String {
        format!(
            "{} {} {} {} {}",
            self.tid,
            self.sys.name(),
            self.fd,
            self.count,
            self.ret
        )
    }
}

/// Made before the comm changes: the file (one fd to write, one to read),
/// /dev/null, and the buffers.
pub struct Setup {
    out: File,
    input: File,
    null: File,
    buf: Vec<u8>,
    iov: Vec<libc::iovec>,
    log: Vec<Call>,
}

pub fn setup(dir: &Path) -> Setup {
    let path = dir.join("loadgen-family");
    let out = File::create(&path).expect("family file");
    let input = File::open(&path).expect("family file");
    let null = File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .expect("/dev/null");
    // SAFETY: F_GETFD on any number only asks whether it is open.
    let open = unsafe { libc::fcntl(BAD_FD, libc::F_GETFD) } >= 0;
    assert!(!open, "fd {BAD_FD} is open: it must not be");
    Setup {
        out,
        input,
        null,
        buf: vec![b'f'; BUF_LEN],
        iov: Vec::with_capacity(TWENTY.len()),
        log: Vec::with_capacity(STEPS.len()),
    }
}

/// The calls of `STEPS`, in order, on this thread. No read or write of any
/// kind but these, and no allocation (the log and the vector are made in
/// `setup` with room for all). Returns every call; check it with `check`
/// once the comm has changed back.
pub fn run(s: &mut Setup) -> Vec<Call> {
    for step in STEPS {
        let fd = match step.on {
            On::FileOut => s.out.as_raw_fd(),
            On::FileIn => s.input.as_raw_fd(),
            On::Null => s.null.as_raw_fd(),
            On::Bad => BAD_FD,
        };
        let base = s.buf.as_mut_ptr();
        s.iov.clear();
        let mut at = 0;
        for &len in step.sizes {
            assert!(at + len <= BUF_LEN);
            s.iov.push(libc::iovec {
                // SAFETY: within the buffer, as asserted.
                iov_base: unsafe { base.add(at) } as *mut libc::c_void,
                iov_len: len,
            });
            at += len;
        }
        let count = if step.sys.vector() {
            step.sizes.iter().take(IOV_SUMMED).sum()
        } else {
            step.sizes[0]
        };
        let iov = s.iov.as_ptr();
        let vlen = s.iov.len() as libc::c_long;
        // Every argument a long: syscall(2) reads each as one.
        let (fd_l, off, zero) = (
            fd as libc::c_long,
            step.offset as libc::c_long,
            0 as libc::c_long,
        );
        // SAFETY: each call gets the buffer (or an iovec array whose
        // entries lie side by side in it) with no more bytes than it has.
        // The positioned vector calls take the offset as two longs (low,
        // high); on 64 bits the low one holds all of it.
        let n = unsafe {
            match step.sys {
                Sys::Read => libc::syscall(libc::SYS_read, fd_l, base, count),
                Sys::Write => libc::syscall(libc::SYS_write, fd_l, base, count),
                Sys::Pread64 => libc::syscall(libc::SYS_pread64, fd_l, base, count, off),
                Sys::Pwrite64 => libc::syscall(libc::SYS_pwrite64, fd_l, base, count, off),
                Sys::Readv => libc::syscall(libc::SYS_readv, fd_l, iov, vlen),
                Sys::Writev => libc::syscall(libc::SYS_writev, fd_l, iov, vlen),
                Sys::Preadv => libc::syscall(libc::SYS_preadv, fd_l, iov, vlen, off, zero),
                Sys::Pwritev => libc::syscall(libc::SYS_pwritev, fd_l, iov, vlen, off, zero),
                Sys::Preadv2 => libc::syscall(libc::SYS_preadv2, fd_l, iov, vlen, off, zero, zero),
                Sys::Pwritev2 => {
                    libc::syscall(libc::SYS_pwritev2, fd_l, iov, vlen, off, zero, zero)
                }
            }
        };
        let ret = if n < 0 {
            -(std::io::Error::last_os_error().raw_os_error().unwrap_or(0) as isize)
        } else {
            n as isize
        };
        s.log.push(Call {
            // SAFETY: gettid has no preconditions.
            tid: unsafe { libc::gettid() },
            sys: step.sys,
            fd,
            count,
            ret,
            expect: step.expect,
        });
    }
    std::mem::take(&mut s.log)
}

/// Fails, naming the call, if any result is not the one it must be.
pub fn check(log: &[Call]) {
    for c in log {
        assert_eq!(c.ret, c.expect, "unexpected result: {}", c.line());
    }
}
