//! The config's own seccomp profile (`linux.seccomp`): translated to gcr-runtime's rule
//! set, compiled to classic BPF at create time, and cached under `--root` by the digest of
//! the profile's JSON (`<root>/.seccomp/<sha256>.bpf`, 8 bytes per instruction), so the
//! next container with the same profile (containerd sends the same default every time)
//! skips the compiler.
//!
//! As runc: syscall names unknown for the architecture are skipped, `errnoRet` defaults
//! to EPERM. Only the native architecture's numbers are filtered; the filter kills a
//! process that makes syscalls of another architecture (i386 or x32 code), whatever
//! `architectures` lists. `SCMP_ACT_TRACE` takes `errnoRet` as its message number (EPERM
//! by default); `flags` LOG and SPEC_ALLOW are passed to the kernel, TSYNC is a no-op (as
//! runc 1.2). `SCMP_ACT_NOTIFY` needs `listenerPath`, where the listener descriptor goes
//! at create (see `notify.rs`).

use std::path::{Path, PathBuf};

use gcr_runtime::seccomp::{self, Action, Cond, Filter, Rule};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};

use crate::OciError;

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> Action {
    use LinuxSeccompAction::*;
    match a {
        ScmpActAllow => Action::Allow,
        ScmpActErrno => Action::Errno(errno.unwrap_or(libc::EPERM as u32)),
        ScmpActKill | ScmpActKillThread => Action::KillThread,
        ScmpActKillProcess => Action::Kill,
        ScmpActTrap => Action::Trap,
        ScmpActLog => Action::Log,
        // As runc: the message number is errnoRet, EPERM by default.
        ScmpActTrace => Action::Trace(errno.unwrap_or(libc::EPERM as u32)),
        ScmpActNotify => Action::Notify,
    }
}

/// The runtime's rule set for `s`.
fn rules(s: &LinuxSeccomp) -> Result<(Action, Vec<Rule>), OciError> {
    if notifies(s)
        && s.listener_path()
            .as_ref()
            .is_none_or(|p| p.as_os_str().is_empty())
    {
        return Err(OciError::Invalid(
            "linux.seccomp uses SCMP_ACT_NOTIFY but gives no listenerPath; add the path of the agent's unix socket".into(),
        ));
    }
    if s.listener_path().as_ref().is_some_and(|p| !p.is_absolute()) {
        return Err(OciError::Invalid(
            "linux.seccomp.listenerPath must be an absolute path".into(),
        ));
    }
    if let Some(archs) = s.architectures() {
        let native = seccomp::native_arch();
        let names: Vec<String> = archs
            .iter()
            .map(|a| serde_json::to_string(a).unwrap_or_default())
            .collect();
        if !archs.is_empty()
            && !names
                .iter()
                .any(|n| n.trim_matches('"') == native || n.contains("NATIVE"))
        {
            return Err(OciError::Invalid(format!(
                "linux.seccomp.architectures {} lacks this host's {native}; add it",
                names.join(", ")
            )));
        }
    }
    let default = action(s.default_action(), s.default_errno_ret());
    let mut out = Vec::new();
    for sc in s.syscalls().as_deref().unwrap_or(&[]) {
        let what = format!("syscalls {:?}", sc.names());
        let act = action(sc.action(), sc.errno_ret());
        let mut conds = Vec::new();
        for a in sc.args().as_deref().unwrap_or(&[]) {
            let idx = u8::try_from(a.index())
                .ok()
                .filter(|i| *i < 6)
                .ok_or_else(|| {
                    OciError::Invalid(format!(
                        "linux.seccomp {what}: argument index {} is out of range 0..5",
                        a.index()
                    ))
                })?;
            conds.push(match a.op() {
                LinuxSeccompOperator::ScmpCmpEq => Cond::Eq(idx, a.value()),
                LinuxSeccompOperator::ScmpCmpNe => Cond::Ne(idx, a.value()),
                LinuxSeccompOperator::ScmpCmpMaskedEq => {
                    Cond::MaskedEq(idx, a.value(), a.value_two().unwrap_or(0))
                }
                LinuxSeccompOperator::ScmpCmpLt => Cond::Lt(idx, a.value()),
                LinuxSeccompOperator::ScmpCmpLe => Cond::Le(idx, a.value()),
                LinuxSeccompOperator::ScmpCmpGt => Cond::Gt(idx, a.value()),
                LinuxSeccompOperator::ScmpCmpGe => Cond::Ge(idx, a.value()),
            });
        }
        out.push((sc.names().clone(), act, conds));
    }
    Ok((default, out))
}

