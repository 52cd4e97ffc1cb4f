//! `exec_in`: runs a new process inside a running container (`gcr exec`).
//!
//! The namespace files of the target are opened first. A forked helper, made non-dumpable
//! (so the container cannot reach the runtime binary through /proc/PID/exe, the
//! CVE-2019-5736 pattern), joins the container's cgroup and namespaces and then clones the
//! final process with CLONE_PARENT, so that it lands in the container's pid namespace and is
//! still our direct child. That process sets up stdio, user, caps, seccomp and cwd and
//! execs the command; failures come back over the same (stage, errno) pipe as for spawn.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use oci_spec::runtime::Process;

use crate::cgroups::{Cgroup, Join};
use crate::error::Stage;
use crate::namespaces::open_ns;
use crate::process::ProcessPlan;
use crate::spawn::close_all_but;
use crate::stdio::StdioPlan;
use crate::sys::{self, child_fail, errno, CloneArgs};
use crate::{Running, RuntimeError, SeccompMode, Stdio};

const NAMESPACES: [(&str, i32); 6] = [
    ("ipc", libc::CLONE_NEWIPC),
    ("uts", libc::CLONE_NEWUTS),
    ("net", libc::CLONE_NEWNET),
    ("pid", libc::CLONE_NEWPID),
    ("cgroup", libc::CLONE_NEWCGROUP),
    ("mnt", libc::CLONE_NEWNS),
];

struct Helper<'a> {
    errfd: RawFd,
    pidfd_w: RawFd,
    join: Option<&'a Join>,
    keep: &'a [RawFd],
    ns: &'a [(OwnedFd, i32)],
    stdio: &'a StdioPlan,
    plan: &'a ProcessPlan,
}

fn helper_main(h: &Helper) -> ! {
    // SAFETY: only system calls on prepared descriptors and stack data follow; both this
    // helper and the final process end in execve or _exit.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
        close_all_but(h.keep);
        if let Some(Err(e)) = h.join.map(Join::enter_self) {
            child_fail(h.errfd, Stage::Cgroup as u32, e);
        }
        for (fd, typ) in h.ns {
            if libc::setns(fd.as_raw_fd(), *typ) != 0 {
                child_fail(h.errfd, Stage::Namespace as u32, errno());
            }
            libc::close(fd.as_raw_fd());
        }
        let mut args = CloneArgs {
            flags: libc::CLONE_PARENT as u64,
            ..Default::default()
        };
        let pid = sys::clone3(&mut args) as i32;
        if pid < 0 {
            child_fail(h.errfd, Stage::Namespace as u32, errno());
        }
        if pid == 0 {
            libc::close(h.pidfd_w);
            h.stdio.apply(h.errfd);
            // In the container's mount namespace already: its own devpts.
            h.stdio.open_pty(h.errfd);
            close_all_but(&[h.errfd]);
            h.plan.limits(h.errfd);
            h.plan.finish(h.errfd, None, &|| {});
        }
        let b = pid.to_ne_bytes();
        libc::write(h.pidfd_w, b.as_ptr().cast(), 4);
        libc::_exit(0);
    }
}

/// Runs `process` inside the namespaces (and cgroup) of the container whose pid 1 is
/// `target_pid` (a host pid). Returns once the command has been exec'd.
pub fn exec_in(
    target_pid: i32,
    process: &Process,
    cgroup: Option<&Cgroup>,
    seccomp: SeccompMode,
    stdio: Stdio,
) -> Result<Running, RuntimeError> {
    exec_in_with(target_pid, process, cgroup, seccomp, stdio, false)
}

