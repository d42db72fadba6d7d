//! `.BTF.ext`: what the compiler says about the code, per program section.
//! Three parts, each a list of sections with records:
//!
//! - func_info: where each function starts (`insn_off`) and its FUNC type,
//!   so the verifier knows every subprogram's signature;
//! - line_info: which C source line each instruction came from, so a
//!   verifier rejection can quote the line;
//! - CO-RE relocations: instructions whose offset, size or constant the
//!   compiler took from the object's own idea of a kernel type, to be
//!   rewritten for the running kernel's (`core`).
//!
//! The layout (the kernel's include/uapi/linux/btf.h, libbpf's
//! libbpf_internal.h): a header { u16 magic 0xeB9F; u8 version 1; u8 flags
//! 0; u32 hdr_len; u32 func_info_off, func_info_len, line_info_off,
//! line_info_len; and, when hdr_len >= 32, u32 core_relo_off,
//! core_relo_len }, offsets counted from the end of the header. Each part
//! is a u32 record size, then per section { u32 sec_name_off (in .BTF's
//! strings); u32 num_info; num_info records }. `insn_off` is in bytes
//! from the section's start here; the kernel wants instruction indexes.
//! Records may be longer than this reader knows (a newer compiler): the
//! known fields are read, the rest skipped by the stated size.

const MAGIC: u16 = 0xeb9f;
const VERSION: u8 = 1;
/// The header through line_info_len: what every version has.
const HEADER_BASE: usize = 24;
/// The header with core_relo_off and core_relo_len.
const HEADER_WITH_CORE: usize = 32;
/// bpf_func_info: insn_off, type_id.
const FUNC_INFO_MIN: u32 = 8;
/// bpf_line_info: insn_off, file_name_off, line_off, line_col.
const LINE_INFO_MIN: u32 = 16;
/// bpf_core_relo: insn_off, type_id, access_str_off, kind.
const CORE_RELO_MIN: u32 = 16;

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    let bytes = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// A function's start and its FUNC type (`struct bpf_func_info`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FuncInfo {
    /// Bytes from its section's start (instructions once linked).
    pub insn_off: u32,
    /// The FUNC type in `.BTF`.
    pub type_id: u32,
}

/// An instruction's source line (`struct bpf_line_info`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineInfo {
    /// Bytes from its section's start (instructions once linked).
    pub insn_off: u32,
    /// The file's name, in `.BTF`'s strings.
    pub file_name_off: u32,
    /// The line's text, in `.BTF`'s strings.
    pub line_off: u32,
    /// Line number << 10 | column.
    pub line_col: u32,
}

/// A CO-RE relocation record (`struct bpf_core_relo`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoreRelo {
    /// Bytes from its section's start: the instruction to patch.
    pub insn_off: u32,
    /// The root type, in the object's `.BTF`.
    pub type_id: u32,
    /// The access string ("0:1:2"), in `.BTF`'s strings.
    pub access_str_off: u32,
    /// What to compute (`core::RelocKind`'s number).
    pub kind: u32,
}

/// The records of one program section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtSection<T> {
    /// The section's name, in `.BTF`'s strings.
    pub name_off: u32,
    /// Its records, in the file's order.
    pub records: Vec<T>,
}

/// A parsed `.BTF.ext`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BtfExt {
    /// Function starts and types, per section.
    pub funcs: Vec<ExtSection<FuncInfo>>,
    /// Source lines, per section.
    pub lines: Vec<ExtSection<LineInfo>>,
    /// CO-RE relocations, per section.
    pub core: Vec<ExtSection<CoreRelo>>,
}

impl BtfExt {
    /// How many CO-RE relocation records there are.
    pub fn core_count(&self) -> usize {
        self.core.iter().map(|s| s.records.len()).sum()
    }
}

