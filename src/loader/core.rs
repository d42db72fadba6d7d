//! CO-RE at load time: each relocation of a program resolved against the
//! running kernel's BTF (or the file `Loaded::set_target_btf` names) and
//! written into the program's instructions (`obj::btf::relo`).
//!
//! The kernel's BTF is read once per `Loaded` (about 5 MB, from
//! /sys/kernel/btf/vmlinux), and only when a program has relocations:
//! the probe's own programs have none, so it never reads it.

use std::path::Path;

use crate::obj::btf::Btf;
use crate::obj::btf::relo::{self, Candidates, RelocKind};
use crate::obj::{Insn, ProgramSpec};

/// Applies `spec`'s relocations to `insns`; one line per relocation for
/// `probe load` (`insn 8: byte_off task_struct.tgid = 1268 (object: 4)`).
pub fn apply(
    spec: &ProgramSpec,
    local: Option<&[u8]>,
    target: &[u8],
    insns: &mut [Insn],
) -> Result<Vec<String>, String> {
    let local = local.ok_or("the object has CO-RE relocations but no .BTF")?;
    let local = Btf::parse(local).map_err(|e| format!("the object's BTF: {e}"))?;
    let target = Btf::parse(target).map_err(|e| format!("the kernel's BTF: {e}"))?;
    let relos: Vec<_> = spec.core.iter().map(|c| c.relo).collect();
    let candidates = Candidates::new(&local, &target, &relos);
    let mut lines = Vec::with_capacity(spec.core.len());
    for site in &spec.core {
        let res = relo::resolve(&local, &target, &candidates, &site.relo)
            .map_err(|e| format!("instruction {}: {e}", site.insn_index))?;
        relo::patch(insns, site.insn_index, &res)?;
        let kind = res.kind.label();
        let what = match res.target {
            Some(v) if res.kind == RelocKind::EnumvalValue => format!("= {}", v as i64),
            Some(v) => format!("= {v}"),
            None => format!(
                "poisoned: not on this kernel (call to helper {:#x} in its place)",
                relo::POISON_HELPER
            ),
        };
        lines.push(format!(
            "{} insn {}: {kind} {} {what} (object: {})",
            spec.name, site.insn_index, res.path, res.local
        ));
    }
    Ok(lines)
}

/// The target BTF's bytes, or why there are none.
pub fn read_target(path: &Path) -> Result<Vec<u8>, String> {
    crate::sys::file::read_bytes(path).map_err(|e| {
        format!(
            "no BTF of the kernel to resolve them against: {}: {e}",
            path.display()
        )
    })
}