/// [`exec_in`] with `exact_caps`: the process's five capability sets applied as given
/// (runc's semantics, for `gcr-runc exec`; see [`crate::Extras::exact_caps`]).
pub fn exec_in_with(
    target_pid: i32,
    process: &Process,
    cgroup: Option<&Cgroup>,
    seccomp: SeccompMode,
    stdio: Stdio,
    exact_caps: bool,
) -> Result<Running, RuntimeError> {
    let mut plan = ProcessPlan::prepare(process, seccomp)?;
    plan.no_cwd_create();
    if exact_caps {
        plan.exact_caps(process);
    }
    let mut ns = Vec::with_capacity(NAMESPACES.len());
    for (name, typ) in NAMESPACES {
        let path = format!("/proc/{target_pid}/ns/{name}");
        ns.push((
            open_ns(path.as_ref()).map_err(|_| RuntimeError::Sys {
                what: "opening the container's namespaces (is the container running?)",
                source: std::io::Error::last_os_error(),
            })?,
            typ,
        ));
    }
    // A container with its own time namespace (gcr-runc's `timeOffsets`): the process
    // joins it too. Others share the host's, which a setns would only re-enter.
    let time = format!("/proc/{target_pid}/ns/time");
    let ino = |p: &str| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
    };
    if ino(&time).is_some_and(|t| Some(t) != ino("/proc/self/ns/time")) {
        ns.push((open_ns(time.as_ref())?, libc::CLONE_NEWTIME));
    }
    // A container in its own user namespace: joined last, once the helper (root on the
    // host, so privileged over every namespace the container's user namespace owns) is in
    // the others; the process then switches to the container's ids inside it.
    if let Some(user) = other_userns(target_pid)? {
        ns.push((user, libc::CLONE_NEWUSER));
    }
    let mut stdio = StdioPlan::prepare(stdio)?;
    stdio.set_console(process.console_size());
    let (err_r, err_w) = sys::pipe()?;
    let (pid_r, pid_w) = sys::pipe()?;
    let join = match cgroup {
        Some(c) => Some(c.join().map_err(|e| RuntimeError::Cgroup(e.to_string()))?),
        None => None,
    };
    let mut keep: Vec<RawFd> = [err_w.as_raw_fd(), pid_w.as_raw_fd()]
        .into_iter()
        .chain(join.iter().flat_map(Join::raw_fds))
        .chain(ns.iter().map(|(f, _)| f.as_raw_fd()))
        .chain(stdio_fds(&stdio))
        .collect();
    keep.sort_unstable();
    let h = Helper {
        errfd: err_w.as_raw_fd(),
        pidfd_w: pid_w.as_raw_fd(),
        join: join.as_ref(),
        keep: &keep,
        ns: &ns,
        stdio: &stdio,
        plan: &plan,
    };
    let mut args = CloneArgs {
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if let Some(Join::IntoCgroup(fd)) = &join {
        args.flags |= sys::CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    // SAFETY: the helper only makes system calls and ends in _exit (see helper_main).
    let helper = unsafe { sys::clone3(&mut args) } as i32;
    if helper == 0 {
        helper_main(&h);
    }
    if helper < 0 {
        return Err(RuntimeError::sys("clone3 of the exec helper"));
    }
    drop(err_w);
    drop(pid_w);
    drop(join);
    stdio.forget_child_end();
    let mut b = [0u8; 4];
    // SAFETY: reading 4 bytes into a stack buffer.
    let n = unsafe { libc::read(pid_r.as_raw_fd(), b.as_mut_ptr().cast(), 4) };
    let _ = sys::waitpid(helper);
    let pid = if n == 4 { i32::from_ne_bytes(b) } else { 0 };
    if let Some((stage, err)) = sys::read_report(err_r.as_raw_fd()) {
        if pid > 0 {
            let _ = sys::waitpid(pid);
        }
        return Err(plan.error_for(stage, err));
    }
    if pid <= 0 {
        return Err(RuntimeError::Setup {
            stage: Stage::Namespace,
            detail: String::new(),
            source: std::io::Error::from_raw_os_error(libc::ESRCH),
        });
    }
    let pidfd = sys::pidfd_open(pid);
    Ok(Running {
        pid,
        pty_master: stdio.master(),
        cgroup: None,
        // SAFETY: pidfd_open returned a fresh descriptor we own.
        pidfd: (pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd) }),
        seccomp_listener: None,
    })
}

/// The user namespace of `pid` when it is not the caller's own (setns into one's own user
/// namespace fails).
fn other_userns(pid: i32) -> Result<Option<OwnedFd>, RuntimeError> {
    let theirs = open_ns(format!("/proc/{pid}/ns/user").as_ref())?;
    let ours = std::fs::metadata("/proc/self/ns/user").map_err(|source| RuntimeError::Sys {
        what: "reading this process's user namespace",
        source,
    })?;
    // SAFETY: fstat into a zeroed stack struct on a descriptor we own.
    let st = unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(theirs.as_raw_fd(), &mut st) != 0 {
            return Err(RuntimeError::sys("reading the container's user namespace"));
        }
        st
    };
    use std::os::unix::fs::MetadataExt;
    let same = st.st_ino == ours.ino() && st.st_dev == ours.dev();
    Ok((!same).then_some(theirs))
}

fn stdio_fds(s: &StdioPlan) -> Vec<RawFd> {
    s.raw_fds()
}
