//! Attaching the loaded programs, one file per method:
//! `kprobe` (perf PMU), `kprobe_legacy` (tracefs kprobe_events) and
//! `tracepoint` (syscalls:sys_enter_*). `auto` tries them in that order.

mod kprobe;
pub mod kprobe_legacy;
pub mod tracefs;
mod tracepoint;

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};

use crate::loader::Loaded;
use crate::obj::ProgramKind;
use crate::sys::perf;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Kprobe,
    KprobeLegacy,
    Tracepoint,
}

impl Method {
    pub const ALL: [Method; 3] = [Method::Kprobe, Method::KprobeLegacy, Method::Tracepoint];

    pub fn name(self) -> &'static str {
        match self {
            Method::Kprobe => "kprobe",
            Method::KprobeLegacy => "kprobe-legacy",
            Method::Tracepoint => "tracepoint",
        }
    }

    pub fn parse(s: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.name() == s)
    }

    fn wants(self, kind: &ProgramKind) -> bool {
        matches!(
            (self, kind),
            (
                Method::Kprobe | Method::KprobeLegacy,
                ProgramKind::Kprobe { .. }
            ) | (Method::Tracepoint, ProgramKind::Tracepoint { .. })
        )
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One attached program. Fields drop in order: the perf event (which
/// detaches the program), then the kprobe_events entry, then the program.
struct Link {
    event: OwnedFd,
    _legacy: Option<kprobe_legacy::LegacyKprobe>,
    _program: OwnedFd,
}

/// Every program attached by one method; detached when dropped.
pub struct Attachment {
    pub method: Method,
    /// Why the methods tried before this one failed (for `auto`).
    pub fallbacks: Vec<String>,
    /// What was done on the way that the user should hear of.
    pub notes: Vec<String>,
    /// The tracefs used, for the methods that need one.
    tracefs: Option<PathBuf>,
    links: Vec<Link>,
}

impl Attachment {
    /// The file detaching will write to (legacy kprobes are removed
    /// through it); None when detaching only closes fds.
    pub fn kprobe_events(&self) -> Option<PathBuf> {
        match (self.method, &self.tracefs) {
            (Method::KprobeLegacy, Some(root)) => Some(root.join("kprobe_events")),
            _ => None,
        }
    }

    /// Disables every event first so no program runs after this returns,
    /// then closes them.
    pub fn detach(self) {
        for link in &self.links {
            let _ = perf::disable(link.event.as_fd());
        }
        drop(self);
    }
}

fn set_program_and_enable(event: BorrowedFd, prog: BorrowedFd) -> Result<()> {
    perf::set_bpf(event, prog).context("could not attach the program to its perf event")?;
    perf::enable(event).context("could not enable the perf event")
}

/// Attaches with `method`, or with the first that works when it is None.
pub fn attach(loaded: &Loaded, method: Option<Method>) -> Result<Attachment> {
    let Some(method) = method else {
        let mut fallbacks = Vec::new();
        for m in Method::ALL {
            match attach_with(loaded, m) {
                Ok(mut a) => {
                    a.fallbacks = fallbacks;
                    return Ok(a);
                }
                Err(e) => fallbacks.push(format!("{m}: {e:#}")),
            }
        }
        return Err(anyhow!("no attach method worked: {}", fallbacks.join("; ")));
    };
    attach_with(loaded, method).with_context(|| format!("could not attach with {method}"))
}

fn attach_with(loaded: &Loaded, method: Method) -> Result<Attachment> {
    let mut attachment = Attachment {
        method,
        fallbacks: Vec::new(),
        notes: Vec::new(),
        tracefs: None,
        links: Vec::new(),
    };
    let tracefs = match method {
        Method::Kprobe => None,
        Method::KprobeLegacy | Method::Tracepoint => {
            let t = tracefs::find_or_mount()?;
            if t.mounted_by_us {
                attachment
                    .notes
                    .push(format!("mounted tracefs on {}", t.root.display()));
            }
            Some(t.root)
        }
    };
    attachment.tracefs = tracefs.clone();
    if let (Method::KprobeLegacy, Some(root)) = (method, &tracefs) {
        for stale in kprobe_legacy::remove_stale(root) {
            attachment.notes.push(format!(
                "removed stale kprobe {}/{stale}",
                kprobe_legacy::GROUP
            ));
        }
    }
    let programs: Vec<_> = loaded
        .spec
        .programs
        .iter()
        .filter(|p| method.wants(&p.kind))
        .collect();
    if programs.is_empty() {
        return Err(anyhow!("the BPF object has no program for {method}"));
    }
    for spec in programs {
        let program = loaded.load_program(spec)?;
        let prog = program.as_fd();
        let (event, legacy) = match (&spec.kind, method, &tracefs) {
            (ProgramKind::Kprobe { function }, Method::Kprobe, _) => {
                (kprobe::attach(prog, function)?, None)
            }
            (ProgramKind::Kprobe { function }, Method::KprobeLegacy, Some(root)) => {
                let (event, k) = kprobe_legacy::attach(prog, root, function)?;
                (event, Some(k))
            }
            (ProgramKind::Tracepoint { category, name }, Method::Tracepoint, Some(root)) => {
                (tracepoint::attach(prog, root, category, name)?, None)
            }
            _ => unreachable!("programs were filtered by method.wants"),
        };
        attachment.links.push(Link {
            event,
            _legacy: legacy,
            _program: program,
        });
    }
    Ok(attachment)
}
