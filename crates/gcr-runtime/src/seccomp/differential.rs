//! Differential test of the seccomp compiler against libseccomp. `libseccomp_ref.py` reads
//! the same profile text with its own parser, resolves names with libseccomp's syscall
//! tables and has libseccomp build and export the BPF; both programs then run in the
//! [`bpf`](super::bpf) interpreter over every syscall number of the table and past it, x32
//! and foreign-architecture numbers, and argument sweeps of the syscalls with argument rules
//! (clone flags, personality values, socket families, single bits, random values). For each
//! architecture (x86_64, aarch64) and many capability sets, every return value (action and
//! errno) must match, except one documented difference: gcr answers numbers above its table
//! with ENOSYS (so libc falls back, as runc does), where libseccomp has no rule.
//!
//! Needs `python3-seccomp` (scripts/deps.sh): skipped without it, a failure with CI=true.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::process::{Command, Stdio};

use super::bpf::{self, Data};
use super::compile::{self, Arch, Insn, AUDIT_ARCH_AARCH64, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT};
use super::{default_program, ARCH, PROFILE, RELEVANT, TABLE, VARIANTS};
use crate::caps::DOCKER_DEFAULT_MASK;

const DIR: &str = env!("CARGO_MANIFEST_DIR");
const ENOSYS: u32 = 0x0005_0026;
const ALLOW: u32 = 0x7fff_0000;
const KILL: u32 = 0x8000_0000;
/// The profile's default action.
const EPERM: u32 = 0x0005_0001;

/// splitmix64: fixed-seed pseudo-random values, so every run checks the same cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn args(&mut self) -> [u64; 6] {
        std::array::from_fn(|_| self.next())
    }
}

/// A python3 that can import libseccomp's bindings, or `None` (after saying why).
fn python_with_libseccomp() -> Option<&'static str> {
    for py in ["/usr/bin/python3", "python3"] {
        let ok = Command::new(py)
            .args(["-c", "import seccomp"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(py);
        }
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("python3-seccomp is missing and CI=true forbids skipping (run scripts/deps.sh)");
    }
    println!("skipped: needs python3-seccomp (scripts/deps.sh)");
    None
}

fn arch_name(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "x86_64",
        Arch::Aarch64 => "aarch64",
    }
}

/// `name -> number` for `arch` from the table text.
fn table(arch: Arch) -> Vec<(String, u32)> {
    let col = match arch {
        Arch::X86_64 => 1,
        Arch::Aarch64 => 2,
    };
    TABLE
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            Some((cols[0].to_string(), cols[col].parse().ok()?))
        })
        .collect()
}

/// Names of the syscalls that have argument rules in the profile.
fn names_with_arg_rules() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in PROFILE.lines().map(|l| l.split('#').next().unwrap_or("")) {
        let toks: Vec<&str> = line.split_whitespace().collect();
        if let Some(at) = toks.iter().position(|t| *t == "if") {
            let first = if toks[0] == "errno" { 2 } else { 1 };
            names.extend(toks[first..at].iter().map(|s| s.to_string()));
        }
    }
    names
}

