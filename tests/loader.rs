//! The loader as a library (issue 10): typed errors and `auto`, each
//! program loaded once, typed map handles that refuse a wrong buffer before
//! the kernel sees it, `--explain`'s exact sequence of system calls, and
//! the recursion-miss count read at exit.

#[macro_use]
mod common;

use std::fs;
use std::process::{Command, Stdio};
use std::sync::Mutex;

use common::*;
use probe::attach::{self, AttachError};
use probe::loader::{LoadError, Loaded, MapError};
use probe::{cpus, obj};

const REJECTED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/rejected.bpf.o"));

/// Every narrated call of this process since the first test that asked.
static TOLD: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn narrate() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        probe::sys::explain::set_sink(|call| TOLD.lock().unwrap().push(call.to_string()))
    });
}

fn told_since(start: usize) -> Vec<String> {
    TOLD.lock().unwrap()[start..].to_vec()
}

#[test]
fn auto_stops_at_a_verifier_rejection_once_and_loads_nothing_it_does_not_try() {
    require_root!();
    let _turn = serial();
    narrate();
    probe::loader::raise_memlock();
    let start = TOLD.lock().unwrap().len();
    let loaded = Loaded::create_maps(
        obj::parse(REJECTED).unwrap(),
        cpus::possible_count().unwrap(),
    )
    .unwrap();
    let Err(e) = attach::attach(&loaded, None) else {
        panic!("the verifier accepted a NULL dereference");
    };
    let kprobes = std::path::Path::new("/sys/bus/event_source/devices/kprobe/type").exists();
    let failed = if kprobes {
        "fine_kprobe"
    } else {
        "unchecked_first"
    };
    match &e {
        // Where kprobes exist the kprobe method attaches fine_kprobe and
        // succeeds before any tracepoint program is tried: see the VMs.
        AttachError::Load(LoadError::Rejected { program, log, .. }) if !kprobes => {
            assert_eq!(program, failed);
            assert!(log.contains("invalid mem access"), "{log}");
        }
        other => panic!("{other:?}"),
    }
    // Said once: one error, naming the program and the verifier's words.
    let text = e.to_string();
    assert_eq!(text.matches("the verifier rejected BPF program").count(), 1);
    assert!(text.starts_with(&format!("the verifier rejected BPF program {failed} (")));
    // Loaded: only that program, twice (without a log, then with one for
    // the error); the kprobe program of the methods this kernel lacks,
    // and the tracepoint program after the rejected one, never.
    let loads: Vec<String> = told_since(start)
        .into_iter()
        .filter(|c| c.starts_with("bpf(BPF_PROG_LOAD"))
        .collect();
    assert_eq!(loads.len(), 2, "{loads:#?}");
    assert!(loads[0].contains("log_level=0") && loads[0].contains("prog_name=\"unchecked_first\""));
    assert!(loads[1].contains("log_level=1") && loads[1].contains("prog_name=\"unchecked_first\""));
    assert!(
        loads.iter().all(|l| l.contains(" = -1 EACCES ")),
        "{loads:#?}"
    );
}

#[test]
fn a_map_handle_refuses_a_buffer_of_the_wrong_size_before_the_kernel_sees_it() {
    require_root!();
    let _turn = serial();
    narrate();
    let possible = cpus::possible_count().unwrap() as usize;
    let loaded = Loaded::create_maps(
        obj::parse(probe::app::PROBE_OBJECT).unwrap(),
        possible as u32,
    )
    .unwrap();
    let start = TOLD.lock().unwrap().len();
    let config = loaded.map("config_map").unwrap();
    let wrong = |r: Result<(), MapError>| match r {
        Err(MapError::WrongSize {
            what,
            expected,
            given,
            ..
        }) => (what, expected, given),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        wrong(config.update(&0u32.to_ne_bytes(), &[1, 2, 3])),
        ("value", probe::app::abi::CONFIG_SIZE, 3)
    );
    assert_eq!(
        wrong(config.update(&[0u8; 8], &[0u8; probe::app::abi::CONFIG_SIZE])),
        ("key", 4, 8)
    );
    // A per-CPU map's lookup fills one 8-byte slot per possible CPU.
    let drops = loaded.map("drops").unwrap();
    assert_eq!(drops.lookup_size(), 8 * possible);
    let mut one_slot = vec![0u8; 8 * possible + 1];
    assert_eq!(
        wrong(drops.lookup(&0u32.to_ne_bytes(), &mut one_slot)),
        ("value", 8 * possible, 8 * possible + 1)
    );
    // None of those reached the kernel; the right sizes do.
    assert_eq!(told_since(start), Vec::<String>::new());
    config
        .update(&0u32.to_ne_bytes(), &[0u8; probe::app::abi::CONFIG_SIZE])
        .unwrap();
    assert_eq!(drops.sum_per_cpu_u64(&0u32.to_ne_bytes()).unwrap(), 0);
    assert!(matches!(loaded.map("nope"), Err(MapError::NoSuchMap(_))));
    assert!(matches!(
        loaded.load("nope"),
        Err(LoadError::NoSuchProgram(_))
    ));
}

