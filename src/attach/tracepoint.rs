//! Attaching to a static tracepoint: its tracefs id, a perf event for it,
//! the program set on that event.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use super::{AttachError, tracefs};
use crate::sys::{Fd, perf};

pub fn attach(
    prog: BorrowedFd,
    tracefs: &Path,
    category: &str,
    name: &str,
) -> Result<Fd, AttachError> {
    let id = tracefs::event_id(tracefs, category, name)?;
    let event = perf::open_tracepoint(id, &format!("{category}/{name}")).map_err(|e| {
        AttachError::from_io(
            format_args!("perf_event_open on tracepoint {category}/{name}"),
            &e,
        )
    })?;
    super::set_program_and_enable(event.as_fd(), prog)?;
    Ok(event)
}
