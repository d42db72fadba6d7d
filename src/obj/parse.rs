//! Reading the ELF: sections, symbols and relocations into plain data that
//! `link` turns into programs. Everything the file claims is checked against
//! the bytes actually present before it is used.

use std::collections::BTreeMap;

use object::{
    Architecture, Object, ObjectSection, ObjectSymbol, RelocationFlags, RelocationTarget,
    SectionIndex, SymbolKind, SymbolSection,
};

use super::link::{Function, Linker};
use super::{MapSpec, ObjectSpec, ParseError, ProgramKind, bail_parse};

/// The legacy `struct bpf_map_def`: type, key size, value size, max
/// entries, flags, each a u32. 16 bytes is the oldest form (no flags).
const MAP_DEF_MIN: u64 = 16;
const MAP_DEF_FULL: u64 = 20;

/// A relocation as the ELF states it, with its symbol already looked up.
#[derive(Clone, Debug)]
pub(super) struct RawReloc {
    pub r_type: u32,
    pub symbol: String,
    pub symbol_section: Option<SectionIndex>,
    pub symbol_address: u64,
    /// An STT_SECTION symbol: the target is given by the instruction's
    /// immediate, relative to the section start.
    pub symbol_is_section: bool,
}

/// A section of code with its relocations keyed by byte offset.
pub(super) struct CodeSection<'a> {
    pub index: SectionIndex,
    pub name: String,
    pub data: &'a [u8],
    pub relocs: BTreeMap<u64, RawReloc>,
}

/// What every program of the object shares while it is being linked.
pub(super) struct Shared<'a> {
    pub text: Option<CodeSection<'a>>,
    /// `.text` functions sorted by start offset.
    pub text_functions: Vec<Function>,
    pub maps_section: Option<SectionIndex>,
    /// Byte offset of each map's definition in the maps section, indexed
    /// like `ObjectSpec::maps`.
    pub map_offsets: Vec<u64>,
    pub map_names: Vec<String>,
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

fn parse_aligned(bytes: &[u8]) -> Result<ObjectSpec, ParseError> {
    let file = object::File::parse(bytes)
        .map_err(|e| ParseError(format!("not an ELF object file: {e}")))?;
    if file.architecture() != Architecture::Bpf {
        bail_parse!(
            "not a BPF object: it is built for {:?} (compile with clang -target bpf)",
            file.architecture()
        );
    }
    if !file.is_little_endian() {
        bail_parse!("big-endian BPF objects are not supported: compile with -target bpfel");
    }

    let license = read_license(&file)?;
    let (maps_section, maps, map_offsets) = read_maps(&file)?;
    let text = match file.section_by_name(".text") {
        Some(s) if s.size() > 0 => Some(code_section(&file, &s)?),
        _ => None,
    };
    let text_functions = match &text {
        Some(t) => functions_in(&file, t, false)?,
        None => Vec::new(),
    };
    let shared = Shared {
        text,
        text_functions,
        maps_section,
        map_names: maps.iter().map(|m| m.name.clone()).collect(),
        map_offsets,
    };

    let mut programs = Vec::new();
    for section in file.sections() {
        let Ok(name) = section.name() else { continue };
        let Some(kind) = program_kind(name)? else {
            continue;
        };
        let code = code_section(&file, &section)?;
        let entries = functions_in(&file, &code, true)?;
        if entries.is_empty() {
            bail_parse!("section {name} holds no function symbol to name its program");
        }
        for entry in &entries {
            let linked = Linker::link(&shared, &code, entry)?;
            programs.push(linked.into_spec(entry.name.clone(), name.to_string(), kind.clone()));
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

fn read_license(file: &object::File) -> Result<String, ParseError> {
    let Some(section) = file.section_by_name("license") else {
        return Ok(String::new());
    };
    let data = section
        .data()
        .map_err(|e| ParseError(format!("license section unreadable: {e}")))?;
    let text = data.split(|&b| b == 0).next().unwrap_or_default();
    match std::str::from_utf8(text) {
        Ok(s) => Ok(s.to_string()),
        Err(_) => bail_parse!("license section is not text"),
    }
}

type Maps = (Option<SectionIndex>, Vec<MapSpec>, Vec<u64>);

fn read_maps(file: &object::File) -> Result<Maps, ParseError> {
    let Some(section) = file.section_by_name("maps") else {
        return Ok((None, Vec::new(), Vec::new()));
    };
    let data = section
        .data()
        .map_err(|e| ParseError(format!("maps section unreadable: {e}")))?;
    let mut defs: Vec<(u64, u64, String)> = Vec::new();
    for sym in file.symbols() {
        if sym.section() != SymbolSection::Section(section.index())
            || sym.kind() == SymbolKind::Section
        {
            continue;
        }
        let name = symbol_name(&sym)?;
        defs.push((sym.address(), sym.size(), name));
    }
    defs.sort();
    let mut maps = Vec::with_capacity(defs.len());
    let mut offsets = Vec::with_capacity(defs.len());
    for (offset, size, name) in defs {
        if size < MAP_DEF_MIN {
            bail_parse!(
                "map {name} is {size} bytes: a map definition needs at least {MAP_DEF_MIN}"
            );
        }
        let used = size.min(MAP_DEF_FULL);
        let end = offset.checked_add(used).filter(|&e| e <= data.len() as u64);
        let Some(end) = end else {
            bail_parse!("map {name} lies outside the maps section");
        };
        let def = &data[offset as usize..end as usize];
        let word = |i: usize| {
            def.get(i * 4..i * 4 + 4)
                .map_or(0, |w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
        };
        maps.push(MapSpec {
            name,
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
    file: &object::File<'a>,
    section: &object::Section<'a, '_>,
) -> Result<CodeSection<'a>, ParseError> {
    let name = section
        .name()
        .map_err(|e| ParseError(format!("section name unreadable: {e}")))?
        .to_string();
    let data = section
        .data()
        .map_err(|e| ParseError(format!("section {name} unreadable: {e}")))?;
    if data.len() % super::INSN_SIZE != 0 {
        bail_parse!(
            "section {name} is {} bytes, not a whole number of instructions",
            data.len()
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
        let sym = file.symbol_by_index(index).map_err(|e| {
            ParseError(format!("relocation at {offset} in {name}: bad symbol: {e}"))
        })?;
        let symbol = symbol_name(&sym)?;
        relocs.insert(
            offset,
            RawReloc {
                r_type,
                symbol_section: sym.section_index(),
                symbol_address: sym.address(),
                symbol_is_section: sym.kind() == SymbolKind::Section,
                symbol,
            },
        );
    }
    Ok(CodeSection {
        index: section.index(),
        name,
        data,
        relocs,
    })
}

/// The function symbols of a code section, sorted, checked to lie inside it.
/// `global_only` picks program entry points; `.text` keeps static ones too.
fn functions_in(
    file: &object::File,
    code: &CodeSection,
    global_only: bool,
) -> Result<Vec<Function>, ParseError> {
    let mut functions = Vec::new();
    for sym in file.symbols() {
        if sym.kind() != SymbolKind::Text
            || sym.section_index() != Some(code.index)
            || (global_only && !sym.is_global())
        {
            continue;
        }
        let name = symbol_name(&sym)?;
        let (start, size) = (sym.address(), sym.size());
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
    Ok(functions)
}

fn symbol_name(sym: &object::Symbol) -> Result<String, ParseError> {
    match sym.name() {
        Ok(n) => Ok(n.to_string()),
        Err(e) => bail_parse!("symbol name unreadable: {e}"),
    }
}
