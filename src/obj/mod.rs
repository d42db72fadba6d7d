//! The pure half of the loader: BPF ELF bytes in, descriptions of programs
//! and maps out. No syscalls here, so all of it is testable without root and
//! safe to feed hostile files (every offset and size is checked).
//!
//! What the loader reads: programs in `kprobe/FUNCTION`,
//! `tracepoint/CATEGORY/NAME` and `raw_tracepoint/NAME` sections, maps in
//! the legacy `maps` section and BTF-defined maps in `.maps`, global data
//! (`.data`, `.rodata`, `.bss` and their `.NAME` siblings) as one-entry
//! array maps, bpf-to-bpf calls into `.text`, the object's BTF with its
//! function and line info, and CO-RE relocation records (applied by the
//! loader against the running kernel's BTF). What it cannot use (other
//! program kinds, map-in-map, and the programs that need them) is listed
//! in `ObjectSpec::skipped`, never dropped silently. What it could only
//! load wrongly (externs) is refused.

pub mod btf;
mod data;

mod insn;
mod link;
mod parse;
mod section;

pub use insn::{INSN_SIZE, Insn, OP_LD_IMM64, PSEUDO_MAP_FD, PSEUDO_MAP_VALUE};
pub use parse::parse;

/// Where a program attaches, from its section name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProgramKind {
    /// `kprobe/FUNCTION`
    Kprobe {
        /// The kernel function.
        function: String,
    },
    /// `kretprobe/FUNCTION`: runs when the function returns.
    Kretprobe {
        /// The kernel function.
        function: String,
    },
    /// `tracepoint/CATEGORY/NAME`
    Tracepoint {
        /// The tracepoint's category (`syscalls`).
        category: String,
        /// Its name (`sys_enter_read`).
        name: String,
    },
    /// `raw_tracepoint/NAME` (or `raw_tp/NAME`): the tracepoint's own
    /// arguments, unformatted (`sys_enter`: the user's registers and the
    /// syscall number).
    RawTracepoint {
        /// The tracepoint's name, without category (`sys_enter`).
        name: String,
    },
}

impl ProgramKind {
    /// The kind's name: `kprobe` or `tracepoint`.
    pub fn label(&self) -> &'static str {
        match self {
            ProgramKind::Kprobe { .. } => "kprobe",
            ProgramKind::Kretprobe { .. } => "kretprobe",
            ProgramKind::Tracepoint { .. } => "tracepoint",
            ProgramKind::RawTracepoint { .. } => "raw_tracepoint",
        }
    }
}

/// Where a map was defined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapOrigin {
    /// The legacy `maps` section (`struct bpf_map_def`).
    Legacy,
    /// `.maps`, described by BTF (`__uint(type, ...)`, `__type(key, ...)`).
    Btf,
    /// A global data section (`.data`, `.rodata`, `.bss`, ...): one entry
    /// of the section's size, which programs address directly.
    Data,
}

#[derive(Clone, Debug, PartialEq, Eq)]
/// A map the object defines.
pub struct MapSpec {
    /// Its symbol's name.
    pub name: String,
    /// `map_type` (`BPF_MAP_TYPE_*`).
    pub map_type: u32,
    /// Bytes per key.
    pub key_size: u32,
    /// Bytes per value.
    pub value_size: u32,
    /// Entries; 0 for a perf event array means one per possible CPU.
    pub max_entries: u32,
    /// `map_flags`.
    pub flags: u32,
    /// Where it was defined.
    pub origin: MapOrigin,
    /// The key's and value's types in the object's BTF (0: none), given
    /// to the kernel with the BTF so that bpftool can print entries.
    pub btf_key_type_id: u32,
    /// See `btf_key_type_id`.
    pub btf_value_type_id: u32,
    /// Global data: the value's first contents (None: all zero, as for
    /// `.bss`). `ObjectSpec::set_global` writes into it before loading.
    pub initial: Option<Vec<u8>>,
    /// Made read-only for user space once its contents are written
    /// (`.rodata`: the verifier then knows the values and prunes code).
    pub freeze: bool,
}

/// A variable of a global data section, from the symbol table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalVar {
    /// Its name (`target_tgid`).
    pub name: String,
    /// The map of its section, in `ObjectSpec::maps`.
    pub map_index: usize,
    /// Bytes from the section's start.
    pub offset: u64,
    /// Its size in bytes.
    pub size: u64,
}

/// An ld_imm64 at `insn_index` that must be given the fd of map
/// `map_index` (a map), or the address of its value plus `value_offset`
/// (global data: `BPF_PSEUDO_MAP_VALUE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapRef {
    /// Index of the `ld_imm64` in the linked program.
    pub insn_index: usize,
    /// Index of the map in `ObjectSpec::maps`.
    pub map_index: usize,
    /// For global data: the byte offset in the map's value.
    pub value_offset: Option<u32>,
}

