//! Reading the ELF: sections, symbols and relocations into plain data that
//! `link` turns into programs. Everything the file claims is checked against
//! the bytes actually present before it is used, every name is read with a
//! bounded scan, and everything built from the file is charged to a budget
//! proportional to its size, so no input can make parsing hang, panic or
//! allocate without bound.
//!
//! Each section is classed first (`section.rs`); what the loader cannot
//! use is listed in `ObjectSpec::skipped` in the order of the file, never
//! dropped unsaid. Externs and CO-RE relocations are refused before
//! anything else: an object needing them would load, and then run wrong.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, HashSet};

use object::elf::{SHT_REL, SHT_RELA};
use object::read::elf::{ElfFile64, ElfSection64, ElfSymbol64, FileHeader, SectionHeader, Sym};
use object::{
    Architecture, Endianness, Object, ObjectSection, ObjectSymbol, RelocationFlags,
    RelocationTarget, SectionIndex, SymbolKind, SymbolSection,
};

use super::link::{Function, Linked, Linker};
use super::section::{self, Class};
use super::{
    MapSpec, ObjectSpec, ParseError, Skipped, SkippedKind, bail_parse, btf::ext as btf_ext,
};

/// The legacy `struct bpf_map_def`: type, key size, value size, max
/// entries, flags, each a u32. 16 bytes is the oldest form (no flags).
const MAP_DEF_MIN: u64 = 16;
const MAP_DEF_FULL: u64 = 20;
/// BPF_MAP_TYPE_PERF_EVENT_ARRAY: its key is a CPU index and its value a
/// perf event fd, 4 bytes each, which many objects leave at 0.
const PERF_EVENT_ARRAY: u32 = 4;
/// Longest section or symbol name accepted (the kernel's KSYM_NAME_LEN).
pub(super) const MAX_NAME: usize = 512;

type Elf<'a> = ElfFile64<'a, Endianness>;
type Section<'a, 'f> = ElfSection64<'a, 'f, Endianness>;
type Symbol<'a, 'f> = ElfSymbol64<'a, 'f, Endianness>;

/// A relocation as the ELF states it, with its symbol already looked up.
#[derive(Clone, Debug)]
pub(super) struct RawReloc<'a> {
    pub r_type: u32,
    /// The symbol's name, or its section's for a section symbol (whose own
    /// name is empty).
    pub symbol: &'a str,
    pub symbol_section: Option<SectionIndex>,
    pub symbol_address: u64,
    /// An STT_SECTION symbol: the target is given by the instruction's
    /// immediate, relative to the section start.
    pub symbol_is_section: bool,
}

/// A section of code with its relocations keyed by byte offset (each one
/// checked to sit on an instruction of the section).
pub(super) struct CodeSection<'a> {
    pub index: SectionIndex,
    pub name: &'a str,
    pub data: &'a [u8],
    pub relocs: BTreeMap<u64, RawReloc<'a>>,
}

/// How many bytes of output (instructions, names, relocation records) the
/// parse may still build. Linking copies each reachable `.text` function
/// into every program that calls it, so without a budget a small file could
/// demand gigabytes.
pub(super) struct Budget(Cell<u64>);

/// The budget: a fixed allowance plus a multiple of the input's size.
const BUDGET_BASE: u64 = 16 << 20;
const BUDGET_PER_INPUT_BYTE: u64 = 16;

impl Budget {
    fn for_input(len: usize) -> Budget {
        Budget(Cell::new(BUDGET_BASE.saturating_add(
            (len as u64).saturating_mul(BUDGET_PER_INPUT_BYTE),
        )))
    }

    pub fn charge(&self, bytes: usize) -> Result<(), ParseError> {
        match self.0.get().checked_sub(bytes as u64) {
            Some(left) => {
                self.0.set(left);
                Ok(())
            }
            None => bail_parse!(
                "linking the object would build more than {BUDGET_PER_INPUT_BYTE} times \
                 its size in programs (overlapping or endlessly shared code?)"
            ),
        }
    }

    /// An owned copy of `s`, charged.
    pub fn string(&self, s: &str) -> Result<String, ParseError> {
        self.charge(s.len() + std::mem::size_of::<String>())?;
        Ok(s.to_string())
    }
}