/// The probe's stderr for a short run with `args`.
fn run_probe(args: &[&str]) -> Vec<String> {
    let dir = scratch_dir("explain");
    let out = Command::new(PROBE)
        .args(args)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let stderr: Vec<String> = String::from_utf8(out.stderr.clone())
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    // The kernel may skip a call or two of other processes (counted lost
    // before the filter): then the run exits 4.
    let lost = stderr.last().is_some_and(|l| !l.ends_with(" lost=0"));
    let want = if lost { 4 } else { 0 };
    assert_eq!(out.status.code(), Some(want), "{out:?}");
    stderr
}

/// A narrated line with what may vary from run to run made constant: fd
/// numbers (`7<prog:x>` becomes `N<prog:x>`), addresses, and the ring fds
/// written into the perf event array.
fn normalized(line: &str) -> String {
    let b = line.as_bytes();
    let starts_word = |i: usize| i == 0 || !b[i - 1].is_ascii_alphanumeric();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"0x") && starts_word(i) {
            let end = i
                + 2
                + b[i + 2..]
                    .iter()
                    .take_while(|c| c.is_ascii_hexdigit())
                    .count();
            if end - i > 6 {
                out.push_str("0xADDR");
                i = end;
                continue;
            }
        }
        if b[i].is_ascii_digit() && starts_word(i) {
            let end = i + b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
            if b.get(end) == Some(&b'<') {
                out.push('N');
            } else {
                out.push_str(&line[i..end]);
            }
            i = end;
            continue;
        }
        out.push(b[i] as char);
        i += 1;
    }
    // The ring fds the perf event array holds.
    if out.starts_with("bpf(BPF_MAP_UPDATE_ELEM, {map_fd=N<map:events>")
        && let Some(v) = out.find("value=[")
        && let Some(end) = out[v..].find(',')
    {
        out.replace_range(v + 7..v + end, "FD");
    }
    out
}

#[test]
fn explain_tells_every_call_of_set_up_and_teardown_in_order() {
    require_root!();
    let _turn = serial();
    // The map rings (the default): two arrays mapped into the probe; the
    // perf rings: a ring mapped per CPU.
    for ring in ["map", "perf"] {
        explained_run(ring);
    }
}

/// `probe top` reads its table from a mapped array: the mapping is told,
/// once, and its unmapping at the end, once, after the hooks are closed.
#[test]
fn explain_tells_top_s_mapped_table() {
    require_root!();
    let _turn = serial();
    let stderr = run_probe(&[
        "top",
        "--explain",
        "-c",
        "nothing",
        "-q",
        "-i",
        "0.1",
        "-d",
        "0.3",
    ]);
    let told: Vec<String> = stderr
        .iter()
        .filter_map(|l| l.strip_prefix("probe: [sys] "))
        .map(normalized)
        .filter(|l| {
            l.starts_with("mmap(")
                || l.starts_with("munmap(")
                || l.contains("_IOC_")
                || (l.starts_with("close(") && l.contains("<perf:"))
        })
        .collect();
    // The default --keys rows of 360 bytes.
    let len = 360 * 10240;
    assert_eq!(
        told.iter()
            .filter(|l| l.starts_with("mmap("))
            .collect::<Vec<_>>(),
        [&format!(
            "mmap(NULL, {len}, PROT_READ|PROT_WRITE, MAP_SHARED, N<map:top_rows>, 0) = 0xADDR"
        )]
    );
    assert_eq!(
        told.last().unwrap(),
        &format!("munmap(0xADDR, {len}) = 0"),
        "{told:#?}"
    );
    assert_eq!(told.iter().filter(|l| l.starts_with("munmap(")).count(), 1);
    // The hooks are closed (which stops their programs) before the table
    // is unmapped.
    assert!(
        told[told.len() - 2].starts_with("close(N<perf:"),
        "{told:#?}"
    );
    assert_nothing_left();
}

