//! Reading the ELF: sections, symbols and relocations into plain data that
//! `link` turns into programs. Everything the file claims is checked against
//! the bytes actually present before it is used, every name is read with a
//! bounded scan, and everything built from the file is charged to a budget
//! proportional to its size, so no input can make parsing hang, panic or
//! allocate without bound.
//!
//! Each section is classed first (`section.rs`); what the loader cannot
//! use is listed in `ObjectSpec::skipped` in the order of the file, never
//! dropped unsaid. Externs are refused before anything else: an object
//! needing them would load, and then run wrong. `.BTF` and `.BTF.ext` are
//! read when present (BTF-defined maps need the first); a malformed one
//! refuses the object.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, HashSet};

use object::elf::{SHT_REL, SHT_RELA};
use object::read::elf::{ElfFile64, ElfSection64, ElfSymbol64, FileHeader, SectionHeader, Sym};
use object::{
    Architecture, Endianness, Object, ObjectSection, ObjectSymbol, RelocationFlags,
    RelocationTarget, SectionIndex, SymbolKind, SymbolSection,
};

use super::btf::Btf;
use super::btf::ext::{self as btf_ext, BtfExt};
use super::btf::fixup;
use super::link::{ExtInfo, Function, Linked, Linker};
use super::section::{self, Class};
use super::{
    GlobalVar, MapOrigin, MapSpec, ObjectSpec, ParseError, Skipped, SkippedKind, bail_parse, data,
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
}

/// What a 64-bit load of an address in a section means.
pub(super) enum MapSite {
    /// Map definitions one after another (`maps`, `.maps`): the map at
    /// that offset, by (offset, index in `ObjectSpec::maps`), sorted; and
    /// those skipped, by (offset, name, why).
    Defs {
        maps: Vec<(u64, usize)>,
        skipped: Vec<(u64, String, String)>,
    },
    /// A global data section: an address inside its map's value.
    Data { map_index: usize, size: u64 },
}

