//! One eBPF instruction as the kernel reads it (struct bpf_insn).

/// `struct bpf_insn`: opcode, two 4-bit registers, offset, immediate.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Insn {
    /// The opcode.
    pub code: u8,
    /// dst_reg in the low nibble, src_reg in the high one.
    pub regs: u8,
    /// The jump offset, or the offset of a load or store.
    pub off: i16,
    /// The immediate.
    pub imm: i32,
}

/// Bytes per instruction.
pub const INSN_SIZE: usize = 8;
/// `BPF_LD | BPF_IMM | BPF_DW`: the first half of a 16-byte load.
pub const OP_LD_IMM64: u8 = 0x18;
/// `BPF_JMP | BPF_CALL`.
pub const OP_CALL: u8 = 0x85;
/// src_reg of an ld_imm64 whose immediate is a map fd.
pub const PSEUDO_MAP_FD: u8 = 1;
/// src_reg of an ld_imm64 whose immediate is a map fd and whose second
/// half's immediate an offset into its (single) value: global data.
pub const PSEUDO_MAP_VALUE: u8 = 2;
/// src_reg of a call whose immediate is a relative instruction offset.
pub const PSEUDO_CALL: u8 = 1;

impl Insn {
    /// An instruction from its 8 bytes, little-endian.
    pub fn from_bytes(b: &[u8; INSN_SIZE]) -> Insn {
        Insn {
            code: b[0],
            regs: b[1],
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    /// The source register.
    pub fn src_reg(&self) -> u8 {
        self.regs >> 4
    }

    /// Sets the source register (e.g. to `PSEUDO_MAP_FD`).
    pub fn set_src_reg(&mut self, src: u8) {
        self.regs = (self.regs & 0x0f) | (src << 4);
    }

    /// A call to a BPF function in the same object (not a helper).
    pub fn is_pseudo_call(&self) -> bool {
        self.code == OP_CALL && self.src_reg() == PSEUDO_CALL
    }
}

/// Decodes a run of instructions; the caller has checked the length (a
/// trailing partial instruction would be ignored).
pub fn decode_all(bytes: &[u8]) -> Vec<Insn> {
    let (whole, _) = bytes.as_chunks::<INSN_SIZE>();
    whole.iter().map(Insn::from_bytes).collect()
}