/// A section whose contents are skipped, for naming it to the programs
/// that use it (which are skipped too).
pub(super) struct SkippedTarget<'a> {
    pub section: &'a str,
    pub reason: &'static str,
    /// For `.maps`: each map's offset and name, sorted by offset, to name
    /// the map a section symbol points into.
    pub maps: Option<Vec<(u64, &'a str)>>,
}

/// What every program of the object shares while it is being linked.
pub(super) struct Shared<'a> {
    pub text: Option<CodeSection<'a>>,
    /// `.text` functions sorted by start offset, none overlapping.
    pub text_functions: Vec<Function<'a>>,
    pub maps_section: Option<SectionIndex>,
    /// Byte offset of each map's definition in the maps section, indexed
    /// like `ObjectSpec::maps`: strictly increasing.
    pub map_offsets: Vec<u64>,
    pub map_names: Vec<String>,
    pub skipped_targets: HashMap<SectionIndex, SkippedTarget<'a>>,
    /// `.text` and every program section: a 64-bit load of an address in
    /// one takes a function's address (a callback).
    pub code_sections: HashSet<SectionIndex>,
    pub budget: Budget,
}

/// Parses a BPF ELF object. Never panics, whatever the bytes.
pub fn parse(bytes: &[u8]) -> Result<ObjectSpec, ParseError> {
    // `object` reads the ELF structures in place and wants them aligned;
    // `include_bytes!` and callers' buffers promise no alignment.
    if !(bytes.as_ptr() as usize).is_multiple_of(8) {
        let mut words = vec![0u64; bytes.len().div_ceil(8)];
        // SAFETY: a u64 buffer viewed as at least bytes.len() bytes.
        let aligned =
            unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr() as *mut u8, bytes.len()) };
        aligned.copy_from_slice(bytes);
        return parse_aligned(aligned);
    }
    parse_aligned(bytes)
}

/// What the parse looks up by section index, read once: the names of the
/// file, each with a bounded scan (`object` looks for a name's NUL through
/// the whole string table, and copying thousands of symbols that all name
/// one megabyte-long string would take quadratic time and memory), and the
/// relocation sections `object` would ignore.
struct Names<'a> {
    /// By section index; None for a name that is not short printable text.
    sections: Vec<Option<&'a str>>,
    /// The symbol string table.
    strtab: &'a [u8],
    /// See `foreign_relocations`.
    foreign_relocations: HashMap<usize, usize>,
}

impl<'a> Names<'a> {
    fn read(elf: &Elf<'a>, bytes: &'a [u8]) -> Names<'a> {
        let endian = elf.endian();
        let table = elf.elf_section_table();
        let data_of = |index: SectionIndex| -> &'a [u8] {
            table
                .section(index)
                .ok()
                .and_then(|s| s.data(endian, bytes).ok())
                .unwrap_or_default()
        };
        let shstrtab = elf
            .elf_header()
            .shstrndx(endian, bytes)
            .map_or(&[][..], |i| data_of(SectionIndex(i as usize)));
        let sections = table
            .iter()
            .map(|s| name_at(shstrtab, s.sh_name(endian)))
            .collect();
        let strtab = data_of(elf.elf_symbol_table().string_section());
        Names {
            sections,
            strtab,
            foreign_relocations: foreign_relocations(elf),
        }
    }

    fn section(&self, index: SectionIndex) -> Option<&'a str> {
        self.sections.get(index.0).copied().flatten()
    }

    /// The section's name for a list or a message: never empty.
    fn shown(&self, index: SectionIndex) -> &'a str {
        match self.section(index) {
            None | Some("") => UNNAMED_SECTION,
            Some(name) => name,
        }
    }

    fn section_by_name<'f>(&self, elf: &'f Elf<'a>, name: &str) -> Option<Section<'a, 'f>> {
        let index = self.sections.iter().position(|n| *n == Some(name))?;
        elf.section_by_index(SectionIndex(index)).ok()
    }

    fn symbol(&self, sym: &Symbol<'a, '_>) -> Result<&'a str, ParseError> {
        let offset = sym.elf_symbol().st_name(sym.endian());
        match name_at(self.strtab, offset) {
            Some(name) => Ok(name),
            None => bail_parse!(
                "symbol {} has no readable name (printable text of at most {MAX_NAME} bytes)",
                sym.index().0
            ),
        }
    }
}

