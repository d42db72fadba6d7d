//! CO-RE applied by our loader, checked two ways on this kernel: every
//! relocated value (offsets, sizes, existence, enum values, type sizes)
//! is the one libbpf computes for the same object (`bpftool -d prog
//! loadall` prints each instruction it patched), and a program run with
//! them reads exactly what it should (its parent's tgid, its own comm...).
//! A missing kernel BTF is simulated with PROBE_BTF. Needs root.

#[macro_use]
mod common;
#[path = "support/test_objects.rs"]
mod test_objects;

use std::collections::BTreeMap;
use std::process::Command;

use common::*;

/// (program, instruction) -> the value written there, None when poisoned.
type Patches = BTreeMap<(String, usize), Option<i64>>;

/// What libbpf patched, from bpftool's debug output: `prog 'P': relo #k:
/// patched insn #I (ALU/ALU64) imm A -> B`, or `substituting insn #I w/
/// invalid insn` for a poisoned one.
fn libbpf_patches(name: &str) -> Patches {
    let pins = format!("/sys/fs/bpf/probe-core-test-{}", std::process::id());
    let _ = std::fs::remove_dir_all(&pins);
    let out = Command::new("bpftool")
        .args(["-d", "prog", "loadall"])
        .arg(test_objects::path(name))
        .arg(&pins)
        .output()
        .expect("bpftool (scripts/test installs it)");
    let _ = std::fs::remove_dir_all(&pins);
    let log = String::from_utf8_lossy(&out.stderr);
    let mut patches = Patches::new();
    for line in log.lines() {
        let Some(rest) = line.strip_prefix("libbpf: prog '") else {
            continue;
        };
        let Some((prog, rest)) = rest.split_once("': relo #") else {
            continue;
        };
        let insn = |s: &str| -> Option<usize> {
            s.split_once("insn #")?
                .1
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        };
        if rest.contains("patched insn #") {
            let value = rest
                .rsplit_once(" -> ")
                .and_then(|(_, v)| v.trim().parse().ok());
            patches.insert((prog.to_string(), insn(rest).unwrap()), value);
        } else if rest.contains("substituting insn #") {
            patches.insert((prog.to_string(), insn(rest).unwrap()), None);
        }
    }
    assert!(
        !patches.is_empty(),
        "{name}: libbpf patched nothing:\n{log}"
    );
    patches
}

/// What our loader applied, from `probe load`'s lines `  CO-RE PROG insn
/// I: KIND PATH = VALUE (object: LOCAL)` or `... poisoned ...`.
fn our_patches(name: &str, env: &[(&str, &str)]) -> (i32, String, Patches) {
    let out = Command::new(env!("CARGO_BIN_EXE_probe"))
        .arg("load")
        .arg(test_objects::path(name))
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut patches = Patches::new();
    for line in stdout.lines() {
        let Some(rest) = line.strip_prefix("  CO-RE ") else {
            continue;
        };
        let (prog, rest) = rest.split_once(" insn ").unwrap();
        let (insn, rest) = rest.split_once(':').unwrap();
        let value = if rest.contains(" poisoned") {
            None
        } else {
            let v = rest.split_once(" = ").unwrap().1;
            Some(v.split_whitespace().next().unwrap().parse().unwrap())
        };
        patches.insert((prog.to_string(), insn.parse().unwrap()), value);
    }
    (out.status.code().unwrap_or(-1), stdout, patches)
}

#[test]
fn every_relocated_value_is_libbpfs() {
    if !root_or_skip() {
        return;
    }
    let _serial = serial();
    let spec = probe::obj::parse(&test_objects::bytes("core_fields")).unwrap();
    assert_eq!(
        spec.programs[0].core.len(),
        12,
        "every kind of core_fields.c"
    );
    for name in ["core_read", "core_fields", "core_missing"] {
        let (code, stdout, ours) = our_patches(name, &[]);
        // core_missing reaches its poisoned instruction: refused.
        assert_eq!(code, i32::from(name == "core_missing"), "{name}: {stdout}");
        assert_eq!(ours, libbpf_patches(name), "{name}: {stdout}");
    }
}

