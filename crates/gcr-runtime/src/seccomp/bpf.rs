//! A classic BPF interpreter for the tests: runs a seccomp program (gcr's or libseccomp's) on
//! one `struct seccomp_data` and returns the filter's return value. It also applies the
//! kernel's checks on seccomp programs (1 to 4096 instructions ending in a `ret`, loads only
//! of aligned words inside `seccomp_data`, jumps inside the program, no read of an unwritten
//! scratch slot, no division by a zero constant), so a program the kernel would refuse fails
//! here as well.

use super::compile::Insn;

/// `struct seccomp_data` (little-endian layout, as on x86_64 and aarch64).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Data {
    pub(crate) nr: u32,
    pub(crate) arch: u32,
    pub(crate) ip: u64,
    pub(crate) args: [u64; 6],
}

impl Data {
    /// The 16 32-bit words a `ld [k]` reads (word `k / 4`).
    fn words(&self) -> [u32; 16] {
        let mut w = [0u32; 16];
        w[0] = self.nr;
        w[1] = self.arch;
        w[2] = self.ip as u32;
        w[3] = (self.ip >> 32) as u32;
        for (i, a) in self.args.iter().enumerate() {
            w[4 + 2 * i] = *a as u32;
            w[5 + 2 * i] = (*a >> 32) as u32;
        }
        w
    }
}

/// Size of `struct seccomp_data`.
const DATA_LEN: u32 = 64;

/// The kernel's load-time checks: length, a final `ret`, every jump target inside the
/// program, loads inside `seccomp_data`, known opcodes only. `Err` names the instruction.
pub(crate) fn check(prog: &[Insn]) -> Result<(), String> {
    if prog.is_empty() || prog.len() > 4096 {
        return Err(format!("{} instructions (1 to 4096 allowed)", prog.len()));
    }
    if prog[prog.len() - 1].code & 0x07 != 0x06 {
        return Err("the last instruction is not a ret".into());
    }
    for (pc, i) in prog.iter().enumerate() {
        let bad = |why: &str| Err(format!("insn {pc} {i:?}: {why}"));
        let after = |off: usize| pc + 1 + off < prog.len();
        match i.code {
            0x20 if i.k % 4 != 0 || i.k >= DATA_LEN => return bad("load outside seccomp_data"),
            0x60 | 0x61 | 0x02 | 0x03 if i.k >= 16 => return bad("scratch slot out of range"),
            0x34 | 0x94 if i.k == 0 => return bad("division by zero"),
            0x05 if !after(i.k as usize) => return bad("jump past the end"),
            c if c & 0x07 == 0x05
                && c != 0x05
                && (!after(usize::from(i.jt)) || !after(usize::from(i.jf))) =>
            {
                return bad("jump past the end")
            }
            _ => {}
        }
    }
    Ok(())
}

/// Runs `prog` (which passed [`check`]) on `d`; `Err` names an instruction the kernel
/// would refuse.
pub(crate) fn run(prog: &[Insn], d: &Data) -> Result<u32, String> {
    let words = d.words();
    let mut mem: [Option<u32>; 16] = [None; 16];
    let (mut pc, mut a, mut x) = (0usize, 0u32, 0u32);
    loop {
        let i = *prog
            .get(pc)
            .ok_or_else(|| format!("ran off the end at {pc}"))?;
        let at = pc;
        let bad = |why: &str| format!("insn {at} {i:?}: {why}");
        let slot = |k: u32| {
            usize::try_from(k)
                .ok()
                .filter(|k| *k < 16)
                .ok_or_else(|| bad("scratch slot out of range"))
        };
        pc += 1;
        match i.code {
            // ld/ldx: abs word, immediate, scratch memory, packet length.
            0x20 => {
                if i.k % 4 != 0 || i.k >= DATA_LEN {
                    return Err(bad("load outside seccomp_data or unaligned"));
                }
                a = words[(i.k / 4) as usize];
            }
            0x00 => a = i.k,
            0x01 => x = i.k,
            0x60 => a = mem[slot(i.k)?].ok_or_else(|| bad("read of an unwritten slot"))?,
            0x61 => x = mem[slot(i.k)?].ok_or_else(|| bad("read of an unwritten slot"))?,
            0x80 => a = DATA_LEN,
            0x81 => x = DATA_LEN,
            // st/stx.
            0x02 => mem[slot(i.k)?] = Some(a),
            0x03 => mem[slot(i.k)?] = Some(x),
            // alu.
            c if c & 0x07 == 0x04 => {
                let v = if c & 0x08 != 0 { x } else { i.k };
                a = match c & 0xf0 {
                    0x00 => a.wrapping_add(v),
                    0x10 => a.wrapping_sub(v),
                    0x20 => a.wrapping_mul(v),
                    0x30 => a.checked_div(v).ok_or_else(|| bad("division by zero"))?,
                    0x40 => a | v,
                    0x50 => a & v,
                    0x60 => a.checked_shl(v).unwrap_or(0),
                    0x70 => a.checked_shr(v).unwrap_or(0),
                    0x80 => a.wrapping_neg(),
                    0x90 => a.checked_rem(v).ok_or_else(|| bad("division by zero"))?,
                    0xa0 => a ^ v,
                    _ => return Err(bad("unknown alu operation")),
                };
            }
            // jmp.
            0x05 => pc += i.k as usize,
            c if c & 0x07 == 0x05 => {
                let v = if c & 0x08 != 0 { x } else { i.k };
                let taken = match c & 0xf0 {
                    0x10 => a == v,
                    0x20 => a > v,
                    0x30 => a >= v,
                    0x40 => a & v != 0,
                    _ => return Err(bad("unknown jump")),
                };
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
            // ret k / ret a.
            0x06 => return Ok(i.k),
            0x16 => return Ok(a),
            // tax / txa.
            0x07 => x = a,
            0x87 => a = x,
            _ => return Err(bad("opcode not allowed in seccomp programs")),
        }
        if pc >= prog.len() {
            return Err(bad("jump past the end"));
        }
    }
}

/// The action class and data of a seccomp return value, for messages.
pub(crate) fn describe(ret: u32) -> String {
    match ret & 0xffff_0000 {
        0x8000_0000 => "KILL_PROCESS".into(),
        0x0000_0000 => "KILL_THREAD".into(),
        0x0003_0000 => format!("TRAP({})", ret & 0xffff),
        0x0005_0000 => format!("ERRNO({})", ret & 0xffff),
        0x7fc0_0000 => "USER_NOTIF".into(),
        0x7ff0_0000 => format!("TRACE({})", ret & 0xffff),
        0x7ffc_0000 => "LOG".into(),
        0x7fff_0000 => "ALLOW".into(),
        _ => format!("{ret:#x}"),
    }
}
