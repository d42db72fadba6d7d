//! The pure half of the loader: BPF ELF bytes in, descriptions of programs
//! and maps out. No syscalls here, so all of it is testable without root and
//! safe to feed hostile files (every offset and size is checked).
//!
//! What the loader reads: programs in `kprobe/FUNCTION` and
//! `tracepoint/CATEGORY/NAME` sections, maps in the legacy `maps` section,
//! bpf-to-bpf calls into `.text`. What it cannot use (other program kinds,
//! BTF-defined maps, global data, and the programs that need them) is
//! listed in `ObjectSpec::skipped`, never dropped silently. What it could
//! only load wrongly (CO-RE relocations, externs) is refused.

pub mod btf;

mod insn;
mod link;
mod parse;
mod section;

pub use insn::{INSN_SIZE, Insn, OP_LD_IMM64, PSEUDO_MAP_FD};
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

#[derive(Clone, Debug, PartialEq, Eq)]
/// A map from the legacy `maps` section.
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
}

/// An ld_imm64 at `insn_index` that must be given the fd of map `map_index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapRef {
    /// Index of the `ld_imm64` in the linked program.
    pub insn_index: usize,
    /// Index of the map in `ObjectSpec::maps`.
    pub map_index: usize,
}

/// What a relocation resolved to, kept for `probe inspect` and the tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelocTarget {
    /// A map, by name.
    Map(String),
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
}

impl ProgramSpec {
    /// The instructions with every map reference pointing at its map's fd;
    /// `map_fds` is indexed like `ObjectSpec::maps`. None when a map has no
    /// fd there (fds of another object's maps).
    pub fn insns_with_map_fds(&self, map_fds: &[i32]) -> Option<Vec<Insn>> {
        let mut insns = self.insns.clone();
        for r in &self.map_refs {
            let insn = insns.get_mut(r.insn_index)?;
            insn.set_src_reg(PSEUDO_MAP_FD);
            insn.imm = *map_fds.get(r.map_index)?;
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
}

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
