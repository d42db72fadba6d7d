//! Deterministic fuzzing of the ELF parse and link step (`probe::obj::parse`)
//! on the objects build.rs compiles, and on those of tests/objects/ (other
//! projects' styles: BTF-defined maps, global data, CO-RE, externs, legacy
//! map quirks), compiled at test time: structured mutations of every ELF
//! header, section header, symbol and relocation field, of the .BTF header
//! and its first types, and of the .BTF.ext header, truncations, and seeded random bit flips and byte writes. Every
//! input must end in Ok or in an Err whose message is one line; never a
//! panic. Each random mutation has its own seed, printed on failure, so
//! that it can be replayed alone.
//!
//! `FUZZ_PARSE_ROUNDS=N` multiplies the number of random mutations (default
//! 1) for a longer run: `FUZZ_PARSE_ROUNDS=50 cargo test --release --test
//! fuzz_parse -- --nocapture`.

#[path = "support/parse_property.rs"]
mod parse_property;
#[path = "support/test_objects.rs"]
mod test_objects;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::Command;
use std::time::Instant;

use probe::obj;

const OBJECTS: &[(&str, &[u8])] = &[
    ("probe.bpf.o", probe::app::PROBE_OBJECT),
    (
        "subprog.bpf.o",
        include_bytes!(concat!(env!("OUT_DIR"), "/subprog.bpf.o")),
    ),
    (
        "ring_writer.bpf.o",
        include_bytes!(concat!(env!("OUT_DIR"), "/ring_writer.bpf.o")),
    ),
    (
        "count_floor.bpf.o",
        include_bytes!(concat!(env!("OUT_DIR"), "/count_floor.bpf.o")),
    ),
];

/// Random mutations per object (times FUZZ_PARSE_ROUNDS).
const RANDOM_PER_OBJECT: u64 = 4000;
/// The same for each object of tests/objects/: they are many, and what is
/// new in them (the sections around the code) is also reached by the
/// field extremes.
const RANDOM_PER_TEST_OBJECT: u64 = 1000;

/// xorshift64*: small, seedable, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // splitmix64 of the seed, so that nearby seeds diverge at once.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A little-endian field of the ELF: where, how wide, and what it is.
#[derive(Clone, Debug)]
struct Field {
    at: usize,
    width: usize,
    what: String,
}

fn read(bytes: &[u8], at: usize, width: usize) -> u64 {
    let mut v = [0u8; 8];
    v[..width].copy_from_slice(&bytes[at..at + width]);
    u64::from_le_bytes(v)
}

fn write(bytes: &mut [u8], f: &Field, value: u64) {
    bytes[f.at..f.at + f.width].copy_from_slice(&value.to_le_bytes()[..f.width]);
}

