//! Turning one entry function into a loadable program: copy its
//! instructions, append every `.text` subprogram it reaches (and only those:
//! the verifier rejects unreachable code), fix the call offsets, and note
//! which instructions load which map.
//!
//! All the arithmetic on offsets and immediates from the file is checked:
//! a target that overflows, leaves its section, lands inside a function
//! rather than at its start, or a relocation on the second half of a 64-bit
//! load is an error, not a panic.
//!
//! A program that uses something the parse skips (a BTF-defined map,
//! global data, a function's address) cannot be loaded either: linking
//! stops there and says why, and the parse lists the program as skipped.

use std::collections::{HashMap, VecDeque};

use super::btf::Btf;
use super::btf::ext::{self as btf_ext, BtfExt};
use super::insn::{INSN_SIZE, OP_LD_IMM64, decode_all};
use super::parse::{CodeSection, MapSite, RawReloc, Shared, SkippedTarget};
use super::{
    CoreSite, FuncInfo, Insn, LineInfo, MapRef, ParseError, ProgramKind, ProgramSpec, RelocTarget,
    Relocation, bail_parse,
};

/// R_BPF_64_64: a 64-bit immediate load of a symbol's address (maps).
const R_BPF_64_64: u32 = 1;
/// R_BPF_64_32: a call to a function symbol.
const R_BPF_64_32: u32 = 10;
/// The kernel's own limit on a program's length.
const MAX_INSNS: usize = 1_000_000;

/// A function symbol, checked by `parse` to lie inside its section, with
/// `start` and `size` multiples of INSN_SIZE and `size` not zero.
#[derive(Clone, Debug)]
pub(super) struct Function<'a> {
    pub name: &'a str,
    pub start: u64,
    pub size: u64,
}

impl Function<'_> {
    fn contains(&self, offset: u64) -> bool {
        offset >= self.start && offset - self.start < self.size
    }
}

/// Why a program is skipped; None while linking goes on.
type Skip = Option<String>;

/// A program ready for its map fds, or why this loader cannot load it.
pub(super) enum Linked<'s, 'a> {
    Ready(Box<Linker<'s, 'a>>),
    Skipped(String),
}

pub(super) struct Linker<'s, 'a> {
    shared: &'s Shared<'a>,
    insns: Vec<Insn>,
    map_refs: Vec<MapRef>,
    relocations: Vec<Relocation>,
    /// `.text` function start offset → its first instruction in `insns`.
    placed: HashMap<u64, usize>,
    subprograms: Vec<String>,
    /// Positions in `shared.text_functions` appended but not yet fixed up.
    to_fix: VecDeque<usize>,
    /// Where each function went: (from `.text`, start offset in its
    /// section, size, first instruction in `insns`); the entry first.
    placements: Vec<(bool, u64, u64, usize)>,
    func_info: Vec<FuncInfo>,
    line_info: Vec<LineInfo>,
    core: Vec<CoreSite>,
}

/// `.BTF.ext`'s records by section name.
#[derive(Default)]
pub(super) struct ExtInfo {
    sections: HashMap<String, SectionExt>,
}

#[derive(Default)]
struct SectionExt {
    funcs: Vec<btf_ext::FuncInfo>,
    lines: Vec<btf_ext::LineInfo>,
    core: Vec<btf_ext::CoreRelo>,
}

impl ExtInfo {
    /// The records of `ext`, their sections named through `btf`'s strings.
    pub fn new(btf: Option<&Btf>, ext: Option<&BtfExt>) -> ExtInfo {
        let mut info = ExtInfo::default();
        let (Some(btf), Some(ext)) = (btf, ext) else {
            return info;
        };
        let name = |off: u32| btf.string(off).unwrap_or_default().to_string();
        for s in &ext.funcs {
            let entry = info.sections.entry(name(s.name_off)).or_default();
            entry.funcs.extend(&s.records);
        }
        for s in &ext.lines {
            let entry = info.sections.entry(name(s.name_off)).or_default();
            entry.lines.extend(&s.records);
        }
        for s in &ext.core {
            let entry = info.sections.entry(name(s.name_off)).or_default();
            entry.core.extend(&s.records);
        }
        info
    }
}

