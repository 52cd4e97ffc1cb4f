//! Tests of the seccomp compiler (through a small BPF interpreter) and, as root, of the
//! installed filter in forked children.

use super::compile::{self, Arch, Insn};
use super::*;
use crate::caps::{
    CAP_SYS_ADMIN, CAP_SYS_MODULE, CAP_SYS_PTRACE, CAP_SYS_TIME, DOCKER_DEFAULT_MASK,
};
use crate::cgroups::testutil::{is_root_or_skip, run_in_child};

const ALLOW: u32 = 0x7fff_0000;
const EPERM: u32 = 0x0005_0001;
const ENOSYS: u32 = 0x0005_0026;
const KILL: u32 = 0x8000_0000;
const ARCH_X86: u32 = compile::AUDIT_ARCH_X86_64;

fn insns(p: &[libc::sock_filter]) -> Vec<Insn> {
    p.iter()
        .map(|s| Insn {
            code: s.code,
            jt: s.jt,
            jf: s.jf,
            k: s.k,
        })
        .collect()
}

/// Runs `prog` (checked as the kernel would) on one syscall of architecture `arch`.
fn run(prog: &[Insn], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    bpf::check(prog).unwrap();
    let d = bpf::Data {
        nr,
        arch,
        ip: 0x7f00_1234_5678,
        args,
    };
    bpf::run(prog, &d).unwrap()
}

fn eval(p: &[libc::sock_filter], nr: i64, a0: u64) -> u32 {
    run(&insns(p), ARCH.audit(), nr as u32, [a0, 0, 0, 0, 0, 0])
}

#[test]
fn seccomp_default_program_decisions() {
    let p = default_program(DOCKER_DEFAULT_MASK);
    assert!(p.len() > 100 && p.len() < 700, "program length {}", p.len());
    for nr in [
        libc::SYS_read,
        libc::SYS_write,
        libc::SYS_execve,
        libc::SYS_getpid,
        libc::SYS_chroot,
    ] {
        assert_eq!(eval(p, nr, 0), ALLOW, "syscall {nr}");
    }
    for nr in [
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_kexec_load,
        libc::SYS_init_module,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_reboot,
        libc::SYS_keyctl,
        libc::SYS_swapon,
        libc::SYS_open_by_handle_at,
        libc::SYS_clock_settime,
        libc::SYS_io_uring_setup,
    ] {
        assert_eq!(eval(p, nr, 0), EPERM, "syscall {nr}");
    }
    // Argument rules.
    assert_eq!(eval(p, libc::SYS_personality, 0xffff_ffff), ALLOW);
    assert_eq!(eval(p, libc::SYS_personality, 0x8), ALLOW);
    assert_eq!(eval(p, libc::SYS_personality, 0x40_0000), EPERM);
    assert_eq!(eval(p, libc::SYS_personality, 0x1_0000_0000), EPERM);
    assert_eq!(eval(p, libc::SYS_socket, libc::AF_INET as u64), ALLOW);
    assert_eq!(eval(p, libc::SYS_socket, libc::AF_VSOCK as u64), EPERM);
    assert_eq!(
        eval(p, libc::SYS_socket, 0x1_0000_0028),
        ALLOW,
        "only the full 64-bit 40 is AF_VSOCK"
    );
    let sigchld = libc::SIGCHLD as u64;
    assert_eq!(
        eval(p, libc::SYS_clone, sigchld | libc::CLONE_VM as u64),
        ALLOW
    );
    assert_eq!(
        eval(p, libc::SYS_clone, sigchld | libc::CLONE_NEWUSER as u64),
        EPERM
    );
    assert_eq!(eval(p, libc::SYS_clone, libc::CLONE_NEWNET as u64), EPERM);
    assert_eq!(eval(p, libc::SYS_clone3, 0), ENOSYS);
    // Newer than the table: ENOSYS; wrong architecture or x32: kill.
    assert_eq!(eval(p, 600, 0), ENOSYS);
    assert_eq!(run(&insns(p), 0x4000_0003, 20, [0; 6]), KILL, "i386");
    assert_eq!(run(&insns(p), 0x4000_0028, 20, [0; 6]), KILL, "arm");
    let foreign = match ARCH {
        Arch::X86_64 => compile::AUDIT_ARCH_AARCH64,
        Arch::Aarch64 => compile::AUDIT_ARCH_X86_64,
    };
    assert_eq!(
        run(&insns(p), foreign, 20, [0; 6]),
        KILL,
        "other 64-bit arch"
    );
    let x32 = eval(p, i64::from(compile::X32_SYSCALL_BIT) | libc::SYS_getpid, 0);
    match ARCH {
        Arch::X86_64 => assert_eq!(x32, KILL, "x32"),
        Arch::Aarch64 => assert_eq!(x32, ENOSYS, "no x32 on aarch64"),
    }
}