/// One run with `--ring RING`: what `--explain` says, line for line.
fn explained_run(ring: &str) {
    let stderr = run_probe(&[
        "--explain",
        "--ring",
        ring,
        "--attach",
        "tracepoint",
        "-c",
        "nothing",
        "-q",
        "--no-log",
        "-d",
        "0.3",
    ]);
    let told: Vec<String> = stderr
        .iter()
        .filter_map(|l| l.strip_prefix("probe: [sys] "))
        .map(normalized)
        .collect();
    let online = cpus::online().unwrap();
    let possible = cpus::possible_count().unwrap();
    let map_rings = ring == "map";
    let id = |name: &str| {
        fs::read_to_string(format!("/sys/kernel/tracing/events/syscalls/{name}/id"))
            .unwrap()
            .trim()
            .to_string()
    };
    use probe::app::abi::CONFIG_SIZE;
    let mut want: Vec<String> = Vec::new();
    let mut push = |s: String| want.push(s);
    let memlock = told[0]
        .rsplit_once(" = ")
        .map(|(_, r)| r.to_string())
        .unwrap();
    assert!(
        memlock == "0" || memlock.starts_with("-1 EPERM"),
        "{memlock}"
    );
    push(format!(
        "setrlimit(RLIMIT_MEMLOCK, {{rlim_cur=RLIM_INFINITY, rlim_max=RLIM_INFINITY}}) = {memlock}"
    ));
    // The object's BTF: one probe of the kinds it uses that came after
    // BTF itself (VAR and DATASEC, for .maps), then the object's own.
    push("bpf(BPF_BTF_LOAD, {btf_size=89, btf_log_level=0}) = N<btf>".into());
    push("close(N<btf>) = 0".into());
    let btf_size = probe::obj::parse(probe::app::PROBE_OBJECT)
        .unwrap()
        .btf
        .unwrap()
        .len();
    push(format!(
        "bpf(BPF_BTF_LOAD, {{btf_size={btf_size}, btf_log_level=0}}) = N<btf>"
    ));
    // Key and value types from the BTF, for the maps whose types take
    // them (not fd arrays, not a queue, not the map rings' 64-byte slots).
    let spec = probe::obj::parse(probe::app::PROBE_OBJECT).unwrap();
    let types = |name: &str| {
        // The names the kernel keeps are 15 bytes long.
        let m = spec.maps.iter().find(|m| m.name.starts_with(name)).unwrap();
        match m.map_type {
            4 | 8 | 22 => String::new(),
            _ if map_rings && name == "ring_events" => String::new(),
            _ => format!(
                ", btf_fd=N<btf>, btf_key_type_id={}, btf_value_type_id={}",
                m.btf_key_type_id, m.btf_value_type_id
            ),
        }
    };
    // --ring map: 1024 pages of 64 slots of 64 bytes per CPU; --ring
    // perf: the map rings' arrays stay at one entry.
    let slots = 1024 * 64;
    let (pos_entries, event_size, event_entries) = match map_rings {
        true => (possible, 64, possible * slots),
        false => (1, 80, 1),
    };
    for (name, kind, key, value, entries, flags) in [
        ("events", "PERF_EVENT_ARRAY", 4, 4, possible, 0),
        ("config_map", "ARRAY", 4, CONFIG_SIZE, 1, 0),
        ("ring_pos", "ARRAY", 4, 128, pos_entries, 0x400),
        ("ring_events", "ARRAY", 4, event_size, event_entries, 0x400),
        ("drops", "PERCPU_ARRAY", 4, 8, 1, 0),
        ("cgroup_filter", "CGROUP_ARRAY", 4, 4, 1, 0),
        // Without --exit the in-flight table is shrunk to one entry, and
        // top's tables too.
        ("inflight", "LRU_HASH", 4, 128, 1, 0),
        ("exit_counts", "PERCPU_ARRAY", 4, 8, 5, 0),
        ("top_index", "HASH", 32, 4, 1, 0),
        ("top_rows", "ARRAY", 4, 360, 1, 0x400),
        ("top_free", "QUEUE", 0, 4, 1, 0),
        ("top_other", "ARRAY", 4, 328, 10, 0),
        ("top_errors", "HASH", 40, 8, 1, 0),
        ("top_errors_othe", "ARRAY", 4, 8, 1, 0),
    ] {
        push(format!(
            "bpf(BPF_MAP_CREATE, {{map_type=BPF_MAP_TYPE_{kind}, key_size={key}, \
             value_size={value}, max_entries={entries}, map_flags={flags:#x}, \
             map_name=\"{name}\"{}}}) = N<map:{name}>",
            types(name)
        ));
    }
    push(format!(
        "bpf(BPF_MAP_UPDATE_ELEM, {{map_fd=N<map:config_map>, key=[0, 0, 0, 0], \
         value=<{CONFIG_SIZE} bytes>, flags=BPF_ANY}}) = 0"
    ));
    // The map rings' two arrays, mapped whole (in pages).
    let page = 4096;
    let mapped = [
        ("ring_pos", (128 * possible as usize).next_multiple_of(page)),
        ("ring_events", 64 * slots as usize * possible as usize),
    ];
    if map_rings {
        for (name, len) in mapped {
            push(format!(
                "mmap(NULL, {len}, PROT_READ|PROT_WRITE, MAP_SHARED, N<map:{name}>, 0) = 0xADDR"
            ));
        }
    }
    push("epoll_create1(EPOLL_CLOEXEC) = N<epoll>".into());
    push("eventfd2(0, EFD_CLOEXEC|EFD_NONBLOCK) = N<eventfd>".into());
    push(format!(
        "epoll_ctl(N<epoll>, EPOLL_CTL_ADD, N<eventfd>, {{events=EPOLLIN, data={}}}) = 0",
        u64::MAX
    ));
    for (i, cpu) in online.iter().enumerate().filter(|_| !map_rings) {
        let ring = format!("N<perf:bpf-output/cpu{cpu}>");
        push(format!(
            "perf_event_open({{type=PERF_TYPE_SOFTWARE, config=PERF_COUNT_SW_BPF_OUTPUT, \
             sample_period=1, sample_type=PERF_SAMPLE_RAW, watermark=1, \
             wakeup_watermark=1048576}}, pid=-1, cpu={cpu}, group_fd=-1, \
             flags=PERF_FLAG_FD_CLOEXEC) = {ring}"
        ));
        push(format!(
            "mmap(NULL, 4198400, PROT_READ|PROT_WRITE, MAP_SHARED, {ring}, 0) = 0xADDR"
        ));
        push(format!("ioctl({ring}, PERF_EVENT_IOC_ENABLE, 0) = 0"));
        push(format!(
            "epoll_ctl(N<epoll>, EPOLL_CTL_ADD, {ring}, {{events=EPOLLIN, data={i}}}) = 0"
        ));
    }
    for cpu in online.iter().filter(|_| !map_rings) {
        push(format!(
            "bpf(BPF_MAP_UPDATE_ELEM, {{map_fd=N<map:events>, key=[{cpu}, 0, 0, 0], \
             value=[FD, 0, 0, 0], flags=BPF_ANY}}) = 0"
        ));
    }
    // Names the kernel keeps: 15 bytes.
    for (prog, event) in [
        ("tracepoint_read", "sys_enter_read"),
        ("tracepoint_writ", "sys_enter_write"),
    ] {
        let p = spec
            .programs
            .iter()
            .find(|p| p.name.starts_with(prog))
            .unwrap();
        push(format!(
            "bpf(BPF_PROG_LOAD, {{prog_type=BPF_PROG_TYPE_TRACEPOINT, insn_cnt={}, \
             license=\"GPL\", log_level=0, log_size=0, prog_name=\"{prog}\", \
             prog_btf_fd=N<btf>, func_info_cnt=1, line_info_cnt={}}}) = N<prog:{prog}>",
            p.insns.len(),
            p.line_info.len()
        ));
        let id = id(event);
        push(format!(
            "read(/sys/kernel/tracing/events/syscalls/{event}/id) = \"{id}\""
        ));
        push(format!(
            "perf_event_open({{type=PERF_TYPE_TRACEPOINT, config={id}, sample_period=1, \
             disabled=1}}, pid=-1, cpu=0, group_fd=-1, flags=PERF_FLAG_FD_CLOEXEC) = \
             N<perf:syscalls/{event}>"
        ));
        push(format!(
            "ioctl(N<perf:syscalls/{event}>, PERF_EVENT_IOC_SET_BPF, N<prog:{prog}>) = 0"
        ));
        push(format!(
            "ioctl(N<perf:syscalls/{event}>, PERF_EVENT_IOC_ENABLE, 0) = 0"
        ));
    }
    let drops_read = format!(
        "bpf(BPF_MAP_LOOKUP_ELEM, {{map_fd=N<map:drops>, key=[0, 0, 0, 0], value=<{} bytes>}}) = 0",
        8 * possible
    );
    // The capability drop makes sure the shutdown's steps still work.
    push(drops_read.clone());
    // Teardown: programs off (their events closed, then a grace period
    // for the runs under way), their counts read, then everything closed.
    for event in ["sys_enter_read", "sys_enter_write"] {
        push(format!("close(N<perf:syscalls/{event}>) = 0"));
    }
    push("membarrier(MEMBARRIER_CMD_GLOBAL, 0) = 0".into());
    for prog in ["tracepoint_read", "tracepoint_writ"] {
        push(format!(
            "bpf(BPF_OBJ_GET_INFO_BY_FD, {{bpf_fd=N<prog:{prog}>, info_len=232}}) = 0"
        ));
    }
    for prog in ["tracepoint_read", "tracepoint_writ"] {
        push(format!("close(N<prog:{prog}>) = 0"));
    }
    // The reader told to stop; it unmaps its rings on its way out.
    push("write(N<eventfd>, \"\\1\\0\\0\\0\\0\\0\\0\\0\", 8) = 8".into());
    if map_rings {
        for (_, len) in mapped {
            push(format!("munmap(0xADDR, {len}) = 0"));
        }
    }
    for cpu in online.iter().filter(|_| !map_rings) {
        push("munmap(0xADDR, 4198400) = 0".into());
        push(format!("close(N<perf:bpf-output/cpu{cpu}>) = 0"));
    }
    push("close(N<epoll>) = 0".into());
    push(drops_read);
    for map in [
        "events",
        "config_map",
        "ring_pos",
        "ring_events",
        "drops",
        "cgroup_filter",
        "inflight",
        "exit_counts",
        "top_index",
        "top_rows",
        "top_free",
        "top_other",
        "top_errors",
        "top_errors_othe",
    ] {
        push(format!("close(N<map:{map}>) = 0"));
    }
    push("close(N<btf>) = 0".into());
    push("close(N<eventfd>) = 0".into());
    assert_eq!(told, want, "--ring {ring}");
    assert_eq!(stderr.last().unwrap(), "probe: received=0 lost=0");
    assert_nothing_left();
}