/// Reads `.BTF.ext`, or says in one line what is wrong with it. Reads
/// nothing outside `data`; every part is walked by the sizes it states,
/// each step forward by at least 8 bytes, so records are bounded by the
/// section's size.
pub fn parse(data: &[u8]) -> Result<BtfExt, String> {
    let len = data.len();
    if len < 8 {
        return Err(format!("{len} bytes, shorter than its header"));
    }
    let magic = u16::from_le_bytes([data[0], data[1]]);
    if magic != MAGIC {
        return Err(format!("magic {magic:#06x}, not {MAGIC:#06x}"));
    }
    if data[2] != VERSION {
        return Err(format!("version {}, this loader knows {VERSION}", data[2]));
    }
    if data[3] != 0 {
        return Err(format!("unknown flags {:#x}", data[3]));
    }
    let Some(header_len) = u32_at(data, 4).and_then(|h| usize::try_from(h).ok()) else {
        return Err("no header length".into());
    };
    if header_len < HEADER_BASE || header_len > len {
        return Err(format!(
            "header of {header_len} bytes in a section of {len} (at least {HEADER_BASE})"
        ));
    }
    let part = |at: usize, what: &str| -> Result<&[u8], String> {
        let (Some(off), Some(size)) = (u32_at(data, at), u32_at(data, at + 4)) else {
            return Err(format!("{what} fields past the section's end"));
        };
        let start = (header_len as u64).checked_add(off.into());
        let end = start.and_then(|s| s.checked_add(size.into()));
        start
            .zip(end)
            .and_then(|(s, e)| data.get(usize::try_from(s).ok()?..usize::try_from(e).ok()?))
            .ok_or_else(|| {
                format!(
                    "{what} part ({size} bytes at {off} past the header) outside its {len} bytes"
                )
            })
    };
    let funcs = records(part(8, "func_info")?, "func_info", FUNC_INFO_MIN, |r| {
        FuncInfo {
            insn_off: r[0],
            type_id: r[1],
        }
    })?;
    let lines = records(part(16, "line_info")?, "line_info", LINE_INFO_MIN, |r| {
        LineInfo {
            insn_off: r[0],
            file_name_off: r[1],
            line_off: r[2],
            line_col: r[3],
        }
    })?;
    // An older compiler's header has no CO-RE part at all.
    let core = if header_len >= HEADER_WITH_CORE {
        records(part(24, "CO-RE")?, "CO-RE", CORE_RELO_MIN, |r| CoreRelo {
            insn_off: r[0],
            type_id: r[1],
            access_str_off: r[2],
            kind: r[3],
        })?
    } else {
        Vec::new()
    };
    Ok(BtfExt { funcs, lines, core })
}