impl<'s, 'a> Linker<'s, 'a> {
    pub fn link(
        shared: &'s Shared<'a>,
        section: &CodeSection<'a>,
        entry: &Function<'a>,
    ) -> Result<Linked<'s, 'a>, ParseError> {
        let code = function_code(section, entry)?;
        if code.len() / INSN_SIZE > MAX_INSNS {
            bail_parse!(
                "program {} is longer than the kernel's {MAX_INSNS} instructions",
                entry.name
            );
        }
        shared.budget.charge(code.len())?;
        let mut linker = Linker {
            shared,
            insns: decode_all(code),
            map_refs: Vec::new(),
            relocations: Vec::new(),
            placed: HashMap::new(),
            subprograms: Vec::new(),
            to_fix: VecDeque::new(),
            placements: vec![(false, entry.start, entry.size, 0)],
            func_info: Vec::new(),
            line_info: Vec::new(),
            core: Vec::new(),
        };
        if let Some(why) = linker.fix_up(section, entry, 0)? {
            return Ok(Linked::Skipped(why));
        }
        while let Some(i) = linker.to_fix.pop_front() {
            let (Some(text), Some(function)) = (&shared.text, shared.text_functions.get(i)) else {
                bail_parse!("internal: subprogram {i} queued without .text");
            };
            let Some(&base) = linker.placed.get(&function.start) else {
                bail_parse!(
                    "internal: subprogram {} queued but not placed",
                    function.name
                );
            };
            if let Some(why) = linker.fix_up(text, function, base)? {
                return Ok(Linked::Skipped(why));
            }
        }
        Ok(Linked::Ready(Box::new(linker)))
    }

    pub fn into_spec(self, name: String, section: String, kind: ProgramKind) -> ProgramSpec {
        ProgramSpec {
            name,
            section,
            kind,
            insns: self.insns,
            map_refs: self.map_refs,
            relocations: self.relocations,
            subprograms: self.subprograms,
            func_info: self.func_info,
            line_info: self.line_info,
            core: self.core,
        }
    }

    /// Takes the program's `.BTF.ext` records (its own section's for the
    /// entry, `.text`'s for each subprogram), each moved from a byte offset
    /// in its section to an instruction index in the linked program. A
    /// program whose functions do not each have exactly one func_info gets
    /// none (nor line info): the kernel would refuse the mismatch.
    pub fn attach_ext_info(
        &mut self,
        ext: &ExtInfo,
        code: &CodeSection<'a>,
    ) -> Result<(), ParseError> {
        let moved = |off: u32, start: u64, size: u64, base: usize| -> Option<u32> {
            let off = u64::from(off);
            if off < start || off - start >= size || off % INSN_SIZE as u64 != 0 {
                return None;
            }
            u32::try_from(base as u64 + (off - start) / INSN_SIZE as u64).ok()
        };
        for &(in_text, start, size, base) in &self.placements {
            let name = if in_text { ".text" } else { code.name };
            let Some(records) = ext.sections.get(name) else {
                continue;
            };
            let budget = &self.shared.budget;
            for f in &records.funcs {
                if let Some(insn_off) = moved(f.insn_off, start, size, base) {
                    budget.charge(std::mem::size_of::<FuncInfo>())?;
                    self.func_info.push(FuncInfo {
                        insn_off,
                        type_id: f.type_id,
                    });
                }
            }
            for l in &records.lines {
                if let Some(insn_off) = moved(l.insn_off, start, size, base) {
                    budget.charge(std::mem::size_of::<LineInfo>())?;
                    self.line_info.push(LineInfo {
                        insn_off,
                        file_name_off: l.file_name_off,
                        line_off: l.line_off,
                        line_col: l.line_col,
                    });
                }
            }
            for c in &records.core {
                if let Some(index) = moved(c.insn_off, start, size, base) {
                    budget.charge(std::mem::size_of::<CoreSite>())?;
                    self.core.push(CoreSite {
                        insn_index: index as usize,
                        relo: *c,
                    });
                }
            }
        }
        self.func_info.sort_by_key(|f| f.insn_off);
        self.func_info.dedup_by_key(|f| f.insn_off);
        self.line_info.sort_by_key(|l| l.insn_off);
        self.line_info.dedup_by_key(|l| l.insn_off);
        self.core.sort_by_key(|c| c.insn_index);
        if self.func_info.len() != self.placements.len() {
            self.func_info.clear();
            self.line_info.clear();
        }
        Ok(())
    }