/// Interesting first arguments: clone flag sets, personality values, socket families,
/// every single bit, and random values (some with no namespace flag, so clone passes).
fn arg0_values(rng: &mut Rng) -> Vec<u64> {
    let sigchld = libc::SIGCHLD as u64;
    let thread = (libc::CLONE_VM
        | libc::CLONE_FS
        | libc::CLONE_FILES
        | libc::CLONE_SIGHAND
        | libc::CLONE_THREAD
        | libc::CLONE_SYSVSEM
        | libc::CLONE_SETTLS
        | libc::CLONE_PARENT_SETTID
        | libc::CLONE_CHILD_CLEARTID) as u64;
    let fork = sigchld | (libc::CLONE_CHILD_SETTID | libc::CLONE_CHILD_CLEARTID) as u64;
    let mut v = vec![0, u64::MAX, u64::from(u32::MAX), thread, fork, sigchld];
    for ns in [
        libc::CLONE_NEWNS,
        libc::CLONE_NEWCGROUP,
        libc::CLONE_NEWUTS,
        libc::CLONE_NEWIPC,
        libc::CLONE_NEWUSER,
        libc::CLONE_NEWPID,
        libc::CLONE_NEWNET,
        libc::CLONE_NEWTIME,
    ] {
        let ns = ns as u64;
        v.extend([ns, ns | sigchld, ns | thread, ns | fork, ns | 1 << 40]);
    }
    // personality: the allowed values, neighbours, and high bits.
    for p in [0u64, 0x8, 0x20000, 0x20008, 0xffff_ffff] {
        v.extend([
            p,
            p + 1,
            p.wrapping_sub(1),
            p | 1 << 32,
            p | 1 << 63,
            p | 0x40_0000,
        ]);
    }
    // socket families, with and without high bits.
    for fam in 0..=50u64 {
        v.extend([fam, fam | 1 << 32]);
    }
    v.push(40 | 1 << 63);
    for bit in 0..64 {
        v.extend([1u64 << bit, (1u64 << bit) | sigchld]);
    }
    for _ in 0..300 {
        let r = rng.next();
        v.extend([r, r & !0x7e02_0000, r & 0xffff_ffff, r & 0x3f]);
    }
    v
}

/// Every case one program pair is compared on.
fn cases(arch: Arch, rng: &mut Rng) -> Vec<Data> {
    let audit = arch.audit();
    let tab = table(arch);
    let max = tab.iter().map(|(_, n)| *n).max().unwrap_or(0);
    let mut out = Vec::new();
    let mut push = |nr: u32, arch: u32, args: [u64; 6], rng: &mut Rng| {
        out.push(Data {
            nr,
            arch,
            ip: rng.next(),
            args,
        })
    };
    let mut nrs: Vec<u32> = (0..=max + 8).collect();
    nrs.extend([500, 1000, 1023, 4095, 0x3fff_ffff, 0x7fff_ffff, 0x8000_0000]);
    nrs.extend([0xffff_fffe, u32::MAX]);
    nrs.extend([0, 1, 2, 56, 59, 0x200, 0x201, 547].map(|n| X32_SYSCALL_BIT | n));
    for nr in nrs {
        for args in [[0; 6], [u64::MAX; 6], rng.args()] {
            push(nr, audit, args, rng);
        }
    }
    let other = if arch == Arch::X86_64 {
        AUDIT_ARCH_AARCH64
    } else {
        AUDIT_ARCH_X86_64
    };
    for foreign in [0x4000_0003, 0x4000_0028, other, 0xc000_00f3, 0, u32::MAX] {
        for nr in [0, 1, 2, 20, 56, 59, 63, 64, 220, 221, 435, X32_SYSCALL_BIT] {
            let args = rng.args();
            push(nr, foreign, args, rng);
        }
    }
    let with_args = names_with_arg_rules();
    let values = arg0_values(rng);
    for (_, nr) in tab.iter().filter(|(n, _)| with_args.contains(n)) {
        for a0 in &values {
            let mut args = rng.args();
            args[0] = *a0;
            push(*nr, audit, args, rng);
            push(*nr, audit, [*a0, 0, 0, 0, 0, 0], rng);
        }
    }
    out
}