#[test]
fn recursion_misses_are_read_at_exit_and_said_where_the_kernel_counts_them() {
    require_root!();
    let _turn = serial();
    let stderr = run_probe(&[
        "-vv",
        "--attach",
        "tracepoint",
        "-c",
        "nothing",
        "-q",
        "--no-log",
        "-d",
        "0.2",
    ]);
    let (major, minor, _) = probe::loader::kernel_release();
    let want = if (major, minor) >= (6, 7) {
        "probe: [loader] recursion misses: 0 (counted by this kernel)"
    } else {
        "probe: [loader] recursion misses: not counted by this kernel (kprobe and tracepoint \
         programs are counted since Linux 6.7)"
    };
    assert!(stderr.iter().any(|l| l == want), "{stderr:#?}");
    assert_nothing_left();
}

#[test]
fn load_says_what_the_verifier_made_of_each_program_and_unloads_them() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("load");
    let load = |bytes: &[u8], name: &str| {
        let path = dir.join(name);
        fs::write(&path, bytes).unwrap();
        let out = Command::new(PROBE).arg("load").arg(&path).output().unwrap();
        (
            out.status.code(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (major, minor, _) = probe::loader::kernel_release();
    let spec = obj::parse(probe::app::PROBE_OBJECT).unwrap();
    let (code, out, err) = load(probe::app::PROBE_OBJECT, "probe.bpf.o");
    assert_eq!((code, err.as_str()), (Some(0), ""), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), spec.programs.len() + 1, "{out}");
    for (line, p) in lines.iter().zip(&spec.programs) {
        let head = format!(
            "{} ({}): accepted, {} instructions",
            p.name,
            p.section,
            p.insns.len()
        );
        assert!(line.starts_with(&head), "{line}");
        if (major, minor) >= (5, 16) {
            let processed: u64 = line
                .strip_prefix(&format!("{head}, "))
                .and_then(|r| r.strip_suffix(" processed by the verifier"))
                .unwrap_or_else(|| panic!("{line}"))
                .parse()
                .unwrap();
            assert!(processed > 0, "{line}");
        }
    }
    assert_eq!(
        lines[spec.programs.len()],
        "loaded 42 of 42 programs; all unloaded again"
    );

    let (code, out, _) = load(REJECTED, "rejected.bpf.o");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.starts_with("fine_kprobe (kprobe/__x64_sys_getpid): accepted, 2 instructions"),
        "{out}"
    );
    for name in ["unchecked_first", "unchecked_second"] {
        assert!(
            out.contains(&format!(
                "{name} (tracepoint/syscalls/{}): rejected by the verifier (Permission denied (os error 13))\n",
                if name == "unchecked_first" { "sys_enter_getpid" } else { "sys_enter_getppid" }
            )),
            "{out}"
        );
    }
    assert!(out.contains("invalid mem access"), "the log's end: {out}");
    assert!(
        out.ends_with("loaded 1 of 3 programs; all unloaded again\n"),
        "{out}"
    );
    assert_nothing_left();
}

