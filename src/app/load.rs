//! `probe load FILE`: checks a BPF object against this kernel. It creates
//! the object's maps, loads every program, says what the verifier made of
//! each, and unloads everything again. For learners trying a program of
//! their own: the verifier's verdict without writing a loader.
//!
//! Exit status: 0 when every program loaded, 1 otherwise (or when the file
//! is not a usable object, not a regular file, or larger than
//! `inspect::MAX_OBJECT`).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

use crate::loader::{LoadError, Loaded};
use crate::obj;

/// What happened to each program, as text, and whether all loaded.
pub struct Verdicts {
    pub text: String,
    pub all_loaded: bool,
}

/// Loads every program of the object at `path` and unloads it again.
pub fn run(path: &Path) -> Result<Verdicts> {
    let shown = crate::app::output::format::path(path);
    // A regular file of at most inspect::MAX_OBJECT bytes, or refused
    // before anything is read.
    let bytes = crate::app::inspect::read_object(path)?;
    let spec = obj::parse(&bytes).with_context(|| format!("{shown} is not a usable BPF object"))?;
    let mut loaded = Loaded::create_maps(spec, crate::cpus::possible_count()?)
        .with_context(|| format!("{shown}: its maps could not be created"))?;
    // CO-RE relocations resolve against the running kernel's BTF, or the
    // file PROBE_BTF names (another kernel's; a test's).
    if let Some(btf) = std::env::var_os("PROBE_BTF") {
        loaded.set_target_btf(Path::new(&btf));
    }
    let mut text = String::new();
    for note in loaded.notes() {
        let _ = writeln!(text, "{note}");
    }
    let mut accepted = 0;
    let programs = &loaded.spec.programs;
    for p in programs {
        let _ = write!(text, "{} ({}): ", p.name, p.section);
        let applied_before = loaded.core_applied().len();
        let result = loaded.load_spec(p);
        let applied: Vec<String> = loaded.core_applied().split_off(applied_before);
        match result {
            Ok(program) => {
                accepted += 1;
                let _ = write!(text, "accepted, {} instructions", p.insns.len());
                match program.info() {
                    Ok((info, len)) if len >= crate::sys::bpf::PROG_INFO_VERIFIED_INSNS_END => {
                        let _ =
                            writeln!(text, ", {} processed by the verifier", info.verified_insns);
                    }
                    _ => {
                        let _ = writeln!(
                            text,
                            " (this kernel does not say how many the verifier processed: 5.16+)"
                        );
                    }
                }
            }
            Err(LoadError::Rejected { error, log, .. }) => {
                let _ = writeln!(text, "rejected by the verifier ({error})");
                if !log.is_empty() {
                    let _ = writeln!(text, "{log}");
                }
            }
            Err(e) => {
                let _ = writeln!(text, "not loaded: {e}");
            }
        }
        // Each CO-RE relocation, with what it became on this kernel (a
        // poisoned one explains a verifier's "invalid func
        // unknown#195896080").
        for line in &applied {
            let _ = writeln!(text, "  CO-RE {line}");
        }
    }
    // What the parse step could not take is not loaded either: said, so
    // the count is of every program in the file.
    let mut skipped = 0;
    for s in &loaded.spec.skipped {
        let _ = writeln!(
            text,
            "{} {} ({}): skipped: {}",
            s.kind.label(),
            s.name,
            s.section,
            s.reason
        );
        skipped += (s.kind == obj::SkippedKind::Program) as usize;
    }
    let total = programs.len() + skipped;
    let _ = writeln!(
        text,
        "loaded {accepted} of {total} programs; all unloaded again"
    );
    Ok(Verdicts {
        all_loaded: accepted == total && loaded.spec.skipped.is_empty(),
        text,
    })
}