    /// Applies the relocations of one function copied at `base`, up to the
    /// first use of something skipped.
    fn fix_up(
        &mut self,
        section: &CodeSection<'a>,
        function: &Function<'a>,
        base: usize,
    ) -> Result<Skip, ParseError> {
        // Fits: the function lies inside the section (checked by parse).
        let count = (function.size / INSN_SIZE as u64) as usize;
        let mut i = 0;
        while i < count {
            let offset = function.start + (i * INSN_SIZE) as u64;
            let index = base + i;
            let Some(&insn) = self.insns.get(index) else {
                bail_parse!(
                    "internal: instruction {index} of {} not copied",
                    function.name
                );
            };
            let wide = insn.code == OP_LD_IMM64;
            if wide && i + 1 >= count {
                bail_parse!(
                    "{}: function {} ends in the middle of a 64-bit immediate load",
                    section.name,
                    function.name
                );
            }
            if let Some(reloc) = section.relocs.get(&offset) {
                match reloc.r_type {
                    R_BPF_64_64 => {
                        if let Some(why) = self.map_load(section, reloc, index, insn)? {
                            return Ok(Some(why));
                        }
                    }
                    R_BPF_64_32 => self.call(section, reloc, offset, index, insn)?,
                    other => bail_parse!(
                        "{}: relocation type {other} at offset {offset} is not supported",
                        section.name
                    ),
                }
            } else if insn.is_pseudo_call() {
                // A call the compiler resolved itself, relative to here.
                let Some(target) = relative_target(offset, insn.imm) else {
                    bail_parse!(
                        "{}: call at offset {offset} jumps outside the section",
                        section.name
                    );
                };
                if Some(section.index) == self.text_index() {
                    let (callee, _) = self.place_subprogram(target)?;
                    self.insns[index].imm = call_imm(index, callee)?;
                } else if !function.contains(target) {
                    bail_parse!(
                        "{}: call at offset {offset} leaves its function {}",
                        section.name,
                        function.name
                    );
                }
            }
            if wide {
                let second = offset + INSN_SIZE as u64;
                if section.relocs.contains_key(&second) {
                    bail_parse!(
                        "{}: relocation at offset {second} is on the second half of a \
                         64-bit immediate load",
                        section.name
                    );
                }
                i += 2;
            } else {
                i += 1;
            }
        }
        Ok(None)
    }

    fn map_load(
        &mut self,
        section: &CodeSection<'a>,
        reloc: &RawReloc<'a>,
        index: usize,
        insn: Insn,
    ) -> Result<Skip, ParseError> {
        if insn.code != OP_LD_IMM64 {
            bail_parse!(
                "{}: relocation of {} is not on a 64-bit immediate load",
                section.name,
                reloc.symbol
            );
        }
        let Some(target_section) = reloc.symbol_section else {
            bail_parse!(
                "{}: instruction loads {}, which is defined in no section",
                section.name,
                reloc.symbol
            );
        };
        // A section symbol names its section; the immediate is the offset.
        let offset = if reloc.symbol_is_section {
            reloc.symbol_address.checked_add_signed(insn.imm.into())
        } else {
            Some(reloc.symbol_address)
        };
        let Some(site) = self.shared.map_sites.get(&target_section) else {
            if let Some(target) = self.shared.skipped_targets.get(&target_section) {
                return Ok(Some(uses_skipped(reloc, target)));
            }
            if self.shared.code_sections.contains(&target_section) {
                let what = if reloc.symbol_is_section {
                    format!("code in {}", reloc.symbol)
                } else {
                    format!("function {}", reloc.symbol)
                };
                return Ok(Some(format!(
                    "takes the address of {what} (callbacks, as bpf_loop takes, not supported)"
                )));
            }
            bail_parse!(
                "{}: instruction loads {}, which is not a map, global data or function",
                section.name,
                reloc.symbol
            );
        };
        match site {
            MapSite::Defs { maps, skipped } => {
                let found = offset.and_then(|o| maps.binary_search_by_key(&o, |m| m.0).ok());
                let Some(map_index) = found.map(|i| maps[i].1) else {
                    let skip = offset
                        .and_then(|o| skipped.iter().find(|s| s.0 == o))
                        .map(|(_, name, why)| format!("uses map {name}, which is skipped ({why})"));
                    if let Some(why) = skip {
                        return Ok(Some(why));
                    }
                    bail_parse!(
                        "{}: {} does not point at the start of a map definition",
                        section.name,
                        reloc.symbol
                    );
                };
                let Some(map_name) = self.shared.map_names.get(map_index) else {
                    bail_parse!("internal: map {map_index} has no name");
                };
                self.map_refs.push(MapRef {
                    insn_index: index,
                    map_index,
                    value_offset: None,
                });
                self.record(index, reloc.symbol, RelocTarget::Map, map_name)?;
            }
            MapSite::Data { map_index, size } => {
                // A variable's symbol, or the section's with the offset in
                // the immediate: either way the symbol's value plus it.
                // A section symbol: the offset is in the immediate; a
                // variable's: its value, plus any immediate.
                let at = if reloc.symbol_is_section {
                    offset
                } else {
                    reloc.symbol_address.checked_add_signed(insn.imm.into())
                };
                let Some(at) = at
                    .filter(|&a| a < *size)
                    .and_then(|a| u32::try_from(a).ok())
                else {
                    bail_parse!(
                        "{}: {} points outside its section ({size} bytes)",
                        section.name,
                        reloc.symbol
                    );
                };
                let Some(map_name) = self.shared.map_names.get(*map_index) else {
                    bail_parse!("internal: map {map_index} has no name");
                };
                self.map_refs.push(MapRef {
                    insn_index: index,
                    map_index: *map_index,
                    value_offset: Some(at),
                });
                let value = |map| RelocTarget::Data(map, at.into());
                self.record(index, reloc.symbol, value, map_name)?;
            }
        }
        Ok(None)
    }