/// The NUL-terminated name at `offset`, if it is printable UTF-8 of at most
/// MAX_NAME bytes.
fn name_at(table: &[u8], offset: u32) -> Option<&str> {
    let rest = table.get(usize::try_from(offset).ok()?..)?;
    let rest = &rest[..rest.len().min(MAX_NAME + 1)];
    let end = rest.iter().position(|&b| b == 0)?;
    let name = std::str::from_utf8(&rest[..end]).ok()?;
    (!name.chars().any(char::is_control)).then_some(name)
}

fn parse_aligned(bytes: &[u8]) -> Result<ObjectSpec, ParseError> {
    let file = object::File::parse(bytes)
        .map_err(|e| ParseError::new(format!("not an ELF object file: {e}")))?;
    if file.architecture() != Architecture::Bpf {
        bail_parse!(
            "not a BPF object: it is built for {:?} (compile with clang -target bpf)",
            file.architecture()
        );
    }
    if !file.is_little_endian() {
        bail_parse!("big-endian BPF objects are not supported: compile with -target bpfel");
    }
    let object::File::Elf64(elf) = file else {
        bail_parse!("not a 64-bit ELF object: compile with clang -target bpf");
    };
    let names = Names::read(&elf, bytes);
    let budget = Budget::for_input(bytes.len());
    // Both would load and run wrongly, not fail: refused before anything.
    refuse_externs(&elf, &names)?;
    refuse_core_relocations(&elf, &names, bytes)?;

    let classes = classify_sections(&elf, &names);
    let symbols = Symbols::read(&elf, &names, &classes);
    let license = read_license(&names, &elf)?;
    let (maps_section, maps, map_offsets) = read_maps(&elf, &classes, &symbols, &budget)?;
    let text = match section_of_class(&elf, &classes, |c| matches!(c, Class::Text)) {
        Some(s) if s.size() > 0 => Some(code_section(&names, &elf, &s)?),
        _ => None,
    };
    let text_functions = match &text {
        Some(t) => functions_in(&symbols, t, false)?,
        None => Vec::new(),
    };
    let mut skipped_targets = HashMap::new();
    let mut code_sections = HashSet::new();
    for (i, class) in classes.iter().enumerate() {
        let index = SectionIndex(i);
        let section = names.shown(index);
        let reason = match class {
            Class::Text | Class::Programs(_) => {
                code_sections.insert(index);
                continue;
            }
            Class::BtfMaps => section::BTF_MAP,
            Class::Data(reason) => reason,
            Class::Ignored | Class::Maps => continue,
        };
        let maps = matches!(class, Class::BtfMaps).then(|| {
            let mut maps: Vec<(u64, &str)> = symbols
                .data
                .get(&index)
                .into_iter()
                .flatten()
                .filter_map(|s| Some((s.address, *s.name.as_ref().ok()?)))
                .collect();
            maps.sort_unstable();
            maps
        });
        let target = SkippedTarget {
            section,
            reason,
            maps,
        };
        skipped_targets.insert(index, target);
    }
    let shared = Shared {
        text,
        text_functions,
        maps_section,
        map_names: maps.iter().map(|m| m.name.clone()).collect(),
        map_offsets,
        skipped_targets,
        code_sections,
        budget,
    };

    let mut programs = Vec::new();
    let mut skipped = Skips {
        list: Vec::new(),
        budget: &shared.budget,
    };
    for section in elf.sections() {
        let index = section.index();
        let Some(class) = classes.get(index.0) else {
            continue;
        };
        let section_name = names.shown(index);
        match class {
            Class::Programs(Ok(kind)) => {
                let code = code_section(&names, &elf, &section)?;
                let entries = functions_in(&symbols, &code, true)?;
                // Static functions alone are listed below, not refused.
                if symbols.functions_of(index).next().is_none() {
                    bail_parse!(
                        "section {section_name} holds no function symbol to name its program"
                    );
                }
                for entry in &entries {
                    match Linker::link(&shared, &code, entry)? {
                        Linked::Ready(linked) => {
                            // The spec itself, and the kind's copy of the
                            // section name.
                            shared.budget.charge(
                                std::mem::size_of::<super::ProgramSpec>() + code.name.len(),
                            )?;
                            let name = shared.budget.string(entry.name)?;
                            let section = shared.budget.string(code.name)?;
                            programs.push(linked.into_spec(name, section, kind.clone()));
                        }
                        Linked::Skipped(why) => {
                            skipped.push(SkippedKind::Program, entry.name, section_name, why)?
                        }
                    }
                }
                for f in symbols.functions_of(index).filter(|f| !f.global) {
                    let why = section::STATIC_PROGRAM.to_string();
                    skipped.push(SkippedKind::Program, &f.label(), section_name, why)?;
                }
            }
            Class::Programs(Err(why)) => {
                skipped.each_symbol_or_section(
                    SkippedKind::Program,
                    symbols.functions_of(index),
                    section_name,
                    why,
                )?;
            }
            Class::BtfMaps => {
                skipped.each_symbol_or_section(
                    SkippedKind::Map,
                    symbols.data.get(&index).into_iter().flatten(),
                    section_name,
                    section::BTF_MAP,
                )?;
            }
            Class::Data(why) => skipped.push(
                SkippedKind::Section,
                section_name,
                section_name,
                why.to_string(),
            )?,
            Class::Ignored | Class::Text | Class::Maps => {}
        }
    }
    let skipped = skipped.list;
    if programs.is_empty()
        && let Some(first) = skipped
            .iter()
            .find(|s| s.kind == SkippedKind::Program)
            .or(skipped.first())
    {
        let others = skipped
            .iter()
            .filter(|s| s.kind == SkippedKind::Program)
            .count()
            .saturating_sub(1);
        let more = match others {
            0 => String::new(),
            1 => ", and 1 more program is skipped".to_string(),
            n => format!(", and {n} more programs are skipped"),
        };
        let what = match first.kind {
            SkippedKind::Section => format!("section {}", first.name),
            kind => format!(
                "{} {} (section {})",
                kind.label(),
                first.name,
                first.section
            ),
        };
        bail_parse!(
            "nothing in it can be loaded by this loader: {what}: {}{more}",
            first.reason
        );
    }
    Ok(ObjectSpec {
        programs,
        maps,
        license,
        skipped,
    })
}