/// `struct bpf_func_info` as BPF_PROG_LOAD takes it: where a function of
/// the linked program starts (in instructions) and its FUNC type id.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FuncInfo {
    /// Its first instruction's index in the linked program.
    pub insn_off: u32,
    /// Its FUNC type in the object's BTF.
    pub type_id: u32,
}

/// `struct bpf_line_info` as BPF_PROG_LOAD takes it: the C source line of
/// an instruction, which the verifier quotes in its log.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineInfo {
    /// The instruction's index in the linked program.
    pub insn_off: u32,
    /// The file name, in the BTF's strings.
    pub file_name_off: u32,
    /// The line's text, in the BTF's strings.
    pub line_off: u32,
    /// Line number << 10 | column.
    pub line_col: u32,
}

const _: () = {
    assert!(std::mem::size_of::<FuncInfo>() == 8);
    assert!(std::mem::offset_of!(FuncInfo, type_id) == 4);
    assert!(std::mem::size_of::<LineInfo>() == 16);
    assert!(std::mem::offset_of!(LineInfo, file_name_off) == 4);
    assert!(std::mem::offset_of!(LineInfo, line_off) == 8);
    assert!(std::mem::offset_of!(LineInfo, line_col) == 12);
};

/// A CO-RE relocation of a linked program: the record, with its
/// instruction's index in the linked program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoreSite {
    /// The instruction to patch, in the linked program.
    pub insn_index: usize,
    /// The record (its insn_off still the section's byte offset).
    pub relo: btf::ext::CoreRelo,
}

/// What a relocation resolved to, kept for `probe inspect` and the tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelocTarget {
    /// A map, by name.
    Map(String),
    /// A global data map's value, by the map's name, at a byte offset.
    Data(String, u64),
    /// A `.text` function, by name, appended to the program.
    Subprogram(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
/// A relocation of a program, as the parse step resolved it.
pub struct Relocation {
    /// Index in the linked program (subprograms appended), not in the section.
    pub insn_index: usize,
    /// The symbol the ELF names.
    pub symbol: String,
    /// What it resolved to.
    pub target: RelocTarget,
}

#[derive(Clone, Debug, PartialEq, Eq)]
/// A program, linked and ready to load once its map fds are in.
pub struct ProgramSpec {
    /// Its function's name.
    pub name: String,
    /// The ELF section it came from (`kprobe/__x64_sys_read`).
    pub section: String,
    /// Where it attaches, from the section name.
    pub kind: ProgramKind,
    /// The program followed by every `.text` subprogram it reaches, with the
    /// call offsets already fixed; map loads still wait for their fds.
    pub insns: Vec<Insn>,
    /// The instructions that load a map's fd.
    pub map_refs: Vec<MapRef>,
    /// Every relocation, for `inspect`.
    pub relocations: Vec<Relocation>,
    /// Names of the subprograms appended, in order.
    pub subprograms: Vec<String>,
    /// One per function (the program, then each subprogram), from
    /// `.BTF.ext`; empty without it.
    pub func_info: Vec<FuncInfo>,
    /// Source lines, from `.BTF.ext`, in instruction order.
    pub line_info: Vec<LineInfo>,
    /// CO-RE relocations, in instruction order.
    pub core: Vec<CoreSite>,
}

impl ProgramSpec {
    /// The instructions with every map reference pointing at its map's fd;
    /// `map_fds` is indexed like `ObjectSpec::maps`. None when a map has no
    /// fd there (fds of another object's maps).
    pub fn insns_with_map_fds(&self, map_fds: &[i32]) -> Option<Vec<Insn>> {
        let mut insns = self.insns.clone();
        for r in &self.map_refs {
            let fd = *map_fds.get(r.map_index)?;
            let insn = insns.get_mut(r.insn_index)?;
            insn.imm = fd;
            match r.value_offset {
                None => insn.set_src_reg(PSEUDO_MAP_FD),
                Some(offset) => {
                    insn.set_src_reg(PSEUDO_MAP_VALUE);
                    // The second half of the ld_imm64 holds the offset.
                    insns.get_mut(r.insn_index + 1)?.imm = offset as i32;
                }
            }
        }
        Some(insns)
    }
}

/// What kind of thing was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkippedKind {
    /// A whole section: global data, or code or maps with no symbol to
    /// name them by.
    Section,
    /// A program the loader cannot load.
    Program,
    /// A map the loader cannot create.
    Map,
}

impl SkippedKind {
    /// Its name in `inspect`'s listing.
    pub fn label(self) -> &'static str {
        match self {
            SkippedKind::Section => "section",
            SkippedKind::Program => "program",
            SkippedKind::Map => "map",
        }
    }
}