    fn call(
        &mut self,
        section: &CodeSection<'a>,
        reloc: &RawReloc<'a>,
        offset: u64,
        index: usize,
        insn: Insn,
    ) -> Result<(), ParseError> {
        if !insn.is_pseudo_call() {
            bail_parse!(
                "{}: call relocation at offset {offset} is not on a call instruction",
                section.name
            );
        }
        if reloc.symbol_section.is_none() || reloc.symbol_section != self.text_index() {
            bail_parse!(
                "{}: call to {} outside .text is not supported",
                section.name,
                reloc.symbol
            );
        }
        let Some(target) = reloc
            .symbol_address
            .checked_add_signed((i64::from(insn.imm) + 1) * INSN_SIZE as i64)
        else {
            bail_parse!(
                "{}: call at offset {offset} to {} lands outside .text",
                section.name,
                reloc.symbol
            );
        };
        let (callee, name) = self.place_subprogram(target)?;
        self.insns[index].imm = call_imm(index, callee)?;
        self.record(index, reloc.symbol, RelocTarget::Subprogram, name)
    }

    /// Notes a resolved relocation for `probe inspect`, charging its names.
    fn record(
        &mut self,
        insn_index: usize,
        symbol: &str,
        target: impl FnOnce(String) -> RelocTarget,
        name: &str,
    ) -> Result<(), ParseError> {
        let budget = &self.shared.budget;
        budget.charge(std::mem::size_of::<Relocation>())?;
        let relocation = Relocation {
            insn_index,
            symbol: budget.string(symbol)?,
            target: target(budget.string(name)?),
        };
        self.relocations.push(relocation);
        Ok(())
    }

    fn text_index(&self) -> Option<object::SectionIndex> {
        self.shared.text.as_ref().map(|t| t.index)
    }

    /// The instruction index of the `.text` function starting at offset
    /// `target` in this program, and its name, appending the function on
    /// first use.
    fn place_subprogram(&mut self, target: u64) -> Result<(usize, &'a str), ParseError> {
        let shared = self.shared;
        let functions = &shared.text_functions;
        let Ok(position) = functions.binary_search_by_key(&target, |f| f.start) else {
            match functions.iter().find(|f| f.contains(target)) {
                Some(f) => bail_parse!(
                    "call target at .text offset {target} is inside function {}, not at its start",
                    f.name
                ),
                None => bail_parse!("call target at .text offset {target} is not a function"),
            }
        };
        let function = &functions[position];
        if let Some(&base) = self.placed.get(&function.start) {
            return Ok((base, function.name));
        }
        let Some(text) = &shared.text else {
            bail_parse!("internal: .text function without .text");
        };
        let code = function_code(text, function)?;
        let base = self.insns.len();
        if base + code.len() / INSN_SIZE > MAX_INSNS {
            bail_parse!("program grows past the kernel's {MAX_INSNS} instructions");
        }
        shared.budget.charge(code.len())?;
        let name = shared.budget.string(function.name)?;
        self.insns.extend(decode_all(code));
        self.placed.insert(function.start, base);
        self.placements
            .push((true, function.start, function.size, base));
        self.subprograms.push(name);
        self.to_fix.push_back(position);
        Ok((base, function.name))
    }
}

/// Why a program that loads `reloc` from a skipped section is skipped too.
fn uses_skipped(reloc: &RawReloc, target: &SkippedTarget) -> String {
    let what = if reloc.symbol_is_section {
        target.section.to_string()
    } else {
        format!("{} in {}", reloc.symbol, target.section)
    };
    format!("uses {what}, which is skipped ({})", target.reason)
}

/// The bytes of function `f` in its section.
fn function_code<'a>(section: &CodeSection<'a>, f: &Function) -> Result<&'a [u8], ParseError> {
    let range = usize::try_from(f.start).ok().zip(
        f.start
            .checked_add(f.size)
            .and_then(|e| usize::try_from(e).ok()),
    );
    match range.and_then(|(start, end)| section.data.get(start..end)) {
        Some(code) => Ok(code),
        None => bail_parse!(
            "function {} (offset {}, {} bytes) does not fit section {}",
            f.name,
            f.start,
            f.size,
            section.name
        ),
    }
}

/// The section offset a call at `offset` with immediate `imm` lands on.
fn relative_target(offset: u64, imm: i32) -> Option<u64> {
    offset.checked_add_signed((i64::from(imm) + 1) * INSN_SIZE as i64)
}

fn call_imm(call_index: usize, callee_index: usize) -> Result<i32, ParseError> {
    let delta = callee_index as i64 - (call_index as i64 + 1);
    i32::try_from(delta).map_err(|_| ParseError::new("call offset out of range".into()))
}