#[test]
fn without_tracefs_access_the_methods_that_need_it_are_not_permitted_and_auto_moves_on_to_raw_tracepoints()
 {
    require_root!();
    let _turn = serial();
    // Only CAP_BPF and CAP_PERFMON, as user nobody: BPF may be loaded, but
    // tracefs (root's, mode 0700) cannot be read.
    let run = |method: &str| {
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .args(["--inh-caps=+bpf,+perfmon", "--ambient-caps=+bpf,+perfmon"])
            .arg(PROBE)
            .args(["--attach", method, "--no-log", "-q", "-d", "0.1"])
            .current_dir("/")
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8(out.stderr).unwrap())
    };
    let denied = "no trace event syscalls/sys_enter_read \
                  (/sys/kernel/tracing/events/syscalls/sys_enter_read/id unreadable): \
                  Permission denied (os error 13)";
    assert_eq!(
        run("tracepoint"),
        (
            Some(1),
            format!("probe: could not attach with tracepoint: {denied}\n")
        )
    );
    // auto went on past it, each refusal said once on a line, to the raw
    // tracepoints, which need no tracefs. (The kprobe PMU, absent here or
    // not, is passed over without a word when absent.)
    let (code, err) = run("auto");
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| !l.starts_with("probe: not attached via kprobe: "))
        .collect();
    assert_eq!(lines.len(), 4, "{err}");
    assert_eq!(
        lines[0],
        "probe: not attached via kprobe-legacy: /sys/kernel/tracing/kprobe_events: \
         Permission denied (os error 13)",
        "{err}"
    );
    assert_eq!(
        lines[1],
        format!("probe: not attached via tracepoint: {denied}")
    );
    assert!(
        lines[2].starts_with("probe: attached via raw-tracepoint "),
        "{err}"
    );
    assert!(lines[3].starts_with("probe: received="), "{err}");
    if !std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists() {
        assert!(!err.contains("not attached via kprobe: "), "{err}");
    }
    assert_nothing_left();
}