#[test]
fn seccomp_capability_variants() {
    let base = default_program(DOCKER_DEFAULT_MASK);
    let admin = default_program(DOCKER_DEFAULT_MASK | 1 << CAP_SYS_ADMIN);
    assert_ne!(insns(base), insns(admin));
    for nr in [
        libc::SYS_mount,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_clone3,
        libc::SYS_sethostname,
    ] {
        assert_eq!(eval(admin, nr, 0), ALLOW, "syscall {nr} with SYS_ADMIN");
    }
    assert_eq!(
        eval(admin, libc::SYS_clone, libc::CLONE_NEWUSER as u64),
        ALLOW
    );
    let ptrace = default_program(DOCKER_DEFAULT_MASK | 1 << CAP_SYS_PTRACE);
    assert_eq!(eval(base, libc::SYS_kcmp, 0), EPERM);
    assert_eq!(eval(ptrace, libc::SYS_kcmp, 0), ALLOW);
    assert_eq!(
        eval(base, libc::SYS_ptrace, 0),
        ALLOW,
        "Docker allows ptrace on kernels >= 4.8"
    );
    let module = default_program(DOCKER_DEFAULT_MASK | 1 << CAP_SYS_MODULE);
    assert_eq!(eval(module, libc::SYS_finit_module, 0), ALLOW);
    let time = default_program(DOCKER_DEFAULT_MASK | 1 << CAP_SYS_TIME);
    assert_eq!(eval(time, libc::SYS_settimeofday, 0), ALLOW);
    let no_chroot = default_program(DOCKER_DEFAULT_MASK & !(1 << 18));
    assert_eq!(eval(no_chroot, libc::SYS_chroot, 0), EPERM);
    // Capabilities the profile does not mention do not change the program.
    assert_eq!(
        default_program(DOCKER_DEFAULT_MASK | 1 << 12).as_ptr(),
        base.as_ptr()
    );
    // A rare combination is compiled at run time, once.
    let rare = DOCKER_DEFAULT_MASK | 1 << CAP_SYS_MODULE | 1 << CAP_SYS_TIME | 1 << CAP_SYS_PTRACE;
    let r1 = default_program(rare);
    assert_eq!(r1.as_ptr(), default_program(rare).as_ptr());
    assert_eq!(eval(r1, libc::SYS_kcmp, 0), ALLOW);
    assert_eq!(eval(r1, libc::SYS_mount, 0), EPERM);
}

#[test]
fn seccomp_precompiled_tables_match_the_compiler() {
    let p = compile::parse(PROFILE, TABLE, ARCH).unwrap();
    assert_eq!(p.relevant_caps(), RELEVANT);
    assert!(precompiled_variants() >= 20);
    for (key, prog) in VARIANTS {
        assert_eq!(insns(prog), compile::compile(&p, *key), "variant {key:#x}");
    }
}

#[test]
fn seccomp_long_jumps_use_ja() {
    // A profile whose search tree has subtrees far longer than 255 instructions.
    let mut table = String::new();
    let mut profile = String::from("default errno 1\n");
    for i in 0..400 {
        table += &format!("s{i} {i} {i}\n");
        if i % 2 == 0 {
            profile += &format!("allow s{i} if arg0 == {i} and arg1 & 0xff00000000 == 0\n");
        } else if i % 3 == 0 {
            profile += &format!("allow s{i}\n");
        }
    }
    let p = compile::parse(&profile, &table, Arch::X86_64).unwrap();
    let prog = compile::compile(&p, 0);
    assert!(prog.len() > 2000);
    assert!(
        prog.iter().any(|i| i.code == 0x05 && i.k > 255),
        "no long jump emitted"
    );
    for nr in 0..420u32 {
        let want_allow = nr < 400 && (nr % 2 == 1 && nr % 3 == 0);
        let arg_allow = nr < 400 && nr % 2 == 0;
        let r = run(&prog, ARCH_X86, nr, [u64::from(nr), 0, 0, 0, 0, 0]);
        let expect = if nr >= 400 {
            ENOSYS
        } else if want_allow || arg_allow {
            ALLOW
        } else {
            EPERM
        };
        assert_eq!(r, expect, "nr {nr}");
        if arg_allow {
            let r = run(&prog, ARCH_X86, nr, [u64::from(nr) + 1, 0, 0, 0, 0, 0]);
            assert_eq!(r, EPERM, "nr {nr} with wrong arg0");
            let r = run(&prog, ARCH_X86, nr, [u64::from(nr), 1 << 36, 0, 0, 0, 0]);
            assert_eq!(r, EPERM, "nr {nr} with masked arg1 bits");
        }
    }
}