/// How a section or symbol whose name cannot be shown is listed.
const UNNAMED_SECTION: &str = "(unnamed section)";
const UNNAMED_SYMBOL: &str = "(unnamed symbol)";

/// The skipped list being built, every entry charged to the budget.
struct Skips<'b> {
    list: Vec<Skipped>,
    budget: &'b Budget,
}

impl Skips<'_> {
    fn push(
        &mut self,
        kind: SkippedKind,
        name: &str,
        section: &str,
        reason: String,
    ) -> Result<(), ParseError> {
        self.budget
            .charge(std::mem::size_of::<Skipped>() + reason.len())?;
        // A list entry must show something to find it by.
        let name = if name.is_empty() {
            UNNAMED_SYMBOL
        } else {
            name
        };
        let entry = Skipped {
            kind,
            name: self.budget.string(name)?,
            section: self.budget.string(section)?,
            reason,
        };
        self.list.push(entry);
        Ok(())
    }

    /// One entry per symbol, in address order; the section itself when it
    /// has none (a stripped object), so that it is never left out.
    fn each_symbol_or_section<'s, 'a: 's>(
        &mut self,
        kind: SkippedKind,
        symbols: impl Iterator<Item = &'s SymbolInfo<'a>>,
        section: &str,
        reason: &str,
    ) -> Result<(), ParseError> {
        let mut symbols: Vec<&SymbolInfo> = symbols.collect();
        if symbols.is_empty() {
            return self.push(SkippedKind::Section, section, section, reason.to_string());
        }
        symbols.sort_by_key(|s| (s.address, s.index));
        for s in symbols {
            self.push(kind, &s.label(), section, reason.to_string())?;
        }
        Ok(())
    }
}

/// The class of every section, by index.
fn classify_sections(elf: &Elf, names: &Names) -> Vec<Class> {
    let endian = elf.endian();
    let mut classes: Vec<Class> = elf
        .elf_section_table()
        .enumerate()
        .map(|(index, header)| {
            section::classify(
                names.section(index),
                header.sh_type(endian),
                header.sh_flags(endian),
                header.sh_size(endian),
            )
        })
        .collect();
    section::mark_duplicates(&mut classes);
    classes
}

