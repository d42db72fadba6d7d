//! The BPF objects of tests/objects/, written in the styles other projects
//! use (libbpf's headers, BTF-defined maps, global data, CO-RE, legacy
//! maps), compiled at test time with clang and Debian's libbpf-dev
//! headers. Not in build.rs: building the probe itself must need neither.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The sources, without `.c`.
pub const NAMES: &[&str] = &[
    "btf_map_refused",
    "btf_maps",
    "callback",
    "core_fields",
    "core_missing",
    "core_read",
    "globals_count",
    "kconfig_extern",
    "kinds",
    "kretprobe",
    "legacy_mixed",
    "legacy_trailing",
    "legacy_zero_trailing",
    "new_kinds",
    "perf_array",
    "printk",
    "rodata_config",
];

const HOW_TO_GET_THEM: &str =
    "run scripts/test (as root), or `sudo apt-get install clang libbpf-dev`";

/// The compiled object `name`.o, compiling all of them on first use.
pub fn path(name: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(compile_all).join(format!("{name}.o"))
}

pub fn bytes(name: &str) -> Vec<u8> {
    std::fs::read(path(name)).unwrap()
}

fn find_clang() -> Option<String> {
    let mut candidates: Vec<String> = std::env::var("CLANG").ok().into_iter().collect();
    candidates.push("clang".into());
    candidates.extend((11..=20).rev().map(|v| format!("clang-{v}")));
    candidates.into_iter().find(|c| {
        Command::new(c)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

fn compile_all() -> PathBuf {
    let clang = find_clang().unwrap_or_else(|| {
        panic!("clang not found (looked at $CLANG, clang, clang-20 .. clang-11): {HOW_TO_GET_THEM}")
    });
    let headers = ["/usr/include", "/usr/local/include"]
        .iter()
        .any(|dir| Path::new(dir).join("bpf/bpf_helpers.h").exists());
    assert!(
        headers,
        "libbpf's headers (bpf/bpf_helpers.h) not found: {HOW_TO_GET_THEM}"
    );
    let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/objects");
    // One directory per test binary: two may run at once.
    let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(concat!("test_objects-", env!("CARGO_CRATE_NAME")));
    std::fs::create_dir_all(&out).unwrap();
    // All at once: each clang is mostly start-up time.
    let children: Vec<_> = NAMES
        .iter()
        .map(|name| {
            let child = Command::new(&clang)
                // As libbpf-bootstrap and most libbpf projects build them.
                .args(["-target", "bpf", "-D__TARGET_ARCH_x86", "-O2", "-g", "-c"])
                .arg(sources.join(format!("{name}.c")))
                .arg("-o")
                .arg(out.join(format!("{name}.o")))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("could not run {clang}: {e}"));
            (name, child)
        })
        .collect();
    for (name, child) in children {
        let result = child.wait_with_output().unwrap();
        assert!(
            result.status.success(),
            "{clang} failed on tests/objects/{name}.c ({HOW_TO_GET_THEM}):\n{}",
            String::from_utf8_lossy(&result.stderr)
        );
    }
    out
}