/// Something in the object that the loader leaves out, and why. Every name
/// is printable text (the parse accepts no other), so each entry prints on
/// one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// A section, a program or a map.
    pub kind: SkippedKind,
    /// The program's or map's symbol, or the section's own name.
    pub name: String,
    /// The section it is in (its own name, for a section).
    pub section: String,
    /// Why: "program kind xdp not supported", "uses map counts, which is
    /// skipped (...)".
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
/// What the parse step makes of an object: what it can load, and what it skipped and why.
pub struct ObjectSpec {
    /// The programs it can load.
    pub programs: Vec<ProgramSpec>,
    /// The maps it can create, in the order programs refer to them.
    pub maps: Vec<MapSpec>,
    /// The `license` section's text.
    pub license: String,
    /// In the order of the file's sections. Empty when the loader can load
    /// everything the object holds.
    pub skipped: Vec<Skipped>,
    /// The variables of the global data sections.
    pub globals: Vec<GlobalVar>,
    /// The object's `.BTF`, DATASEC sizes and offsets filled in from the
    /// ELF (the compiler leaves them 0): what BPF_BTF_LOAD is given. None
    /// when the object has no BTF.
    pub btf: Option<Vec<u8>>,
}

impl ObjectSpec {
    /// Whether the loader takes the whole object, nothing skipped.
    pub fn fully_loadable(&self) -> bool {
        self.skipped.is_empty()
    }

    /// How many entries of `skipped` are of this kind.
    pub fn skipped_count(&self, kind: SkippedKind) -> usize {
        self.skipped.iter().filter(|s| s.kind == kind).count()
    }

    /// The program called `name`.
    pub fn program(&self, name: &str) -> Option<&ProgramSpec> {
        self.programs.iter().find(|p| p.name == name)
    }

    /// The index of the map called `name`.
    pub fn map_index(&self, name: &str) -> Option<usize> {
        self.maps.iter().position(|m| m.name == name)
    }

    /// The global variable called `name`.
    pub fn global(&self, name: &str) -> Option<&GlobalVar> {
        self.globals.iter().find(|g| g.name == name)
    }

    /// Sets global variable `name` (a `const volatile` setting in
    /// `.rodata`, or a `.data` initial value) before the maps are created:
    /// `value` must be exactly its size. A `.bss` variable can be set too
    /// (its section then gets contents).
    pub fn set_global(&mut self, name: &str, value: &[u8]) -> Result<(), GlobalError> {
        let Some(var) = self.global(name).cloned() else {
            return Err(GlobalError::NoSuchVariable(name.to_string()));
        };
        if var.size != value.len() as u64 {
            return Err(GlobalError::WrongSize {
                name: name.to_string(),
                expected: var.size,
                given: value.len(),
            });
        }
        let Some(map) = self.maps.get_mut(var.map_index) else {
            return Err(GlobalError::NoSuchVariable(name.to_string()));
        };
        let size = map.value_size as usize;
        let data = map.initial.get_or_insert_with(|| vec![0; size]);
        // In bounds: parse checked offset + size <= the section's size.
        let start = var.offset as usize;
        match data.get_mut(start..start + value.len()) {
            Some(slot) => {
                slot.copy_from_slice(value);
                Ok(())
            }
            None => Err(GlobalError::NoSuchVariable(name.to_string())),
        }
    }
}

/// Why `ObjectSpec::set_global` refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GlobalError {
    /// No global variable of that name.
    NoSuchVariable(String),
    /// The value is not the variable's size.
    WrongSize {
        /// The variable.
        name: String,
        /// Its size.
        expected: u64,
        /// The value's.
        given: usize,
    },
}

impl std::fmt::Display for GlobalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GlobalError::NoSuchVariable(name) => {
                write!(f, "the BPF object has no global variable named {name}")
            }
            GlobalError::WrongSize {
                name,
                expected,
                given,
            } => write!(
                f,
                "global variable {name} is {expected} bytes, and {given} were given"
            ),
        }
    }
}

impl std::error::Error for GlobalError {}

/// Why a file is not a usable BPF object. One line, for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl ParseError {
    /// The error with any control character escaped, so that the message
    /// stays on one line whatever names the file holds.
    pub fn new(message: String) -> ParseError {
        if !message.chars().any(char::is_control) {
            return ParseError(message);
        }
        ParseError(
            message
                .chars()
                .map(|c| {
                    if c.is_control() {
                        c.escape_default().to_string()
                    } else {
                        c.to_string()
                    }
                })
                .collect(),
        )
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

macro_rules! bail_parse {
    ($($arg:tt)*) => { return Err($crate::obj::ParseError::new(format!($($arg)*))) };
}
pub(crate) use bail_parse;
