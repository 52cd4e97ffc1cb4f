//! Docker's default seccomp profile, compiled ahead of time.
//!
//! The profile is data (`seccomp/default.profile`, syscall numbers for x86_64 and aarch64
//! in `seccomp/syscalls.txt`); `build.rs` compiles it with [`compile`], for the target
//! architecture, into classic BPF programs for the capability sets seen most (Docker's default set, each single added
//! capability, a few pairs). [`default_program`] picks one by the container's capability mask;
//! a rare combination is compiled once at run time and cached. [`install`] loads a program
//! with `seccomp(SECCOMP_SET_MODE_FILTER)`; it does not allocate, so it can run in the forked
//! child right before `execve`.
//!
//! Ordering in the child: the kernel accepts a filter only with `no_new_privs` set or with
//! CAP_SYS_ADMIN in the effective set. Without `--security-opt no-new-privileges`, install
//! the filter before [`crate::caps::apply`] drops CAP_SYS_ADMIN; everything after it
//! (capset, prctl, setresuid, setgroups, chdir, close_range, execve) is allowed by the
//! profile, but mount, pivot_root, sethostname and unshare are not.
//!
//! Architectures: the program checks `seccomp_data.arch` and kills the process for any
//! other (e.g. i386 code on x86_64), and on x86_64 also for x32 numbers. Only x86_64 and
//! aarch64 have tables; building for another architecture fails with a message saying so.
//! The tests compare every compiled program with libseccomp's for the same rules
//! (`differential.rs`).

#[cfg(test)]
mod bpf;
pub(crate) mod compile;
pub use compile::{Action, Cond};

/// One rule given as data: syscall names, the action, conditions that must all hold.
pub type Rule = (Vec<String>, Action, Vec<Cond>);
#[cfg(test)]
mod differential;

use std::sync::Mutex;

/// Builds one instruction of the generated tables.
const fn f(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

include!(concat!(env!("OUT_DIR"), "/seccomp_variants.rs"));

const PROFILE: &str = include_str!("../../seccomp/default.profile");
const TABLE: &str = include_str!("../../seccomp/syscalls.txt");

/// The architecture the programs are compiled for (the build target's).
#[cfg(target_arch = "x86_64")]
const ARCH: compile::Arch = compile::Arch::X86_64;
#[cfg(target_arch = "aarch64")]
const ARCH: compile::Arch = compile::Arch::Aarch64;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!(
    "gcr's seccomp profile has syscall numbers for x86_64 and aarch64 only: add a column to \
     crates/gcr-runtime/seccomp/syscalls.txt and an Arch in src/seccomp/compile.rs"
);

/// The kernel's limit on filter length (BPF_MAXINSNS).
const MAX_INSNS: usize = 4096;

/// Errors from loading a seccomp filter.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The kernel refused the filter.
    #[error("cannot install the seccomp filter: errno {errno}{}", hint(*.errno))]
    Install {
        /// The raw errno.
        errno: i32,
    },
    /// The program is empty or longer than the kernel accepts.
    #[error("seccomp program has {0} instructions; the kernel accepts 1 to 4096")]
    BadLength(usize),
    /// A rule set could not be compiled.
    #[error("seccomp profile: {0}")]
    Profile(String),
    /// Setting no_new_privs failed.
    #[error("cannot set no_new_privs: errno {0}")]
    NoNewPrivs(i32),
}

fn hint(errno: i32) -> &'static str {
    match errno {
        libc::EACCES => {
            " (set no_new_privs first or install while CAP_SYS_ADMIN is still effective)"
        }
        libc::EINVAL => " (the kernel lacks seccomp filter support or rejected the program)",
        _ => "",
    }
}

