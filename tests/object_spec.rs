//! The pure ELF-to-spec step on the objects build.rs compiles: no root, no
//! kernel. Exact names, kinds, map definitions and relocations.

use probe::obj::{self, Insn, MapRef, ProgramKind, RelocTarget};

const PROBE: &[u8] = probe::app::PROBE_OBJECT;
const SUBPROG: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/subprog.bpf.o"));

const OP_CALL: u8 = 0x85;

fn map_names(spec: &obj::ObjectSpec, p: &obj::ProgramSpec) -> Vec<String> {
    p.map_refs
        .iter()
        .map(|r| spec.maps[r.map_index].name.clone())
        .collect()
}

#[test]
fn the_probe_object_has_forty_two_programs_and_fourteen_maps() {
    let spec = obj::parse(PROBE).unwrap();
    assert_eq!(spec.license, "GPL");
    let programs: Vec<(&str, &str, ProgramKind)> = spec
        .programs
        .iter()
        .map(|p| (p.name.as_str(), p.section.as_str(), p.kind.clone()))
        .collect();
    let kprobe = |f: &str| ProgramKind::Kprobe { function: f.into() };
    let kret = |f: &str| ProgramKind::Kretprobe { function: f.into() };
    let tp = |n: &str| ProgramKind::Tracepoint {
        category: "syscalls".into(),
        name: n.into(),
    };
    // Four per call of the read/write family, in bpf/probe.c's order:
    // the entries (kprobe, tracepoint), then the returns (--exit, top).
    let family = [
        "read", "write", "pread64", "pwrite64", "readv", "writev", "preadv", "pwritev", "preadv2",
        "pwritev2",
    ];
    let mut want: Vec<(String, String, ProgramKind)> = Vec::new();
    for call in family {
        let f = format!("__x64_sys_{call}");
        want.push((format!("kprobe_{call}"), format!("kprobe/{f}"), kprobe(&f)));
        want.push((
            format!("tracepoint_{call}"),
            format!("tracepoint/syscalls/sys_enter_{call}"),
            tp(&format!("sys_enter_{call}")),
        ));
        want.push((
            format!("kretprobe_{call}"),
            format!("kretprobe/{f}"),
            kret(&f),
        ));
        want.push((
            format!("tracepoint_{call}_exit"),
            format!("tracepoint/syscalls/sys_exit_{call}"),
            tp(&format!("sys_exit_{call}")),
        ));
    }
    // Then the raw tracepoint method's two, for every call of the family.
    for (name, tp) in [("raw_enter", "sys_enter"), ("raw_exit", "sys_exit")] {
        want.push((
            name.into(),
            format!("raw_tracepoint/{tp}"),
            ProgramKind::RawTracepoint { name: tp.into() },
        ));
    }
    let want: Vec<(&str, &str, ProgramKind)> = want
        .iter()
        .map(|(n, s, k)| (n.as_str(), s.as_str(), k.clone()))
        .collect();
    assert_eq!(programs, want);
    let maps: Vec<(&str, u32, u32, u32, u32, u32)> = spec
        .maps
        .iter()
        .map(|m| {
            (
                m.name.as_str(),
                m.map_type,
                m.key_size,
                m.value_size,
                m.max_entries,
                m.flags,
            )
        })
        .collect();
    assert_eq!(
        maps,
        [
            ("events", 4, 4, 4, 0, 0),
            // struct config: the size src/abi.rs writes.
            (
                "config_map",
                2,
                4,
                probe::app::abi::CONFIG_SIZE as u32,
                1,
                0
            ),
            // --ring map: a struct ring_pos and the event slots per CPU
            // (mmapable; sized by the monitor).
            ("ring_pos", 2, 4, 128, 1, 1024),
            (
                "ring_events",
                2,
                4,
                probe::app::abi::EVENT_SIZE as u32,
                1,
                1024
            ),
            ("drops", 6, 4, 8, 1, 0),
            // A cgroup array: the --cgroup directory's fd.
            ("cgroup_filter", 8, 4, 4, 1, 0),
            // An LRU hash of struct inflight by thread id (--exit).
            (
                "inflight",
                9,
                4,
                probe::app::abi::INFLIGHT_SIZE as u32,
                65536,
                0
            ),
            // Per-CPU counts of what became of stored entries.
            ("exit_counts", 6, 4, 8, 5, 0),
            // probe top: key -> slot, the rows (mmapable), free slots.
            ("top_index", 1, 32, 4, 10240, 0),
            (
                "top_rows",
                2,
                4,
                probe::app::abi::TOP_ROW_SIZE as u32,
                10240,
                0x400
            ),
            ("top_free", 22, 0, 4, 10240, 0),
            (
                "top_other",
                2,
                4,
                probe::app::abi::TOP_VALUE_SIZE as u32,
                10,
                0
            ),
            ("top_errors", 1, 40, 8, 10240, 0),
            ("top_errors_other", 2, 4, 8, 5440, 0),
        ]
    );
}

