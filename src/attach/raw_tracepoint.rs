//! Attaching to a raw tracepoint (`sys_enter`, `sys_exit`): one bpf(2)
//! call, BPF_RAW_TRACEPOINT_OPEN, which returns the link as an fd. No
//! tracefs and no perf event: CAP_BPF and CAP_PERFMON suffice. The program
//! gets the tracepoint's own arguments (for `sys_enter`: the user's
//! registers and the syscall number) and runs for every call of every
//! syscall, so it filters on the number first. Closing the fd detaches it
//! (`wait_for_running_programs` then waits for runs already under way).

use std::ffi::CString;
use std::os::fd::BorrowedFd;

use super::AttachError;
use crate::sys::{Fd, bpf};

pub fn attach(prog: BorrowedFd, name: &str) -> Result<Fd, AttachError> {
    let c_name = CString::new(name)
        .map_err(|_| AttachError::Failed(format!("raw tracepoint name {name:?} has a NUL")))?;
    bpf::raw_tracepoint_open(&c_name, prog).map_err(|e| {
        // EINVAL before 4.17 (no such command); ENOENT: no such tracepoint.
        if e.raw_os_error() == Some(libc::EINVAL) {
            AttachError::Unsupported(format!(
                "BPF_RAW_TRACEPOINT_OPEN on {name}: {e} (raw tracepoints need Linux 4.17+)"
            ))
        } else {
            AttachError::from_io(format_args!("BPF_RAW_TRACEPOINT_OPEN on {name}"), &e)
        }
    })
}
