//! Attaching loaded programs, one file per method: `raw_tracepoint`
//! (`sys_enter`/`sys_exit`, BPF_RAW_TRACEPOINT_OPEN), `kprobe` (perf PMU),
//! `kprobe_legacy` (tracefs kprobe_events) and `tracepoint`
//! (syscalls:sys_enter_*). `auto` tries them in that order (`Method::ALL`
//! says why).
//!
//! Each program is loaded once, and only when a method that uses it is
//! tried: `kprobe-legacy` reuses what `kprobe` loaded. Failures are typed,
//! the way cilium/ebpf's link package types them: a method this kernel
//! does not have (`Unsupported`) or this process may not use
//! (`NotPermitted`) lets `auto` go on to the next; a program the verifier
//! rejects stops it, and its log is shown once.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! # let loaded: probe::loader::Loaded = todo!();
//! use probe::attach::{self, Method};
//! let attachment = attach::attach(&loaded, Some(Method::Tracepoint))?;
//! // ... the programs run on every CPU until:
//! let report = attachment.detach();
//! # Ok(()) }
//! ```

mod kprobe;
pub mod kprobe_legacy;
mod raw_tracepoint;
pub mod tracefs;
mod tracepoint;

use std::fmt;
use std::io;
use std::os::fd::BorrowedFd;
use std::path::PathBuf;
use std::sync::Arc;

use crate::loader::{LoadError, Loaded, Program};
use crate::obj::{ProgramKind, ProgramSpec};
use crate::sys::{Fd, perf};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
/// An attach method: how the programs are hung on read and write.
pub enum Method {
    /// A kprobe through the kprobe PMU (perf_event_open): gone with its fd.
    Kprobe,
    /// A kprobe made in tracefs `kprobe_events`: outlives its process unless removed.
    KprobeLegacy,
    /// The syscall tracepoints `syscalls:sys_enter_*`.
    Tracepoint,
    /// The raw tracepoints `sys_enter`/`sys_exit`, one program for every
    /// syscall, filtering on the number.
    RawTracepoint,
}

impl Method {
    /// Every method, in the order `auto` tries them.
    pub const ALL: [Method; 4] = [
        Method::Kprobe,
        Method::KprobeLegacy,
        Method::Tracepoint,
        Method::RawTracepoint,
    ];

    /// Its name, as `--attach` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Method::Kprobe => "kprobe",
            Method::KprobeLegacy => "kprobe-legacy",
            Method::Tracepoint => "tracepoint",
            Method::RawTracepoint => "raw-tracepoint",
        }
    }

    /// The method called `s`, if any.
    pub fn parse(s: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.name() == s)
    }

    /// Programs of this kind are attached by this method.
    pub fn wants(self, kind: &ProgramKind) -> bool {
        matches!(
            (self, kind),
            (
                Method::Kprobe | Method::KprobeLegacy,
                ProgramKind::Kprobe { .. } | ProgramKind::Kretprobe { .. }
            ) | (Method::Tracepoint, ProgramKind::Tracepoint { .. })
                | (Method::RawTracepoint, ProgramKind::RawTracepoint { .. })
        )
    }
}

/// A program that runs when a call returns: a kretprobe, or a syscall's
/// exit tracepoint.
pub fn is_return_hook(kind: &ProgramKind) -> bool {
    match kind {
        ProgramKind::Kretprobe { .. } => true,
        ProgramKind::Tracepoint { name, .. } | ProgramKind::RawTracepoint { name } => {
            name.starts_with("sys_exit")
        }
        ProgramKind::Kprobe { .. } => false,
    }
}

/// How `attach_with_options` attaches.
#[derive(Clone, Copy, Default)]
pub struct AttachOptions<'a> {
    /// Only the programs for which this says true (None: all of them).
    pub only: Option<&'a dyn Fn(&ProgramSpec) -> bool>,
    /// How many calls each legacy return probe (`r:` in kprobe_events)
    /// can hold in flight; None: `kprobe_legacy::DEFAULT_MAXACTIVE`. The
    /// kprobe PMU takes no such setting: its return probes get the
    /// kernel's default.
    pub legacy_maxactive: Option<u32>,
}