#[test]
fn each_program_reaches_its_maps_through_ld_imm64() {
    let spec = obj::parse(PROBE).unwrap();
    // How many times each program names each map (in whatever order the
    // compiler laid the code out). An entry: the filters (config_map,
    // cgroup_filter), the thread's record (a lookup, and an insert for
    // its first call) and three counts, then the event and its drop
    // count. An exit: the record, the filters (for a call it has no
    // record of), the config again (-v), the event, and two counts.
    let entry = [
        "cgroup_filter",
        "config_map",
        "drops",
        "events",
        "exit_counts",
        "exit_counts",
        "exit_counts",
        "inflight",
        "inflight",
    ];
    // An exit also counts for top: the row (cached slot, index, a free
    // slot, the other row) and the errno.
    let exit = [
        "cgroup_filter",
        "config_map",
        "config_map",
        "drops",
        // (and one for a config it could not read: the event is counted)
        "drops",
        "events",
        "exit_counts",
        "exit_counts",
        "inflight",
        "top_errors",
        "top_errors",
        "top_errors",
        "top_errors_other",
        "top_free",
        "top_free",
        "top_index",
        "top_index",
        "top_index",
        "top_other",
        "top_rows",
        "top_rows",
        "top_rows",
        "top_rows",
    ];
    for p in &spec.programs {
        let mut expected: Vec<&str> =
            if p.section.starts_with("kretprobe/") || p.section.contains("/sys_exit") {
                exit.to_vec()
            } else {
                entry.to_vec()
            };
        // A raw tracepoint program looks at config.syscalls first.
        if p.section.starts_with("raw_tracepoint/") {
            expected.push("config_map");
        }
        // Sending through a map ring (--ring map): this CPU's ring_pos,
        // the slot, and a drop counted where either is missing or the
        // ring is full.
        expected.extend(["drops", "drops", "drops", "ring_events", "ring_pos"]);
        expected.sort();
        let mut names = map_names(&spec, p);
        names.sort();
        assert_eq!(names, expected, "{}", p.name);
        assert!(p.subprograms.is_empty(), "probe.c inlines everything");
        for r in &p.map_refs {
            let insn = p.insns[r.insn_index];
            assert_eq!(
                insn.code,
                obj::OP_LD_IMM64,
                "{}: insn {}",
                p.name,
                r.insn_index
            );
            assert_eq!(insn.imm, 0, "clang leaves the immediate for the loader");
        }
        // The fds go into exactly those instructions, marked as map fds.
        let fds: Vec<i32> = (1..=spec.maps.len() as i32).map(|i| i * 100).collect();
        let patched = p.insns_with_map_fds(&fds).unwrap();
        assert_eq!(p.insns_with_map_fds(&[]), None, "no fds");
        for (i, (before, after)) in p.insns.iter().zip(&patched).enumerate() {
            match p.map_refs.iter().find(|r| r.insn_index == i) {
                Some(MapRef { map_index, .. }) => {
                    assert_eq!(after.imm, fds[*map_index]);
                    assert_eq!(after.src_reg(), obj::PSEUDO_MAP_FD);
                    assert_eq!(after.code, before.code);
                }
                None => assert_eq!(after, before, "insn {i} untouched"),
            }
        }
    }
}

/// Where a pseudo call at `index` lands.
fn call_target(insns: &[Insn], index: usize) -> usize {
    (index as i64 + 1 + insns[index].imm as i64) as usize
}

fn calls(insns: &[Insn]) -> Vec<usize> {
    (0..insns.len())
        .filter(|&i| insns[i].code == OP_CALL && insns[i].src_reg() == 1)
        .collect()
}

#[test]
fn subprograms_are_appended_once_each_and_only_when_reached() {
    let spec = obj::parse(SUBPROG).unwrap();
    let names: Vec<&str> = spec.programs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["count_getpid", "count_getppid"]);

    // count_getpid (4 insns) calls bump_twice (7), which calls bump (12)
    // twice; never_called is not reached and must not be appended.
    let p = &spec.programs[0];
    assert_eq!(p.subprograms, ["bump_twice", "bump"]);
    assert_eq!(p.insns.len(), 4 + 7 + 12);
    let call_sites = calls(&p.insns);
    assert_eq!(call_sites, [1, 4 + 1, 4 + 4]);
    assert_eq!(call_target(&p.insns, 1), 4, "entry calls bump_twice");
    assert_eq!(call_target(&p.insns, 5), 11, "bump_twice calls bump");
    assert_eq!(call_target(&p.insns, 8), 11, "and again");
    // bump's map load, at its own offset 3, moved with it.
    assert_eq!(
        p.map_refs,
        [MapRef {
            insn_index: 11 + 3,
            map_index: 0,
            value_offset: None,
        }]
    );
    let targets: Vec<(usize, RelocTarget)> = p
        .relocations
        .iter()
        .map(|r| (r.insn_index, r.target.clone()))
        .collect();
    assert_eq!(
        targets,
        [
            (1, RelocTarget::Subprogram("bump_twice".into())),
            (5, RelocTarget::Subprogram("bump".into())),
            (8, RelocTarget::Subprogram("bump".into())),
            (14, RelocTarget::Map("counters".into())),
        ]
    );

    let p = &spec.programs[1];
    assert_eq!(p.subprograms, ["bump"]);
    assert_eq!(p.insns.len(), 4 + 12);
    assert_eq!(call_target(&p.insns, 1), 4);
    assert_eq!(
        p.map_refs,
        [MapRef {
            insn_index: 4 + 3,
            map_index: 0,
            value_offset: None,
        }]
    );
}

