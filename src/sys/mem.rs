//! Anonymous memory straight from mmap(2), for buffers that must go back
//! to the system when they are no longer needed: the allocator keeps
//! freed memory for later, and after a burst that can be a lot of it.

use std::io;

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