/// objrun's `global NAME=VALUE` lines.
fn globals(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("global "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn a_co_re_program_reads_the_kernels_fields_where_they_are() {
    if !root_or_skip() {
        return;
    }
    let _serial = serial();
    let child = Command::new(env!("CARGO_BIN_EXE_objrun"))
        .arg(test_objects::path("core_fields"))
        .args(["--set", "target_tgid=self", "--set", "comm0=111"])
        .args(["--attach", "tracepoint", "--getppid", "3"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let objrun = child.id();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let g = globals(&stdout);
    let kernel_btf = std::fs::read("/sys/kernel/btf/vmlinux").unwrap();
    let btf = probe::obj::btf::Btf::parse(&kernel_btf).unwrap();
    let task = btf.ty(btf.composite("task_struct").unwrap()).unwrap();
    let has = |field: &str| u32::from(task.members().any(|m| m.name == field));
    let want: BTreeMap<String, String> = [
        // Read through the relocated offsets: objrun's own tgid, and its
        // parent's, this test.
        ("seen_tgid", objrun.to_string()),
        ("parent_tgid", std::process::id().to_string()),
        ("has_state_new", has("__state").to_string()),
        ("has_state_old", has("state").to_string()),
        ("pid_size", "4".into()),
        // The comm read at the kernel's offset starts with objrun's 'o'.
        ("comm_offset_ok", "1".into()),
        ("tgid_enum", "1".into()),
        ("enum_missing", "0".into()),
        ("task_exists", "1".into()),
        ("nothing_exists", "0".into()),
        ("task_size", task.size().unwrap().to_string()),
        ("old_state_read", has("state").to_string()),
        ("target_tgid", objrun.to_string()),
        ("comm0", "6f".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(g, want, "{stdout}");
}

#[test]
fn an_unresolvable_read_that_runs_is_rejected_and_explained() {
    if !root_or_skip() {
        return;
    }
    let _serial = serial();
    let (code, stdout, patches) = our_patches("core_missing", &[]);
    assert_eq!(code, 1, "{stdout}");
    // Poisoned, as libbpf does, and the verifier names the helper.
    assert_eq!(
        patches.values().filter(|v| v.is_none()).count(),
        1,
        "{stdout}"
    );
    assert!(
        stdout.contains("invalid func unknown#195896080"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "  CO-RE reads_a_missing_field insn 1: byte_off \
             task_struct.no_such_field_in_any_kernel poisoned: not on this kernel \
             (call to helper 0xbad2310 in its place) (object: 0)"
        ),
        "{stdout}"
    );
}

#[test]
fn without_kernel_btf_a_co_re_program_is_refused_in_one_line() {
    if !root_or_skip() {
        return;
    }
    let _serial = serial();
    let (code, stdout, _) = our_patches("core_read", &[("PROBE_BTF", "/nonexistent/vmlinux")]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains(
            "parent_tgid (tracepoint/syscalls/sys_enter_getppid): not loaded: BPF program \
             parent_tgid: CO-RE relocations not applied: no BTF of the kernel to resolve \
             them against: /nonexistent/vmlinux: "
        ),
        "{stdout}"
    );
    // The probe itself uses no CO-RE: it runs without the kernel's BTF.
    let probe = Command::new(env!("CARGO_BIN_EXE_probe"))
        .args(["-d", "0.2", "-q", "--no-log", "--attach", "tracepoint"])
        .env("PROBE_BTF", "/nonexistent/vmlinux")
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&probe.stderr);
    // Every call on the machine is followed: the kernel may skip a few
    // (recursion misses), and a run that lost events exits 4.
    let lost = stderr
        .lines()
        .last()
        .and_then(|l| l.split_once(" lost="))
        .and_then(|(_, n)| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no summary line: {stderr}"));
    let want = if lost > 0 { 4 } else { 0 };
    assert_eq!(probe.status.code(), Some(want), "{stderr}");
    assert!(
        stderr.contains("probe: attached via tracepoint"),
        "{stderr}"
    );
}