#[test]
fn the_inspect_text_shows_what_the_loader_sees() {
    let spec = obj::parse(SUBPROG).unwrap();
    let text = probe::app::inspect::describe(&spec);
    assert_eq!(
        text,
        "license: GPL\n\
         maps: 2\n\
         \x20 counters type=2 key_size=4 value_size=8 max_entries=4 flags=0x0\n\
         \x20 unused_map type=2 key_size=4 value_size=4 max_entries=1 flags=0x0\n\
         programs: 2\n\
         \x20 count_getpid section=tracepoint/syscalls/sys_enter_getpid kind=tracepoint insns=23 subprograms=[bump_twice,bump]\n\
         \x20   reloc insn=1 symbol=bump_twice -> subprogram bump_twice\n\
         \x20   reloc insn=5 symbol=bump -> subprogram bump\n\
         \x20   reloc insn=8 symbol=bump -> subprogram bump\n\
         \x20   reloc insn=14 symbol=counters -> map counters\n\
         \x20 count_getppid section=tracepoint/syscalls/sys_enter_getppid kind=tracepoint insns=16 subprograms=[bump]\n\
         \x20   reloc insn=1 symbol=bump -> subprogram bump\n\
         \x20   reloc insn=7 symbol=counters -> map counters\n\
         skipped: 0\n\
         loadable: yes\n"
    );
}

/// Compiled with -g, they carry .BTF and a .BTF.ext without CO-RE
/// relocations, debug sections and an empty .text: all quietly accepted,
/// nothing skipped.
#[test]
fn the_objects_build_rs_compiles_skip_nothing() {
    for (name, bytes) in [
        ("probe.bpf.o", PROBE),
        ("probe_pidns.bpf.o", probe::app::PROBE_PIDNS_OBJECT),
        ("subprog.bpf.o", SUBPROG),
    ] {
        let spec = obj::parse(bytes).unwrap();
        assert_eq!(spec.skipped, [], "{name}");
        assert!(spec.fully_loadable(), "{name}");
        assert_eq!(
            probe::app::inspect::Verdict::of(&spec).exit_code(),
            0,
            "{name}"
        );
    }
}

#[test]
fn files_that_are_not_bpf_objects_are_refused_with_one_line() {
    let not_elf = obj::parse(b"hello, world").unwrap_err().to_string();
    assert!(not_elf.starts_with("not an ELF object file"), "{not_elf}");
    let host = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    let wrong = obj::parse(&host).unwrap_err().to_string();
    assert!(
        wrong.starts_with("not a BPF object: it is built for X86_64"),
        "{wrong}"
    );
    let truncated = obj::parse(&PROBE[..PROBE.len() / 2])
        .unwrap_err()
        .to_string();
    assert!(!truncated.contains('\n'), "{truncated}");
}

/// Helper ids called by a program (`call imm` with src_reg 0).
fn helpers(p: &obj::ProgramSpec) -> Vec<i32> {
    p.insns
        .iter()
        .filter(|i| i.code == OP_CALL && i.src_reg() == 0)
        .map(|i| i.imm)
        .collect()
}

#[test]
fn the_pidns_build_differs_only_by_the_namespace_helper() {
    let plain = obj::parse(PROBE).unwrap();
    let pidns = obj::parse(probe::app::PROBE_PIDNS_OBJECT).unwrap();
    assert_eq!(pidns.maps, plain.maps);
    let names = |s: &obj::ObjectSpec| {
        s.programs
            .iter()
            .map(|p| p.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&pidns), names(&plain));
    // bpf_get_ns_current_pid_tgid (120, Linux 5.7+) only where -p is
    // matched in a namespace; bpf_current_task_under_cgroup (37) in both.
    for (a, b) in plain.programs.iter().zip(&pidns.programs) {
        assert!(!helpers(a).contains(&120), "{}", a.name);
        assert!(helpers(b).contains(&120), "{}", b.name);
        assert!(helpers(a).contains(&37) && helpers(b).contains(&37));
    }
}