static RUNTIME: Mutex<Vec<(u64, &'static [libc::sock_filter])>> = Mutex::new(Vec::new());

/// The precompiled default profile for a container whose capability mask is `caps_mask`
/// (only the capabilities the profile mentions matter). Call it before forking: a rare
/// combination is compiled here once (and kept for the life of the process).
pub fn default_program(caps_mask: u64) -> &'static [libc::sock_filter] {
    let key = caps_mask & RELEVANT;
    if let Some((_, p)) = VARIANTS.iter().find(|(k, _)| *k == key) {
        return p;
    }
    let mut cache = RUNTIME.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, p)) = cache.iter().find(|(k, _)| *k == key) {
        return p;
    }
    let prog: &'static [libc::sock_filter] = Box::leak(compile_for(key).into_boxed_slice());
    cache.push((key, prog));
    prog
}

/// Compiles the embedded profile for `caps` at run time.
fn compile_for(caps: u64) -> Vec<libc::sock_filter> {
    // The same text was parsed by build.rs, so it cannot fail here.
    let p = compile::parse(PROFILE, TABLE, ARCH)
        .unwrap_or_else(|e| unreachable!("profile checked at build time: {e}"));
    compile::compile(&p, caps)
        .into_iter()
        .map(|i| f(i.code, i.jt, i.jf, i.k))
        .collect()
}

/// Compiles rules given as data (an OCI config's `linux.seccomp`) for the build target's
/// architecture: `default` for every syscall no rule names, each rule's action when all its
/// conditions hold. Syscall names gcr's table or this architecture lacks are skipped.
pub fn compile_rules(
    default: Action,
    rules: &[Rule],
) -> Result<Vec<libc::sock_filter>, SeccompError> {
    let p = compile::from_rules(default, rules, TABLE, ARCH).map_err(SeccompError::Profile)?;
    let prog: Vec<libc::sock_filter> = compile::compile(&p, 0)
        .into_iter()
        .map(|i| f(i.code, i.jt, i.jf, i.k))
        .collect();
    if prog.len() > MAX_INSNS {
        return Err(SeccompError::BadLength(prog.len()));
    }
    Ok(prog)
}

/// The architecture filters are compiled for, as the runtime spec names it (`SCMP_ARCH_…`).
pub fn native_arch() -> &'static str {
    match ARCH {
        compile::Arch::X86_64 => "SCMP_ARCH_X86_64",
        compile::Arch::Aarch64 => "SCMP_ARCH_AARCH64",
    }
}

/// A compiled program to install instead of the default profile
/// ([`crate::SeccompMode::Custom`]).
#[derive(Clone, Copy)]
pub struct Filter(pub &'static [libc::sock_filter], pub u32);

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Filter({} instructions)", self.0.len())
    }
}

impl PartialEq for Filter {
    fn eq(&self, o: &Filter) -> bool {
        std::ptr::eq(self.0, o.0) && self.1 == o.1
    }
}

impl Eq for Filter {}

/// Number of precompiled variants (for diagnostics).
pub fn precompiled_variants() -> usize {
    VARIANTS.len()
}

/// Loads `prog` as the calling thread's seccomp filter with `flags` (SECCOMP_FILTER_FLAG_*);
/// returns the kernel's answer (the listener descriptor with FLAG_NEW_LISTENER, else 0).
/// No allocation; safe after `fork`.
pub fn install(prog: &[libc::sock_filter], flags: u32) -> Result<i32, SeccompError> {
    if prog.is_empty() || prog.len() > MAX_INSNS {
        return Err(SeccompError::BadLength(prog.len()));
    }
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr().cast_mut(),
    };
    // SAFETY: fprog points at `prog`, which outlives the call; the kernel copies the program.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags as libc::c_ulong,
            &fprog as *const libc::sock_fprog,
        )
    };
    if r < 0 {
        return Err(SeccompError::Install { errno: errno() });
    }
    Ok(r as i32)
}

/// `prctl(PR_SET_NO_NEW_PRIVS, 1)` (for `--security-opt no-new-privileges`, or to install a
/// filter without CAP_SYS_ADMIN). No allocation.
pub fn set_no_new_privs() -> Result<(), SeccompError> {
    // SAFETY: takes integer arguments only.
    let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0) };
    if r != 0 {
        return Err(SeccompError::NoNewPrivs(errno()));
    }
    Ok(())
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

#[cfg(test)]
mod tests;