/// The first section of the class `wanted` picks (there is at most one
/// `.text` and one `maps`: see `mark_duplicates`).
fn section_of_class<'a, 'f>(
    elf: &'f Elf<'a>,
    classes: &[Class],
    wanted: impl Fn(&Class) -> bool,
) -> Option<Section<'a, 'f>> {
    let index = classes.iter().position(wanted)?;
    elf.section_by_index(SectionIndex(index)).ok()
}

/// Externs (undefined global symbols: `.kconfig` and `.ksyms` variables,
/// kernel functions, symbols left for a linker) are values libbpf fills in
/// at load time. Loaded without them, a program would read zeros or call
/// nothing, so the first one is named and the object refused.
fn refuse_externs(elf: &Elf, names: &Names) -> Result<(), ParseError> {
    let Some(sym) = elf.symbols().find(|s| s.is_undefined() && s.is_global()) else {
        return Ok(());
    };
    let name = match names.symbol(&sym) {
        Ok(name) if !name.is_empty() => name.to_string(),
        _ => format!("number {}", sym.index().0),
    };
    bail_parse!(
        "it uses extern {name}, which libbpf would resolve at load time and this loader \
         cannot: define it in the object, or load the object with libbpf"
    )
}

/// CO-RE relocations (BPF_CORE_READ, preserve_access_index structs) are
/// offsets libbpf rewrites to the running kernel's; this loader would load
/// the compiler's guesses, so it refuses the object instead. Any `.BTF.ext`
/// it cannot read is refused too: whether it asks for them is then unknown.
fn refuse_core_relocations(elf: &Elf, names: &Names, bytes: &[u8]) -> Result<(), ParseError> {
    let endian = elf.endian();
    for (index, header) in elf.elf_section_table().enumerate() {
        if names.section(index) != Some(".BTF.ext") {
            continue;
        }
        let count = header
            .data(endian, bytes)
            .map_err(|e| format!("unreadable: {e}"))
            .and_then(|d| btf_ext::parse(d).map(|e| e.core_count()));
        match count {
            Ok(0) => {}
            Ok(n) => bail_parse!(
                "it has {n} CO-RE relocations (BPF_CORE_READ, preserve_access_index), which \
                 this loader does not apply, so it would read the wrong kernel memory: read \
                 with bpf_probe_read_kernel at fixed offsets, or load it with libbpf"
            ),
            Err(why) => bail_parse!(
                ".BTF.ext is malformed ({why}), so whether it needs CO-RE relocations \
                 cannot be told: rebuild the object"
            ),
        }
    }
    Ok(())
}

fn read_license(names: &Names, elf: &Elf) -> Result<String, ParseError> {
    let Some(section) = names.section_by_name(elf, "license") else {
        return Ok(String::new());
    };
    let data = section
        .data()
        .map_err(|e| ParseError::new(format!("license section unreadable: {e}")))?;
    let text = data.split(|&b| b == 0).next().unwrap_or_default();
    match std::str::from_utf8(text) {
        Ok(s) if s.len() <= MAX_NAME && !s.chars().any(char::is_control) => Ok(s.to_string()),
        _ => bail_parse!("license section is not one short line of text"),
    }
}

/// A symbol the parse cares about, read once.
struct SymbolInfo<'a> {
    /// An error only if the symbol is used.
    name: Result<&'a str, ParseError>,
    index: usize,
    address: u64,
    size: u64,
    global: bool,
}

impl SymbolInfo<'_> {
    /// Its name, or where it is when the name cannot be shown: for listing
    /// it as skipped, which must not fail the parse.
    fn label(&self) -> String {
        match &self.name {
            Ok(name) if !name.is_empty() => name.to_string(),
            _ => format!("(symbol {} has no readable name)", self.index),
        }
    }
}

/// The symbols of the file in one pass: map definitions and functions, by
/// section, so that no later step scans the whole table again.
struct Symbols<'a> {
    /// Non-section symbols of the `maps` and `.maps` sections, by section.
    data: HashMap<SectionIndex, Vec<SymbolInfo<'a>>>,
    /// Function symbols, by section.
    functions: HashMap<SectionIndex, Vec<SymbolInfo<'a>>>,
}

