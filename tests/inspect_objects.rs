//! `probe inspect` and the parse step on objects built the way other
//! projects build them (tests/objects/, compiled at test time with clang and
//! libbpf's headers): nothing the loader cannot load is left out unsaid,
//! what it would load wrongly is refused, and the exit status tells which.
//! No root needed.
//!
//! Instruction counts and indices are left out of the expectations: they
//! change with the clang version. Everything else is exact.

#[path = "support/test_objects.rs"]
mod test_objects;

use probe::app::inspect::Verdict;
use probe::obj::{self, SkippedKind};

/// `probe inspect` on a test object: exit code, stdout, stderr.
fn inspect(name: &str) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_probe"))
        .arg("inspect")
        .arg(test_objects::path(name))
        .output()
        .expect("run probe inspect");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What inspect printed, without the parts that vary with clang: each
/// program line cut before ` insns=`, and the relocation lines left out.
fn stable(stdout: &str) -> String {
    stdout
        .lines()
        .filter(|l| !l.starts_with("    reloc "))
        .map(|l| match l.find(" insns=") {
            Some(cut) if l.starts_with("  ") => &l[..cut],
            _ => l,
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The parse's skipped list, as (kind, name, section, reason).
fn skipped(name: &str) -> Vec<(SkippedKind, String, String, String)> {
    let spec =
        obj::parse(&test_objects::bytes(name)).unwrap_or_else(|e| panic!("{name}: refused: {e}"));
    spec.skipped
        .into_iter()
        .map(|s| (s.kind, s.name, s.section, s.reason))
        .collect()
}

fn entry(
    kind: SkippedKind,
    name: &str,
    section: &str,
    reason: &str,
) -> (SkippedKind, String, String, String) {
    (kind, name.into(), section.into(), reason.into())
}

/// Checks an object that parses: the exit status, and the stable part of
/// what inspect printed, exactly.
fn assert_inspect(name: &str, code: i32, expected: &str) {
    let (actual_code, stdout, stderr) = inspect(name);
    assert_eq!(stable(&stdout), expected, "{name}: stdout");
    assert!(stderr.is_empty(), "{name}: stderr {stderr:?}");
    assert_eq!(actual_code, code, "{name}: exit code");
    let spec = obj::parse(&test_objects::bytes(name)).unwrap();
    assert_eq!(i32::from(Verdict::of(&spec).exit_code()), code, "{name}");
}

/// Checks an object that is refused: the parse's exact message, and that
/// inspect says it on one line and exits 1.
fn assert_refused(name: &str, message: &str) {
    let error = obj::parse(&test_objects::bytes(name)).unwrap_err();
    assert_eq!(error.to_string(), message, "{name}: parse error");
    let (code, stdout, stderr) = inspect(name);
    let path = test_objects::path(name);
    assert_eq!(
        stderr,
        format!(
            "probe: {} is not a usable BPF object: {message}\n",
            path.display()
        ),
        "{name}: stderr"
    );
    assert!(stdout.is_empty(), "{name}: stdout {stdout:?}");
    assert_eq!(code, 1, "{name}: exit code");
}

const PROGRAM: SkippedKind = SkippedKind::Program;
const MAP: SkippedKind = SkippedKind::Map;
const SECTION: SkippedKind = SkippedKind::Section;

#[test]
fn btf_defined_maps_are_listed_and_so_is_the_program_using_one() {
    let uses = "uses map unlinks, which is skipped (BTF-defined map in .maps not supported)";
    let btf = "BTF-defined map in .maps not supported";
    assert_eq!(
        skipped("btf_maps"),
        [
            entry(PROGRAM, "count_unlinks", "kprobe/do_unlinkat", uses),
            entry(MAP, "unlinks", ".maps", btf),
            entry(MAP, "unused_ring", ".maps", btf),
        ]
    );
    assert_inspect(
        "btf_maps",
        3,
        &format!(
            "license: GPL\n\
             maps: 0\n\
             programs: 1\n\
             \x20 no_map section=tracepoint/syscalls/sys_enter_getpid kind=tracepoint\n\
             skipped: 3\n\
             \x20 program count_unlinks section=kprobe/do_unlinkat: {uses}\n\
             \x20 map unlinks section=.maps: {btf}\n\
             \x20 map unused_ring section=.maps: {btf}\n\
             loadable: in part: 1 program and 2 maps skipped (see above)\n"
        ),
    );
}

#[test]
fn a_program_reading_rodata_alone_is_refused_with_the_real_cause() {
    assert_refused(
        "rodata_config",
        "nothing in it can be loaded by this loader: program on_write (section \
         tracepoint/syscalls/sys_enter_write): uses target_tgid in .rodata, which is \
         skipped (global data not supported)",
    );
}

#[test]
fn a_kretprobe_loads_beside_its_kprobe() {
    assert!(skipped("kretprobe").is_empty());
    assert_inspect(
        "kretprobe",
        0,
        "license: GPL\n\
         maps: 0\n\
         programs: 2\n\
         \x20 unlink_entry section=kprobe/do_unlinkat kind=kprobe\n\
         \x20 unlink_exit section=kretprobe/do_unlinkat kind=kretprobe\n\
         skipped: 0\n\
         loadable: yes\n",
    );
}

#[test]
fn a_program_passing_a_callback_is_skipped() {
    let why = "takes the address of code in .text (callbacks, as bpf_loop takes, not supported)";
    assert_eq!(
        skipped("callback"),
        [entry(
            PROGRAM,
            "loop_four_times",
            "tracepoint/syscalls/sys_enter_getpid",
            why
        )]
    );
    assert_inspect(
        "callback",
        3,
        &format!(
            "license: GPL\n\
             maps: 0\n\
             programs: 1\n\
             \x20 no_loop section=tracepoint/syscalls/sys_enter_getppid kind=tracepoint\n\
             skipped: 1\n\
             \x20 program loop_four_times section=tracepoint/syscalls/sys_enter_getpid: {why}\n\
             loadable: in part: 1 program skipped (see above)\n"
        ),
    );
}

#[test]
fn co_re_relocations_are_refused() {
    assert_refused(
        "core_read",
        "it has 2 CO-RE relocations (BPF_CORE_READ, preserve_access_index), which this \
         loader does not apply, so it would read the wrong kernel memory: read with \
         bpf_probe_read_kernel at fixed offsets, or load it with libbpf",
    );
}

#[test]
fn printk_strings_are_global_data_named_by_their_section() {
    let data = "global data not supported";
    assert_eq!(
        skipped("printk"),
        [
            entry(
                PROGRAM,
                "say_hello",
                "tracepoint/syscalls/sys_enter_getpid",
                "uses .rodata, which is skipped (global data not supported)"
            ),
            entry(
                PROGRAM,
                "say_bye",
                "tracepoint/syscalls/sys_enter_gettid",
                "uses .rodata.str1.1, which is skipped (global data not supported)"
            ),
            entry(SECTION, ".rodata", ".rodata", data),
            entry(SECTION, ".rodata.str1.1", ".rodata.str1.1", data),
        ]
    );
    assert_inspect(
        "printk",
        3,
        "license: GPL\n\
         maps: 0\n\
         programs: 1\n\
         \x20 stay_quiet section=tracepoint/syscalls/sys_enter_getppid kind=tracepoint\n\
         skipped: 4\n\
         \x20 program say_hello section=tracepoint/syscalls/sys_enter_getpid: uses .rodata, which is skipped (global data not supported)\n\
         \x20 program say_bye section=tracepoint/syscalls/sys_enter_gettid: uses .rodata.str1.1, which is skipped (global data not supported)\n\
         \x20 section .rodata: global data not supported\n\
         \x20 section .rodata.str1.1: global data not supported\n\
         loadable: in part: 2 programs and 2 sections skipped (see above)\n",
    );
}

#[test]
fn xdp_and_socket_programs_are_skipped_beside_a_tracepoint_on_legacy_maps() {
    assert_eq!(
        skipped("legacy_mixed"),
        [
            entry(
                PROGRAM,
                "count_packets",
                "xdp",
                "program kind xdp not supported"
            ),
            entry(
                PROGRAM,
                "count_socket",
                "socket",
                "program kind socket not supported"
            ),
        ]
    );
    assert_inspect(
        "legacy_mixed",
        3,
        "license: GPL\n\
         maps: 2\n\
         \x20 packets type=2 key_size=4 value_size=8 max_entries=2 flags=0x0\n\
         \x20 opens type=6 key_size=4 value_size=8 max_entries=1 flags=0x0\n\
         programs: 1\n\
         \x20 count_opens section=tracepoint/syscalls/sys_enter_openat kind=tracepoint\n\
         skipped: 2\n\
         \x20 program count_packets section=xdp: program kind xdp not supported\n\
         \x20 program count_socket section=socket: program kind socket not supported\n\
         loadable: in part: 2 programs skipped (see above)\n",
    );
}

/// The static subprogram is called through the section symbol of `.text`,
/// whose own name is empty: it is shown by its section's name.
#[test]
fn section_symbols_are_shown_by_their_section_name() {
    let (_, stdout, _) = inspect("legacy_mixed");
    let relocs: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("    reloc insn="))
        .map(|l| l.split_once(' ').unwrap().1)
        .collect();
    assert_eq!(
        relocs,
        [
            "symbol=opens -> map opens",
            "symbol=.text -> subprogram bump"
        ]
    );
}

#[test]
fn non_zero_fields_past_a_legacy_map_definition_are_refused() {
    assert_refused(
        "legacy_trailing",
        "map pinned: its 36-byte definition sets fields past the five this loader reads \
         (type, key and value size, max entries, flags), such as iproute2's pinning: clear \
         them, or load the object with the tool it was written for",
    );
}

#[test]
fn zero_fields_past_a_legacy_map_definition_are_accepted() {
    assert_inspect(
        "legacy_zero_trailing",
        0,
        "license: GPL\n\
         maps: 1\n\
         \x20 counters type=2 key_size=4 value_size=8 max_entries=4 flags=0x0\n\
         programs: 1\n\
         \x20 count section=tracepoint/syscalls/sys_enter_getpid kind=tracepoint\n\
         skipped: 0\n\
         loadable: yes\n",
    );
}

#[test]
fn a_perf_event_array_declared_without_sizes_gets_4_and_4() {
    assert_inspect(
        "perf_array",
        0,
        "license: GPL\n\
         maps: 1\n\
         \x20 events type=4 key_size=4 value_size=4 max_entries=0 flags=0x0\n\
         programs: 1\n\
         \x20 send_tgid section=tracepoint/syscalls/sys_enter_getpid kind=tracepoint\n\
         skipped: 0\n\
         loadable: yes\n",
    );
}

#[test]
fn externs_are_refused_by_name() {
    assert_refused(
        "kconfig_extern",
        "it uses extern LINUX_KERNEL_VERSION, which libbpf would resolve at load time and \
         this loader cannot: define it in the object, or load the object with libbpf",
    );
}

#[test]
fn every_other_program_kind_is_named() {
    let kind = |k: &str| format!("program kind {k} not supported");
    let expected = [
        ("an_uprobe", "uprobe//bin/sh:main", kind("uprobe")),
        ("an_fentry", "fentry/do_unlinkat", kind("fentry")),
        ("an_fexit", "fexit/do_unlinkat", kind("fexit")),
        (
            "a_raw_tracepoint",
            "raw_tracepoint.w/sys_enter",
            kind("raw_tracepoint.w"),
        ),
        ("a_tp_btf", "tp_btf/sched_switch", kind("tp_btf")),
        ("an_lsm", "lsm/file_open", kind("lsm")),
        ("a_cgroup_skb", "cgroup_skb/ingress", kind("cgroup_skb")),
        (
            "a_cgroup_sock_addr",
            "cgroup/connect4",
            kind("cgroup/connect4"),
        ),
        ("a_tc", "tc", kind("tc")),
        ("a_classifier", "classifier", kind("classifier")),
        ("a_perf_event", "perf_event", kind("perf_event")),
        ("an_iter", "iter/task", kind("iter")),
        (
            "a_kprobe_without_function",
            "kprobe",
            "names no kernel function to attach to (kprobe/FUNCTION)".into(),
        ),
        (
            "unknown_kind",
            "my_custom_section",
            "unknown program kind".into(),
        ),
        (
            "a_static_function",
            "tracepoint/syscalls/sys_enter_getppid",
            "static function in a program section (this loader loads global functions only)".into(),
        ),
    ];
    assert_eq!(
        skipped("kinds"),
        expected
            .iter()
            .map(|(name, section, why)| entry(PROGRAM, name, section, why))
            .collect::<Vec<_>>()
    );
    let lines: String = expected
        .iter()
        .map(|(name, section, why)| format!("  program {name} section={section}: {why}\n"))
        .collect();
    assert_inspect(
        "kinds",
        3,
        &format!(
            "license: GPL\n\
             maps: 0\n\
             programs: 1\n\
             \x20 supported section=tracepoint/syscalls/sys_enter_getpid kind=tracepoint\n\
             skipped: 15\n\
             {lines}\
             loadable: in part: 15 programs skipped (see above)\n"
        ),
    );
}