/// What every program of the object shares while it is being linked.
pub(super) struct Shared<'a> {
    pub text: Option<CodeSection<'a>>,
    /// `.text` functions sorted by start offset, none overlapping.
    pub text_functions: Vec<Function<'a>>,
    /// The sections that hold maps or global data.
    pub map_sites: HashMap<SectionIndex, MapSite>,
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
    // Would load and run wrongly, not fail: refused before anything.
    refuse_externs(&elf, &names)?;
    let btf_bytes = read_btf(&elf, &names)?;
    let btf = btf_bytes
        .map(Btf::parse)
        .transpose()
        .map_err(|why| ParseError::new(format!(".BTF is malformed ({why}): rebuild the object")))?;
    let ext = match &btf {
        Some(_) => read_btf_ext(&elf, &names)?,
        None => None,
    };

    let classes = classify_sections(&elf, &names);
    let symbols = Symbols::read(&elf, &names, &classes);
    let license = read_license(&names, &elf)?;
    let mut map_sites = HashMap::new();
    let mut maps = Vec::new();
    if let Some((index, legacy, offsets)) = read_maps(&elf, &classes, &symbols, &budget)? {
        let at = offsets.into_iter().zip(0..legacy.len()).collect();
        maps.extend(legacy);
        map_sites.insert(
            index,
            MapSite::Defs {
                maps: at,
                skipped: Vec::new(),
            },
        );
    }
    let mut skipped_maps = Vec::new();
    if let Some(index) = classes.iter().position(|c| matches!(c, Class::BtfMaps)) {
        let index = SectionIndex(index);
        let site = read_btf_maps(btf.as_ref(), &symbols, index, &mut maps, &budget)?;
        if let MapSite::Defs { skipped, .. } = &site {
            skipped_maps = skipped.clone();
        }
        map_sites.insert(index, site);
    }
    let globals = read_global_data(
        &elf,
        &names,
        &classes,
        &symbols,
        btf.as_ref(),
        (&mut maps, &mut map_sites),
        &budget,
    )?;
    let btf_for_kernel = match btf_bytes {
        Some(b) => Some(
            fixup::fill_datasecs(
                b,
                |section| names.section_by_name(&elf, section).map(|s| s.size()),
                |var| symbols.objects.get(var).copied(),
            )
            .map_err(|why| ParseError::new(format!(".BTF is malformed ({why})")))?,
        ),
        None => None,
    };
    let ext_info = ExtInfo::new(btf.as_ref(), ext.as_ref());
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
            Class::Data(reason) => reason,
            Class::Ignored | Class::Maps | Class::BtfMaps | Class::GlobalData => continue,
        };
        skipped_targets.insert(index, SkippedTarget { section, reason });
    }
    let shared = Shared {
        text,
        text_functions,
        map_names: maps.iter().map(|m| m.name.clone()).collect(),
        map_sites,
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
                        Linked::Ready(mut linked) => {
                            linked.attach_ext_info(&ext_info, &code)?;
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
                for (_, name, why) in &skipped_maps {
                    skipped.push(SkippedKind::Map, name, section_name, why.clone())?;
                }
            }
            Class::Data(why) => skipped.push(
                SkippedKind::Section,
                section_name,
                section_name,
                why.to_string(),
            )?,
            Class::Ignored | Class::Text | Class::Maps | Class::GlobalData => {}
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
        globals,
        btf: btf_for_kernel,
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

/// The `.BTF` section's bytes, if the object has one.
fn read_btf<'a>(elf: &Elf<'a>, names: &Names<'a>) -> Result<Option<&'a [u8]>, ParseError> {
    let Some(section) = names.section_by_name(elf, ".BTF") else {
        return Ok(None);
    };
    match section.data() {
        Ok(data) => Ok(Some(data)),
        Err(e) => bail_parse!(".BTF is unreadable ({e}): rebuild the object"),
    }
}

/// `.BTF.ext`, if the object has one. One that cannot be read is refused:
/// whether it asks for CO-RE relocations is then unknown, and loading
/// without them would read the wrong kernel memory.
fn read_btf_ext(elf: &Elf, names: &Names) -> Result<Option<BtfExt>, ParseError> {
    let Some(section) = names.section_by_name(elf, ".BTF.ext") else {
        return Ok(None);
    };
    let ext = section
        .data()
        .map_err(|e| format!("unreadable: {e}"))
        .and_then(btf_ext::parse);
    match ext {
        Ok(ext) => Ok(Some(ext)),
        Err(why) => bail_parse!(
            ".BTF.ext is malformed ({why}), so whether it needs CO-RE relocations \
             cannot be told: rebuild the object"
        ),
    }
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

/// The symbols of the file in one pass: map definitions, variables and
/// functions, by section, so that no later step scans the whole table
/// again.
struct Symbols<'a> {
    /// Non-section symbols of the `maps` and `.maps` sections and of global
    /// data, by section.
    data: HashMap<SectionIndex, Vec<SymbolInfo<'a>>>,
    /// Their values by name (for the BTF's DATASEC offsets).
    objects: HashMap<&'a str, u64>,
    /// Function symbols, by section.
    functions: HashMap<SectionIndex, Vec<SymbolInfo<'a>>>,
}

impl<'a> Symbols<'a> {
    fn read(elf: &Elf<'a>, names: &Names<'a>, classes: &[Class]) -> Symbols<'a> {
        let holds_maps = |index: SectionIndex| {
            matches!(
                classes.get(index.0),
                Some(Class::Maps | Class::BtfMaps | Class::GlobalData)
            )
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
        let objects = data
            .values()
            .flatten()
            .filter_map(|s: &SymbolInfo<'a>| Some((*s.name.as_ref().ok()?, s.address)))
            .collect();
        Symbols {
            data,
            objects,
            functions,
        }
    }

    fn functions_of(&self, section: SectionIndex) -> impl Iterator<Item = &SymbolInfo<'a>> {
        self.functions.get(&section).into_iter().flatten()
    }
}

type Maps = (SectionIndex, Vec<MapSpec>, Vec<u64>);

fn read_maps(
    elf: &Elf,
    classes: &[Class],
    symbols: &Symbols,
    budget: &Budget,
) -> Result<Option<Maps>, ParseError> {
    let Some(section) = section_of_class(elf, classes, |c| matches!(c, Class::Maps)) else {
        return Ok(None);
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
            origin: MapOrigin::Legacy,
            btf_key_type_id: 0,
            btf_value_type_id: 0,
            initial: None,
            freeze: false,
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
    Ok(Some((section.index(), maps, offsets)))
}

/// The maps of `.maps`, appended to `maps`; where each is, and which are
/// skipped and why.
fn read_btf_maps(
    btf: Option<&Btf>,
    symbols: &Symbols,
    index: SectionIndex,
    maps: &mut Vec<MapSpec>,
    budget: &Budget,
) -> Result<MapSite, ParseError> {
    let defined: Vec<&SymbolInfo> = symbols.data.get(&index).into_iter().flatten().collect();
    let mut at = Vec::new();
    let mut skipped = Vec::new();
    let Some(btf) = btf else {
        for s in defined {
            let why = "BTF-defined map in an object without .BTF (compile with -g)";
            skipped.push((s.address, s.label(), why.to_string()));
        }
        return Ok(MapSite::Defs { maps: at, skipped });
    };
    let offset_of = |name: &str| {
        defined
            .iter()
            .find(|s| s.name.as_ref().is_ok_and(|n| *n == name))
            .map(|s| s.address)
    };
    for (offset, name, def) in data::btf_maps(btf, offset_of) {
        budget.charge(std::mem::size_of::<MapSpec>() + name.len())?;
        match def {
            Ok(map) => {
                at.push((offset, maps.len()));
                maps.push(map);
            }
            Err(why) => skipped.push((offset, name.to_string(), why)),
        }
    }
    Ok(MapSite::Defs { maps: at, skipped })
}

/// One map per global data section, appended to `maps`, its site and size
/// recorded; the variables of them all.
fn read_global_data<'a>(
    elf: &Elf<'a>,
    names: &Names<'a>,
    classes: &[Class],
    symbols: &Symbols<'a>,
    btf: Option<&Btf>,
    (maps, sites): (&mut Vec<MapSpec>, &mut HashMap<SectionIndex, MapSite>),
    budget: &Budget,
) -> Result<Vec<GlobalVar>, ParseError> {
    let mut globals = Vec::new();
    for (i, class) in classes.iter().enumerate() {
        if !matches!(class, Class::GlobalData) {
            continue;
        }
        let index = SectionIndex(i);
        let Some(name) = names.section(index) else {
            continue;
        };
        let Ok(section) = elf.section_by_index(index) else {
            continue;
        };
        let size = section.size();
        let Ok(value_size) = u32::try_from(size) else {
            bail_parse!("global data section {name} is {size} bytes: too big for a map value");
        };
        // `.bss` is NOBITS: no bytes in the file.
        let contents = match section.kind() {
            object::SectionKind::UninitializedData => None,
            _ => Some(section.data().map_err(|e| {
                ParseError::new(format!("global data section {name} unreadable: {e}"))
            })?),
        };
        if contents.is_some_and(|c| c.len() as u64 != size) {
            bail_parse!("global data section {name} is shorter than it says");
        }
        budget.charge(std::mem::size_of::<MapSpec>() + name.len() + size as usize)?;
        let map_index = maps.len();
        maps.push(data::data_map(btf, name, value_size, contents));
        sites.insert(index, MapSite::Data { map_index, size });
        for s in symbols.data.get(&index).into_iter().flatten() {
            let Ok(var) = s.name.as_ref() else {
                continue;
            };
            let fits = s.address.checked_add(s.size).is_some_and(|end| end <= size);
            if var.is_empty() || !fits {
                continue;
            }
            budget.charge(std::mem::size_of::<GlobalVar>() + var.len())?;
            globals.push(GlobalVar {
                name: var.to_string(),
                map_index,
                offset: s.address,
                size: s.size,
            });
        }
    }
    Ok(globals)
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
