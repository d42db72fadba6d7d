//! Just enough of `.BTF.ext` to tell whether an object asks for CO-RE
//! relocations. Their offsets are the compiler's guess from the object's
//! own struct definitions; libbpf rewrites them to the running kernel's
//! layout at load time. This loader does not, so an object that has any
//! would read the wrong memory, and is refused instead.
//!
//! The layout (the kernel's include/uapi/linux/btf.h, libbpf's btf.h):
//! a header { u16 magic 0xeB9F; u8 version 1; u8 flags 0; u32 hdr_len;
//! u32 func_info_off, func_info_len, line_info_off, line_info_len; then,
//! when hdr_len >= 32, u32 core_relo_off, core_relo_len }, offsets counted
//! from the end of the header. The CO-RE part is a u32 record size, then
//! per section { u32 sec_name_off; u32 num_info; num_info records }.

const MAGIC: u16 = 0xeb9f;
const VERSION: u8 = 1;
/// The header through line_info_len: what every version has.
const HEADER_BASE: usize = 24;
/// The header with core_relo_off and core_relo_len.
const HEADER_WITH_CORE: usize = 32;
/// struct bpf_core_relo: insn_off, type_id, access_str_off, kind.
const CORE_RELO_MIN: u32 = 16;

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    let bytes = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// How many CO-RE relocations the section holds, or what is wrong with it.
/// Reads nothing outside `data`, and walks the CO-RE part by the sizes it
/// states, each step moving forward by at least 8 bytes.
pub(super) fn core_relocations(data: &[u8]) -> Result<u64, String> {
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
    if header_len < HEADER_WITH_CORE {
        // An older compiler's header: no CO-RE part at all.
        return Ok(0);
    }
    let (Some(off), Some(size)) = (u32_at(data, 24), u32_at(data, 28)) else {
        return Err("CO-RE fields past the section's end".into());
    };
    if size == 0 {
        return Ok(0);
    }
    let start = (header_len as u64).checked_add(off.into());
    let end = start.and_then(|s| s.checked_add(size.into()));
    let part = start
        .zip(end)
        .and_then(|(s, e)| data.get(usize::try_from(s).ok()?..usize::try_from(e).ok()?));
    let Some(part) = part else {
        return Err(format!(
            "CO-RE part ({size} bytes at {off} past the header) outside its {len} bytes"
        ));
    };
    let Some(record) = u32_at(part, 0) else {
        return Err("CO-RE part shorter than its record size".into());
    };
    if record < CORE_RELO_MIN || record % 4 != 0 {
        return Err(format!("CO-RE record size {record}"));
    }
    let mut count = 0u64;
    let mut at = 4usize;
    while at < part.len() {
        let Some(records) = u32_at(part, at + 4) else {
            return Err("CO-RE part ends inside a section header".into());
        };
        let bytes = u64::from(records) * u64::from(record);
        let next = (at as u64 + 8).checked_add(bytes);
        match next {
            Some(n) if n <= part.len() as u64 => at = n as usize,
            _ => {
                return Err(format!(
                    "{records} CO-RE records run past the section's end"
                ));
            }
        }
        count += u64::from(records);
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A .BTF.ext of `header_len` bytes whose CO-RE part is `core`.
    fn section(header_len: u32, core: &[u8]) -> Vec<u8> {
        let mut s = vec![0x9f, 0xeb, 1, 0];
        s.extend(header_len.to_le_bytes());
        s.extend([0u8; 16]);
        if header_len >= 32 {
            s.extend(0u32.to_le_bytes());
            s.extend((core.len() as u32).to_le_bytes());
        }
        s.resize(header_len as usize, 0);
        s.extend(core);
        s
    }

    fn core(record: u32, sections: &[u32]) -> Vec<u8> {
        let mut c = record.to_le_bytes().to_vec();
        for &n in sections {
            c.extend(7u32.to_le_bytes());
            c.extend(n.to_le_bytes());
            c.extend(vec![0u8; (n * record) as usize]);
        }
        c
    }

    #[test]
    fn counts_the_records_of_every_section() {
        assert_eq!(core_relocations(&section(32, &core(16, &[2, 0, 3]))), Ok(5));
        assert_eq!(core_relocations(&section(32, &core(24, &[1]))), Ok(1));
    }

    #[test]
    fn no_core_part_is_no_relocation() {
        assert_eq!(core_relocations(&section(24, &[])), Ok(0));
        assert_eq!(core_relocations(&section(32, &[])), Ok(0));
        // A record size and no section: an empty part.
        assert_eq!(core_relocations(&section(32, &core(16, &[]))), Ok(0));
    }

    #[test]
    fn every_size_is_checked_against_the_bytes_present() {
        let good = section(32, &core(16, &[2]));
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
}
