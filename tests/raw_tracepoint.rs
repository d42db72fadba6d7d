//! `--attach raw-tracepoint`: one program on `sys_enter` (and one on
//! `sys_exit`) for every syscall of the machine. What only this method
//! must get right: the syscall number is the only thing that says which
//! call it is, and a 32-bit (ia32) call's number means another call
//! (ia32 19 is lseek where x86-64's 19 is readv); and it needs no tracefs,
//! so CAP_BPF and CAP_PERFMON suffice. The family's calls, exact call for
//! call, are in tests/family.rs and tests/top.rs (run on each method).

#[macro_use]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use common::*;

/// tests/support/ia32.c built as a 32-bit program (gcc -m32: Debian's
/// gcc-multilib, which scripts/test installs).
fn ia32_program(dir: &Path) -> PathBuf {
    let out = dir.join("ia32");
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/ia32.c");
    let built = Command::new("gcc")
        .args(["-m32", "-O2", "-Wall", "-o"])
        .arg(&out)
        .arg(source)
        .output()
        .expect("gcc");
    assert!(
        built.status.success(),
        "gcc -m32 (install gcc-multilib): {}",
        String::from_utf8_lossy(&built.stderr)
    );
    out
}

/// Runs a load to completion and returns what it printed as `KEY=N`.
fn run_counting(command: &mut Command, key: &str) -> u64 {
    let out = command.output().expect("spawn");
    assert!(out.status.success(), "{command:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    text.trim()
        .strip_prefix(&format!("{key}="))
        .unwrap_or_else(|| panic!("{text}"))
        .parse()
        .unwrap()
}

/// Under a probe of the whole family started with `extra` and `env`
/// (as `env K=V probe ...`): a 32-bit program's calls, and a 64-bit
/// program's `int $0x80` calls, all of them numbered like the family's in
/// x86-64's table, are reported as nothing; then 7 writes and 5 reads of
/// a 64-bit program under the same name are reported exactly.
fn ia32_round(tag: &str, method: &str, extra: &[&str], env: &[&str]) {
    let dir = scratch_dir(tag);
    let comm = unique_comm(&tag[..2]);
    let program = ia32_program(&dir);
    let mut args = vec![
        "--attach",
        method,
        "--syscalls",
        "all",
        "-c",
        &comm,
        "--log",
        "i.log",
    ];
    args.extend_from_slice(extra);
    let mut wrapper = vec!["env"];
    wrapper.extend_from_slice(env);
    let stdout = std::fs::File::create(dir.join("stdout")).unwrap();
    let mut probe = Probe::start_wrapped(&dir, &wrapper, &args, Stdio::from(stdout));
    probe.stdout_path = dir.join("stdout");
    let attached = probe.wait_attached();
    assert!(attached.contains(&format!("via {method} ")), "{attached}");

    let from_32 = run_counting(Command::new(&program).args([&comm, "300"]), "ia32_calls");
    assert_eq!(from_32, 300 * 12);
    let from_int80 = run_counting(
        Command::new(LOADGEN).args(["--comm", &comm, "--ia32", "300"]),
        "ia32_calls",
    );
    assert_eq!(from_int80, 300 * 12);
    loadgen(&comm, 7, 5);
    thread::sleep(Duration::from_millis(200));
    let done = probe.stop(libc::SIGINT);
    assert_eq!(exit_code(&done.status), 0, "{:?}", done.stderr);
    assert_eq!(done.counts(), (12, 0), "{:?}", done.stderr);
    let log = std::fs::read_to_string(dir.join("i.log")).unwrap();
    let syscalls: Vec<&str> = event_lines(&log)
        .iter()
        .map(|l| field(l, "syscall"))
        .collect();
    assert_eq!(syscalls.iter().filter(|s| **s == "write").count(), 7);
    assert_eq!(syscalls.iter().filter(|s| **s == "read").count(), 5);
    assert_nothing_left();
}

#[test]
fn ia32_calls_are_never_taken_for_the_family() {
    require_root!();
    let _turn = serial();
    // Entry and exit programs; and the tracepoints, which skip ia32 calls
    // themselves, for comparison.
    ia32_round("i32entry", "raw-tracepoint", &[], &[]);
    ia32_round("i32exit", "raw-tracepoint", &["--exit"], &[]);
    ia32_round("i32tp", "tracepoint", &["--exit"], &[]);
    // The offset from the kernel's BTF instead of the version rule.
    ia32_round(
        "i32btf",
        "raw-tracepoint",
        &["--exit"],
        &["PROBE_BTF=/sys/kernel/btf/vmlinux"],
    );
}

#[test]
fn the_offset_of_thread_info_status_in_btf_is_the_version_rule() {
    // The probe uses the rule; the kernel's BTF must agree (the VM matrix
    // checks 5.10, where it is 8, and later kernels, 16). The environment
    // is the whole process's: the BTF answer comes from a child.
    require_root!();
    let rule = probe::app::compat::status_offset();
    assert_eq!(rule.source, "for this kernel version");
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "offset_from_probe_btf",
            "--nocapture",
            "--include-ignored",
        ])
        .env("PROBE_BTF", "/sys/kernel/btf/vmlinux")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("offset="))
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(
        line,
        format!("{} from /sys/kernel/btf/vmlinux", rule.offset)
    );
}

/// Run by the test above in a child with PROBE_BTF set.
#[test]
#[ignore = "run by the_offset_of_thread_info_status_in_btf_is_the_version_rule"]
fn offset_from_probe_btf() {
    let found = probe::app::compat::status_offset();
    println!("offset={} {}", found.offset, found.source);
}

#[test]
fn cap_bpf_and_cap_perfmon_alone_suffice() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("rawcaps");
    // SAFETY: chown of our own scratch directory.
    let c = std::ffi::CString::new(dir.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::chown(c.as_ptr(), 65534, 65534) }, 0);
    let comm = unique_comm("rc");
    let nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all,+bpf,+perfmon",
        "--ambient-caps=-all,+bpf,+perfmon",
        "--bounding-set=-all,+bpf,+perfmon",
    ];
    // The tracepoints need tracefs, which nobody may not read.
    let refused = Command::new(nobody[0])
        .args(&nobody[1..])
        .args([PROBE, "--attach", "tracepoint", "-c", &comm, "--no-log"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(
        why.contains("could not attach with tracepoint") && why.contains("Permission denied"),
        "{why}"
    );
    // The raw tracepoints, asked for or found by auto, work.
    for method in [&["--attach", "raw-tracepoint"][..], &[]] {
        let mut args = method.to_vec();
        args.extend_from_slice(&["-c", &comm, "--no-log"]);
        let stdout = std::fs::File::create(dir.join("stdout")).unwrap();
        let mut probe = Probe::start_wrapped(&dir, &nobody, &args, Stdio::from(stdout));
        probe.stdout_path = dir.join("stdout");
        let attached = probe.wait_attached();
        assert!(attached.contains("via raw-tracepoint "), "{attached}");
        loadgen(&comm, 9, 4);
        thread::sleep(Duration::from_millis(200));
        let done = probe.stop(libc::SIGINT);
        assert_eq!(exit_code(&done.status), 0, "{:?}", done.stderr);
        assert_eq!(done.counts(), (13, 0), "{:?}", done.stderr);
        let hellos = done.stdout.lines().count();
        assert_eq!(hellos, 13, "{}", done.stdout);
    }
    assert_nothing_left();
}