/// The fields worth setting to extremes in a well-formed ELF64 object: the
/// header's, every section header's, every symbol's, every relocation's.
fn fields(bytes: &[u8]) -> Vec<Field> {
    let mut out = Vec::new();
    let mut add = |at: usize, width: usize, what: String| out.push(Field { at, width, what });
    for (at, width, name) in [
        (0x10, 2, "e_type"),
        (0x12, 2, "e_machine"),
        (0x20, 8, "e_phoff"),
        (0x28, 8, "e_shoff"),
        (0x34, 2, "e_ehsize"),
        (0x3a, 2, "e_shentsize"),
        (0x3c, 2, "e_shnum"),
        (0x3e, 2, "e_shstrndx"),
    ] {
        add(at, width, name.to_string());
    }
    let shoff = read(bytes, 0x28, 8) as usize;
    let shnum = read(bytes, 0x3c, 2) as usize;
    for i in 0..shnum {
        let sh = shoff + i * 64;
        for (off, width, name) in [
            (0, 4, "sh_name"),
            (4, 4, "sh_type"),
            (8, 8, "sh_flags"),
            (24, 8, "sh_offset"),
            (32, 8, "sh_size"),
            (40, 4, "sh_link"),
            (44, 4, "sh_info"),
            (56, 8, "sh_entsize"),
        ] {
            add(sh + off, width, format!("section {i} {name}"));
        }
        let sh_type = read(bytes, sh + 4, 4);
        let (offset, size) = (
            read(bytes, sh + 24, 8) as usize,
            read(bytes, sh + 32, 8) as usize,
        );
        match sh_type {
            // SHT_SYMTAB
            2 => {
                for s in 0..size / 24 {
                    let at = offset + s * 24;
                    for (off, width, name) in [
                        (0, 4, "st_name"),
                        (4, 1, "st_info"),
                        (6, 2, "st_shndx"),
                        (8, 8, "st_value"),
                        (16, 8, "st_size"),
                    ] {
                        add(at + off, width, format!("symbol {s} {name}"));
                    }
                }
            }
            // SHT_REL: all of a program's; of the sections the loader
            // only checks (BTF, BTF.ext: thousands of line-info entries
            // in probe.bpf.o), the first 64.
            9 => {
                let target = read(bytes, sh + 44, 4) as usize;
                let target_flags = read(bytes, shoff + target * 64 + 8, 8);
                let all = size / 16;
                let limit = if target_flags & 4 != 0 {
                    all
                } else {
                    all.min(64)
                };
                for r in 0..limit {
                    let at = offset + r * 16;
                    add(at, 8, format!("section {i} rel {r} r_offset"));
                    add(at + 8, 8, format!("section {i} rel {r} r_info"));
                    add(at + 8, 4, format!("section {i} rel {r} r_type"));
                    add(at + 12, 4, format!("section {i} rel {r} r_sym"));
                }
            }
            _ => {}
        }
        // The .BTF header, and the first 64 types' info, size/type and
        // first data words: what the BTF reader walks by, and what names
        // maps, global data and CO-RE fields.
        if sh_type == 1 && section_name(bytes, i) == ".BTF" && size >= 24 {
            for (off, width, name) in [
                (0, 2, "magic"),
                (2, 1, "version"),
                (4, 4, "hdr_len"),
                (8, 4, "type_off"),
                (12, 4, "type_len"),
                (16, 4, "str_off"),
                (20, 4, "str_len"),
            ] {
                add(offset + off, width, format!(".BTF {name}"));
            }
            if let Some(blob) = bytes.get(offset..offset + size)
                && let Ok(btf) = probe::obj::btf::Btf::parse(blob)
            {
                for t in btf.types().take(64) {
                    let at = offset + t.blob_offset();
                    let id = t.id();
                    add(at, 4, format!(".BTF type {id} name_off"));
                    add(at + 4, 4, format!(".BTF type {id} info"));
                    add(at + 8, 4, format!(".BTF type {id} size/type"));
                    if at + 24 <= offset + size {
                        add(at + 12, 4, format!(".BTF type {id} data 0"));
                        add(at + 16, 4, format!(".BTF type {id} data 1"));
                        add(at + 20, 4, format!(".BTF type {id} data 2"));
                    }
                }
            }
        }
        // The .BTF.ext header, whose sizes say where CO-RE relocations are.
        if sh_type == 1 && section_name(bytes, i) == ".BTF.ext" && size >= 32 {
            for (off, width, name) in [
                (0, 2, "magic"),
                (2, 1, "version"),
                (3, 1, "flags"),
                (4, 4, "hdr_len"),
                (8, 4, "func_info_off"),
                (12, 4, "func_info_len"),
                (16, 4, "line_info_off"),
                (20, 4, "line_info_len"),
                (24, 4, "core_relo_off"),
                (28, 4, "core_relo_len"),
            ] {
                add(offset + off, width, format!(".BTF.ext {name}"));
            }
        }
        // Executable sections: the instructions the link step reads and
        // patches (calls and 64-bit loads, and the one after each); the
        // first 24 of each (probe.bpf.o has 40 programs alike, and 2 raw tracepoint ones).
        let executable = read(bytes, sh + 8, 8) & 4 != 0;
        if executable && sh_type == 1 {
            let mut second_half = false;
            let mut patched = 0;
            for n in 0..size / 8 {
                if patched >= 24 && !second_half {
                    break;
                }
                let at = offset + n * 8;
                let code = bytes[at];
                if code == 0x85 || code == 0x18 || second_half {
                    patched += 1;
                    add(at, 1, format!("section {i} insn {n} code"));
                    add(at + 1, 1, format!("section {i} insn {n} regs"));
                    add(at + 4, 4, format!("section {i} insn {n} imm"));
                }
                second_half = code == 0x18 && !second_half;
            }
        }
    }
    out
}

