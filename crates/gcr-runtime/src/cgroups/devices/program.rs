//! The BPF_PROG_TYPE_CGROUP_DEVICE program for a set of folded rules: a short list of
//! instructions, one block per exception, as runc (after crun) builds it.
//!
//! The kernel calls the program with `struct bpf_cgroup_dev_ctx { u32 access_type; u32
//! major; u32 minor; }` in r1, `access_type` being `(access << 16) | type`; it returns 1 to
//! allow, 0 to deny. Registers: r2 = type, r3 = access, r4 = major, r5 = minor.
//!
//! One difference from runc: runc matches a request only when all of its access bits are in
//! the rule, for allow and deny exceptions alike, so with "allow all, deny `c 1:3 w`" an
//! open of 1:3 for reading and writing passes. The v1 controller denies it (a deny
//! exception matches any overlapping access), and so does this program.

use super::rules::{DeviceKind, Folded, ACC_ALL};

/// One eBPF instruction (`struct bpf_insn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    /// Opcode.
    pub code: u8,
    /// Destination register.
    pub dst: u8,
    /// Source register.
    pub src: u8,
    /// Jump offset (instructions after the next one) or memory offset.
    pub off: i16,
    /// Immediate.
    pub imm: i32,
}

// Opcode parts (linux/bpf_common.h, linux/bpf.h).
const ALU: u8 = 0x04; // 32-bit ALU
const JMP: u8 = 0x05;
const LDX: u8 = 0x01;
const MEM: u8 = 0x60;
const W: u8 = 0x00;
const K: u8 = 0x00;
const X: u8 = 0x08;
const AND: u8 = 0x50;
const RSH: u8 = 0x70;
const MOV: u8 = 0xb0;
const JEQ: u8 = 0x10;
const JNE: u8 = 0x50;
const EXIT: u8 = 0x90;

/// `ldxw dst, [src + off]`.
pub const LDX_W: u8 = LDX | MEM | W;
/// `and32 dst, imm`.
pub const AND32_K: u8 = ALU | AND | K;
/// `rsh32 dst, imm`.
pub const RSH32_K: u8 = ALU | RSH | K;
/// `mov32 dst, imm`.
pub const MOV32_K: u8 = ALU | MOV | K;
/// `mov32 dst, src`.
pub const MOV32_X: u8 = ALU | MOV | X;
/// `jne dst, imm, +off`.
pub const JNE_K: u8 = JMP | JNE | K;
/// `jne dst, src, +off`.
pub const JNE_X: u8 = JMP | JNE | X;
/// `jeq dst, imm, +off`.
pub const JEQ_K: u8 = JMP | JEQ | K;
/// `exit`.
pub const EXIT_OP: u8 = JMP | EXIT;

/// BPF_DEVCG_DEV_BLOCK and BPF_DEVCG_DEV_CHAR.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        dst,
        src,
        off,
        imm,
    }
}

/// The program for `f`: the exceptions in order, each returning the opposite of the
/// default when it matches, then the default.
pub fn generate(f: &Folded) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(AND32_K, 2, 0, 0, 0xffff),
        insn(LDX_W, 3, 1, 0, 0),
        insn(RSH32_K, 3, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ];
    for (&(major, minor, kind), &access) in &f.exceptions {
        let typ = match kind {
            DeviceKind::Block => DEV_BLOCK,
            DeviceKind::Char => DEV_CHAR,
            DeviceKind::All => continue, // never an exception (it resets the fold)
        };
        // The kernel's numbers have 12 (major) and 20 (minor) bits: a rule beyond i32 can
        // match no device, and a 64-bit compare with the sign-extended immediate could not
        // express it anyway.
        let fits = |n: Option<u32>| match n {
            None => Some(None),
            Some(n) => i32::try_from(n).ok().map(Some),
        };
        let (Some(major), Some(minor)) = (fits(major), fits(minor)) else {
            continue;
        };
        // Jumps hold placeholders (off 0) patched to the next block below.
        let mut block = vec![insn(JNE_K, 2, 0, 0, typ)];
        if access != ACC_ALL {
            block.push(insn(MOV32_X, 1, 3, 0, 0));
            block.push(insn(AND32_K, 1, 0, 0, i32::from(access)));
            if f.default_allow {
                // Deny exception: matches when any requested access is in it.
                block.push(insn(JEQ_K, 1, 0, 0, 0));
            } else {
                // Allow exception: matches when every requested access is in it.
                block.push(insn(JNE_X, 1, 3, 0, 0));
            }
        }
        if let Some(major) = major {
            block.push(insn(JNE_K, 4, 0, 0, major));
        }
        if let Some(minor) = minor {
            block.push(insn(JNE_K, 5, 0, 0, minor));
        }
        block.push(insn(MOV32_K, 0, 0, 0, i32::from(!f.default_allow)));
        block.push(insn(EXIT_OP, 0, 0, 0, 0));
        let n = block.len();
        for (i, ins) in block.iter_mut().enumerate() {
            if ins.code & 0x07 == JMP && ins.code != EXIT_OP {
                // To the instruction after this block's exit.
                ins.off = (n - 1 - i) as i16;
            }
        }
        p.extend(block);
    }
    p.push(insn(MOV32_K, 0, 0, 0, i32::from(f.default_allow)));
    p.push(insn(EXIT_OP, 0, 0, 0, 0));
    p
}

/// The instructions as the kernel reads them (`struct bpf_insn`, 8 bytes each).
pub fn encode(p: &[Insn]) -> Vec<u64> {
    p.iter()
        .map(|i| {
            // The register byte is a pair of 4-bit fields: dst in the low nibble on
            // little-endian machines, in the high one on big-endian ones.
            let regs = if cfg!(target_endian = "little") {
                (i.dst & 0xf) | (i.src << 4)
            } else {
                (i.dst << 4) | (i.src & 0xf)
            };
            let mut b = [0u8; 8];
            b[0] = i.code;
            b[1] = regs;
            b[2..4].copy_from_slice(&i.off.to_ne_bytes());
            b[4..8].copy_from_slice(&i.imm.to_ne_bytes());
            u64::from_ne_bytes(b)
        })
        .collect()
}
