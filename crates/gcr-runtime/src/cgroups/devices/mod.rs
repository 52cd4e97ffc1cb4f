//! Device rules on cgroup v2: an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE) generated from
//! the rules and attached to the group, as runc and crun do. The kernel runs it for every
//! process of the group (and of its descendants) on each open and mknod of a device node;
//! it also does so on a hybrid host, where the cgroup2 hierarchy has no controllers.
//!
//! `rules` folds the rules with the v1 controller's semantics, `program` turns the result
//! into instructions, `bpf` loads and attaches them.

mod bpf;
mod program;
mod rules;

#[cfg(test)]
mod tests_program;
#[cfg(test)]
mod tests_root;

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

pub use program::{encode, generate, Insn};
pub use rules::{
    parse_access, DeviceKind, DeviceRule, Folded, ACC_ALL, ACC_MKNOD, ACC_READ, ACC_WRITE,
};

use super::{fs, CgroupError};

/// Checks that `rules` can be applied (see [`Folded::new`]).
pub fn check(rules: &[DeviceRule]) -> Result<(), CgroupError> {
    Folded::new(rules).map(drop)
}

/// The program's instructions for `rules`.
pub fn program_for(rules: &[DeviceRule]) -> Result<Vec<Insn>, CgroupError> {
    Ok(generate(&Folded::new(rules)?))
}

fn open_dir(dir: &Path) -> Result<OwnedFd, CgroupError> {
    std::fs::File::open(dir)
        .map(OwnedFd::from)
        .map_err(|e| fs::err("open", dir, e))
}

/// Applies `rules` to the v2 group `dir`: loads their program and attaches it, replacing
/// the device programs attached to the group before (a new group has none; `update` has
/// the previous one). While both are attached, a device must pass both.
pub fn apply(dir: &Path, rules: &[DeviceRule]) -> Result<(), CgroupError> {
    let insns = encode(&program_for(rules)?);
    let dfd = open_dir(dir)?;
    let err = |op, e| fs::err(op, dir, e);
    let prog = bpf::load(&insns).map_err(|e| err("load the device program for", e))?;
    let old: Vec<OwnedFd> = bpf::attached(dfd.as_fd())
        .map_err(|e| err("list the device programs of", e))?
        .into_iter()
        // A program this process may not open (an LSM's label) can only add restrictions;
        // it stays, as with runc.
        .filter_map(|id| bpf::prog_fd(id).ok())
        .collect();
    if let [one] = old.as_slice() {
        match bpf::attach(dfd.as_fd(), prog.as_fd(), Some(one.as_fd())) {
            Ok(()) => return Ok(()),
            // Kernels before 5.6 have no BPF_F_REPLACE: attach, then detach.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) => return Err(err("attach the device program to", e)),
        }
    }
    bpf::attach(dfd.as_fd(), prog.as_fd(), None)
        .map_err(|e| err("attach the device program to", e))?;
    for p in &old {
        bpf::detach(dfd.as_fd(), p.as_fd())
            .map_err(|e| err("detach the previous device program from", e))?;
    }
    Ok(())
}

/// How many device programs are attached to the v2 group `dir` itself.
pub fn attached_programs(dir: &Path) -> Result<usize, CgroupError> {
    let dfd = open_dir(dir)?;
    bpf::attached(dfd.as_fd())
        .map(|ids| ids.len())
        .map_err(|e| fs::err("list the device programs of", dir, e))
}
