//! Objects written the way libbpf 1.x wants them, loaded by our loader
//! and run on this kernel: BTF-defined maps, a `const volatile` setting
//! set by name before loading, counters in `.bss` and `.data`, a
//! `bpf_printk`, each value checked exactly after a known number of calls.
//! Needs root.

#[macro_use]
mod common;
#[path = "support/test_objects.rs"]
mod test_objects;

use common::*;
use probe::attach::{self, Method};
use probe::loader::{Loaded, MapError};
use probe::{cpus, obj};

const REJECTED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/rejected.bpf.o"));

fn u64_of(bytes: &[u8]) -> u64 {
    u64::from_ne_bytes(bytes.try_into().unwrap())
}

#[test]
fn globals_and_btf_maps_count_exactly_what_the_filter_lets_through() {
    if !root_or_skip() {
        return;
    }
    let _serial = serial();
    let me = std::process::id();
    let mut spec = obj::parse(&test_objects::bytes("globals_count")).unwrap();
    assert!(spec.fully_loadable(), "{:?}", spec.skipped);
    spec.set_global("target_tgid", &me.to_ne_bytes()).unwrap();
    let loaded = Loaded::create_maps(spec, cpus::possible_count().unwrap()).unwrap();
    assert!(loaded.has_btf(), "{:?}", loaded.notes());
    assert!(loaded.notes().is_empty(), "{:?}", loaded.notes());
    // The first values, before any call.
    assert_eq!(u64_of(&loaded.global("calls").unwrap()), 0);
    assert_eq!(u64_of(&loaded.global("since_seven").unwrap()), 7);
    assert_eq!(loaded.global("target_tgid").unwrap(), me.to_ne_bytes());
    let attachment = attach::attach(&loaded, Some(Method::Tracepoint)).unwrap();
    const CALLS: u64 = 1000;
    for _ in 0..CALLS {
        // SAFETY: getppid has no arguments and cannot fail.
        unsafe { libc::getppid() };
    }
    attachment.detach();
    // Only this process's calls: other processes' getppid are filtered out
    // by the .rodata setting.
    assert_eq!(u64_of(&loaded.global("calls").unwrap()), CALLS);
    assert_eq!(u64_of(&loaded.global("since_seven").unwrap()), 7 + CALLS);
    let per_tgid = loaded.map("per_tgid").unwrap();
    let mut value = [0u8; 8];
    per_tgid.lookup(&me.to_ne_bytes(), &mut value).unwrap();
    assert_eq!(u64::from_ne_bytes(value), CALLS);
    assert_eq!(per_tgid.keys().count(), 1, "no other process counted");
    // .rodata is frozen: user space cannot change the setting any more.
    let rodata = loaded.map(".rodata").unwrap();
    let zeros = vec![0u8; rodata.lookup_size()];
    let err = rodata.update(&0u32.to_ne_bytes(), &zeros).unwrap_err();
    assert!(
        matches!(&err, MapError::Kernel { error, .. } if error.raw_os_error() == Some(libc::EPERM)),
        "{err}"
    );
}

#[test]
fn probe_load_takes_the_objects_of_other_styles_whole() {
    if !root_or_skip() {
        return;
    }
    let _serial = serial();
    let run = |name: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_probe"))
            .arg("load")
            .arg(test_objects::path(name))
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    for name in [
        "btf_maps",
        "rodata_config",
        "printk",
        "globals_count",
        "new_kinds",
        "core_read",
        "core_fields",
    ] {
        let (code, stdout) = run(name);
        assert_eq!(code, 0, "{name}: {stdout}");
        // Every program of the object, accepted; nothing said about BTF
        // (this kernel knows every kind, and takes the object's BTF).
        let n = obj::parse(&test_objects::bytes(name))
            .unwrap()
            .programs
            .len();
        let accepted = stdout.matches("): accepted, ").count();
        assert_eq!(accepted, n, "{name}: {stdout}");
        assert!(
            stdout.ends_with(&format!("loaded {n} of {n} programs; all unloaded again\n")),
            "{name}: {stdout}"
        );
        assert!(!stdout.contains("BTF"), "{name}: {stdout}");
    }
}

#[test]
fn a_verifier_rejection_quotes_the_c_source_line() {
    if !root_or_skip() {
        return;
    }
    let _serial = serial();
    let loaded = Loaded::create_maps(
        obj::parse(REJECTED).unwrap(),
        cpus::possible_count().unwrap(),
    )
    .unwrap();
    let err = loaded.load("unchecked_first").unwrap_err().to_string();
    // The line_info the loader passed: the verifier quotes the C line of
    // the dereference it refuses, with its file and line number.
    assert!(
        err.contains("; return *v; /* may be NULL: rejected */"),
        "{err}"
    );
}
