//! `probe inspect` and the parse step on objects built the way other
//! projects build them (tests/objects/, compiled at test time with clang and
//! libbpf's headers): nothing the loader cannot load is left out unsaid,
//! what it would load wrongly is refused, and the exit status tells which;
//! and what is not an object file at all (`/dev/zero`, a FIFO, a directory,
//! a file over the cap) refused before it is read. No root needed (as root,
//! `probe load` is checked on those too).
//!
//! Instruction counts and indices are left out of the expectations: they
//! change with the clang version. Everything else is exact.

#[path = "support/test_objects.rs"]
mod test_objects;

use probe::app::inspect::Verdict;
use probe::obj::{self, MapOrigin, SkippedKind};

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
/// program line cut before ` insns=`, the relocation lines left out, the
/// instruction index of each CO-RE line, and the BTF type ids of each
/// BTF-defined map (checked by name in their own test).
fn stable(stdout: &str) -> String {
    stdout
        .lines()
        .filter(|l| !l.starts_with("    reloc "))
        .map(|l| {
            if let Some(cut) = l.find(" insns=").filter(|_| l.starts_with("  ")) {
                return l[..cut].to_string();
            }
            if let Some(cut) = l.find(" btf: key type ") {
                return format!("{} btf", &l[..cut]);
            }
            match l.strip_prefix("    core insn=") {
                Some(rest) => format!("    core {}", rest.split_once(' ').map_or(rest, |(_, r)| r)),
                None => l.to_string(),
            }
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

#[test]
fn btf_defined_maps_are_read_with_their_types() {
    assert!(skipped("btf_maps").is_empty());
    let spec = obj::parse(&test_objects::bytes("btf_maps")).unwrap();
    let unlinks = &spec.maps[spec.map_index("unlinks").unwrap()];
    assert_eq!(
        (unlinks.map_type, unlinks.key_size, unlinks.value_size),
        (1, 4, 8)
    );
    assert_eq!(unlinks.max_entries, 1024);
    assert_eq!(unlinks.origin, MapOrigin::Btf);
    // The key and value types, given to the kernel with the BTF.
    let btf = spec.btf.as_deref().unwrap();
    let btf = probe::obj::btf::Btf::parse(btf).unwrap();
    assert_eq!(btf.ty(unlinks.btf_key_type_id).unwrap().name(), "u32");
    assert_eq!(btf.ty(unlinks.btf_value_type_id).unwrap().name(), "u64");
    let ring = &spec.maps[spec.map_index("unused_ring").unwrap()];
    assert_eq!((ring.map_type, ring.max_entries), (27, 4096));
    assert_inspect(
        "btf_maps",
        0,
        "license: GPL\n\
         maps: 2\n\
         \x20 unlinks type=1 key_size=4 value_size=8 max_entries=1024 flags=0x0 btf\n\
         \x20 unused_ring type=27 key_size=0 value_size=0 max_entries=4096 flags=0x0 btf\n\
         programs: 2\n\
         \x20 count_unlinks section=kprobe/do_unlinkat kind=kprobe\n\
         \x20 no_map section=tracepoint/syscalls/sys_enter_getpid kind=tracepoint\n\
         skipped: 0\n\
         loadable: yes\n",
    );
}

#[test]
fn btf_maps_this_loader_cannot_create_are_skipped_with_why() {
    let uses =
        "uses map pinned, which is skipped (pinning is not supported (this loader pins nothing))";
    assert_eq!(
        skipped("btf_map_refused"),
        [
            entry(
                PROGRAM,
                "uses_pinned",
                "tracepoint/syscalls/sys_enter_getpid",
                uses
            ),
            entry(
                MAP,
                "pinned",
                ".maps",
                "pinning is not supported (this loader pins nothing)"
            ),
            entry(
                MAP,
                "outer",
                ".maps",
                "initial values (map-in-map, prog arrays) are not supported"
            ),
        ]
    );
    assert_inspect(
        "btf_map_refused",
        3,
        &format!(
            "license: GPL\n\
             maps: 0\n\
             programs: 1\n\
             \x20 uses_none section=tracepoint/syscalls/sys_enter_getppid kind=tracepoint\n\
             skipped: 3\n\
             \x20 program uses_pinned section=tracepoint/syscalls/sys_enter_getpid: {uses}\n\
             \x20 map pinned section=.maps: pinning is not supported (this loader pins nothing)\n\
             \x20 map outer section=.maps: initial values (map-in-map, prog arrays) are not supported\n\
             loadable: in part: 1 program and 2 maps skipped (see above)\n"
        ),
    );
}

#[test]
fn a_const_volatile_setting_is_global_data_in_rodata() {
    assert!(skipped("rodata_config").is_empty());
    let mut spec = obj::parse(&test_objects::bytes("rodata_config")).unwrap();
    let rodata = &spec.maps[0];
    assert_eq!(
        (rodata.name.as_str(), rodata.map_type, rodata.value_size),
        (".rodata", 2, 4)
    );
    assert!(rodata.freeze);
    assert_eq!(rodata.flags, 0x480, "BPF_F_RDONLY_PROG | BPF_F_MMAPABLE");
    let var = spec.global("target_tgid").unwrap();
    assert_eq!((var.map_index, var.offset, var.size), (0, 0, 4));
    // Set by name before loading, as a libbpf skeleton would.
    spec.set_global("target_tgid", &42u32.to_ne_bytes())
        .unwrap();
    assert_eq!(
        spec.maps[0].initial.as_deref(),
        Some(&42u32.to_ne_bytes()[..])
    );
    assert_eq!(
        spec.set_global("target_tgid", &[1])
            .unwrap_err()
            .to_string(),
        "global variable target_tgid is 4 bytes, and 1 were given"
    );
    assert_eq!(
        spec.set_global("nothing", &[1]).unwrap_err().to_string(),
        "the BPF object has no global variable named nothing"
    );
    let p = &spec.programs[0];
    assert_eq!(p.map_refs.len(), 1);
    assert_eq!(p.map_refs[0].value_offset, Some(0));
    assert_inspect(
        "rodata_config",
        0,
        "license: GPL\n\
         maps: 1\n\
         \x20 .rodata type=2 key_size=4 value_size=4 max_entries=1 flags=0x480 global data, frozen: [target_tgid@0+4]\n\
         programs: 1\n\
         \x20 on_write section=tracepoint/syscalls/sys_enter_write kind=tracepoint\n\
         skipped: 0\n\
         loadable: yes\n",
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
fn co_re_relocations_are_listed_with_their_fields() {
    assert!(skipped("core_read").is_empty());
    let spec = obj::parse(&test_objects::bytes("core_read")).unwrap();
    assert_eq!(spec.programs[0].core.len(), 2);
    assert_inspect(
        "core_read",
        0,
        "license: GPL\n\
         maps: 0\n\
         programs: 1\n\
         \x20 parent_tgid section=tracepoint/syscalls/sys_enter_getppid kind=tracepoint\n\
         \x20   core byte_off task_struct.real_parent (struct task_struct, access 0:2)\n\
         \x20   core byte_off task_struct.tgid (struct task_struct, access 0:1)\n\
         skipped: 0\n\
         loadable: yes\n",
    );
}

#[test]
fn printk_strings_are_global_data_named_by_their_section() {
    assert!(skipped("printk").is_empty());
    let spec = obj::parse(&test_objects::bytes("printk")).unwrap();
    let names: Vec<&str> = spec.maps.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, [".rodata", ".rodata.str1.1"]);
    assert!(spec.maps.iter().all(|m| m.freeze && m.initial.is_some()));
    assert_inspect(
        "printk",
        0,
        "license: GPL\n\
         maps: 2\n\
         \x20 .rodata type=2 key_size=4 value_size=14 max_entries=1 flags=0x480 global data, frozen: [say_hello.____fmt@0+14]\n\
         \x20 .rodata.str1.1 type=2 key_size=4 value_size=4 max_entries=1 flags=0x480 global data, frozen: []\n\
         programs: 3\n\
         \x20 say_hello section=tracepoint/syscalls/sys_enter_getpid kind=tracepoint\n\
         \x20 say_bye section=tracepoint/syscalls/sys_enter_gettid kind=tracepoint\n\
         \x20 stay_quiet section=tracepoint/syscalls/sys_enter_getppid kind=tracepoint\n\
         skipped: 0\n\
         loadable: yes\n",
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

/// `probe ARGS` run to its end: exit code, stdout, stderr, its peak
/// resident memory in KiB (the kernel's ru_maxrss for this one child, from
/// wait4) and how long it took. A run that takes over 10 s is killed and
/// fails the test: that is a hang (a FIFO's open), not a slow run.
// The child is reaped by wait4 (for its rusage), which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn run_measured(args: &[&std::ffi::OsStr]) -> (i32, String, String, i64, std::time::Duration) {
    use std::io::Read;
    use std::time::{Duration, Instant};
    let started = Instant::now();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_probe"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run probe");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid one to be filled.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: our own child; status and usage are valid to write.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break;
        }
        assert_eq!(r, 0, "wait4: {}", std::io::Error::last_os_error());
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("probe {args:?} still running after 10 s: it hangs");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = started.elapsed();
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        libc::WIFEXITED(status),
        "probe {args:?}: status {status:#x}"
    );
    (
        libc::WEXITSTATUS(status),
        stdout,
        stderr,
        usage.ru_maxrss,
        elapsed,
    )
}

/// `probe inspect` (and, as root, `probe load`) on `path`: refused with
/// exactly `why`, exit 1, nothing on stdout, in little memory (it read
/// nothing). Returns the run's peak RSS and time, to be printed.
fn assert_not_read(path: &std::path::Path, why: &str) -> Vec<String> {
    let mut measured = Vec::new();
    let mut commands = vec!["inspect"];
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        commands.push("load");
    }
    for command in commands {
        let (code, stdout, stderr, rss_kib, took) =
            run_measured(&[command.as_ref(), path.as_os_str()]);
        assert_eq!(
            stderr,
            format!("probe: {} {why}\n", path.display()),
            "{command} {path:?}"
        );
        assert_eq!((code, stdout.as_str()), (1, ""), "{command} {path:?}");
        assert!(
            rss_kib < 20 * 1024,
            "{command} {path:?}: peak RSS {rss_kib} KiB"
        );
        measured.push(format!(
            "{command} {}: refused in {:.1} ms, peak RSS {rss_kib} KiB",
            path.display(),
            took.as_secs_f64() * 1e3
        ));
    }
    measured
}

#[test]
fn what_is_not_a_regular_file_or_is_too_large_is_refused_before_it_is_read() {
    let dir = std::env::temp_dir().join(format!("probe-test-{}-not-read", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let not_regular = |kind: &str| {
        format!("is {kind}, not a regular file: give the path of a BPF object file (.o)")
    };
    let mut measured = Vec::new();
    // Endless: read whole, it took 5 GB in 3 s.
    measured.extend(assert_not_read(
        std::path::Path::new("/dev/zero"),
        &not_regular("a character device"),
    ));
    // A FIFO nobody writes to: its open(2) would wait for ever.
    let fifo = dir.join("no-writer.o");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a C string path; mkfifo touches nothing else.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    measured.extend(assert_not_read(&fifo, &not_regular("a FIFO")));
    measured.extend(assert_not_read(&dir, &not_regular("a directory")));
    // One byte over the cap, sparse: refused by its size alone.
    let big = dir.join("big.o");
    let cap = probe::app::inspect::MAX_OBJECT;
    std::fs::File::create(&big)
        .unwrap()
        .set_len(cap + 1)
        .unwrap();
    measured.extend(assert_not_read(
        &big,
        &format!(
            "is {} bytes, more than the 64 MiB a BPF object file may be here: not read",
            cap + 1
        ),
    ));
    for line in measured {
        eprintln!("{line}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