impl<'a> Symbols<'a> {
    fn read(elf: &Elf<'a>, names: &Names<'a>, classes: &[Class]) -> Symbols<'a> {
        let holds_maps = |index: SectionIndex| {
            matches!(classes.get(index.0), Some(Class::Maps | Class::BtfMaps))
        };
        let mut data: HashMap<_, Vec<_>> = HashMap::new();
        let mut functions: HashMap<_, Vec<_>> = HashMap::new();
        for sym in elf.symbols() {
            let SymbolSection::Section(index) = sym.section() else {
                continue;
            };
            let kind = sym.kind();
            let wanted = if kind == SymbolKind::Text {
                &mut functions
            } else if holds_maps(index) && kind != SymbolKind::Section {
                &mut data
            } else {
                continue;
            };
            wanted.entry(index).or_default().push(SymbolInfo {
                name: names.symbol(&sym),
                index: sym.index().0,
                address: sym.address(),
                size: sym.size(),
                global: sym.is_global(),
            });
        }
        Symbols { data, functions }
    }

    fn functions_of(&self, section: SectionIndex) -> impl Iterator<Item = &SymbolInfo<'a>> {
        self.functions.get(&section).into_iter().flatten()
    }
}

type Maps = (Option<SectionIndex>, Vec<MapSpec>, Vec<u64>);

fn read_maps(
    elf: &Elf,
    classes: &[Class],
    symbols: &Symbols,
    budget: &Budget,
) -> Result<Maps, ParseError> {
    let Some(section) = section_of_class(elf, classes, |c| matches!(c, Class::Maps)) else {
        return Ok((None, Vec::new(), Vec::new()));
    };
    let data = section
        .data()
        .map_err(|e| ParseError::new(format!("maps section unreadable: {e}")))?;
    let mut defs: Vec<&SymbolInfo> = symbols
        .data
        .get(&section.index())
        .map(|v| v.iter().collect())
        .unwrap_or_default();
    defs.sort_by_key(|d| (d.address, d.size));
    let mut maps = Vec::with_capacity(defs.len());
    let mut offsets: Vec<u64> = Vec::with_capacity(defs.len());
    let mut previous_end = 0;
    for def in defs {
        let (name, offset, size) = (def.name.clone()?, def.address, def.size);
        if size < MAP_DEF_MIN {
            bail_parse!(
                "map {name} is {size} bytes: a map definition needs at least {MAP_DEF_MIN}"
            );
        }
        let end = offset.checked_add(size).filter(|&e| e <= data.len() as u64);
        let Some(end) = end else {
            bail_parse!("map {name} (offset {offset}, {size} bytes) lies outside the maps section");
        };
        if !offsets.is_empty() && offset < previous_end {
            bail_parse!("map {name} overlaps the map before it in the maps section");
        }
        previous_end = end;
        // In bounds: offset + size <= data.len(). Definitions do not
        // overlap, so all of them together scan the section at most once.
        let def = &data[offset as usize..end as usize];
        let (fields, rest) = def.split_at(def.len().min(MAP_DEF_FULL as usize));
        if rest.iter().any(|&b| b != 0) {
            // libbpf refuses these too: a field this loader does not read
            // (iproute2's pinning, an inner map) would be silently ignored.
            bail_parse!(
                "map {name}: its {size}-byte definition sets fields past the five this \
                 loader reads (type, key and value size, max entries, flags), such as \
                 iproute2's pinning: clear them, or load the object with the tool it was \
                 written for"
            );
        }
        let word = |i: usize| {
            fields
                .get(i * 4..i * 4 + 4)
                .map_or(0, |w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
        };
        let mut map = MapSpec {
            name: budget.string(name)?,
            map_type: word(0),
            key_size: word(1),
            value_size: word(2),
            max_entries: word(3),
            flags: word(4),
        };
        if map.map_type == PERF_EVENT_ARRAY {
            // What libbpf and cilium/ebpf give it; the kernel refuses 0.
            if map.key_size == 0 {
                map.key_size = 4;
            }
            if map.value_size == 0 {
                map.value_size = 4;
            }
        }
        maps.push(map);
        offsets.push(offset);
    }
    Ok((Some(section.index()), maps, offsets))
}

fn code_section<'a>(
    names: &Names<'a>,
    elf: &Elf<'a>,
    section: &Section<'a, '_>,
) -> Result<CodeSection<'a>, ParseError> {
    let Some(name) = names.section(section.index()) else {
        bail_parse!("section {} has no readable name", section.index().0);
    };
    let data = section
        .data()
        .map_err(|e| ParseError::new(format!("section {name} unreadable: {e}")))?;
    if data.len() % super::INSN_SIZE != 0 {
        bail_parse!(
            "section {name} is {} bytes, not a whole number of instructions",
            data.len()
        );
    }
    if let Some(&rel) = names.foreign_relocations.get(&section.index().0) {
        bail_parse!(
            "relocation section {} for {name} does not use the symbol table",
            names.section(SectionIndex(rel)).unwrap_or("(unnamed)")
        );
    }
    let mut relocs = BTreeMap::new();
    for (offset, reloc) in section.relocations() {
        let RelocationFlags::Elf { r_type } = reloc.flags() else {
            bail_parse!("section {name} has a relocation that is not ELF");
        };
        let RelocationTarget::Symbol(index) = reloc.target() else {
            bail_parse!("section {name} has a relocation at {offset} with no symbol");
        };
        if reloc.addend() != 0 {
            bail_parse!("section {name} has a relocation at {offset} with an explicit addend");
        }
        let on_insn = offset % super::INSN_SIZE as u64 == 0
            && offset
                .checked_add(super::INSN_SIZE as u64)
                .is_some_and(|end| end <= data.len() as u64);
        if !on_insn {
            bail_parse!(
                "section {name} ({} bytes) has a relocation at offset {offset}, \
                 which is not the start of one of its instructions",
                data.len()
            );
        }
        let sym = elf.symbol_by_index(index).map_err(|e| {
            ParseError::new(format!("relocation at {offset} in {name}: bad symbol: {e}"))
        })?;
        let symbol_is_section = sym.kind() == SymbolKind::Section;
        let symbol = if symbol_is_section {
            // Its own name is empty: `.rodata`, not ``, in every message.
            sym.section_index()
                .map_or(UNNAMED_SECTION, |i| names.shown(i))
        } else {
            match names.symbol(&sym)? {
                "" => UNNAMED_SYMBOL,
                name => name,
            }
        };
        let raw = RawReloc {
            r_type,
            symbol_section: sym.section_index(),
            symbol_address: sym.address(),
            symbol_is_section,
            symbol,
        };
        if relocs.insert(offset, raw).is_some() {
            bail_parse!("section {name} has two relocations at offset {offset}");
        }
    }
    Ok(CodeSection {
        index: section.index(),
        name,
        data,
        relocs,
    })
}

