//! The seccomp profile compiler: parses gcr's profile text (`seccomp/default.profile`) and
//! the x86_64 syscall table, and turns them, for one capability mask, into a classic BPF
//! program. Pure std so `build.rs` can include it (`#[path]`) to precompile at build time,
//! and the library can compile rare capability combinations at run time.
//!
//! Program shape: check the audit arch (x86_64, else kill the process), kill x32 numbers,
//! then a binary search over ranges of syscall numbers with the same outcome. A leaf is a
//! `ret` or, for syscalls with argument rules, a short block of 64-bit argument checks. A
//! search node whose left subtree is longer than a jump offset allows (255) jumps with `ja`.

use std::collections::BTreeMap;

/// Capability names by number, without `CAP_` (shared with `caps`).
pub(crate) const CAP_NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

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
const JMP_JGE_K: u16 = 0x35;
const ALU_AND_K: u16 = 0x54;
const RET_K: u16 = 0x06;

pub(crate) const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_ALLOW: u32 = 0x7fff_0000;
const ENOSYS: u32 = 38;

/// What a rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    Allow,
    Errno(u32),
    Kill,
}

impl Action {
    fn ret(self) -> u32 {
        match self {
            Action::Allow => RET_ALLOW,
            Action::Errno(e) => RET_ERRNO | (e & 0xffff),
            Action::Kill => RET_KILL_PROCESS,
        }
    }
}

/// A 64-bit argument comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cond {
    Eq(u8, u64),
    Ne(u8, u64),
    MaskedEq(u8, u64, u64),
}

/// Which capability mask a rule needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Gate {
    Always,
    With(u32),
    Without(u32),
}

#[derive(Clone, Debug)]
struct Rule {
    nr: u32,
    action: Action,
    conds: Vec<Cond>,
    gate: Gate,
}

/// A parsed profile.
#[derive(Clone, Debug)]
pub(crate) struct Profile {
    default: Action,
    max_nr: u32,
    rules: Vec<Rule>,
}

fn parse_num(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

fn cap_number(name: &str) -> Option<u32> {
    CAP_NAMES.iter().position(|n| *n == name).map(|i| i as u32)
}

fn parse_cond(toks: &[&str]) -> Result<Cond, String> {
    let arg = |t: &str| -> Result<u8, String> {
        t.strip_prefix("arg")
            .and_then(|n| n.parse::<u8>().ok())
            .filter(|n| *n < 6)
            .ok_or_else(|| format!("bad argument {t:?} (arg0..arg5)"))
    };
    let num = |t: &str| parse_num(t).ok_or_else(|| format!("bad number {t:?}"));
    match toks {
        [a, "==", v] => Ok(Cond::Eq(arg(a)?, num(v)?)),
        [a, "!=", v] => Ok(Cond::Ne(arg(a)?, num(v)?)),
        [a, "&", m, "==", v] => Ok(Cond::MaskedEq(arg(a)?, num(m)?, num(v)?)),
        _ => Err(format!("bad condition {:?}", toks.join(" "))),
    }
}

/// Parses the syscall table (`name number` lines) and the profile text.
pub(crate) fn parse(profile: &str, table: &str) -> Result<Profile, String> {
    let mut nrs = BTreeMap::new();
    for line in table
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (name, nr) = line
            .split_once(' ')
            .ok_or_else(|| format!("bad table line {line:?}"))?;
        let nr: u32 = nr
            .trim()
            .parse()
            .map_err(|_| format!("bad table line {line:?}"))?;
        nrs.insert(name.to_string(), nr);
    }
    let max_nr = nrs.values().copied().max().ok_or("empty syscall table")?;
    let mut default = None;
    let mut gate = Gate::Always;
    let mut rules = Vec::new();
    for (i, raw) in profile.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let err = |m: String| format!("profile line {}: {m}", i + 1);
        let toks: Vec<&str> = line.split_whitespace().collect();
        if let Some(sec) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let st: Vec<&str> = sec.split_whitespace().collect();
            gate = match st.as_slice() {
                ["all"] => Gate::Always,
                ["cap", c] => {
                    Gate::With(cap_number(c).ok_or_else(|| err(format!("unknown cap {c}")))?)
                }
                ["nocap", c] => {
                    Gate::Without(cap_number(c).ok_or_else(|| err(format!("unknown cap {c}")))?)
                }
                _ => return Err(err(format!("bad section {line:?}"))),
            };
            continue;
        }
        if let ["default", "errno", n] = toks.as_slice() {
            let n = parse_num(n).ok_or_else(|| err("bad errno".into()))?;
            default = Some(Action::Errno(n as u32));
            continue;
        }
        let (action, rest) = match toks.as_slice() {
            ["allow", rest @ ..] => (Action::Allow, rest),
            ["kill", rest @ ..] => (Action::Kill, rest),
            ["errno", n, rest @ ..] => (
                Action::Errno(parse_num(n).ok_or_else(|| err("bad errno".into()))? as u32),
                rest,
            ),
            _ => return Err(err(format!("unknown rule {line:?}"))),
        };
        let (names, conds_toks) = match rest.iter().position(|t| *t == "if") {
            Some(p) => (&rest[..p], &rest[p + 1..]),
            None => (rest, &[][..]),
        };
        let mut conds = Vec::new();
        if !conds_toks.is_empty() {
            for c in conds_toks.split(|t| *t == "and") {
                conds.push(parse_cond(c).map_err(err)?);
            }
        }
        if names.is_empty() {
            return Err(err("rule without syscall names".into()));
        }
        for name in names {
            let nr = *nrs
                .get(*name)
                .ok_or_else(|| err(format!("unknown x86_64 syscall {name}")))?;
            rules.push(Rule {
                nr,
                action,
                conds: conds.clone(),
                gate,
            });
        }
    }
    let default = default.ok_or("profile has no `default` line")?;
    Ok(Profile {
        default,
        max_nr,
        rules,
    })
}

