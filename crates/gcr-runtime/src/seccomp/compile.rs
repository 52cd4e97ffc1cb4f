//! The seccomp profile compiler: parses gcr's profile text (`seccomp/default.profile`) and
//! the syscall table (`seccomp/syscalls.txt`) for one architecture (x86_64 or aarch64), and
//! turns them, for one capability mask, into a classic BPF program. Pure std so `build.rs`
//! can include it (`#[path]`) to precompile at build time, and the library can compile rare
//! capability combinations at run time.
//!
//! Program shape: check the audit arch (the one compiled for, else kill the process), on
//! x86_64 kill x32 numbers (bit 30 set, but not -1), then a binary search over ranges of
//! syscall numbers with the same outcome. A leaf is a `ret` or, for syscalls with argument
//! rules, a short block of 64-bit argument checks. A search node whose left subtree is
//! longer than a jump offset allows (255) jumps with `ja`. Numbers above the table get
//! ENOSYS.

use std::collections::BTreeMap;

#[path = "codegen.rs"]
mod codegen;

pub(crate) use codegen::Insn;
use codegen::{jeq, ld, ret, tree, Outcome, JMP_JGE_K, RET_ALLOW, RET_ERRNO, RET_KILL_PROCESS};

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

/// `AUDIT_ARCH_X86_64` (EM_X86_64 | 64-bit | little endian), as in `seccomp_data.arch`.
pub(crate) const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// `AUDIT_ARCH_AARCH64` (EM_AARCH64 | 64-bit | little endian).
pub(crate) const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
pub(crate) const X32_SYSCALL_BIT: u32 = 0x4000_0000;
const ENOSYS: u32 = 38;

/// An architecture gcr has a syscall table for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    /// Both, in the order of the table's number columns.
    pub(crate) const ALL: [Arch; 2] = [Arch::X86_64, Arch::Aarch64];

    /// The architecture for a `target_arch` value (`CARGO_CFG_TARGET_ARCH` in build.rs).
    #[allow(dead_code)] // used by build.rs and the tests
    pub(crate) fn from_target_arch(s: &str) -> Option<Arch> {
        match s {
            "x86_64" => Some(Arch::X86_64),
            "aarch64" => Some(Arch::Aarch64),
            _ => None,
        }
    }

    /// The value the kernel puts in `seccomp_data.arch` for this architecture's syscalls.
    pub(crate) fn audit(self) -> u32 {
        match self {
            Arch::X86_64 => AUDIT_ARCH_X86_64,
            Arch::Aarch64 => AUDIT_ARCH_AARCH64,
        }
    }

    fn column(self) -> usize {
        match self {
            Arch::X86_64 => 1,
            Arch::Aarch64 => 2,
        }
    }
}

/// What a rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(dead_code)] // KillThread, Trap, Log and Trace come from OCI profiles only (not build.rs)
pub enum Action {
    Allow,
    Errno(u32),
    /// Kill the whole process (SECCOMP_RET_KILL_PROCESS).
    Kill,
    /// Kill the calling thread (SECCOMP_RET_KILL_THREAD, libseccomp's SCMP_ACT_KILL).
    KillThread,
    /// SIGSYS (SECCOMP_RET_TRAP).
    Trap,
    /// Allow and log (SECCOMP_RET_LOG).
    Log,
    /// Notify a ptrace tracer with this message number (SECCOMP_RET_TRACE); without a
    /// tracer the syscall fails with ENOSYS.
    Trace(u32),
    /// Ask the filter's user-space listener (SECCOMP_RET_USER_NOTIF).
    Notify,
}

impl Action {
    fn ret(self) -> u32 {
        match self {
            Action::Allow => RET_ALLOW,
            Action::Errno(e) => RET_ERRNO | (e & 0xffff),
            Action::Kill => RET_KILL_PROCESS,
            Action::KillThread => 0,
            Action::Trap => 0x0003_0000,
            Action::Log => 0x7ffc_0000,
            Action::Trace(m) => 0x7ff0_0000 | (m & 0xffff),
            Action::Notify => 0x7fc0_0000,
        }
    }
}