/// One part: a record size of at least `min` (a multiple of 4), then
/// sections of records, each record read as its first `min / 4` words.
fn records<T>(
    part: &[u8],
    what: &str,
    min: u32,
    read: impl Fn(&[u32]) -> T,
) -> Result<Vec<ExtSection<T>>, String> {
    if part.is_empty() {
        return Ok(Vec::new());
    }
    let Some(record) = u32_at(part, 0) else {
        return Err(format!("{what} part shorter than its record size"));
    };
    if record < min || record % 4 != 0 {
        return Err(format!("{what} record size {record} (at least {min})"));
    }
    let words = (min / 4) as usize;
    let mut sections = Vec::new();
    let mut at = 4usize;
    while at < part.len() {
        let (Some(name_off), Some(count)) = (u32_at(part, at), u32_at(part, at + 4)) else {
            return Err(format!("{what} part ends inside a section header"));
        };
        let bytes = u64::from(count) * u64::from(record);
        let end = (at as u64 + 8).checked_add(bytes);
        let Some(end) = end.filter(|&e| e <= part.len() as u64) else {
            return Err(format!("{count} {what} records run past the section's end"));
        };
        let mut list = Vec::with_capacity(count as usize);
        let mut r = at + 8;
        let mut fields = vec![0u32; words];
        while r < end as usize {
            for (i, f) in fields.iter_mut().enumerate() {
                // Inside the part: r + record <= end.
                *f = u32_at(part, r + 4 * i).unwrap_or(0);
            }
            list.push(read(&fields));
            r += record as usize;
        }
        sections.push(ExtSection {
            name_off,
            records: list,
        });
        at = end as usize;
    }
    Ok(sections)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A .BTF.ext of `header_len` bytes whose CO-RE part is `core`, and
    /// whose func_info part is `funcs`.
    fn section_with(header_len: u32, funcs: &[u8], core: &[u8]) -> Vec<u8> {
        let mut s = vec![0x9f, 0xeb, 1, 0];
        s.extend(header_len.to_le_bytes());
        s.extend(0u32.to_le_bytes());
        s.extend((funcs.len() as u32).to_le_bytes());
        s.extend((funcs.len() as u32).to_le_bytes());
        s.extend(0u32.to_le_bytes());
        if header_len >= 32 {
            s.extend((funcs.len() as u32).to_le_bytes());
            s.extend((core.len() as u32).to_le_bytes());
        }
        s.resize(header_len as usize, 0);
        s.extend(funcs);
        s.extend(core);
        s
    }

    fn section(header_len: u32, core: &[u8]) -> Vec<u8> {
        section_with(header_len, &[], core)
    }

    /// A part with `record`-byte records, whose words count up from 1.
    fn part(record: u32, sections: &[u32]) -> Vec<u8> {
        let mut c = record.to_le_bytes().to_vec();
        let mut word = 1u32;
        for &n in sections {
            c.extend(7u32.to_le_bytes());
            c.extend(n.to_le_bytes());
            for _ in 0..n * record / 4 {
                c.extend(word.to_le_bytes());
                word += 1;
            }
        }
        c
    }

    fn core_relocations(data: &[u8]) -> Result<usize, String> {
        parse(data).map(|e| e.core_count())
    }

    #[test]
    fn reads_the_records_of_every_section() {
        assert_eq!(core_relocations(&section(32, &part(16, &[2, 0, 3]))), Ok(5));
        let ext = parse(&section(32, &part(24, &[1]))).unwrap();
        // The known four words; the two more of a longer record skipped.
        let relo = CoreRelo {
            insn_off: 1,
            type_id: 2,
            access_str_off: 3,
            kind: 4,
        };
        assert_eq!(ext.core[0].records, vec![relo]);
        assert_eq!(ext.core[0].name_off, 7);
        let ext = parse(&section_with(32, &part(8, &[2]), &[])).unwrap();
        let f = |insn_off, type_id| FuncInfo { insn_off, type_id };
        assert_eq!(ext.funcs[0].records, vec![f(1, 2), f(3, 4)]);
    }

    #[test]
    fn no_core_part_is_no_relocation() {
        assert_eq!(core_relocations(&section(24, &[])), Ok(0));
        assert_eq!(core_relocations(&section(32, &[])), Ok(0));
        // A record size and no section: an empty part.
        assert_eq!(core_relocations(&section(32, &part(16, &[]))), Ok(0));
    }

    #[test]
    fn every_size_is_checked_against_the_bytes_present() {
        let good = section(32, &part(16, &[2]));
        for len in 0..good.len() {
            assert!(
                core_relocations(&good[..len]).is_err(),
                "truncated to {len}"
            );
        }
        let mut b = good.clone();
        b[28..32].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(core_relocations(&b).unwrap_err().contains("outside"));
        let mut b = good.clone();
        b[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(core_relocations(&b).unwrap_err().contains("outside"));
        let mut b = good.clone();
        b[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(core_relocations(&b).unwrap_err().contains("header of"));
        let mut b = good.clone();
        b[32 + 8..32 + 12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(core_relocations(&b).unwrap_err().contains("run past"));
        let mut b = good.clone();
        b[32..36].copy_from_slice(&0u32.to_le_bytes());
        assert!(core_relocations(&b).unwrap_err().contains("record size 0"));
        let mut b = good;
        b[0] = 0;
        assert!(core_relocations(&b).unwrap_err().contains("magic"));
    }

    #[test]
    fn every_byte_flip_ends_in_an_answer() {
        let good = section_with(32, &part(8, &[2]), &part(16, &[2]));
        for at in 0..good.len() {
            for bit in 0..8 {
                let mut b = good.clone();
                b[at] ^= 1 << bit;
                if let Err(e) = parse(&b) {
                    assert!(!e.contains('\n'));
                }
            }
        }
    }
}