/// Reads a program written by libseccomp's `seccomp_export_bpf` (host-endian sock_filter).
fn load_bpf(path: &std::path::Path) -> Vec<Insn> {
    let bytes = std::fs::read(path).unwrap();
    assert!(
        !bytes.is_empty() && bytes.len().is_multiple_of(8),
        "{path:?}: {} bytes",
        bytes.len()
    );
    bytes
        .chunks_exact(8)
        .map(|c| Insn {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect()
}

fn to_insns(p: &[libc::sock_filter]) -> Vec<Insn> {
    p.iter()
        .map(|s| Insn {
            code: s.code,
            jt: s.jt,
            jf: s.jf,
            k: s.k,
        })
        .collect()
}

/// The capability masks compared: every precompiled one, none, all, and random subsets.
fn masks(rng: &mut Rng) -> Vec<u64> {
    let mut m: Vec<u64> = VARIANTS.iter().map(|(k, _)| *k).collect();
    m.extend([0, RELEVANT]);
    m.extend((0..10).map(|_| rng.next() & RELEVANT));
    m.sort_unstable();
    m.dedup();
    m
}

fn cap_list(mask: u64) -> String {
    let names: Vec<String> = crate::caps::names(mask)
        .iter()
        .map(|n| n.trim_start_matches("CAP_").to_string())
        .collect();
    if names.is_empty() {
        "-".into()
    } else {
        names.join(",")
    }
}

/// Counts and the first differences of comparing program pairs.
#[derive(Default)]
struct Comparison {
    evaluations: usize,
    enosys_above_table: usize,
    not_compared: usize,
    outcomes: BTreeSet<u32>,
    mismatches: Vec<String>,
    mismatch_count: usize,
}

impl Comparison {
    /// Runs both programs on every case; `skipped` numbers are not compared.
    fn pair(&mut self, arch: Arch, label: &str, ours: &[Insn], theirs: &[Insn], cases: &[Data]) {
        self.pair_skipping(arch, label, ours, theirs, cases, &BTreeSet::new());
    }

    fn pair_skipping(
        &mut self,
        arch: Arch,
        label: &str,
        ours: &[Insn],
        theirs: &[Insn],
        cases: &[Data],
        skipped: &BTreeSet<u32>,
    ) {
        bpf::check(ours).unwrap();
        bpf::check(theirs).unwrap();
        let max = table(arch).iter().map(|(_, n)| *n).max().unwrap_or(0);
        for d in cases {
            let native = d.arch == arch.audit();
            if native && skipped.contains(&d.nr) {
                self.not_compared += 1;
                continue;
            }
            let o = bpf::run(ours, d).unwrap();
            let t = bpf::run(theirs, d).unwrap();
            self.evaluations += 2;
            self.outcomes.insert(o);
            let x32 = arch == Arch::X86_64 && d.nr >= X32_SYSCALL_BIT && d.nr != u32::MAX;
            let ok = if native && d.nr > max && !x32 {
                // The one intended difference: libseccomp has no rule, gcr says ENOSYS.
                self.enosys_above_table += 1;
                o == ENOSYS && t == EPERM
            } else {
                o == t
            };
            if !ok {
                self.mismatch_count += 1;
                if self.mismatches.len() < 20 {
                    self.mismatches.push(format!(
                        "{label}: arch {:#x} nr {} args {:#x?}: gcr {} libseccomp {}",
                        d.arch,
                        d.nr,
                        d.args,
                        bpf::describe(o),
                        bpf::describe(t)
                    ));
                }
            }
        }
    }
}

/// Runs `libseccomp_ref.py` on `jobs` (one line each); returns its report lines.
fn reference(py: &str, profile: &std::path::Path, jobs: &str) -> Vec<String> {
    let mut child = Command::new(py)
        .arg(format!("{DIR}/src/seccomp/libseccomp_ref.py"))
        .arg(profile)
        .arg(format!("{DIR}/seccomp/syscalls.txt"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(jobs.as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "libseccomp_ref.py failed: {}{report}",
        String::from_utf8_lossy(&out.stderr)
    );
    report.lines().map(str::to_string).collect()
}

#[test]
fn seccomp_matches_libseccomp() {
    let Some(py) = python_with_libseccomp() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x6763_725f_7365_6363);
    let masks = masks(&mut rng);
    let mut jobs = String::new();
    let mut pairs = Vec::new();
    for arch in Arch::ALL {
        for (i, mask) in masks.iter().enumerate() {
            let out = tmp.path().join(format!("{}-{i}.bpf", arch_name(arch)));
            jobs += &format!(
                "{} {} {}\n",
                arch_name(arch),
                out.display(),
                cap_list(*mask)
            );
            pairs.push((arch, *mask, out));
        }
    }
    let profile = std::path::PathBuf::from(format!("{DIR}/seccomp/default.profile"));
    let lines = reference(py, &profile, &jobs);
    let word = |l: &String, w: &str| l.split_whitespace().next() == Some(w);
    let mismatched: Vec<&String> = lines.iter().filter(|l| word(l, "mismatch")).collect();
    assert!(
        mismatched.is_empty(),
        "syscalls.txt disagrees with libseccomp: {mismatched:?}"
    );
    // Names libseccomp cannot place on a foreign architecture: their numbers are not compared.
    let skipped = |arch: Arch| -> BTreeSet<u32> {
        lines
            .iter()
            .filter(|l| word(l, "skipped"))
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|t| t[1] == arch_name(arch))
            .map(|t| t[3].parse().unwrap())
            .collect()
    };
    let mut rng = Rng(0x7365_6363_6f6d_7021);
    let mut cmp = Comparison::default();
    let mut total_cases = 0;
    for arch in Arch::ALL {
        let cases = cases(arch, &mut rng);
        total_cases += cases.len();
        let p = compile::parse(PROFILE, TABLE, arch).unwrap();
        let skipped = skipped(arch);
        for (_, mask, path) in pairs.iter().filter(|(a, _, _)| *a == arch) {
            // For the build's own architecture compare what gcr installs, else compile now.
            let ours = if arch == ARCH {
                to_insns(default_program(*mask))
            } else {
                compile::compile(&p, *mask)
            };
            let label = format!("{} caps [{}]", arch_name(arch), cap_list(*mask));
            let theirs = load_bpf(path);
            cmp.pair_skipping(arch, &label, &ours, &theirs, &cases, &skipped);
        }
    }
    assert!(cmp.mismatches.is_empty(), "{}", cmp.mismatches.join("\n"));
    // The cases reach every kind of outcome, so agreement means something.
    for want in [ALLOW, KILL, ENOSYS, EPERM] {
        assert!(
            cmp.outcomes.contains(&want),
            "no case returned {}",
            bpf::describe(want)
        );
    }
    let resolved: Vec<&String> = lines.iter().filter(|l| word(l, "resolved")).collect();
    println!(
        "seccomp vs libseccomp: {} programs ({} capability sets x 2 architectures), {} cases, \
         {} evaluations, {} above-table ENOSYS checks, {} not compared, {} reference jobs",
        pairs.len(),
        masks.len(),
        total_cases,
        cmp.evaluations,
        cmp.enosys_above_table,
        cmp.not_compared,
        resolved.len(),
    );
}

/// The comparison finds real differences: profiles with one rule changed, compiled by gcr,
/// against libseccomp's program for the unchanged profile.
#[test]
fn seccomp_differential_catches_changed_rules() {
    let Some(py) = python_with_libseccomp() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ref.bpf");
    let caps = DOCKER_DEFAULT_MASK & RELEVANT;
    let jobs = format!("{} {} {}\n", arch_name(ARCH), out.display(), cap_list(caps));
    reference(
        py,
        std::path::Path::new(&format!("{DIR}/seccomp/default.profile")),
        &jobs,
    );
    let theirs = load_bpf(&out);
    let mut rng = Rng(1);
    let cases = cases(ARCH, &mut rng);
    let mut unchanged = Comparison::default();
    unchanged.pair(
        ARCH,
        "unchanged",
        &to_insns(default_program(caps)),
        &theirs,
        &cases,
    );
    assert_eq!(unchanged.mismatch_count, 0, "{:?}", unchanged.mismatches);
    for (from, to) in [
        // clone's namespace mask without CLONE_NEWUSER.
        ("0x7e020000", "0x6e020000"),
        // one personality value fewer.
        ("allow personality if arg0 == 0x20008\n", ""),
        // another socket family refused.
        ("allow socket if arg0 != 40", "allow socket if arg0 != 41"),
        // a 64-bit compare cut to 32 bits.
        ("arg0 == 0xffffffff", "arg0 & 0xffffffff == 0xffffffff"),
        // one syscall fewer.
        (" getpid ", " "),
        // another default errno.
        ("default errno 1", "default errno 13"),
    ] {
        assert!(PROFILE.contains(from), "{from:?}");
        let changed = PROFILE.replacen(from, to, 1);
        let p = compile::parse(&changed, TABLE, ARCH).unwrap();
        let mut cmp = Comparison::default();
        cmp.pair(
            ARCH,
            "changed",
            &compile::compile(&p, caps),
            &theirs,
            &cases,
        );
        assert!(
            cmp.mismatch_count > 0,
            "changing {from:?} to {to:?} went unnoticed"
        );
    }
}
