//! Code generation for the seccomp compiler: classic BPF instructions, 64-bit argument
//! checks, and the binary search over syscall numbers. Part of [`super`] (and so of
//! `build.rs` too), split off to keep each file readable.

use super::{Action, Cond};

/// One classic BPF instruction (same layout as `struct sock_filter`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Insn {
    pub(crate) code: u16,
    pub(crate) jt: u8,
    pub(crate) jf: u8,
    pub(crate) k: u32,
}

const LD_W_ABS: u16 = 0x20;
const JMP_JA: u16 = 0x05;
const JMP_JEQ_K: u16 = 0x15;
const JMP_JGT_K: u16 = 0x25;
pub(super) const JMP_JGE_K: u16 = 0x35;
const ALU_AND_K: u16 = 0x54;
const RET_K: u16 = 0x06;

pub(super) const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub(super) const RET_ERRNO: u32 = 0x0005_0000;
pub(super) const RET_ALLOW: u32 = 0x7fff_0000;

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Outcome {
    Ret(Action),
    Args(Vec<(Vec<Cond>, Action)>),
}

fn arg_offsets(arg: u8) -> (u32, u32) {
    let lo = 16 + 8 * u32::from(arg);
    (lo, lo + 4)
}

/// Placeholder for "jump to the next rule", patched once the rule's length is known.
const FAIL: u8 = 0xff;

pub(super) fn ld(k: u32) -> Insn {
    Insn {
        code: LD_W_ABS,
        jt: 0,
        jf: 0,
        k,
    }
}

pub(super) fn jeq(k: u32, jt: u8, jf: u8) -> Insn {
    Insn {
        code: JMP_JEQ_K,
        jt,
        jf,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Insn {
    Insn { code, jt, jf, k }
}

fn and(k: u32) -> Insn {
    Insn {
        code: ALU_AND_K,
        jt: 0,
        jf: 0,
        k,
    }
}

pub(super) fn ret(k: u32) -> Insn {
    Insn {
        code: RET_K,
        jt: 0,
        jf: 0,
        k,
    }
}

/// Code for one condition; failing jumps carry [`FAIL`] in `jt` or `jf`.
fn cond_code(c: Cond, out: &mut Vec<(Insn, bool, bool)>) {
    let (lo, hi) = match c {
        Cond::Eq(a, _)
        | Cond::Ne(a, _)
        | Cond::MaskedEq(a, _, _)
        | Cond::Lt(a, _)
        | Cond::Le(a, _)
        | Cond::Gt(a, _)
        | Cond::Ge(a, _) => arg_offsets(a),
    };
    match c {
        Cond::Eq(_, v) => {
            out.push((ld(hi), false, false));
            out.push((jeq((v >> 32) as u32, 0, FAIL), false, true));
            out.push((ld(lo), false, false));
            out.push((jeq(v as u32, 0, FAIL), false, true));
        }
        Cond::Ne(_, v) => {
            out.push((ld(hi), false, false));
            out.push((jeq((v >> 32) as u32, 0, 2), false, false));
            out.push((ld(lo), false, false));
            out.push((jeq(v as u32, FAIL, 0), true, false));
        }
        Cond::MaskedEq(_, m, v) => {
            if (m >> 32) != 0 || (v >> 32) != 0 {
                out.push((ld(hi), false, false));
                out.push((and((m >> 32) as u32), false, false));
                out.push((jeq((v >> 32) as u32, 0, FAIL), false, true));
            }
            out.push((ld(lo), false, false));
            out.push((and(m as u32), false, false));
            out.push((jeq(v as u32, 0, FAIL), false, true));
        }
        // Unsigned 64-bit order from two 32-bit words: the high words decide unless they
        // are equal, then the low ones do (as libseccomp's code for SCMP_CMP_GT/GE/LT/LE).
        Cond::Gt(_, v) | Cond::Ge(_, v) => {
            let last = if matches!(c, Cond::Gt(..)) {
                JMP_JGT_K
            } else {
                JMP_JGE_K
            };
            out.push((ld(hi), false, false));
            // hi > v.hi: holds (skip the three instructions below).
            out.push((jump(JMP_JGT_K, (v >> 32) as u32, 3, 0), false, false));
            // hi < v.hi: fails.
            out.push((jeq((v >> 32) as u32, 0, FAIL), false, true));
            out.push((ld(lo), false, false));
            out.push((jump(last, v as u32, 0, FAIL), false, true));
        }
        Cond::Lt(_, v) | Cond::Le(_, v) => {
            // a < v is not a >= v; a <= v is not a > v.
            let last = if matches!(c, Cond::Lt(..)) {
                JMP_JGE_K
            } else {
                JMP_JGT_K
            };
            out.push((ld(hi), false, false));
            // hi > v.hi: fails.
            out.push((jump(JMP_JGT_K, (v >> 32) as u32, FAIL, 0), true, false));
            // hi < v.hi: holds (skip the two instructions below).
            out.push((jeq((v >> 32) as u32, 0, 2), false, false));
            out.push((ld(lo), false, false));
            out.push((jump(last, v as u32, FAIL, 0), true, false));
        }
    }
}

fn args_block(rules: &[(Vec<Cond>, Action)], default: Action) -> Vec<Insn> {
    let mut code = Vec::new();
    for (conds, action) in rules {
        let mut rule: Vec<(Insn, bool, bool)> = Vec::new();
        for c in conds {
            cond_code(*c, &mut rule);
        }
        rule.push((ret(action.ret()), false, false));
        let n = rule.len();
        for (j, (mut insn, fail_t, fail_f)) in rule.into_iter().enumerate() {
            let to_next = u8::try_from(n - j - 1).expect("argument rule too long");
            if fail_t {
                insn.jt = to_next;
            }
            if fail_f {
                insn.jf = to_next;
            }
            code.push(insn);
        }
    }
    code.push(ret(default.ret()));
    code
}

fn leaf(o: &Outcome, default: Action) -> Vec<Insn> {
    match o {
        Outcome::Ret(a) => vec![ret(a.ret())],
        Outcome::Args(rules) => args_block(rules, default),
    }
}

/// Binary search over `(first syscall number, outcome)` segments; A holds the number.
pub(super) fn tree(segs: &[(u32, Outcome)], default: Action) -> Vec<Insn> {
    if segs.len() == 1 {
        return leaf(&segs[0].1, default);
    }
    let mid = segs.len() / 2;
    let left = tree(&segs[..mid], default);
    let right = tree(&segs[mid..], default);
    let mut code = Vec::with_capacity(left.len() + right.len() + 2);
    let k = segs[mid].0;
    match u8::try_from(left.len()) {
        Ok(skip) => code.push(Insn {
            code: JMP_JGE_K,
            jt: skip,
            jf: 0,
            k,
        }),
        Err(_) => {
            code.push(Insn {
                code: JMP_JGE_K,
                jt: 0,
                jf: 1,
                k,
            });
            code.push(Insn {
                code: JMP_JA,
                jt: 0,
                jf: 0,
                k: left.len() as u32,
            });
        }
    }
    code.extend(left);
    code.extend(right);
    code
}
