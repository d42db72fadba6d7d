//! Attaching a kprobe through the kprobe PMU (perf_event_open, kernel
//! 4.17+). The probe exists only while its fd does: nothing to clean up,
//! even after SIGKILL.

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd};

use super::AttachError;
use crate::sys::{Fd, perf};

const PMU_TYPE: &str = "/sys/bus/event_source/devices/kprobe/type";

/// The kprobe PMU's perf type, which the kernel numbers at boot.
pub fn pmu_type() -> Result<u32, AttachError> {
    std::fs::read_to_string(PMU_TYPE)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| {
            AttachError::Unsupported(format!(
                "this kernel has no kprobe PMU ({PMU_TYPE} missing: CONFIG_KPROBES off, or older than 4.17)"
            ))
        })
}

pub fn attach(prog: BorrowedFd, pmu_type: u32, function: &str) -> Result<Fd, AttachError> {
    let name = CString::new(function)
        .map_err(|_| AttachError::Failed(format!("bad function name {function:?}")))?;
    let event = perf::open_kprobe(pmu_type, &name).map_err(|e| {
        AttachError::from_io(format_args!("could not create a kprobe on {function}"), &e)
    })?;
    super::set_program_and_enable(event.as_fd(), prog)?;
    Ok(event)
}
