//! Build script: compiles Docker's default seccomp profile (`seccomp/default.profile`) for
//! the target architecture (x86_64 or aarch64) into classic BPF programs ahead of time, one per capability variant gcr expects
//! to see often, and writes them as static tables to `$OUT_DIR/seccomp_variants.rs`.

use std::fmt::Write as _;

#[allow(dead_code)]
#[path = "src/seccomp/compile.rs"]
mod compile;

const PROFILE: &str = "seccomp/default.profile";
const TABLE: &str = "seccomp/syscalls.txt";

fn cap(name: &str) -> u64 {
    let n = compile::CAP_NAMES
        .iter()
        .position(|c| *c == name)
        .expect("known cap");
    1u64 << n
}

fn main() {
    for f in [PROFILE, TABLE, "src/seccomp/compile.rs", "build.rs"] {
        println!("cargo:rerun-if-changed={f}");
    }
    let profile = std::fs::read_to_string(PROFILE).expect("read seccomp profile");
    let table = std::fs::read_to_string(TABLE).expect("read syscall table");
    let target = std::env::var("CARGO_CFG_TARGET_ARCH").expect("CARGO_CFG_TARGET_ARCH");
    let Some(arch) = compile::Arch::from_target_arch(&target) else {
        panic!(
            "gcr's seccomp profile has syscall numbers for x86_64 and aarch64 only, not \
             {target}: add a column to {TABLE} and an Arch in src/seccomp/compile.rs"
        );
    };
    let p = match compile::parse(&profile, &table, arch) {
        Ok(p) => p,
        Err(e) => panic!("{PROFILE}: {e}"),
    };
    let relevant = p.relevant_caps();
    // Docker's default set only matters through SYS_CHROOT; every single added capability,
    // with and without it, plus a few common pairs and everything.
    let chroot = cap("SYS_CHROOT");
    let mut keys = vec![chroot, 0, relevant];
    for bit in 0..64 {
        let c = 1u64 << bit;
        if relevant & c != 0 {
            keys.push(c | chroot);
            keys.push(c);
        }
    }
    keys.push(chroot | cap("SYS_ADMIN") | cap("SYS_PTRACE"));
    keys.push(chroot | cap("SYS_PTRACE") | cap("SYS_NICE"));
    let mut seen = Vec::new();
    let mut out = String::new();
    writeln!(out, "/// Capabilities that change the compiled program.").unwrap();
    writeln!(out, "pub(crate) const RELEVANT: u64 = {relevant:#x};").unwrap();
    writeln!(out, "/// Precompiled programs keyed by `caps & RELEVANT`.").unwrap();
    writeln!(
        out,
        "pub(crate) static VARIANTS: &[(u64, &[libc::sock_filter])] = &["
    )
    .unwrap();
    for key in keys.into_iter().map(|k| k & relevant) {
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let prog = compile::compile(&p, key);
        assert!(prog.len() < 4096, "seccomp program too long");
        write!(out, "({key:#x}, &[").unwrap();
        for i in prog {
            write!(out, "f({:#x},{},{},{:#x}),", i.code, i.jt, i.jf, i.k).unwrap();
        }
        writeln!(out, "]),").unwrap();
    }
    writeln!(out, "];").unwrap();
    let dir = std::env::var("OUT_DIR").expect("OUT_DIR");
    std::fs::write(format!("{dir}/seccomp_variants.rs"), out).expect("write seccomp tables");
}
