//! `probe inspect FILE`: what the parse step sees in a BPF object, what it
//! skips and why, and whether the loader can load all of it.
//!
//! Exit status (see `Verdict::exit_code`):
//! - 0: every program and map in the object is loadable by this loader;
//! - 1: the object is refused or broken (one line on stderr saying why),
//!   or the file cannot be read, is not a regular file, or is larger than
//!   `MAX_OBJECT` (see `read_object`, which `probe load` uses too);
//! - 3: it parses, but something was skipped (listed under `skipped:`),
//!   so this loader would load only part of it. Not 2, which is bad usage
//!   for every `probe` command.

use std::fmt::Write as _;
use std::fs::{Metadata, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::obj::btf::{Btf, relo};
use crate::obj::{self, MapOrigin, ObjectSpec, RelocTarget, SkippedKind};

/// The largest object file `inspect` and `load` read: 64 MiB. Objects
/// compiled by hand are kilobytes; a kernel's whole BTF is about 6 MiB.
pub const MAX_OBJECT: u64 = 64 << 20;

/// The exit status for an object that is refused or unreadable.
pub const EXIT_REFUSED: u8 = 1;

/// Whether the loader takes the whole object: the last line `inspect`
/// prints, and its exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing skipped.
    Loadable,
    /// Loadable in part: `ObjectSpec::skipped` is not empty.
    Partial,
}

impl Verdict {
    pub fn of(spec: &ObjectSpec) -> Verdict {
        if spec.fully_loadable() {
            Verdict::Loadable
        } else {
            Verdict::Partial
        }
    }

    /// 0 for a fully loadable object, 3 for one loadable in part (1 is an
    /// object refused: `check`'s error).
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Loadable => 0,
            Verdict::Partial => 3,
        }
    }
}

/// Prints what the parse sees in the object at `path` and returns the
/// verdict. Every failure is one line of text (`main` prints it after
/// `probe: `): the parse's own messages escape any control character taken
/// from the file, and the path is escaped here.
pub fn check(path: &Path) -> Result<Verdict> {
    let shown = crate::app::output::format::path(path);
    let bytes = read_object(path)?;
    let spec = obj::parse(&bytes).with_context(|| format!("{shown} is not a usable BPF object"))?;
    print!("{}", describe(&spec));
    Ok(Verdict::of(&spec))
}