impl Method {}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a method could not attach: the cases a caller must tell apart.
#[derive(Debug)]
pub enum AttachError {
    /// This kernel does not have what the method needs (no kprobe PMU, no
    /// kprobe_events, no tracefs, no such tracepoint or function).
    Unsupported(String),
    /// It has, but this process may not use it (tracefs not writable,
    /// perf_event_open refused).
    NotPermitted(String),
    /// A program could not be loaded: the verifier rejected it, or the
    /// kernel refused BPF altogether.
    Load(LoadError),
    /// Anything else: the kernel's answer, as is.
    Failed(String),
}

impl AttachError {
    /// `auto` tries the next method after these.
    pub fn next_method_may_work(&self) -> bool {
        matches!(
            self,
            AttachError::Unsupported(_) | AttachError::NotPermitted(_)
        )
    }

    /// Sorts an OS error from an attach step into the cases above.
    fn from_io(what: impl fmt::Display, e: &io::Error) -> AttachError {
        let text = format!("{what}: {e}");
        match e.raw_os_error() {
            Some(libc::ENOENT | libc::ENODEV | libc::EOPNOTSUPP | libc::ENOTDIR | 524) => {
                AttachError::Unsupported(text)
            }
            Some(libc::EACCES | libc::EPERM | libc::EROFS) => AttachError::NotPermitted(text),
            _ => AttachError::Failed(text),
        }
    }
}

impl fmt::Display for AttachError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttachError::Unsupported(s) | AttachError::NotPermitted(s) | AttachError::Failed(s) => {
                f.write_str(s)
            }
            AttachError::Load(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for AttachError {}

/// One attached program. Fields drop in order: the perf event or raw
/// tracepoint link (which detaches the program), then the kprobe_events
/// entry, then the program.
struct Link {
    /// The perf event the program hangs off, or the fd of its raw
    /// tracepoint link: closed to stop the program (None once closed).
    event: Option<Fd>,
    _legacy: Option<kprobe_legacy::LegacyKprobe>,
    program: Arc<Program>,
    /// It runs when a call returns (see `is_return_hook`).
    on_return: bool,
}

/// What detaching learned from the kernel about the programs' runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DetachReport {
    /// Calls on which the kernel skipped an entry hook (its recursion
    /// protection); None where this kernel does not count them (see
    /// `Program::recursion_misses`).
    pub recursion_misses: Option<u64>,
    /// The same count for the return hooks: returns whose exit program the
    /// kernel skipped (each leaves its call pending, found as a missed
    /// return). None without return hooks, or where not counted.
    pub return_recursion_misses: Option<u64>,
}

/// A method `auto` tried before the one that attached, and why it did not.
#[derive(Debug)]
pub struct Fallback {
    /// The method tried.
    pub method: Method,
    /// Why it did not attach.
    pub error: AttachError,
}

impl Fallback {
    /// The method is simply absent on this kernel (`Unsupported`: no
    /// kprobe PMU, no kprobe_events, no such tracepoint), which is no
    /// news on every run there: a caller says it only when asked for
    /// details. A refusal (`NotPermitted`: EPERM, EACCES) is always worth
    /// saying: someone could change it.
    pub fn absent(&self) -> bool {
        matches!(self.error, AttachError::Unsupported(_))
    }
}

impl fmt::Display for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.method, self.error)
    }
}

/// Every program attached by one method; detached when dropped.
pub struct Attachment {
    /// The method that attached them.
    pub method: Method,
    /// Why the methods tried before this one failed (for `auto`).
    pub fallbacks: Vec<Fallback>,
    /// What was done on the way that the user should hear of.
    pub notes: Vec<String>,
    /// How many calls at once each return hook follows (returns beyond
    /// are missed, and counted); None without return hooks, or with
    /// tracepoints, which follow every call.
    pub return_maxactive: Option<u32>,
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

    /// The programs attached.
    pub fn programs(&self) -> impl Iterator<Item = &Program> {
        self.links.iter().map(|l| &*l.program)
    }

    /// Stops the entry hooks only (their events closed): no call begins to
    /// be followed after this returns, and the calls already begun still
    /// have their return hooks. `detach` does the rest.
    pub fn disable_entries(&mut self) {
        self.disable(false);
    }