/// A 64-bit argument comparison (unsigned, as libseccomp's `SCMP_CMP_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cond {
    Eq(u8, u64),
    Ne(u8, u64),
    MaskedEq(u8, u64, u64),
    Lt(u8, u64),
    Le(u8, u64),
    Gt(u8, u64),
    Ge(u8, u64),
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
    arch: Arch,
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
        [a, "<", v] => Ok(Cond::Lt(arg(a)?, num(v)?)),
        [a, "<=", v] => Ok(Cond::Le(arg(a)?, num(v)?)),
        [a, ">", v] => Ok(Cond::Gt(arg(a)?, num(v)?)),
        [a, ">=", v] => Ok(Cond::Ge(arg(a)?, num(v)?)),
        _ => Err(format!("bad condition {:?}", toks.join(" "))),
    }
}

/// The syscall table for `arch`: name to number (None where the architecture lacks it),
/// and the highest number.
fn parse_table(table: &str, arch: Arch) -> Result<(BTreeMap<String, Option<u32>>, u32), String> {
    let mut known = BTreeMap::new();
    for line in table
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() != 1 + Arch::ALL.len() {
            return Err(format!("bad table line {line:?} (name x86_64 aarch64)"));
        }
        let nr = match cols[arch.column()] {
            "-" => None,
            n => Some(
                n.parse::<u32>()
                    .map_err(|_| format!("bad table line {line:?}"))?,
            ),
        };
        known.insert(cols[0].to_string(), nr);
    }
    let max_nr = known
        .values()
        .flatten()
        .copied()
        .max()
        .ok_or("empty syscall table")?;
    Ok((known, max_nr))
}

/// A profile from rules given as data (an OCI config's `linux.seccomp`): each rule names
/// syscalls, an action and conditions that must all hold. Names the table lacks, or that
/// `arch` lacks, are skipped (as runc skips names libseccomp does not know).
#[allow(dead_code)] // used by the library, not build.rs
pub(crate) fn from_rules(
    default: Action,
    rules: &[(Vec<String>, Action, Vec<Cond>)],
    table: &str,
    arch: Arch,
) -> Result<Profile, String> {
    let (known, max_nr) = parse_table(table, arch)?;
    let mut out = Vec::new();
    for (names, action, conds) in rules {
        for name in names {
            if let Some(Some(nr)) = known.get(name.as_str()) {
                out.push(Rule {
                    nr: *nr,
                    action: *action,
                    conds: conds.clone(),
                    gate: Gate::Always,
                });
            }
        }
    }
    Ok(Profile {
        arch,
        default,
        max_nr,
        rules: out,
    })
}

/// Parses the syscall table (`name x86_64-number aarch64-number` lines, `-` where the
/// architecture lacks the syscall) and the profile text, for `arch`. A rule naming a syscall
/// the table lacks is an error; one naming a syscall `arch` lacks is skipped.
pub(crate) fn parse(profile: &str, table: &str, arch: Arch) -> Result<Profile, String> {
    let (known, max_nr) = parse_table(table, arch)?;
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
            let Some(nr) = *known
                .get(*name)
                .ok_or_else(|| err(format!("unknown syscall {name} (not in the table)")))?
            else {
                continue;
            };
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
        arch,
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
    // A foreign architecture's numbers mean other syscalls: kill (as libseccomp's default
    // bad-arch action does). x86_64 also runs x32 code: same arch value, bit 30 in the number.
    let mut code = vec![
        ld(4),
        jeq(p.arch.audit(), 1, 0),
        ret(RET_KILL_PROCESS),
        ld(0),
    ];
    if p.arch == Arch::X86_64 {
        // Except -1, which a tracer sets to skip a syscall (as libseccomp lets it through).
        code.push(Insn {
            code: JMP_JGE_K,
            jt: 0,
            jf: 2,
            k: X32_SYSCALL_BIT,
        });
        code.push(jeq(u32::MAX, 1, 0));
        code.push(ret(RET_KILL_PROCESS));
    }
    code.extend(tree(&segs, p.default));
    code
}