/// True when a rule (or the default) of `s` asks a user-space listener (SCMP_ACT_NOTIFY).
pub fn notifies(s: &LinuxSeccomp) -> bool {
    use oci_spec::runtime::LinuxSeccompAction::ScmpActNotify;
    s.default_action() == ScmpActNotify
        || s.syscalls()
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .any(|sc| sc.action() == ScmpActNotify)
}

/// The SECCOMP_FILTER_FLAG_* bits of `flags`: LOG and SPEC_ALLOW as given, TSYNC
/// ignored (the container process is single-threaded when it installs the filter), as
/// runc; WAIT_KILLABLE_RECV (notified calls stay killable) as given.
fn flags(s: &LinuxSeccomp) -> Result<u32, OciError> {
    use oci_spec::runtime::LinuxSeccompFilterFlag::*;
    let mut bits = 0;
    for f in s.flags().as_deref().unwrap_or(&[]) {
        bits |= match f {
            SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            SeccompFilterFlagSpecAllow => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            SeccompFilterFlagTsync => 0,
            SeccompFilterFlagWaitKillableRecv => libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
        } as u32;
    }
    Ok(bits)
}

fn cache_path(root: &Path, s: &LinuxSeccomp) -> Result<PathBuf, OciError> {
    let json = serde_json::to_vec(s)
        .map_err(|e| OciError::Invalid(format!("linux.seccomp cannot be encoded: {e}")))?;
    let d = gcr_core::digest::Digest::sha256_of(&json);
    let hex = d.to_string();
    let hex = hex.rsplit(':').next().unwrap_or(&hex).to_string();
    Ok(root.join(".seccomp").join(format!("{hex}.bpf")))
}

fn decode(bytes: &[u8]) -> Option<Vec<libc::sock_filter>> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(8) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(8)
            .map(|c| libc::sock_filter {
                code: u16::from_le_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect(),
    )
}

fn encode(prog: &[libc::sock_filter]) -> Vec<u8> {
    let mut out = Vec::with_capacity(prog.len() * 8);
    for i in prog {
        out.extend_from_slice(&i.code.to_le_bytes());
        out.push(i.jt);
        out.push(i.jf);
        out.extend_from_slice(&i.k.to_le_bytes());
    }
    out
}

/// The program for `s`: from the cache under `root`, or compiled (and cached). The
/// program lives as long as this process (one command of gcr-runc).
pub fn program(root: &Path, s: &LinuxSeccomp) -> Result<Filter, OciError> {
    // Checked first, so a bad profile fails even when a stale cache entry exists.
    let (default, rules) = rules(s)?;
    let path = cache_path(root, s)?;
    let prog = match std::fs::read(&path).ok().and_then(|b| decode(&b)) {
        Some(p) => p,
        None => {
            let p = seccomp::compile_rules(default, &rules)
                .map_err(|e| OciError::Invalid(format!("linux.seccomp: {e}")))?;
            // The cache is an optimisation: a failure to write it is not an error.
            if let Some(dir) = path.parent() {
                if std::fs::create_dir_all(dir).is_ok() {
                    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
                    if std::fs::write(&tmp, encode(&p)).is_ok() {
                        let _ = std::fs::rename(&tmp, &path);
                    } else {
                        let _ = std::fs::remove_file(&tmp);
                    }
                }
            }
            p
        }
    };
    Ok(Filter(Box::leak(prog.into_boxed_slice()), flags(s)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(j: &str) -> LinuxSeccomp {
        serde_json::from_str(j).unwrap()
    }

    #[test]
    fn oci_seccomp_compiles_and_caches() {
        let root = tempfile::tempdir().unwrap();
        let s = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat","no_such_call"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#,
        );
        let a = program(root.path(), &s).unwrap();
        let cached = std::fs::read_dir(root.path().join(".seccomp"))
            .unwrap()
            .count();
        assert_eq!(cached, 1);
        let b = program(root.path(), &s).unwrap();
        assert_eq!(encode(a.0), encode(b.0));
    }

    #[test]
    fn oci_seccomp_notify_needs_a_listener() {
        let root = tempfile::tempdir().unwrap();
        let s = profile(r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#);
        let e = program(root.path(), &s).unwrap_err().to_string();
        assert!(
            e.contains("SCMP_ACT_NOTIFY") && e.contains("listenerPath"),
            "{e}"
        );
        assert!(!root.path().join(".seccomp").exists());
        let rel = profile(r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"x.sock"}"#);
        assert!(program(root.path(), &rel)
            .unwrap_err()
            .to_string()
            .contains("absolute"));
        let ok = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/a.sock","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        );
        assert!(notifies(&ok) && program(root.path(), &ok).is_ok());
    }
}