    /// Stops the programs of the entry or the return hooks: their perf
    /// events or raw tracepoint links are closed, then a grace period is
    /// waited for, since closing does not wait for the runs already under
    /// way. Closed, not disabled: PERF_EVENT_IOC_DISABLE takes a
    /// tracepoint or kprobe event off its list of events to record, but
    /// the program stays in the tracepoint's array and runs on every hit
    /// until the event is released. (Disabling was what the probe did
    /// before: the entry hooks ran on through the stop while the return
    /// hooks, closed first, saw nothing, and every call in that window was
    /// a "missed return", a few in a quiet second, thousands under load.)
    fn disable(&mut self, on_return: bool) {
        let mut closed = false;
        for link in self.links.iter_mut().filter(|l| l.on_return == on_return) {
            closed |= link.event.take().is_some();
        }
        if closed {
            crate::sys::wait_for_running_programs();
        }
    }

    /// Calls on which the kernel has skipped the entry hooks so far
    /// (their recursion protection): read from the kernel whenever asked,
    /// so a monitor can show them while it runs. Those of the entry hooks
    /// only: a skipped return hook leaves its call in flight, counted
    /// there. None where this kernel does not count them.
    pub fn recursion_misses(&self) -> Option<u64> {
        self.misses(false)
    }

    /// The same for the return hooks: each exit run the kernel skipped
    /// leaves its call in flight, found as a missed return. None without
    /// return hooks, or where the kernel does not count them.
    pub fn return_recursion_misses(&self) -> Option<u64> {
        self.misses(true)
    }

    /// The recursion misses of the entry hooks (or of the return hooks):
    /// None without such hooks, or where the kernel does not count them.
    fn misses(&self, on_return: bool) -> Option<u64> {
        let mut hooks = self.links.iter().filter(|l| l.on_return == on_return);
        let first = hooks.next()?.program.recursion_misses();
        hooks
            .map(|l| l.program.recursion_misses())
            .fold(first, |sum, n| Some(sum? + n?))
    }

    /// Stops every program first so none runs after this returns: the
    /// entry hooks, then the return hooks (so that no call begins unseen at
    /// its end; what is still in flight then stays in flight). Reads what
    /// the kernel counted, then closes the programs. The
    /// recursion misses of the entry hooks are calls the probe never saw;
    /// those of the return hooks, counted apart, left a call in flight
    /// that the pairing finds as a missed return.
    pub fn detach(mut self) -> DetachReport {
        for on_return in [false, true] {
            self.disable(on_return);
        }
        let report = DetachReport {
            recursion_misses: self.misses(false),
            return_recursion_misses: self.misses(true),
        };
        drop(self);
        report
    }
}

/// Turns the program on once it hangs off its perf event.
fn set_program_and_enable(event: BorrowedFd, prog: BorrowedFd) -> Result<(), AttachError> {
    perf::set_bpf(event, prog)
        .map_err(|e| AttachError::from_io("could not attach the program to its perf event", &e))?;
    perf::enable(event).map_err(|e| AttachError::from_io("could not enable the perf event", &e))
}

/// Programs loaded so far, by their index in the object: each is loaded
/// at most once, however many methods are tried.
struct Programs<'a> {
    loaded: &'a Loaded,
    slots: Vec<Option<Arc<Program>>>,
}

impl Programs<'_> {
    fn get(&mut self, index: usize) -> Result<Arc<Program>, AttachError> {
        if let Some(p) = &self.slots[index] {
            return Ok(p.clone());
        }
        let program = Arc::new(
            self.loaded
                .load_spec(&self.loaded.spec.programs[index])
                .map_err(AttachError::Load)?,
        );
        self.slots[index] = Some(program.clone());
        Ok(program)
    }
}

/// Attaches every program of the object with `method`, or with the first
/// method that works when it is None.
pub fn attach(loaded: &Loaded, method: Option<Method>) -> Result<Attachment, AttachError> {
    attach_with_options(loaded, method, &AttachOptions::default())
}

/// `attach`, with the programs and settings of `options`.
pub fn attach_with_options(
    loaded: &Loaded,
    method: Option<Method>,
    options: &AttachOptions,
) -> Result<Attachment, AttachError> {
    let mut programs = Programs {
        loaded,
        slots: vec![None; loaded.spec.programs.len()],
    };
    let Some(method) = method else {
        let mut fallbacks: Vec<Fallback> = Vec::new();
        for m in Method::ALL {
            match attach_with(&mut programs, m, options) {
                Ok(mut a) => {
                    a.fallbacks = fallbacks;
                    return Ok(a);
                }
                Err(error) if error.next_method_may_work() => {
                    fallbacks.push(Fallback { method: m, error })
                }
                Err(e) => return Err(e),
            }
        }
        let reasons: Vec<String> = fallbacks.iter().map(Fallback::to_string).collect();
        return Err(AttachError::Unsupported(format!(
            "no attach method worked: {}",
            reasons.join("; ")
        )));
    };
    attach_with(&mut programs, method, options).map_err(|e| match e {
        AttachError::Unsupported(s) => {
            AttachError::Unsupported(format!("could not attach with {method}: {s}"))
        }
        AttachError::NotPermitted(s) => {
            AttachError::NotPermitted(format!("could not attach with {method}: {s}"))
        }
        AttachError::Failed(s) => {
            AttachError::Failed(format!("could not attach with {method}: {s}"))
        }
        load => load,
    })
}

