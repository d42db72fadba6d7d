//! Memory straight from mmap(2): anonymous, for buffers that must go back
//! to the system when they are no longer needed (the allocator keeps
//! freed memory for later, and after a burst that can be a lot of it); and
//! shared with the kernel, for a perf ring or an mmapable BPF array.
//!
//! The shared mappings are part of setting up and are told to `--explain`
//! (`map_shared`, `unmap`); the anonymous ones are not: they are the
//! output queue's memory, taken and given back as the load comes and goes,
//! like the allocator's.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::explain;

/// mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0), told.
pub(crate) fn map_shared(fd: BorrowedFd, len: usize) -> io::Result<*mut u8> {
    // SAFETY: a fresh shared mapping of the fd; the caller owns it.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd.as_raw_fd(),
            0,
        )
    };
    let r = if ptr == libc::MAP_FAILED {
        Err(io::Error::last_os_error())
    } else {
        Ok(ptr as *mut u8)
    };
    explain::tell(
        || {
            format!(
                "mmap(NULL, {len}, PROT_READ|PROT_WRITE, MAP_SHARED, {}, 0)",
                explain::borrowed(fd)
            )
        },
        || match &r {
            Ok(p) => format!("{:p}", *p),
            Err(e) => explain::error(e),
        },
    );
    r
}

/// munmap of a mapping `map_shared` made, told.
///
/// # Safety
/// `ptr` and `len` are such a mapping, unmapped once, and nothing reads
/// or writes it afterwards.
pub(crate) unsafe fn unmap(ptr: *mut u8, len: usize) {
    // SAFETY: the caller's promise.
    let ret = unsafe { libc::munmap(ptr as *mut libc::c_void, len) };
    explain::tell(
        || format!("munmap({ptr:p}, {len})"),
        || match ret {
            0 => "0".into(),
            _ => explain::error(&io::Error::last_os_error()),
        },
    );
}

/// A private anonymous read-write mapping, zero-filled, page-aligned,
/// unmapped on drop. Pages become resident only when first written.
pub struct AnonMapping {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: plain memory owned by this value; who reads or writes it is
// decided by whoever holds it, not by the thread that mapped it.
unsafe impl Send for AnonMapping {}
// SAFETY: as above: shared access is only ever through raw pointers whose
// users keep their own discipline (see queue.rs).
unsafe impl Sync for AnonMapping {}

impl AnonMapping {
    /// Maps `len` bytes (rounded up to whole pages by the kernel).
    pub fn new(len: usize) -> io::Result<AnonMapping> {
        if len == 0 {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        // SAFETY: a fresh anonymous mapping, owned by the result.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(AnonMapping {
            ptr: ptr as *mut u8,
            len,
        })
    }

    /// Where it starts (page-aligned).
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a mapping of no bytes (never made).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for AnonMapping {
    fn drop(&mut self) {
        // SAFETY: ptr and len are the mapping made in new().
        unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
    }
}

/// A shared mapping of a file descriptor (an mmapable BPF array): the
/// kernel and BPF programs write it while we read it, so it is only ever
/// accessed through volatile reads and writes of whole words, and only
/// inside its bounds (the accessors check them). Unmapped on drop.
pub struct SharedMapping {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: memory shared with the kernel, owned by this value; every
// access is a bounds-checked volatile one (see `read_words`).
unsafe impl Send for SharedMapping {}
// SAFETY: as for Send: shared reads and writes go through volatile or
// atomic accesses, or through `bytes`, whose caller vouches for them.
unsafe impl Sync for SharedMapping {}

impl SharedMapping {
    /// Maps the first `len` bytes of `fd`, read-write, shared.
    pub fn new(fd: BorrowedFd, len: usize) -> io::Result<SharedMapping> {
        if len == 0 {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        let ptr = map_shared(fd, len)?;
        Ok(SharedMapping { ptr, len })
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a mapping of no bytes (never made).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `out.len()` words from byte `offset` (8-aligned), each read
    /// once, whole. None if that runs past the end or is not aligned.
    pub fn read_words(&self, offset: usize, out: &mut [u64]) -> Option<()> {
        let end = offset.checked_add(out.len().checked_mul(8)?)?;
        if end > self.len || !offset.is_multiple_of(8) {
            return None;
        }
        for (i, w) in out.iter_mut().enumerate() {
            // SAFETY: in bounds (checked above) and 8-aligned (the mapping
            // is page-aligned and the offset a multiple of 8); volatile,
            // since BPF programs write it concurrently.
            *w = unsafe { std::ptr::read_volatile(self.ptr.add(offset + i * 8) as *const u64) };
        }
        Some(())
    }

    /// The u64 at byte `offset` (8-aligned) as an atomic, for memory a BPF
    /// program updates concurrently; None if out of bounds or unaligned.
    pub fn atomic_u64(&self, offset: usize) -> Option<&std::sync::atomic::AtomicU64> {
        if offset.checked_add(8)? > self.len || !offset.is_multiple_of(8) {
            return None;
        }
        // SAFETY: in bounds and aligned (checked above); the borrow lives
        // no longer than the mapping.
        Some(unsafe { &*(self.ptr.add(offset) as *const std::sync::atomic::AtomicU64) })
    }

    /// `len` bytes from `offset`, borrowed; None if out of bounds.
    ///
    /// # Safety
    /// Nothing may write those bytes while the borrow lives: the caller
    /// knows the writer (a BPF program) leaves them alone until told
    /// (a ring's consumer-owned part).
    pub unsafe fn bytes(&self, offset: usize, len: usize) -> Option<&[u8]> {
        if offset.checked_add(len)? > self.len {
            return None;
        }
        // SAFETY: in bounds (checked above); no concurrent writer (the
        // caller's promise).
        Some(unsafe { std::slice::from_raw_parts(self.ptr.add(offset), len) })
    }

    /// Writes zeros over `len` bytes from `offset` (both multiples of 8).
    /// None if that runs past the end or is not aligned.
    pub fn zero_words(&self, offset: usize, len: usize) -> Option<()> {
        let end = offset.checked_add(len)?;
        if end > self.len || !offset.is_multiple_of(8) || !len.is_multiple_of(8) {
            return None;
        }
        for i in (offset..end).step_by(8) {
            // SAFETY: in bounds and aligned, checked above; volatile, as
            // for reads.
            unsafe { std::ptr::write_volatile(self.ptr.add(i) as *mut u64, 0) };
        }
        Some(())
    }
}

impl Drop for SharedMapping {
    fn drop(&mut self) {
        // SAFETY: ptr and len are the mapping made in new(), and no borrow
        // of it outlives self.
        unsafe { unmap(self.ptr, self.len) };
    }
}
