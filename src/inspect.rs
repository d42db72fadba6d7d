//! `probe inspect FILE`: what the parse step sees in a BPF object.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::obj::{self, ObjectSpec, RelocTarget};

/// Files larger than this are not BPF objects anyone compiled by hand.
const MAX_FILE: u64 = 64 << 20;

/// Every failure is one line of text (`main` prints it after `probe: `):
/// the parse's own messages escape any control character taken from the
/// file, and the path is escaped here.
pub fn run(path: &Path) -> Result<()> {
    let shown = crate::output::format::path(path);
    let size = std::fs::metadata(path)
        .with_context(|| format!("cannot read {shown}"))?
        .len();
    if size > MAX_FILE {
        bail!("{shown} is {} MiB: too large for a BPF object", size >> 20);
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {shown}"))?;
    let spec = obj::parse(&bytes).with_context(|| format!("{shown} is not a usable BPF object"))?;
    print!("{}", describe(&spec));
    Ok(())
}

/// The text `inspect` prints.
pub fn describe(spec: &ObjectSpec) -> String {
    let mut s = String::new();
    let license = if spec.license.is_empty() {
        "(none)"
    } else {
        &spec.license
    };
    let _ = writeln!(s, "license: {license}");
    let _ = writeln!(s, "maps: {}", spec.maps.len());
    for m in &spec.maps {
        let _ = writeln!(
            s,
            "  {} type={} key_size={} value_size={} max_entries={} flags={:#x}",
            m.name, m.map_type, m.key_size, m.value_size, m.max_entries, m.flags
        );
    }
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
                RelocTarget::Subprogram(f) => format!("subprogram {f}"),
            };
            let _ = writeln!(
                s,
                "    reloc insn={} symbol={} -> {target}",
                r.insn_index, r.symbol
            );
        }
    }
    s
}