/// The relocation sections `object` would silently skip because their
/// symbol table is not the file's (for code that would leave map loads and
/// calls unpatched): target section index → relocation section index. One
/// pass over the section headers, so that checking every code section costs
/// no more than reading them.
fn foreign_relocations(elf: &Elf) -> HashMap<usize, usize> {
    let endian = elf.endian();
    let symtab = elf.elf_symbol_table().section();
    let mut foreign = HashMap::new();
    for (i, header) in elf.elf_section_table().enumerate() {
        let sh_type = header.sh_type(endian);
        if (sh_type == SHT_REL || sh_type == SHT_RELA)
            && header.sh_link(endian) as usize != symtab.0
        {
            foreign
                .entry(header.sh_info(endian) as usize)
                .or_insert(i.0);
        }
    }
    foreign
}

/// The function symbols of a code section, sorted, checked to lie inside it
/// and not to overlap. `global_only` picks program entry points; `.text`
/// keeps static ones too.
fn functions_in<'a>(
    symbols: &Symbols<'a>,
    code: &CodeSection<'a>,
    global_only: bool,
) -> Result<Vec<Function<'a>>, ParseError> {
    let mut functions = Vec::new();
    for sym in symbols.functions.get(&code.index).into_iter().flatten() {
        if global_only && !sym.global {
            continue;
        }
        let (name, start, size) = (sym.name.clone()?, sym.address, sym.size);
        let fits = start
            .checked_add(size)
            .is_some_and(|end| end <= code.data.len() as u64);
        if size == 0 || !fits || start % 8 != 0 || size % 8 != 0 {
            bail_parse!(
                "function {name} (offset {start}, {size} bytes) does not fit section {}",
                code.name
            );
        }
        functions.push(Function { name, start, size });
    }
    functions.sort_by_key(|f| f.start);
    for pair in functions.windows(2) {
        if pair[1].start < pair[0].start + pair[0].size {
            bail_parse!(
                "functions {} and {} overlap in section {}",
                pair[0].name,
                pair[1].name,
                code.name
            );
        }
    }
    Ok(functions)
}
