//! Reading the ELF: sections, symbols and relocations into plain data that
//! `link` turns into programs. Everything the file claims is checked against
//! the bytes actually present before it is used, every name is read with a
//! bounded scan, and everything built from the file is charged to a budget
//! proportional to its size, so no input can make parsing hang, panic or
//! allocate without bound.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};

use object::elf::{SHT_REL, SHT_RELA};
use object::read::elf::{ElfFile64, ElfSection64, ElfSymbol64, FileHeader, SectionHeader, Sym};
use object::{
    Architecture, Endianness, Object, ObjectSection, ObjectSymbol, RelocationFlags,
    RelocationTarget, SectionIndex, SymbolKind, SymbolSection,
};

use super::link::{Function, Linker};
use super::{MapSpec, ObjectSpec, ParseError, ProgramKind, bail_parse};

/// The legacy `struct bpf_map_def`: type, key size, value size, max
/// entries, flags, each a u32. 16 bytes is the oldest form (no flags).
const MAP_DEF_MIN: u64 = 16;
const MAP_DEF_FULL: u64 = 20;
/// Longest section or symbol name accepted (the kernel's KSYM_NAME_LEN).
pub(super) const MAX_NAME: usize = 512;

type Elf<'a> = ElfFile64<'a, Endianness>;
type Section<'a, 'f> = ElfSection64<'a, 'f, Endianness>;
type Symbol<'a, 'f> = ElfSymbol64<'a, 'f, Endianness>;

/// A relocation as the ELF states it, with its symbol already looked up.
#[derive(Clone, Debug)]
pub(super) struct RawReloc<'a> {
    pub r_type: u32,
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
    let symbols = Symbols::read(&elf, &names);

    let license = read_license(&names, &elf)?;
    let (maps_section, maps, map_offsets) = read_maps(&names, &elf, &symbols, &budget)?;
    let text = match names.section_by_name(&elf, ".text") {
        Some(s) if s.size() > 0 => Some(code_section(&names, &elf, &s)?),
        _ => None,
    };
    let text_functions = match &text {
        Some(t) => functions_in(&symbols, t, false)?,
        None => Vec::new(),
    };
    let shared = Shared {
        text,
        text_functions,
        maps_section,
        map_names: maps.iter().map(|m| m.name.clone()).collect(),
        map_offsets,
        budget,
    };

    let mut programs = Vec::new();
    for section in elf.sections() {
        let Some(name) = names.section(section.index()) else {
            continue;
        };
        let Some(kind) = program_kind(name)? else {
            continue;
        };
        let code = code_section(&names, &elf, &section)?;
        let entries = functions_in(&symbols, &code, true)?;
        if entries.is_empty() {
            bail_parse!("section {name} holds no function symbol to name its program");
        }
        for entry in &entries {
            let linked = Linker::link(&shared, &code, entry)?;
            // The spec itself, and the kind's copy of the section name.
            shared
                .budget
                .charge(std::mem::size_of::<super::ProgramSpec>() + code.name.len())?;
            let name = shared.budget.string(entry.name)?;
            let section = shared.budget.string(code.name)?;
            programs.push(linked.into_spec(name, section, kind.clone()));
        }
    }
    Ok(ObjectSpec {
        programs,
        maps,
        license,
    })
}

/// The program kind a section name announces, or None for a section that
/// holds no program (`.text`, data, debug info).
fn program_kind(section: &str) -> Result<Option<ProgramKind>, ParseError> {
    if let Some(function) = section.strip_prefix("kprobe/") {
        if function.is_empty() {
            bail_parse!("section {section} names no kernel function");
        }
        return Ok(Some(ProgramKind::Kprobe {
            function: function.to_string(),
        }));
    }
    let rest = section
        .strip_prefix("tracepoint/")
        .or_else(|| section.strip_prefix("tp/"));
    if let Some(rest) = rest {
        return match rest.split_once('/') {
            Some((category, name)) if !category.is_empty() && !name.is_empty() => {
                Ok(Some(ProgramKind::Tracepoint {
                    category: category.to_string(),
                    name: name.to_string(),
                }))
            }
            _ => bail_parse!("section {section} is not of the form tracepoint/CATEGORY/NAME"),
        };
    }
    Ok(None)
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
    address: u64,
    size: u64,
    global: bool,
}

/// The symbols of the file in one pass: map definitions and functions, by
/// section, so that no later step scans the whole table again.
struct Symbols<'a> {
    /// Non-section symbols, by the section they are defined in.
    data: HashMap<SectionIndex, Vec<SymbolInfo<'a>>>,
    /// Function symbols, by section.
    functions: HashMap<SectionIndex, Vec<SymbolInfo<'a>>>,
}

impl<'a> Symbols<'a> {
    fn read(elf: &Elf<'a>, names: &Names<'a>) -> Symbols<'a> {
        let maps_index = names.section_by_name(elf, "maps").map(|s| s.index());
        let mut data: HashMap<_, Vec<_>> = HashMap::new();
        let mut functions: HashMap<_, Vec<_>> = HashMap::new();
        for sym in elf.symbols() {
            let SymbolSection::Section(index) = sym.section() else {
                continue;
            };
            let kind = sym.kind();
            let wanted = if kind == SymbolKind::Text {
                &mut functions
            } else if Some(index) == maps_index && kind != SymbolKind::Section {
                &mut data
            } else {
                continue;
            };
            wanted.entry(index).or_default().push(SymbolInfo {
                name: names.symbol(&sym),
                address: sym.address(),
                size: sym.size(),
                global: sym.is_global(),
            });
        }
        Symbols { data, functions }
    }
}

type Maps = (Option<SectionIndex>, Vec<MapSpec>, Vec<u64>);

fn read_maps(
    names: &Names,
    elf: &Elf,
    symbols: &Symbols,
    budget: &Budget,
) -> Result<Maps, ParseError> {
    let Some(section) = names.section_by_name(elf, "maps") else {
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
        // In bounds: offset + size <= data.len(), and MAP_DEF_FULL is
        // clamped to size.
        let def = &data[offset as usize..(offset + size.min(MAP_DEF_FULL)) as usize];
        let word = |i: usize| {
            def.get(i * 4..i * 4 + 4)
                .map_or(0, |w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
        };
        maps.push(MapSpec {
            name: budget.string(name)?,
            map_type: word(0),
            key_size: word(1),
            value_size: word(2),
            max_entries: word(3),
            flags: word(4),
        });
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
        let raw = RawReloc {
            r_type,
            symbol_section: sym.section_index(),
            symbol_address: sym.address(),
            symbol_is_section: sym.kind() == SymbolKind::Section,
            symbol: names.symbol(&sym)?,
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