impl Profile {
    /// The capabilities whose presence changes the program.
    #[allow(dead_code)] // used by build.rs and the tests
    pub(crate) fn relevant_caps(&self) -> u64 {
        self.rules.iter().fold(0, |m, r| match r.gate {
            Gate::Always => m,
            Gate::With(c) | Gate::Without(c) => m | (1u64 << c),
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Outcome {
    Ret(Action),
    Args(Vec<(Vec<Cond>, Action)>),
}

fn arg_offsets(arg: u8) -> (u32, u32) {
    let lo = 16 + 8 * u32::from(arg);
    (lo, lo + 4)
}

/// Placeholder for "jump to the next rule", patched once the rule's length is known.
const FAIL: u8 = 0xff;

fn ld(k: u32) -> Insn {
    Insn {
        code: LD_W_ABS,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jeq(k: u32, jt: u8, jf: u8) -> Insn {
    Insn {
        code: JMP_JEQ_K,
        jt,
        jf,
        k,
    }
}

fn and(k: u32) -> Insn {
    Insn {
        code: ALU_AND_K,
        jt: 0,
        jf: 0,
        k,
    }
}

fn ret(k: u32) -> Insn {
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
        Cond::Eq(a, _) | Cond::Ne(a, _) | Cond::MaskedEq(a, _, _) => arg_offsets(a),
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
fn tree(segs: &[(u32, Outcome)], default: Action) -> Vec<Insn> {
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

/// Compiles the profile for a container whose capability mask is `caps`.
pub(crate) fn compile(p: &Profile, caps: u64) -> Vec<Insn> {
    let applies = |g: Gate| match g {
        Gate::Always => true,
        Gate::With(c) => caps & (1u64 << c) != 0,
        Gate::Without(c) => caps & (1u64 << c) == 0,
    };
    // Per syscall: an unconditional action (allow wins over others) or argument rules.
    let mut per_nr: BTreeMap<u32, Outcome> = BTreeMap::new();
    for r in p.rules.iter().filter(|r| applies(r.gate)) {
        let e = per_nr.entry(r.nr).or_insert(Outcome::Args(Vec::new()));
        match (r.conds.is_empty(), &mut *e) {
            (true, Outcome::Ret(a)) => {
                if r.action == Action::Allow {
                    *a = Action::Allow;
                }
            }
            (true, Outcome::Args(_)) => *e = Outcome::Ret(r.action),
            (false, Outcome::Args(list)) => list.push((r.conds.clone(), r.action)),
            (false, Outcome::Ret(_)) => {}
        }
    }
    let mut segs: Vec<(u32, Outcome)> = Vec::new();
    for nr in 0..=p.max_nr {
        let o = per_nr.remove(&nr).unwrap_or(Outcome::Ret(p.default));
        let mergeable = matches!(o, Outcome::Ret(_));
        match segs.last() {
            Some((_, last)) if mergeable && *last == o => {}
            _ => segs.push((nr, o)),
        }
    }
    // Newer than the table: ENOSYS, so libc falls back to older syscalls.
    segs.push((p.max_nr + 1, Outcome::Ret(Action::Errno(ENOSYS))));
    let mut code = vec![
        ld(4),
        jeq(AUDIT_ARCH_X86_64, 1, 0),
        ret(RET_KILL_PROCESS),
        ld(0),
        Insn {
            code: JMP_JGE_K,
            jt: 0,
            jf: 1,
            k: X32_SYSCALL_BIT,
        },
        ret(RET_KILL_PROCESS),
    ];
    code.extend(tree(&segs, p.default));
    code
}

/// Runs a program on one syscall (a BPF interpreter for tests): returns the `ret` value.
#[cfg(test)]
pub(crate) fn run(prog: &[Insn], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let mut data = [0u32; 16];
    data[0] = nr;
    data[1] = arch;
    for (i, a) in args.iter().enumerate() {
        data[4 + 2 * i] = *a as u32;
        data[5 + 2 * i] = (*a >> 32) as u32;
    }
    let (mut pc, mut acc) = (0usize, 0u32);
    loop {
        let i = prog[pc];
        pc += 1;
        match i.code {
            LD_W_ABS => acc = data[i.k as usize / 4],
            ALU_AND_K => acc &= i.k,
            RET_K => return i.k,
            JMP_JA => pc += i.k as usize,
            JMP_JEQ_K => pc += usize::from(if acc == i.k { i.jt } else { i.jf }),
            JMP_JGE_K => pc += usize::from(if acc >= i.k { i.jt } else { i.jf }),
            c => panic!("unknown opcode {c:#x}"),
        }
    }
}