/// One method: first what the kernel must have for it (before loading
/// anything), then its programs loaded and attached one by one: the
/// return hooks first, so that every call whose entry is seen has its
/// return seen too.
fn attach_with(
    programs: &mut Programs,
    method: Method,
    options: &AttachOptions,
) -> Result<Attachment, AttachError> {
    let mut attachment = Attachment {
        method,
        fallbacks: Vec::new(),
        notes: Vec::new(),
        return_maxactive: None,
        tracefs: None,
        links: Vec::new(),
    };
    let specs = &programs.loaded.spec.programs;
    let mut wanted: Vec<usize> = (0..specs.len())
        .filter(|&i| method.wants(&specs[i].kind))
        .filter(|&i| options.only.is_none_or(|only| only(&specs[i])))
        .collect();
    wanted.sort_by_key(|&i| !is_return_hook(&specs[i].kind));
    if wanted.is_empty() {
        return Err(AttachError::Unsupported(format!(
            "the BPF object has no program for {method}"
        )));
    }
    let pmu_type = match method {
        Method::Kprobe => Some(kprobe::pmu_type()?),
        _ => None,
    };
    let maxactive = options
        .legacy_maxactive
        .unwrap_or(kprobe_legacy::DEFAULT_MAXACTIVE);
    // (Raw tracepoints and the kprobe PMU need no tracefs.)
    if matches!(method, Method::KprobeLegacy | Method::Tracepoint) {
        let t = tracefs::find_or_mount()?;
        if t.mounted_by_us {
            attachment
                .notes
                .push(format!("mounted tracefs on {}", t.root.display()));
        }
        if method == Method::KprobeLegacy {
            kprobe_legacy::check(&t.root)?;
            for stale in kprobe_legacy::remove_stale(&t.root) {
                attachment.notes.push(format!(
                    "removed stale kprobe {}/{stale}",
                    kprobe_legacy::GROUP
                ));
            }
        }
        attachment.tracefs = Some(t.root);
    }
    for index in wanted {
        let program = programs.get(index)?;
        let prog = program.fd();
        let (event, legacy) = match (program.kind(), method, &attachment.tracefs) {
            (ProgramKind::Kprobe { function }, Method::Kprobe, _) => (
                kprobe::attach(prog, pmu_type.unwrap_or_default(), function, false)?,
                None,
            ),
            (ProgramKind::Kretprobe { function }, Method::Kprobe, _) => {
                attachment.return_maxactive = Some(kprobe::pmu_maxactive());
                (
                    kprobe::attach(prog, pmu_type.unwrap_or_default(), function, true)?,
                    None,
                )
            }
            (ProgramKind::Kprobe { function }, Method::KprobeLegacy, Some(root)) => {
                let (event, k) = kprobe_legacy::attach(prog, root, function, None)?;
                (event, Some(k))
            }
            (ProgramKind::Kretprobe { function }, Method::KprobeLegacy, Some(root)) => {
                attachment.return_maxactive = Some(maxactive);
                let (event, k) = kprobe_legacy::attach(prog, root, function, Some(maxactive))?;
                (event, Some(k))
            }
            (ProgramKind::Tracepoint { category, name }, Method::Tracepoint, Some(root)) => {
                (tracepoint::attach(prog, root, category, name)?, None)
            }
            (ProgramKind::RawTracepoint { name }, Method::RawTracepoint, _) => {
                (raw_tracepoint::attach(prog, name)?, None)
            }
            _ => unreachable!("programs were filtered by method.wants"),
        };
        attachment.links.push(Link {
            event: Some(event),
            _legacy: legacy,
            on_return: is_return_hook(program.kind()),
            program,
        });
    }
    Ok(attachment)
}