/// The name of section `i` of a well-formed ELF64 object.
fn section_name(bytes: &[u8], i: usize) -> String {
    let shoff = read(bytes, 0x28, 8) as usize;
    let shstrndx = read(bytes, 0x3e, 2) as usize;
    let strings = read(bytes, shoff + shstrndx * 64 + 24, 8) as usize;
    c_str(bytes, strings + read(bytes, shoff + i * 64, 4) as usize)
}

/// The values every field is set to in turn.
fn extremes(f: &Field, old: u64) -> Vec<u64> {
    let max = if f.width == 8 {
        u64::MAX
    } else {
        (1u64 << (8 * f.width)) - 1
    };
    let mut v = vec![
        0,
        1,
        8,
        max / 2,     // 0x7fff…
        max / 2 + 1, // 0x8000…
        max - 7,
        max,
        old.wrapping_add(1) & max,
        old.wrapping_add(8) & max,
        old.wrapping_sub(8) & max,
        old.wrapping_sub(1) & max,
        0x85 & max, // a call, in a code or immediate field
        0x18 & max, // a 64-bit load
    ];
    v.retain(|&x| x != old);
    v.sort_unstable();
    v.dedup();
    v
}

thread_local! {
    /// Set while this thread runs inputs, whose panics are caught and listed.
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Silences the panic hook while `check` runs an input, so that the test's
/// own failures (and the other test's) still print.
fn quiet_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !QUIET.with(|q| q.get()) {
            previous(info)
        }
    }));
}

/// Runs the parse on one input: whether it parsed, or why it failed the
/// test (a panic, or an error message that is not one line).
fn check(input: &[u8]) -> Result<bool, String> {
    QUIET.with(|q| q.set(true));
    let result = catch_unwind(AssertUnwindSafe(|| parse_property::parse_and_check(input)));
    QUIET.with(|q| q.set(false));
    match result {
        Ok(parsed) => Ok(parsed),
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(format!("panicked: {what}"))
        }
    }
}

/// One random mutation from `seed`: a few bit flips, byte writes, field
/// extremes, copied ranges or a truncation, mixed; or a symbol's value or
/// size together with the immediate of an instruction the link step reads
/// (the pair that reaches the arithmetic on targets).
fn random_mutation(original: &[u8], fields: &[Field], seed: u64) -> (Vec<u8>, String) {
    let mut rng = Rng::new(seed);
    let mut bytes = original.to_vec();
    let mut what = Vec::new();
    let set = |bytes: &mut Vec<u8>, rng: &mut Rng, f: &Field, what: &mut Vec<String>| {
        let old = read(bytes, f.at, f.width);
        let values = extremes(f, old);
        let value = if rng.below(4) == 0 {
            rng.next()
        } else {
            values[rng.below(values.len())]
        };
        write(bytes, f, value);
        what.push(format!("{} = {value:#x}", f.what));
    };
    let pick = |rng: &mut Rng, filter: &dyn Fn(&Field) -> bool| {
        let chosen: Vec<&Field> = fields.iter().filter(|f| filter(f)).collect();
        (!chosen.is_empty()).then(|| chosen[rng.below(chosen.len())].clone())
    };
    for _ in 0..1 + rng.below(4) {
        match rng.below(7) {
            0 => {
                let at = rng.below(bytes.len());
                let bit = rng.below(8);
                bytes[at] ^= 1 << bit;
                what.push(format!("flip bit {bit} of byte {at}"));
            }
            1 => {
                let at = rng.below(bytes.len());
                let value = [0x00, 0xff, 0x7f, 0x80, rng.next() as u8][rng.below(5)];
                bytes[at] = value;
                what.push(format!("byte {at} = {value:#x}"));
            }
            2 | 3 => {
                let f = fields[rng.below(fields.len())].clone();
                set(&mut bytes, &mut rng, &f, &mut what);
            }
            4 => {
                let symbol = pick(&mut rng, &|f| {
                    f.what.ends_with("st_value") || f.what.ends_with("st_size")
                });
                let insn = pick(&mut rng, &|f| f.what.contains(" insn "));
                for f in symbol.iter().chain(&insn) {
                    set(&mut bytes, &mut rng, f, &mut what);
                }
            }
            5 => {
                // An instruction-sized block copied elsewhere: makes
                // plausible-looking calls and loads where they do not belong.
                let len = 8 * (1 + rng.below(4));
                let from = rng.below(bytes.len().saturating_sub(len));
                let to = rng.below(bytes.len().saturating_sub(len));
                bytes.copy_within(from..from + len, to);
                what.push(format!("copy {len} bytes from {from} to {to}"));
            }
            _ => {
                let len = rng.below(bytes.len());
                bytes.truncate(len);
                what.push(format!("truncate to {len}"));
                break;
            }
        }
    }
    (bytes, what.join(", "))
}

