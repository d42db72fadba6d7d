//! Turning one entry function into a loadable program: copy its
//! instructions, append every `.text` subprogram it reaches (and only those:
//! the verifier rejects unreachable code), fix the call offsets, and note
//! which instructions load which map.

use std::collections::{HashMap, VecDeque};

use super::insn::{INSN_SIZE, OP_LD_IMM64, decode_all};
use super::parse::{CodeSection, RawReloc, Shared};
use super::{
    Insn, MapRef, ParseError, ProgramKind, ProgramSpec, RelocTarget, Relocation, bail_parse,
};

/// R_BPF_64_64: a 64-bit immediate load of a symbol's address (maps).
const R_BPF_64_64: u32 = 1;
/// R_BPF_64_32: a call to a function symbol.
const R_BPF_64_32: u32 = 10;
/// The kernel's own limit on a program's length.
const MAX_INSNS: usize = 1_000_000;

#[derive(Clone, Debug)]
pub(super) struct Function {
    pub name: String,
    pub start: u64,
    pub size: u64,
}

pub(super) struct Linker<'s, 'a> {
    shared: &'s Shared<'a>,
    insns: Vec<Insn>,
    map_refs: Vec<MapRef>,
    relocations: Vec<Relocation>,
    /// `.text` function start offset → its first instruction in `insns`.
    placed: HashMap<u64, usize>,
    subprograms: Vec<String>,
    to_fix: VecDeque<usize>,
}