/// The bytes of the object file at `path`: a regular file of at most
/// `MAX_OBJECT` bytes, else a one-line refusal, before anything is read.
/// A path is anything a user types: `/dev/zero` (endless), a FIFO (whose
/// open waits for a writer), a directory, a 10 GB file.
///
/// Symlinks are followed: the user named the object, and the checks are
/// made on the file reached. The type is looked at before opening, since
/// opening some devices acts by itself (a tape rewinds, a watchdog arms);
/// then again on the opened descriptor, since the path may have been
/// swapped in between: O_NONBLOCK so that a FIFO swapped in does not hold
/// open(2), O_NOCTTY so that a terminal does not become ours. At most one
/// byte past the cap is read: a file that grew after fstat is refused too.
pub fn read_object(path: &Path) -> Result<Vec<u8>> {
    let shown = crate::app::output::format::path(path);
    let before = std::fs::metadata(path).with_context(|| format!("cannot read {shown}"))?;
    refuse_unless_object_file(&shown, &before)?;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .with_context(|| format!("cannot read {shown}"))?;
    let opened = file
        .metadata()
        .with_context(|| format!("cannot read {shown}"))?;
    refuse_unless_object_file(&shown, &opened)?;
    let mut bytes = Vec::with_capacity(opened.len() as usize);
    Read::take(&file, MAX_OBJECT + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {shown}"))?;
    if bytes.len() as u64 > MAX_OBJECT {
        bail!(
            "{shown} grew past {} MiB while being read: not a BPF object file",
            MAX_OBJECT >> 20
        );
    }
    Ok(bytes)
}

/// Refuses what is not a regular file, or is larger than `MAX_OBJECT`.
fn refuse_unless_object_file(shown: &str, meta: &Metadata) -> Result<()> {
    let t = meta.file_type();
    let kind = match () {
        _ if t.is_file() => None,
        _ if t.is_dir() => Some("a directory"),
        _ if t.is_fifo() => Some("a FIFO"),
        _ if t.is_socket() => Some("a socket"),
        _ if t.is_char_device() => Some("a character device"),
        _ if t.is_block_device() => Some("a block device"),
        _ => Some("something else"),
    };
    if let Some(kind) = kind {
        bail!("{shown} is {kind}, not a regular file: give the path of a BPF object file (.o)");
    }
    if meta.len() > MAX_OBJECT {
        bail!(
            "{shown} is {} bytes, more than the {} MiB a BPF object file may be here: not read",
            meta.len(),
            MAX_OBJECT >> 20
        );
    }
    Ok(())
}

/// `check` for callers that only tell success from failure: an object
/// loadable in part is a success here.
pub fn run(path: &Path) -> Result<()> {
    check(path).map(|_| ())
}

/// The text `inspect` prints, ending with the verdict line.
pub fn describe(spec: &ObjectSpec) -> String {
    let mut s = String::new();
    let license = if spec.license.is_empty() {
        "(none)"
    } else {
        &spec.license
    };
    let _ = writeln!(s, "license: {license}");
    let _ = writeln!(s, "maps: {}", spec.maps.len());
    for (i, m) in spec.maps.iter().enumerate() {
        let from = match m.origin {
            MapOrigin::Legacy => String::new(),
            MapOrigin::Btf => format!(
                " btf: key type {} value type {}",
                m.btf_key_type_id, m.btf_value_type_id
            ),
            MapOrigin::Data => {
                let vars: Vec<String> = spec
                    .globals
                    .iter()
                    .filter(|g| g.map_index == i)
                    .map(|g| format!("{}@{}+{}", g.name, g.offset, g.size))
                    .collect();
                format!(
                    " global data{}: [{}]",
                    if m.freeze { ", frozen" } else { "" },
                    vars.join(",")
                )
            }
        };
        let _ = writeln!(
            s,
            "  {} type={} key_size={} value_size={} max_entries={} flags={:#x}{from}",
            m.name, m.map_type, m.key_size, m.value_size, m.max_entries, m.flags
        );
    }
    let local = spec.btf.as_deref().and_then(|b| Btf::parse(b).ok());
    let _ = writeln!(s, "programs: {}", spec.programs.len());
    for p in &spec.programs {
        let _ = writeln!(
            s,
            "  {} section={} kind={} insns={} subprograms=[{}]",
            p.name,
            p.section,
            p.kind.label(),
            p.insns.len(),
            p.subprograms.join(",")
        );
        for r in &p.relocations {
            let target = match &r.target {
                RelocTarget::Map(m) => format!("map {m}"),
                RelocTarget::Data(m, offset) => format!("map {m} value+{offset}"),
                RelocTarget::Subprogram(f) => format!("subprogram {f}"),
            };
            let _ = writeln!(
                s,
                "    reloc insn={} symbol={} -> {target}",
                r.insn_index, r.symbol
            );
        }
        for c in &p.core {
            let _ = writeln!(
                s,
                "    core insn={} {}",
                c.insn_index,
                relo::describe(local.as_ref(), &c.relo)
            );
        }
    }
    let _ = writeln!(s, "skipped: {}", spec.skipped.len());
    for k in &spec.skipped {
        let _ = match k.kind {
            SkippedKind::Section => writeln!(s, "  section {}: {}", k.name, k.reason),
            kind => writeln!(
                s,
                "  {} {} section={}: {}",
                kind.label(),
                k.name,
                k.section,
                k.reason
            ),
        };
    }
    let _ = writeln!(s, "{}", verdict_line(spec));
    s
}

/// `loadable: yes`, or `loadable: in part: ...` counting what was skipped.
fn verdict_line(spec: &ObjectSpec) -> String {
    if spec.fully_loadable() {
        return "loadable: yes".into();
    }
    let counts: Vec<String> = [SkippedKind::Program, SkippedKind::Map, SkippedKind::Section]
        .into_iter()
        .filter_map(|kind| match spec.skipped_count(kind) {
            0 => None,
            1 => Some(format!("1 {}", kind.label())),
            n => Some(format!("{n} {}s", kind.label())),
        })
        .collect();
    let listed = match counts.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    };
    format!("loadable: in part: {listed} skipped (see above)")
}
