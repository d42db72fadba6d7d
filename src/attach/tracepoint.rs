//! Attaching to a static tracepoint: its tracefs id, a perf event for it,
//! the program set on that event.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use anyhow::{Context, Result};

use super::tracefs;
use crate::sys::perf;

pub fn attach(prog: BorrowedFd, tracefs: &Path, category: &str, name: &str) -> Result<OwnedFd> {
    let id = tracefs::event_id(tracefs, category, name)?;
    let event = perf::open_tracepoint(id)
        .with_context(|| format!("perf_event_open on tracepoint {category}/{name}"))?;
    super::set_program_and_enable(event.as_fd(), prog)?;
    Ok(event)
}
