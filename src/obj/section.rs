//! What each section of an object is to this loader, from its header alone
//! (name, type, flags, size): something it reads, something it must list as
//! skipped, or something that carries nothing a loader creates or loads.

use object::elf::{SHF_ALLOC, SHF_EXECINSTR, SHT_NULL};

use super::ProgramKind;

const STRUCT_OPS: &str = "struct_ops maps not supported";
const UNKNOWN_DATA: &str = "neither code, maps nor global data that this loader knows";
const UNNAMED: &str = "its name is not printable text of at most 512 bytes";
const DUPLICATE: &str = "a second section of this name (only the first is read)";
pub(super) const STATIC_PROGRAM: &str =
    "static function in a program section (this loader loads global functions only)";

#[derive(Clone, Debug)]
pub(super) enum Class {
    /// Debug info, BTF, symbol and string tables, relocations, `license`
    /// and `version` (read by name, or not needed), empty sections.
    Ignored,
    /// `.text`: subprograms, appended to the programs that call them.
    Text,
    /// The legacy `maps` section.
    Maps,
    /// Code: the kind its programs attach as, or why they cannot be loaded.
    Programs(Result<ProgramKind, String>),
    /// `.maps`: BTF-defined maps.
    BtfMaps,
    /// `.data`, `.rodata`, `.bss` and `.NAME` under them: global data, one
    /// map each.
    GlobalData,
    /// Bytes other loaders would make a map of (global data, struct_ops),
    /// or an allocated section nobody knows: skipped whole, with why.
    Data(&'static str),
}

/// The class of one section. `name` is None when the name is not short
/// printable text.
pub(super) fn classify(name: Option<&str>, sh_type: u32, flags: u64, size: u64) -> Class {
    let alloc = flags & u64::from(SHF_ALLOC) != 0;
    let exec = flags & u64::from(SHF_EXECINSTR) != 0;
    if sh_type == SHT_NULL {
        return Class::Ignored;
    }
    let Some(name) = name else {
        // Only what would be loaded needs a name to be listed under.
        return if (alloc || exec) && size > 0 {
            Class::Data(UNNAMED)
        } else {
            Class::Ignored
        };
    };
    match name {
        ".text" => return Class::Text,
        "maps" => return Class::Maps,
        "license" | "version" => return Class::Ignored,
        _ => {}
    }
    // Named like a kind this loader attaches: code whatever its flags say,
    // so that a kprobe/... section is loaded or refused, never ignored.
    if let Some(kind) = supported_kind(name) {
        return Class::Programs(kind);
    }
    if size == 0 {
        return Class::Ignored;
    }
    if name == ".maps" {
        return Class::BtfMaps;
    }
    if exec {
        return Class::Programs(Err(unsupported_kind(name)));
    }
    if !alloc {
        return Class::Ignored;
    }
    let data = [".data", ".rodata", ".bss"].iter().any(|prefix| {
        name.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
    });
    if data {
        Class::GlobalData
    } else if name.starts_with(".struct_ops") {
        Class::Data(STRUCT_OPS)
    } else {
        Class::Data(UNKNOWN_DATA)
    }
}

/// Turns every class after the first of `.text` and `maps` into a skipped
/// duplicate: the link step reads one of each, and a second one must not
/// vanish unlisted.
pub(super) fn mark_duplicates(classes: &mut [Class]) {
    let (mut text, mut maps) = (false, false);
    for class in classes {
        let seen = match class {
            Class::Text => &mut text,
            Class::Maps => &mut maps,
            _ => continue,
        };
        if *seen {
            *class = Class::Data(DUPLICATE);
        }
        *seen = true;
    }
}

/// The kinds this loader attaches, or why a section named like one cannot
/// be attached; None for any other name.
fn supported_kind(section: &str) -> Option<Result<ProgramKind, String>> {
    for (kind, ret) in [("kprobe", false), ("kretprobe", true)] {
        if section != kind && !section.starts_with(&format!("{kind}/")) {
            continue;
        }
        let function = section
            .strip_prefix(kind)
            .and_then(|f| f.strip_prefix('/'))
            .unwrap_or_default();
        if function.is_empty() {
            return Some(Err(format!(
                "names no kernel function to attach to ({kind}/FUNCTION)"
            )));
        }
        let function = function.to_string();
        return Some(Ok(if ret {
            ProgramKind::Kretprobe { function }
        } else {
            ProgramKind::Kprobe { function }
        }));
    }
    if section == "raw_tracepoint" || section == "raw_tp" {
        return Some(Err(
            "names no tracepoint to attach to (raw_tracepoint/NAME)".into(),
        ));
    }
    if let Some(name) = ["raw_tracepoint", "raw_tp"]
        .iter()
        .find_map(|kind| section.strip_prefix(kind)?.strip_prefix('/'))
    {
        return Some(if name.is_empty() || name.contains('/') {
            Err("not of the form raw_tracepoint/NAME".into())
        } else {
            Ok(ProgramKind::RawTracepoint {
                name: name.to_string(),
            })
        });
    }
    let rest = match section {
        "tracepoint" | "tp" => "",
        _ => section
            .strip_prefix("tracepoint/")
            .or_else(|| section.strip_prefix("tp/"))?,
    };
    Some(match rest.split_once('/') {
        Some((category, name)) if !category.is_empty() && !name.is_empty() => {
            Ok(ProgramKind::Tracepoint {
                category: category.to_string(),
                name: name.to_string(),
            })
        }
        _ => Err("not of the form tracepoint/CATEGORY/NAME".into()),
    })
}

/// Program kinds libbpf knows by the first part of the section name
/// (libbpf.c, section_defs), none of which this loader attaches.
const OTHER_KINDS: &[&str] = &[
    "kprobe.multi",
    "kretprobe.multi",
    "kprobe.session",
    "ksyscall",
    "kretsyscall",
    "uprobe",
    "uprobe.s",
    "uretprobe",
    "uretprobe.s",
    "uprobe.multi",
    "uprobe.multi.s",
    "uretprobe.multi",
    "uretprobe.multi.s",
    "uprobe.session",
    "usdt",
    "usdt.s",
    "raw_tracepoint",
    "raw_tp",
    "raw_tracepoint.w",
    "raw_tp.w",
    "tp_btf",
    "fentry",
    "fentry.s",
    "fexit",
    "fexit.s",
    "fmod_ret",
    "fmod_ret.s",
    "freplace",
    "lsm",
    "lsm.s",
    "lsm_cgroup",
    "iter",
    "iter.s",
    "syscall",
    "struct_ops",
    "struct_ops.s",
    "xdp",
    "xdp.frags",
    "xdp_devmap",
    "xdp_cpumap",
    "perf_event",
    "socket",
    "sk_reuseport",
    "tc",
    "tcx",
    "netkit",
    "classifier",
    "action",
    "cgroup_skb",
    "cgroup",
    "sockops",
    "sk_skb",
    "sk_msg",
    "sk_lookup",
    "lirc_mode2",
    "flow_dissector",
    "lwt_in",
    "lwt_out",
    "lwt_xmit",
    "lwt_seg6local",
    "netfilter",
];

/// Why the programs of a code section of another kind are skipped.
fn unsupported_kind(section: &str) -> String {
    let mut parts = section.splitn(3, '/');
    let first = parts.next().unwrap_or_default();
    if !OTHER_KINDS.contains(&first) {
        return "unknown program kind".into();
    }
    // cgroup/connect4 and cgroup/sysctl are different program types: the
    // second part says which.
    match (first, parts.next()) {
        ("cgroup", Some(hook)) if !hook.is_empty() => {
            format!("program kind cgroup/{hook} not supported")
        }
        _ => format!("program kind {first} not supported"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODE: u64 = (SHF_ALLOC | SHF_EXECINSTR) as u64;
    const DATA: u64 = SHF_ALLOC as u64;
    const PROGBITS: u32 = object::elf::SHT_PROGBITS;

    fn reason(name: &str) -> String {
        match classify(Some(name), PROGBITS, CODE, 8) {
            Class::Programs(Err(why)) => why,
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn other_program_kinds_are_named() {
        assert_eq!(
            reason("fexit/do_unlinkat"),
            "program kind fexit not supported"
        );
        assert_eq!(reason("xdp"), "program kind xdp not supported");
        assert_eq!(
            reason("cgroup/connect4"),
            "program kind cgroup/connect4 not supported"
        );
        assert_eq!(
            reason("uprobe//bin/sh:main"),
            "program kind uprobe not supported"
        );
        assert_eq!(reason("my_section"), "unknown program kind");
        assert_eq!(
            reason("kprobe"),
            "names no kernel function to attach to (kprobe/FUNCTION)"
        );
        assert_eq!(
            reason("tp/syscalls"),
            "not of the form tracepoint/CATEGORY/NAME"
        );
        assert_eq!(
            reason("raw_tp"),
            "names no tracepoint to attach to (raw_tracepoint/NAME)"
        );
        assert_eq!(
            reason("raw_tracepoint/a/b"),
            "not of the form raw_tracepoint/NAME"
        );
        assert_eq!(
            reason("raw_tp.w/sys_enter"),
            "program kind raw_tp.w not supported"
        );
        for name in ["raw_tracepoint/sys_enter", "raw_tp/sys_enter"] {
            assert!(
                matches!(
                    classify(Some(name), PROGBITS, CODE, 8),
                    Class::Programs(Ok(ProgramKind::RawTracepoint { ref name })) if name == "sys_enter"
                ),
                "{name}"
            );
        }
    }

    #[test]
    fn data_sections_are_global_data_and_the_rest_is_ignored() {
        for name in [
            ".rodata",
            ".rodata.str1.1",
            ".data",
            ".bss",
            ".data.counters",
        ] {
            assert!(
                matches!(classify(Some(name), PROGBITS, DATA, 8), Class::GlobalData),
                "{name}"
            );
        }
        assert!(matches!(
            classify(Some(".rodatax"), PROGBITS, DATA, 8),
            Class::Data(UNKNOWN_DATA)
        ));
        for name in [
            ".BTF",
            ".BTF.ext",
            ".debug_info",
            ".llvm_addrsig",
            ".symtab",
        ] {
            assert!(
                matches!(classify(Some(name), PROGBITS, 0, 8), Class::Ignored),
                "{name}"
            );
        }
        assert!(matches!(
            classify(Some(".rodata"), PROGBITS, DATA, 0),
            Class::Ignored
        ));
        assert!(matches!(
            classify(None, PROGBITS, CODE, 8),
            Class::Data(UNNAMED)
        ));
        assert!(matches!(classify(None, PROGBITS, 0, 8), Class::Ignored));
    }
}
