//! The object's BTF into the kernel (BPF_BTF_LOAD): what lets map entries
//! print as C values in bpftool and, with each program's func_info and
//! line_info, lets the verifier quote the C source line it rejects.
//!
//! BTF is optional for loading: a kernel that refuses the blob still takes
//! the maps and programs without it (the program kinds this loader knows
//! need none), so a refusal is said, not fatal. Before loading, kinds the
//! kernel may not know (FLOAT 5.13, DECL_TAG 5.16, TYPE_TAG 5.17, ENUM64
//! 6.0, VAR/DATASEC 5.2) are probed with a tiny blob each, and the object's
//! are rewritten as older kinds where the kernel lacks them
//! (`obj::btf::fixup::sanitize`).

use crate::obj::btf::fixup::{self, KernelKinds};
use crate::obj::btf::{self, Kind};
use crate::sys::Fd;
use crate::sys::bpf;

/// The object's BTF loaded, or why not; and what was changed to load it.
pub struct ObjectBtf {
    /// The loaded BTF (None: maps and programs go without).
    pub fd: Option<Fd>,
    /// One line each: kinds rewritten, or why the kernel has no BTF of it.
    pub notes: Vec<String>,
}

fn info(kind: Kind, vlen: u32) -> u32 {
    (kind.raw() << 24) | vlen
}

/// The smallest blob that uses `kind` (strings: 1 "int", 5 "v", 7 "t").
fn probe_blob(kind: Kind) -> Vec<u8> {
    const S: &[u8] = b"\0int\0v\0t\0";
    let int = [1, info(Kind::Int, 0), 4, 1 << 24 | 32];
    let var = [5, info(Kind::Var, 0), 1, 1];
    let mut t: Vec<u32> = int.to_vec();
    match kind {
        Kind::Float => t = vec![7, info(Kind::Float, 0), 4],
        Kind::DeclTag => t.extend(var.iter().chain(&[7, info(Kind::DeclTag, 0), 2, u32::MAX])),
        Kind::TypeTag => t.extend([7, info(Kind::TypeTag, 0), 1, 0, info(Kind::Ptr, 0), 2]),
        Kind::Enum64 => t = vec![7, info(Kind::Enum64, 1), 8, 5, 1, 0],
        // VAR and DATASEC: a VAR in a DATASEC called "t".
        _ => t.extend(var.iter().chain(&[7, info(Kind::Datasec, 1), 4, 2, 0, 4])),
    }
    btf::blob(&t, S)
}

/// Which of the kinds `used` the kernel knows, one probe each (VAR and
/// DATASEC one probe for both: they came together, in 5.2).
fn probe_kinds(used: &[Kind]) -> KernelKinds {
    let mut kernel = KernelKinds::ALL;
    for &kind in used {
        if kind == Kind::Var && used.contains(&Kind::Datasec) {
            continue;
        }
        kernel.set(kind, bpf::btf_load(&probe_blob(kind), None).is_ok());
    }
    kernel
}

/// Loads the object's BTF, rewritten for this kernel where it must be.
pub fn load(blob: &[u8]) -> ObjectBtf {
    let mut notes = Vec::new();
    let used = fixup::unknown_kinds(blob, &KernelKinds::NONE);
    let kernel = probe_kinds(&used);
    let rewritten: Vec<&str> = used
        .iter()
        .filter(|k| !kernel.knows(**k))
        .map(|k| k.label())
        .collect();
    let sanitized;
    let blob = if rewritten.is_empty() {
        blob
    } else {
        match fixup::sanitize(blob, &kernel) {
            Ok(b) => {
                notes.push(format!(
                    "BTF: this kernel does not know {}: rewritten as older kinds to load",
                    rewritten.join(", ")
                ));
                sanitized = b;
                &sanitized
            }
            Err(why) => {
                notes.push(format!("BTF not loaded: {why}"));
                return ObjectBtf { fd: None, notes };
            }
        }
    };
    match bpf::btf_load(blob, None) {
        Ok(fd) => ObjectBtf {
            fd: Some(fd),
            notes,
        },
        Err(e) => {
            let mut log = vec![0u8; 64 << 10];
            let _ = bpf::btf_load(blob, Some(&mut log));
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]);
            let last = text.lines().rev().find(|l| !l.trim().is_empty());
            notes.push(format!(
                "BTF not loaded ({e}{}): maps and programs load without it \
                 (no C source lines in verifier messages)",
                last.map(|l| format!(": {}", l.trim())).unwrap_or_default()
            ));
            ObjectBtf { fd: None, notes }
        }
    }
}