#[test]
fn seccomp_profile_errors_are_clear() {
    let t = "read 0 63\nopen 2 -\n";
    assert!(compile::parse("allow read\n", t, Arch::X86_64)
        .unwrap_err()
        .contains("default"));
    assert!(
        compile::parse("default errno 1\nallow nosuch\n", t, Arch::X86_64)
            .unwrap_err()
            .contains("nosuch")
    );
    assert!(
        compile::parse("default errno 1\n[cap WIZARD]\n", t, Arch::X86_64)
            .unwrap_err()
            .contains("WIZARD")
    );
    assert!(compile::parse(
        "default errno 1\nallow read if arg9 == 1\n",
        t,
        Arch::X86_64
    )
    .unwrap_err()
    .contains("arg9"));
    assert!(
        compile::parse("default errno 1\n", "read 0\n", Arch::X86_64)
            .unwrap_err()
            .contains("x86_64 aarch64")
    );
    // A syscall the architecture lacks is skipped there, not an error.
    let p = compile::parse("default errno 1\nallow open read\n", t, Arch::Aarch64).unwrap();
    let prog = compile::compile(&p, 0);
    assert_eq!(run(&prog, compile::AUDIT_ARCH_AARCH64, 63, [0; 6]), ALLOW);
    assert_eq!(run(&prog, compile::AUDIT_ARCH_AARCH64, 2, [0; 6]), EPERM);
    assert!(install(&[], 0).is_err());
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Installs `prog` in a forked child and runs `probe` there; the child's exit code is
/// `probe`'s result (0 = as expected).
fn in_filtered_child(prog: &'static [libc::sock_filter], probe: fn() -> i32) -> i32 {
    run_in_child(move |_| {
        if install(prog, 0).is_err() {
            return 100;
        }
        probe()
    })
    .0
}

#[test]
fn seccomp_installed_filter_denies_and_allows() {
    if !is_root_or_skip() {
        return;
    }
    let prog = default_program(DOCKER_DEFAULT_MASK);
    let code = in_filtered_child(prog, || {
        // SAFETY: raw syscalls with valid or null pointers in the forked child.
        unsafe {
            if libc::getpid() <= 0 {
                return 1;
            }
            let r = libc::mount(
                c"none".as_ptr(),
                c"/nonexistent-gcr-seccomp-test".as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                std::ptr::null(),
            );
            if r != -1 || errno() != libc::EPERM {
                return 2;
            }
            if libc::syscall(libc::SYS_kexec_load, 0, 0, 0, 0) != -1 || errno() != libc::EPERM {
                return 3;
            }
            if libc::unshare(libc::CLONE_NEWUSER) != -1 || errno() != libc::EPERM {
                return 4;
            }
            if libc::socket(libc::AF_VSOCK, libc::SOCK_STREAM, 0) != -1 || errno() != libc::EPERM {
                return 5;
            }
            let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            if fd < 0 {
                return 6;
            }
            libc::close(fd);
            if libc::syscall(libc::SYS_clone3, 0, 0) != -1 || errno() != libc::ENOSYS {
                return 7;
            }
            let r = libc::syscall(
                libc::SYS_clone,
                (libc::CLONE_NEWNS | libc::SIGCHLD) as u64,
                0,
                0,
                0,
                0,
            );
            if r == 0 {
                libc::_exit(0);
            }
            if r != -1 || errno() != libc::EPERM {
                return 8;
            }
            // fork (clone without namespace flags) works.
            let pid = libc::fork();
            if pid == 0 {
                libc::_exit(7);
            }
            let mut st = 0;
            if pid < 0 || libc::waitpid(pid, &mut st, 0) != pid || libc::WEXITSTATUS(st) != 7 {
                return 9;
            }
            if libc::personality(0xffff_ffff) < 0 {
                return 10;
            }
            if libc::syscall(600) != -1 || errno() != libc::ENOSYS {
                return 11;
            }
        }
        0
    });
    assert_eq!(code, 0, "probe {code} failed (100 = install failed)");
}

#[test]
fn seccomp_installed_sys_admin_variant_allows_unshare() {
    if !is_root_or_skip() {
        return;
    }
    let prog = default_program(DOCKER_DEFAULT_MASK | 1 << CAP_SYS_ADMIN);
    let code = in_filtered_child(prog, || {
        // SAFETY: unshare of a new UTS namespace affects only this forked child.
        if unsafe { libc::unshare(libc::CLONE_NEWUTS) } != 0 {
            return 1;
        }
        // SAFETY: as above; still denied: kexec_load needs SYS_BOOT, which is not in the set.
        if unsafe { libc::syscall(libc::SYS_kexec_load, 0, 0, 0, 0) } != -1
            || errno() != libc::EPERM
        {
            return 2;
        }
        0
    });
    assert_eq!(code, 0, "probe {code} failed (100 = install failed)");
}

#[test]
#[ignore]
fn seccomp_print_variant_sizes() {
    for (key, prog) in VARIANTS {
        let names = crate::caps::names(*key);
        println!("{:>4} insns  {}", prog.len(), names.join(","));
    }
}

/// The order comparisons (`SCMP_CMP_LT/LE/GT/GE`) as compiled rules, run by the
/// interpreter on values around both 32-bit halves of the operand, agree with u64 order;
/// two of them in one rule (a range) and a second argument too.
#[test]
fn seccomp_order_comparisons() {
    const RET_ALLOW: u32 = 0x7fff_0000;
    const RET_ERRNO: u32 = 0x0005_0000;
    let edges = |v: u64| {
        let mut xs = vec![0, 1, u64::MAX, u64::MAX - 1, 1 << 32, (1 << 32) - 1];
        for d in [0u64, 1, 1 << 32] {
            xs.extend([v.wrapping_add(d), v.wrapping_sub(d)]);
        }
        xs
    };
    let nr = libc::SYS_write;
    let values = [
        0u64,
        5,
        0xffff_ffff,
        0x1_0000_0000,
        0x1_0000_0005,
        0x8000_0000_0000_0000,
        u64::MAX,
    ];
    type Op = (fn(u8, u64) -> Cond, fn(u64, u64) -> bool, &'static str);
    let ops: [Op; 4] = [
        (Cond::Lt, |a, v| a < v, "<"),
        (Cond::Le, |a, v| a <= v, "<="),
        (Cond::Gt, |a, v| a > v, ">"),
        (Cond::Ge, |a, v| a >= v, ">="),
    ];
    for v in values {
        for (mk, holds, name) in ops {
            for arg in [0u8, 3] {
                let rules: Vec<Rule> =
                    vec![(vec!["write".into()], Action::Errno(7), vec![mk(arg, v)])];
                let prog = compile_rules(Action::Allow, &rules).unwrap();
                for a in edges(v) {
                    let mut args = [0u64; 6];
                    args[usize::from(arg)] = a;
                    let got = run(&insns(&prog), ARCH.audit(), nr as u32, args);
                    let want = if holds(a, v) {
                        RET_ERRNO | 7
                    } else {
                        RET_ALLOW
                    };
                    assert_eq!(got, want, "arg{arg} = {a:#x} {name} {v:#x}");
                }
            }
        }
    }
    // A range: 10 <= arg1 < 0x1_0000_0000.
    let rules: Vec<Rule> = vec![(
        vec!["write".into()],
        Action::Errno(1),
        vec![Cond::Ge(1, 10), Cond::Lt(1, 0x1_0000_0000)],
    )];
    let prog = compile_rules(Action::Allow, &rules).unwrap();
    for (a, inside) in [
        (9u64, false),
        (10, true),
        (0xffff_ffff, true),
        (0x1_0000_0000, false),
        (0x1_0000_0009, false),
    ] {
        let got = run(&insns(&prog), ARCH.audit(), nr as u32, [0, a, 0, 0, 0, 0]);
        let want = if inside { RET_ERRNO | 1 } else { RET_ALLOW };
        assert_eq!(got, want, "arg1 = {a:#x}");
    }
}