#[test]
fn no_mutation_of_the_objects_makes_the_parse_panic() {
    // The default hook would print every caught panic; the failures are
    // listed at the end instead.
    quiet_panics();
    let rounds: u64 = std::env::var("FUZZ_PARSE_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1);
    let start = Instant::now();
    let mut inputs = 0u64;
    let mut errors = 0u64;
    let mut failures = Vec::new();
    let mut run = |name: &str, input: &[u8], what: &dyn Fn() -> String| {
        inputs += 1;
        match check(input) {
            Ok(true) => {}
            Ok(false) => errors += 1,
            Err(why) => failures.push(format!("{name}: {}: {why}", what())),
        }
    };

    let compiled: Vec<(String, Vec<u8>)> = test_objects::NAMES
        .iter()
        .map(|name| (format!("{name}.o"), test_objects::bytes(name)))
        .collect();
    let embedded = OBJECTS
        .iter()
        .map(|&(name, bytes)| (name, bytes, RANDOM_PER_OBJECT));
    let objects = embedded.chain(
        compiled
            .iter()
            .map(|(name, bytes)| (name.as_str(), bytes.as_slice(), RANDOM_PER_TEST_OBJECT)),
    );
    for (index, (name, original, random)) in objects.enumerate() {
        // Some of tests/objects/ are refused as they are (CO-RE, externs):
        // their mutations are what is fuzzed.
        if index < OBJECTS.len() {
            assert!(obj::parse(original).is_ok(), "{name} parses unmutated");
        }
        let fields = fields(original);
        // Every field at every extreme.
        for f in &fields {
            let old = read(original, f.at, f.width);
            for value in extremes(f, old) {
                let mut bytes = original.to_vec();
                write(&mut bytes, f, value);
                run(name, &bytes, &|| format!("{} = {value:#x}", f.what));
            }
        }
        // Truncations: every instruction-sized length (every few for a
        // large object: at most 4096), and the last bytes.
        let step = (original.len() / 4096).next_multiple_of(8).max(8);
        for len in (0..original.len())
            .step_by(step)
            .chain(original.len() - 8..original.len())
        {
            run(name, &original[..len], &|| format!("truncate to {len}"));
        }
        // Seeded random mutations.
        for i in 0..random * rounds {
            let seed = (index as u64) << 48 | i;
            let (bytes, what) = random_mutation(original, &fields, seed);
            run(name, &bytes, &|| format!("seed {seed:#x} ({what})"));
        }
    }
    let elapsed = start.elapsed();
    println!(
        "fuzz_parse: {inputs} inputs ({errors} refused) in {:.2}s, {} failures",
        elapsed.as_secs_f64(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} inputs failed:\n{}",
        failures.len(),
        failures[..failures.len().min(40)].join("\n")
    );
}

/// `probe inspect` on a file: exit code, stdout, stderr.
fn inspect(path: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_probe"))
        .arg("inspect")
        .arg(path)
        .output()
        .expect("run probe inspect");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn inspect_refuses_corrupted_files_with_one_line_and_exit_1() {
    let dir = std::env::temp_dir().join(format!("probe-fuzz-parse-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let original = probe::app::PROBE_OBJECT;
    let fields = fields(original);
    let field = |name: &str| fields.iter().find(|f| f.what == name).unwrap().clone();
    let with = |name: &str, value: u64| {
        let mut bytes = original.to_vec();
        write(&mut bytes, &field(name), value);
        bytes
    };
    let first_rel = fields
        .iter()
        .find(|f| f.what.ends_with("rel 0 r_offset"))
        .unwrap()
        .clone();
    let mut bad_rel = original.to_vec();
    write(&mut bad_rel, &first_rel, 0xffff_ffff_ffff_fff8);
    let mut odd_rel = original.to_vec();
    write(
        &mut odd_rel,
        &first_rel,
        read(original, first_rel.at, 8) + 4,
    );

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated.o", original[..original.len() / 2].to_vec()),
        ("tiny.o", original[..10].to_vec()),
        ("empty.o", Vec::new()),
        ("text.o", b"not an object\n".to_vec()),
        ("x86.o", with("e_machine", 62)),
        ("shoff.o", with("e_shoff", u64::MAX)),
        ("shnum.o", with("e_shnum", 0xffff)),
        ("shentsize.o", with("e_shentsize", 1)),
        ("rel-far.o", bad_rel),
        ("rel-odd.o", odd_rel),
        // A newline in the file name must not split the message.
        ("new\nline.o", original[..100].to_vec()),
    ];
    for (name, bytes) in &cases {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let (code, stdout, stderr) = inspect(&path);
        assert_eq!(code, 1, "{name:?}: exit code; stderr {stderr:?}");
        assert!(stdout.is_empty(), "{name:?}: stdout {stdout:?}");
        assert!(
            stderr.starts_with("probe: ") && stderr.ends_with('\n') && stderr.lines().count() == 1,
            "{name:?}: stderr is not one line: {stderr:?}"
        );
    }
    let (code, _, stderr) = inspect(&dir.join("does-not-exist.o"));
    assert_eq!(code, 1);
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");

    let path = dir.join("probe.bpf.o");
    std::fs::write(&path, original).unwrap();
    let (code, stdout, stderr) = inspect(&path);
    assert_eq!(code, 0, "stderr {stderr:?}");
    assert!(stderr.is_empty(), "{stderr:?}");
    assert!(stdout.starts_with("license: GPL\n"), "{stdout}");
    assert!(stdout.contains("programs: 42\n"), "{stdout}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Just enough ELF64 reading to aim a mutation at a named symbol or at a
/// relocation's instruction.
struct Elf {
    /// (name, sh_type, sh_offset, sh_size, sh_info) by section index.
    sections: Vec<(String, u32, usize, usize, usize)>,
    symtab: usize,
    strtab: usize,
}

impl Elf {
    fn read(bytes: &[u8]) -> Elf {
        let shoff = read(bytes, 0x28, 8) as usize;
        let shnum = read(bytes, 0x3c, 2) as usize;
        let shstrndx = read(bytes, 0x3e, 2) as usize;
        let header = |i: usize, off: usize, width: usize| read(bytes, shoff + i * 64 + off, width);
        let shstrtab = header(shstrndx, 24, 8) as usize;
        let mut sections = Vec::new();
        let (mut symtab, mut strtab) = (0, 0);
        for i in 0..shnum {
            let name = c_str(bytes, shstrtab + header(i, 0, 4) as usize);
            let sh_type = header(i, 4, 4) as u32;
            if sh_type == 2 {
                symtab = i;
                strtab = header(i, 40, 4) as usize;
            }
            sections.push((
                name,
                sh_type,
                header(i, 24, 8) as usize,
                header(i, 32, 8) as usize,
                header(i, 44, 4) as usize,
            ));
        }
        Elf {
            sections,
            symtab,
            strtab,
        }
    }

    /// File offset of the symbol table entry named `name`.
    fn symbol(&self, bytes: &[u8], name: &str) -> usize {
        let (_, _, offset, size, _) = self.sections[self.symtab];
        let strings = self.sections[self.strtab].2;
        (0..size / 24)
            .map(|i| offset + i * 24)
            .find(|&at| c_str(bytes, strings + read(bytes, at, 4) as usize) == name)
            .unwrap_or_else(|| panic!("no symbol {name}"))
    }

    /// File offsets of the relocations of section `target` against symbol
    /// `name`, with the file offset of the instruction each one patches.
    fn relocations(&self, bytes: &[u8], target: &str, name: &str) -> Vec<(usize, usize)> {
        let index = self.sections.iter().position(|s| s.0 == target).unwrap();
        let symbol = (self.symbol(bytes, name) - self.sections[self.symtab].2) / 24;
        let mut out = Vec::new();
        for &(_, sh_type, offset, size, info) in &self.sections {
            if sh_type != 9 || info != index {
                continue;
            }
            for at in (offset..offset + size).step_by(16) {
                if read(bytes, at + 12, 4) as usize == symbol {
                    let insn = self.sections[index].2 + read(bytes, at, 8) as usize;
                    out.push((at, insn));
                }
            }
        }
        out
    }
}

fn c_str(bytes: &[u8], at: usize) -> String {
    let end = bytes[at..].iter().position(|&b| b == 0).unwrap() + at;
    String::from_utf8_lossy(&bytes[at..end]).into_owned()
}

fn put(bytes: &mut [u8], at: usize, width: usize, value: u64) {
    bytes[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
}

/// Inputs written by hand after reading the code: each one reached a panic
/// (debug overflow check) or was silently accepted before the link step
/// checked it. Each must now be refused, with one line.
#[test]
fn hand_made_hostile_objects_are_refused() {
    const SUBPROG: &[u8] = OBJECTS[1].1;
    let elf = Elf::read(SUBPROG);
    let bump = elf.symbol(SUBPROG, "bump");
    let counters = elf.symbol(SUBPROG, "counters");
    let calls = elf.relocations(SUBPROG, ".text", "bump");
    let (call_rel, call_insn) = calls[0];
    let (map_rel, map_insn) = elf.relocations(SUBPROG, ".text", "counters")[0];

    let mut cases: Vec<(&str, Vec<u8>, &str)> = Vec::new();
    // A call through a symbol that is not a function (so escapes the
    // function checks), at i64::MAX, with a non-negative immediate: the
    // target computation overflowed.
    let mut b = SUBPROG.to_vec();
    put(&mut b, bump + 4, 1, 0); // STT_NOTYPE, STB_LOCAL
    put(&mut b, bump + 8, 8, i64::MAX as u64);
    put(&mut b, call_insn + 4, 4, 0);
    cases.push(("call target overflow", b, "is not a function"));
    // A map load through a section symbol at i64::MAX, immediate 1.
    let mut b = SUBPROG.to_vec();
    put(&mut b, counters + 4, 1, 3); // STT_SECTION
    put(&mut b, counters + 8, 8, i64::MAX as u64);
    put(&mut b, map_insn + 4, 4, 1);
    cases.push(("map offset overflow", b, "start of a map definition"));
    // A call into the middle of bump (immediate 0 instead of -1).
    let mut b = SUBPROG.to_vec();
    put(&mut b, call_insn + 4, 4, 0);
    cases.push(("call into a function's middle", b, "not at its start"));
    // Relocations past the section, between instructions, or doubled:
    // they used to be dropped, leaving a map load without its map.
    let mut b = SUBPROG.to_vec();
    put(&mut b, map_rel, 8, 1 << 20);
    cases.push(("relocation past the section", b, "not the start of one"));
    let mut b = SUBPROG.to_vec();
    put(&mut b, map_rel, 8, read(SUBPROG, map_rel, 8) + 4);
    cases.push(("relocation between instructions", b, "not the start of one"));
    let mut b = SUBPROG.to_vec();
    let (other_rel, _) = calls[1];
    put(&mut b, other_rel, 8, read(SUBPROG, call_rel, 8));
    cases.push(("two relocations at one offset", b, "two relocations"));
    // The map relocation moved to the second half of its ld_imm64.
    let mut b = SUBPROG.to_vec();
    put(&mut b, map_rel, 8, read(SUBPROG, map_rel, 8) + 8);
    cases.push(("relocation on an ld_imm64's second half", b, "second half"));
    // Control characters from the file in a message.
    let mut b = SUBPROG.to_vec();
    let name = elf.sections[elf.strtab].2 + read(SUBPROG, counters, 4) as usize;
    put(&mut b, name + 3, 1, b'\n' as u64);
    put(&mut b, map_insn, 1, 0xb7); // mov, not ld_imm64: an error naming it
    cases.push(("a newline in a symbol name", b, "no readable name"));

    for (what, bytes, expected) in &cases {
        match check(bytes) {
            Ok(false) => {}
            Ok(true) => panic!("{what}: accepted"),
            Err(why) => panic!("{what}: {why}"),
        }
        let message = refusal(bytes);
        assert!(message.contains(expected), "{what}: {message}");
    }
}

/// One section for `elf_object`: name, sh_type, sh_flags, data, sh_link,
/// sh_info.
type SectionSpec<'a> = (&'a str, u32, u64, Vec<u8>, u32, u32);

/// A BPF ELF64 relocatable object with these sections after the null one,
/// and a .shstrtab appended last.
fn elf_object(sections: &[SectionSpec]) -> Vec<u8> {
    let mut out = vec![0u8; 64];
    out[..8].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    put(&mut out, 0x10, 2, 1); // ET_REL
    put(&mut out, 0x12, 2, 247); // EM_BPF
    put(&mut out, 0x14, 4, 1);
    put(&mut out, 0x34, 2, 64);
    put(&mut out, 0x3a, 2, 64);
    let mut shstrtab = vec![0u8];
    let mut names = Vec::new();
    for (name, ..) in sections
        .iter()
        .chain([&(".shstrtab", 3, 0, Vec::new(), 0, 0)])
    {
        names.push(shstrtab.len() as u64);
        shstrtab.extend_from_slice(name.as_bytes());
        shstrtab.push(0);
    }
    let mut headers = vec![[0u8; 64]];
    let last = (".shstrtab", 3, 0, shstrtab, 0, 0);
    for (i, (_, sh_type, flags, data, link, info)) in sections.iter().chain([&last]).enumerate() {
        while !out.len().is_multiple_of(8) {
            out.push(0);
        }
        let mut h = [0u8; 64];
        put(&mut h, 0, 4, names[i]);
        put(&mut h, 4, 4, u64::from(*sh_type));
        put(&mut h, 8, 8, *flags);
        put(&mut h, 24, 8, out.len() as u64);
        put(&mut h, 32, 8, data.len() as u64);
        put(&mut h, 40, 4, u64::from(*link));
        put(&mut h, 44, 4, u64::from(*info));
        put(&mut h, 48, 8, 8);
        let entsize = match sh_type {
            2 => 24,
            9 => 16,
            _ => 0,
        };
        put(&mut h, 56, 8, entsize);
        headers.push(h);
        out.extend_from_slice(data);
    }
    while !out.len().is_multiple_of(8) {
        out.push(0);
    }
    let shoff = out.len() as u64;
    put(&mut out, 0x28, 8, shoff);
    put(&mut out, 0x3c, 2, headers.len() as u64);
    put(&mut out, 0x3e, 2, headers.len() as u64 - 1);
    for h in headers {
        out.extend_from_slice(&h);
    }
    out
}

/// The parse's error message; a spec is summarized, not printed whole.
fn refusal(bytes: &[u8]) -> String {
    match obj::parse(bytes) {
        Err(e) => e.to_string(),
        Ok(spec) => panic!(
            "accepted: {} programs, {} instructions in all",
            spec.programs.len(),
            spec.programs.iter().map(|p| p.insns.len()).sum::<usize>()
        ),
    }
}

/// A symbol table entry.
fn symbol(name: u32, info: u8, shndx: u16, value: u64, size: u64) -> Vec<u8> {
    let mut s = vec![0u8; 24];
    put(&mut s, 0, 4, name.into());
    s[4] = info;
    put(&mut s, 6, 2, shndx.into());
    put(&mut s, 8, 8, value);
    put(&mut s, 16, 8, size);
    s
}

/// An object whose `programs` one-instruction programs in one section all
/// call one `.text` function of `text_insns` instructions, each symbol named
/// at strtab offset `name`, over a string table `strtab`.
fn shared_callee_object(programs: usize, text_insns: usize, strtab: Vec<u8>, name: u32) -> Vec<u8> {
    const SHF_ALLOC_EXEC: u64 = 0x2 | 0x4;
    let text = vec![0u8; text_insns * 8];
    let mut code = Vec::new();
    let mut rel = Vec::new();
    let mut symtab = vec![0u8; 24];
    symtab.extend(symbol(name, 0x02, 1, 0, text.len() as u64)); // local func
    for i in 0..programs {
        code.extend_from_slice(&[0x85, 0x10, 0, 0, 0xff, 0xff, 0xff, 0xff]);
        let mut r = [0u8; 16];
        put(&mut r, 0, 8, (i * 8) as u64);
        put(&mut r, 8, 8, 1 << 32 | 10); // symbol 1, R_BPF_64_32
        rel.extend_from_slice(&r);
        symtab.extend(symbol(name, 0x12, 2, (i * 8) as u64, 8)); // global func
    }
    elf_object(&[
        (".text", 1, SHF_ALLOC_EXEC, text, 0, 0),
        ("tracepoint/a/b", 1, SHF_ALLOC_EXEC, code, 0, 0),
        (".reltracepoint/a/b", 9, 0, rel, 4, 2),
        (".symtab", 2, 0, symtab, 5, 2),
        (".strtab", 3, 0, strtab, 0, 0),
    ])
}

#[test]
fn a_hand_built_object_parses() {
    let spec = obj::parse(&shared_callee_object(3, 4, b"\0f\0".to_vec(), 1)).unwrap();
    assert_eq!(spec.programs.len(), 3);
    for p in &spec.programs {
        assert_eq!(p.insns.len(), 1 + 4);
        assert_eq!(p.subprograms, ["f"]);
    }
}

/// Thousands of programs sharing one large subprogram: linking copies it
/// into each, so a file of 300 KiB asked for 512 MiB of instructions. The
/// parse now stops at a budget proportional to the file's size.
#[test]
fn linking_cannot_multiply_a_file_without_bound() {
    let bytes = shared_callee_object(4096, 16384, b"\0f\0".to_vec(), 1);
    let start = Instant::now();
    let message = refusal(&bytes);
    assert!(message.contains("times its size"), "{message}");
    println!(
        "{} byte object refused in {:.2}s",
        bytes.len(),
        start.elapsed().as_secs_f64()
    );
}

/// Thousands of symbols all named by one long string: each used to be
/// copied whole (and scanned for its end through the whole table).
#[test]
fn long_names_are_refused_without_reading_them_whole() {
    let mut strtab = vec![0u8];
    strtab.extend(std::iter::repeat_n(b'a', 4 << 20));
    strtab.push(0);
    let bytes = shared_callee_object(4096, 4, strtab, 1);
    let start = Instant::now();
    let message = refusal(&bytes);
    assert!(message.contains("no readable name"), "{message}");
    assert!(start.elapsed().as_secs() < 2, "{:?}", start.elapsed());
}

/// A .BTF.ext whose header cannot be read might hide CO-RE relocations:
/// refused, saying so, where a loader that ignored it would load offsets
/// nobody fixed.
#[test]
fn an_unreadable_btf_ext_is_refused() {
    let original = probe::app::PROBE_OBJECT;
    let fields = fields(original);
    let with = |name: &str, value: u64| {
        let f = fields.iter().find(|f| f.what == name).unwrap();
        let mut bytes = original.to_vec();
        write(&mut bytes, f, value);
        refusal(&bytes)
    };
    let why = |what: &str| {
        format!(
            ".BTF.ext is malformed ({what}), so whether it needs CO-RE relocations cannot be \
             told: rebuild the object"
        )
    };
    assert_eq!(
        with(".BTF.ext magic", 0x1234),
        why("magic 0x1234, not 0xeb9f")
    );
    assert_eq!(
        with(".BTF.ext version", 2),
        why("version 2, this loader knows 1")
    );
    let outside = with(".BTF.ext core_relo_len", 0xffff_ffff);
    assert!(
        outside.starts_with(".BTF.ext is malformed (CO-RE part (4294967295 bytes at "),
        "{outside}"
    );
    // A header too old to have a CO-RE part: the other parts' offsets now
    // count from 8 bytes earlier, so what they point at is not records.
    let f = fields
        .iter()
        .find(|f| f.what == ".BTF.ext hdr_len")
        .unwrap();
    let mut bytes = original.to_vec();
    write(&mut bytes, f, 24);
    let refused = refusal(&bytes);
    assert!(
        refused.starts_with(".BTF.ext is malformed (8 func_info records run past"),
        "{refused}"
    );
}