impl<'s, 'a> Linker<'s, 'a> {
    pub fn link(
        shared: &'s Shared<'a>,
        section: &CodeSection<'a>,
        entry: &Function,
    ) -> Result<Self, ParseError> {
        let mut linker = Linker {
            shared,
            insns: decode_all(slice(section.data, entry)),
            map_refs: Vec::new(),
            relocations: Vec::new(),
            placed: HashMap::new(),
            subprograms: Vec::new(),
            to_fix: VecDeque::new(),
        };
        linker.fix_up(section, entry, 0)?;
        while let Some(i) = linker.to_fix.pop_front() {
            let text = shared
                .text
                .as_ref()
                .expect("only .text functions are queued");
            let function = &shared.text_functions[i];
            let base = linker.placed[&function.start];
            linker.fix_up(text, function, base)?;
        }
        Ok(linker)
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
        }
    }

    /// Applies the relocations of one function copied at `base`.
    fn fix_up(
        &mut self,
        section: &CodeSection,
        function: &Function,
        base: usize,
    ) -> Result<(), ParseError> {
        let count = (function.size / INSN_SIZE as u64) as usize;
        for i in 0..count {
            let offset = function.start + (i * INSN_SIZE) as u64;
            let index = base + i;
            if let Some(reloc) = section.relocs.get(&offset) {
                match reloc.r_type {
                    R_BPF_64_64 => self.map_load(section, reloc, index, i + 1 < count)?,
                    R_BPF_64_32 => self.call(section, reloc, offset, index)?,
                    other => bail_parse!(
                        "{}: relocation type {other} at offset {offset} is not supported",
                        section.name
                    ),
                }
            } else if self.insns[index].is_pseudo_call() {
                // A call the compiler resolved itself, relative to here.
                let target = relative_target(offset, self.insns[index].imm);
                let inside = |t: i64| {
                    t >= function.start as i64 && t < (function.start + function.size) as i64
                };
                if section.index == self.text_index() && self.shared.text.is_some() {
                    let callee = self.place_subprogram(target)?;
                    self.insns[index].imm = call_imm(index, callee)?;
                } else if !inside(target) {
                    bail_parse!(
                        "{}: call at offset {offset} leaves its function {}",
                        section.name,
                        function.name
                    );
                }
            }
        }
        Ok(())
    }

    fn map_load(
        &mut self,
        section: &CodeSection,
        reloc: &RawReloc,
        index: usize,
        has_second_half: bool,
    ) -> Result<(), ParseError> {
        let insn = self.insns[index];
        if insn.code != OP_LD_IMM64 || !has_second_half {
            bail_parse!(
                "{}: relocation of {} is not on a 64-bit immediate load",
                section.name,
                reloc.symbol
            );
        }
        if reloc.symbol_section.is_none() || reloc.symbol_section != self.shared.maps_section {
            bail_parse!(
                "{}: instruction loads {}, which is not a map in section \"maps\" \
                 (global variables are not supported)",
                section.name,
                reloc.symbol
            );
        }
        let mut offset = reloc.symbol_address as i64;
        if reloc.symbol_is_section {
            offset += insn.imm as i64;
        }
        let Some(map_index) = self
            .shared
            .map_offsets
            .iter()
            .position(|&o| o as i64 == offset)
        else {
            bail_parse!(
                "{}: {} does not point at the start of a map definition",
                section.name,
                reloc.symbol
            );
        };
        self.map_refs.push(MapRef {
            insn_index: index,
            map_index,
        });
        self.relocations.push(Relocation {
            insn_index: index,
            symbol: reloc.symbol.clone(),
            target: RelocTarget::Map(self.shared.map_names[map_index].clone()),
        });
        Ok(())
    }

    fn call(
        &mut self,
        section: &CodeSection,
        reloc: &RawReloc,
        offset: u64,
        index: usize,
    ) -> Result<(), ParseError> {
        if !self.insns[index].is_pseudo_call() {
            bail_parse!(
                "{}: call relocation at offset {offset} is not on a call instruction",
                section.name
            );
        }
        if reloc.symbol_section.is_none() || reloc.symbol_section != Some(self.text_index()) {
            bail_parse!(
                "{}: call to {} outside .text is not supported",
                section.name,
                reloc.symbol
            );
        }
        let target = reloc.symbol_address as i64 + (self.insns[index].imm as i64 + 1) * 8;
        let callee = self.place_subprogram(target)?;
        self.insns[index].imm = call_imm(index, callee)?;
        let name = self.function_at(target)?.name.clone();
        self.relocations.push(Relocation {
            insn_index: index,
            symbol: reloc.symbol.clone(),
            target: RelocTarget::Subprogram(name),
        });
        Ok(())
    }

    fn text_index(&self) -> object::SectionIndex {
        self.shared
            .text
            .as_ref()
            .map_or(object::SectionIndex(usize::MAX), |t| t.index)
    }

    fn function_at(&self, target: i64) -> Result<&Function, ParseError> {
        let found = self.shared.text_functions.iter().find(|f| {
            target >= f.start as i64 && target < (f.start + f.size) as i64 && target % 8 == 0
        });
        match found {
            Some(f) => Ok(f),
            None => bail_parse!("call target at .text offset {target} is not inside a function"),
        }
    }

    /// The instruction index of `.text` offset `target` in this program,
    /// appending the function that holds it on first use.
    fn place_subprogram(&mut self, target: i64) -> Result<usize, ParseError> {
        let (position, function) = {
            let f = self.function_at(target)?;
            let i = self
                .shared
                .text_functions
                .iter()
                .position(|g| g.start == f.start)
                .unwrap_or_default();
            (i, f.clone())
        };
        let base = match self.placed.get(&function.start) {
            Some(&base) => base,
            None => {
                let base = self.insns.len();
                let text = self.shared.text.as_ref().expect("function_at found .text");
                let code = slice(text.data, &function);
                if base + code.len() / INSN_SIZE > MAX_INSNS {
                    bail_parse!("program grows past the kernel's {MAX_INSNS} instructions");
                }
                self.insns.extend(decode_all(code));
                self.placed.insert(function.start, base);
                self.subprograms.push(function.name.clone());
                self.to_fix.push_back(position);
                base
            }
        };
        Ok(base + ((target as u64 - function.start) as usize) / INSN_SIZE)
    }
}

fn slice<'a>(data: &'a [u8], f: &Function) -> &'a [u8] {
    &data[f.start as usize..(f.start + f.size) as usize]
}

fn relative_target(offset: u64, imm: i32) -> i64 {
    offset as i64 + (imm as i64 + 1) * INSN_SIZE as i64
}

fn call_imm(call_index: usize, callee_index: usize) -> Result<i32, ParseError> {
    let delta = callee_index as i64 - (call_index as i64 + 1);
    i32::try_from(delta).map_err(|_| ParseError("call offset out of range".into()))
}
