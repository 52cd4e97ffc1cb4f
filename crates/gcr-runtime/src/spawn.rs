//! `spawn`: starts a container from a runtime spec with one clone3 and returns once the
//! user's command has been exec'd (or has failed to, with nothing left behind).
//!
//! The parent prepares every string, path and flag first ([`ProcessPlan`], [`MountPlan`],
//! [`NsPlan`], [`StdioPlan`]); the child only makes system calls: stdio, closing inherited
//! descriptors, joining the cgroup, namespaces, mounts and pivot_root, then the process setup.
//! Failures travel back as (stage, errno) over a close-on-exec pipe.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use oci_spec::runtime::Spec;

use crate::cgroups::{Cgroup, CgroupManager, CgroupVersion, Join, Resources};
use crate::error::Stage;
use crate::hooks::{ContainerHooks, HooksPlan};
use crate::latejoin;
use crate::mounts::{MountPlan, SecretFile};
use crate::namespaces::{self, NsPlan};
use crate::process::ProcessPlan;
use crate::stdio::StdioPlan;
use crate::sys::{self, child_fail, errno, CloneArgs};
use crate::sysctl::SysctlPlan;
use crate::userns::{self, UsernsPlan};
use crate::RuntimeError;

/// The container's root filesystem.
pub enum Rootfs {
    /// An overlay of read-only layers (top first) plus a writable upper dir, mounted on `target`.
    Overlay {
        lowers: Vec<PathBuf>,
        upper: PathBuf,
        work: PathBuf,
        target: PathBuf,
        /// Mount with overlayfs' `volatile`: no sync of the upper filesystem at unmount (nor
        /// on fsync inside). For throw-away uppers (`--rm`, build steps), as Podman does.
        volatile: bool,
    },
    /// An existing directory, bind-mounted as the root.
    Path(PathBuf),
    /// A detached mount (`fsmount`, e.g. an overlay made ahead by another process),
    /// attached on `target` in the container's mount namespace.
    Attach { mount: OwnedFd, target: PathBuf },
}

/// Standard streams of the container process.
pub enum Stdio {
    /// The caller's own 0, 1, 2.
    Inherit,
    /// The caller's own 1 and 2, /dev/null on 0 (Docker's run without `-i`).
    NullStdin,
    /// A new pty; the master is returned in [`Running::pty_master`].
    Pty,
    /// Given descriptors (stdin None = /dev/null).
    Fds {
        stdin: Option<OwnedFd>,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
}

/// Which seccomp filter to install.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeccompMode {
    DockerDefault,
    Unconfined,
    /// A program compiled by the caller (an OCI config's own profile, see
    /// [`crate::seccomp::compile_rules`]).
    Custom(crate::seccomp::Filter),
}

/// Network namespace choice.
#[derive(Debug)]
pub enum Network {
    /// A new network namespace with only `lo`, up.
    NewLoopback,
    /// The host's network namespace.
    Host,
    /// Join the namespace at this path (/proc/PID/ns/net or a bind-mounted netns file).
    Join(PathBuf),
    /// Join this namespace, e.g. one made ahead of time by [`crate::LoopbackNetns`].
    JoinFd(OwnedFd),
}

/// Everything needed to start one container.
pub struct Launch<'a> {
    pub id: &'a str,
    pub spec: &'a Spec,
    pub rootfs: Rootfs,
    pub stdio: Stdio,
    pub seccomp: SeccompMode,
    /// Run a small reaper as pid 1 (`--init`).
    pub init: bool,
    /// None = no cgroup.
    pub cgroup_resources: Option<Resources>,
    pub network: Network,
    /// Caller's work that overlaps the child's setup (the engine records the container
    /// meanwhile), given the child's pid. Runs in the parent after clone; `false` kills the
    /// child and makes [`spawn`] fail with [`RuntimeError::Cancelled`]. The command itself
    /// never starts before it returned true.
    pub while_starting: Option<Box<dyn FnOnce(i32) -> bool + 'a>>,
    /// Hold the child before pivot_root until `while_starting` has returned true: for a
    /// caller that started from data it has yet to check (the engine's image cache).
    pub gate: bool,
    /// Secrets written to a tmpfs in the container's mount namespace (see
    /// [`SecretFile`]); the values are wiped from this process when the launch is dropped.
    pub secrets: Vec<SecretFile>,
}

/// What runc's command line adds to a launch (`gcr-runc create`); [`spawn`] uses none.
#[derive(Default)]
pub struct Extras {
    /// Hold the process right before execve (after every other step) until one byte can be
    /// read from this descriptor (a fifo opened read-write); [`spawn_with`] then returns
    /// once the process is held, with the exec still to come (runc's `exec.fifo`).
    pub exec_hold: Option<OwnedFd>,
    /// The cgroup at this path relative to the cgroupfs roots (an OCI `cgroupsPath`)
    /// instead of `gcr/<id>`.
    pub cgroup_path: Option<PathBuf>,
    /// Descriptors 3 to 3+N-1 stay open in the process (runc's `--preserve-fds`).
    pub preserve_fds: u32,
    /// Apply the process's five capability sets as given (runc's semantics) instead of
    /// its bounding set as effective and permitted too.
    pub exact_caps: bool,
    /// Further v1 groups (directories made and configured by the caller, e.g. a devices
    /// group) the process joins with its own, before it runs anything of the container.
    pub join_also: Vec<PathBuf>,
    /// OCI hooks (see [`crate::hooks`]); needs `exec_hold` for `startContainer`.
    pub hooks: Option<ContainerHooks>,
    /// runc 1.1's tmpfs rule: a tmpfs on a directory that exists in the root takes that
    /// directory's mode (its `mode=` applies only to a destination made for it).
    pub tmpfs_keep_mode: bool,
    /// The filter asks a user-space listener (SCMP_ACT_NOTIFY): its descriptor comes
    /// back in [`Running::seccomp_listener`].
    pub seccomp_notify: bool,
}

/// A started container process (or an exec'd process in one).
pub struct Running {
    /// Host pid.
    pub pid: i32,
    pub pty_master: Option<OwnedFd>,
    pub cgroup: Option<Cgroup>,
    pub pidfd: Option<OwnedFd>,
    /// The seccomp listener of a filter with SCMP_ACT_NOTIFY (see [`Extras`]).
    pub seccomp_listener: Option<OwnedFd>,
}

/// Destroys the cgroup unless disarmed (error paths of spawn).
struct CgroupGuard(Option<Cgroup>);

impl Drop for CgroupGuard {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            let _ = c.destroy();
        }
    }
}

/// Closes every descriptor >= 3 except those in `keep` (sorted).
pub(crate) fn close_all_but(keep: &[RawFd]) {
    let mut start = 3u32;
    for &k in keep {
        let k = k as u32;
        if k > start {
            sys::close_range(start, k - 1, 0);
        }
        start = start.max(k + 1);
    }
    sys::close_range(start, u32::MAX, 0);
}

struct ChildCtx<'a> {
    errfd: RawFd,
    join: Option<&'a Join>,
    /// v1 or a gated start: the read end on which the parent releases the child before
    /// pivot_root, with the v1 groups' `tasks` paths (or an empty line); EOF: it failed.
    late_join: Option<RawFd>,
    keep: &'a [RawFd],
    stdio: &'a StdioPlan,
    ns: &'a NsPlan,
    sysctl: &'a SysctlPlan,
    mounts: &'a MountPlan,
    process: &'a ProcessPlan,
    hooks: Option<&'a HooksPlan>,
    /// `--init`, with the caller's command line area (see [`crate::init::arg_area`]).
    init: Option<crate::init::ArgArea>,
    preserve_fds: u32,
    /// A new user namespace: the pipe on which the parent says its id maps are written.
    userns_sync: Option<RawFd>,
    /// A user namespace joined by path (the process is cloned inside it).
    userns_joined: bool,
}

fn child_main(c: &ChildCtx) -> ! {
    // Not dumpable until execve: a process sharing a joined pid namespace cannot reach the
    // runtime binary through /proc/PID/exe (CVE-2019-5736). execve resets the flag.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    if let Some(fd) = c.userns_sync {
        userns::child_wait(c.errfd, fd);
    } else if c.userns_joined {
        userns::become_root(c.errfd);
    }
    c.stdio.apply(c.errfd);
    close_all_but(c.keep);
    for fd in 3..3 + c.preserve_fds as RawFd {
        // SAFETY: fcntl on a descriptor number; a closed one just fails.
        unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    }
    if let Some(Err(e)) = c.join.map(Join::enter_self) {
        child_fail(c.errfd, Stage::Cgroup as u32, e);
    }
    if c.late_join.is_none() {
        cgroup_ns(c);
    }
    c.ns.apply(c.errfd);
    c.sysctl.apply(c.errfd);
    c.mounts.apply(c.errfd, &|| {
        if let Some(fd) = c.late_join {
            latejoin::child(c.errfd, fd);
            cgroup_ns(c);
        }
        if let Some(h) = c.hooks {
            h.at_create(c.errfd);
        }
    });
    // In the container's root now: a terminal comes from its own devpts.
    c.stdio.open_pty(c.errfd);
    c.process.limits(c.errfd);
    c.process.finish(c.errfd, c.init, &|| {
        if let Some(h) = c.hooks {
            h.at_start();
        }
    })
}

fn cgroup_ns(c: &ChildCtx) {
    // SAFETY: unshare with a constant flag.
    if c.ns.cgroupns && unsafe { libc::unshare(libc::CLONE_NEWCGROUP) } != 0 {
        child_fail(c.errfd, Stage::Namespace as u32, errno());
    }
}

fn cgroup_err(e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Cgroup(e.to_string())
}

/// Starts the container described by `l`.
pub fn spawn(l: Launch) -> Result<Running, RuntimeError> {
    spawn_with(l, Extras::default())
}

/// [`spawn`] with runc's additions (`x`).
pub fn spawn_with(l: Launch, x: Extras) -> Result<Running, RuntimeError> {
    let process = l
        .spec
        .process()
        .as_ref()
        .ok_or_else(|| RuntimeError::InvalidSpec("the spec has no process".into()))?;
    let mut process = ProcessPlan::prepare(process, l.seccomp)?;
    process.hold = x.exec_hold.as_ref().map(|f| f.as_raw_fd());
    // The caller's work overlaps the setup, never the command: a child that is not held
    // before pivot_root (`gate`) or execve (`exec_hold`) waits before execve until the work
    // is done.
    let exec_release = if l.while_starting.is_some() && !l.gate && x.exec_hold.is_none() {
        Some(sys::pipe()?)
    } else {
        None
    };
    process.release = exec_release.as_ref().map(|(r, _)| r.as_raw_fd());
    if x.exact_caps {
        process.exact_caps(l.spec.process().as_ref().unwrap_or(&Default::default()));
    }
    if let Some(p) = l
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.personality().as_ref())
    {
        process.personality = Some(match p.domain() {
            oci_spec::runtime::LinuxPersonalityDomain::PerLinux => 0,
            oci_spec::runtime::LinuxPersonalityDomain::PerLinux32 => 0x0008,
        });
    }
    let make = |m: &CgroupManager, res: &Resources| match &x.cgroup_path {
        Some(p) => m.create_at(p, res),
        None => m.create(l.id, res),
    };
    let sysctl = SysctlPlan::prepare(l.spec, &l.network)?;
    let ns = NsPlan::prepare(l.spec, l.network)?;
    let new_userns = ns.clone_flags & libc::CLONE_NEWUSER as u64 != 0;
    // In a user namespace of its own or joined: the child is root there only.
    let in_userns = new_userns || ns.user_join.is_some();
    let userns = UsernsPlan::prepare(l.spec, new_userns)?;
    let mut mounts = MountPlan::prepare(l.spec, &l.rootfs, l.secrets, in_userns)?;
    if x.tmpfs_keep_mode {
        mounts.keep_tmpfs_modes();
    }
    let mut stdio = StdioPlan::prepare(l.stdio)?;
    stdio.set_console(l.spec.process().as_ref().and_then(|p| p.console_size()));
    let (hooks, mut hooks_parent) = match x.hooks {
        Some(h) => {
            let (plan, parent) = HooksPlan::prepare(h)?;
            (Some(plan), Some(parent))
        }
        None => (None, None),
    };
    // v2 groups are made first, for clone3(CLONE_INTO_CGROUP). v1 groups (one directory
    // per hierarchy, the slower kind) are made while the child sets up its namespaces and
    // mounts; it joins them just before pivot_root.
    let manager = match &l.cgroup_resources {
        Some(_) => Some(CgroupManager::detect().map_err(cgroup_err)?),
        None => None,
    };
    let late = manager
        .as_ref()
        .is_some_and(|m| m.version() == CgroupVersion::V1);
    let mut guard = CgroupGuard(None);
    if let (Some(m), Some(res), false) = (&manager, &l.cgroup_resources, late) {
        guard.0 = Some(make(m, res).map_err(cgroup_err)?);
    }
    let join = match &guard.0 {
        Some(c) => Some(c.join().map_err(cgroup_err)?),
        None => None,
    };
    let late_pipe = if late || l.gate {
        Some(sys::pipe()?)
    } else {
        None
    };
    let (err_r, err_w) = sys::pipe()?;
    let notify = x.seccomp_notify.then(crate::notify::channel).transpose()?;
    process.notify_sock = notify.as_ref().map(|(_, c)| c.as_raw_fd());
    let mut keep: Vec<RawFd> = [err_w.as_raw_fd()]
        .into_iter()
        .chain(join.iter().flat_map(Join::raw_fds))
        .chain(late_pipe.as_ref().map(|(r, _)| r.as_raw_fd()))
        .chain(stdio.pty_fd())
        .chain(ns.keep_fds())
        .chain(mounts.keep_fds())
        .chain(process.hold)
        .chain(process.release)
        .chain(process.notify_sock)
        .chain(userns.as_ref().map(UsernsPlan::keep_fd))
        .chain(hooks.iter().flat_map(HooksPlan::keep_fds))
        .chain(3..3 + x.preserve_fds as RawFd)
        .collect();
    keep.sort_unstable();
    keep.dedup();
    let ctx = ChildCtx {
        errfd: err_w.as_raw_fd(),
        join: join.as_ref(),
        late_join: late_pipe.as_ref().map(|(r, _)| r.as_raw_fd()),
        keep: &keep,
        stdio: &stdio,
        ns: &ns,
        sysctl: &sysctl,
        mounts: &mounts,
        process: &process,
        hooks: hooks.as_ref(),
        init: l.init.then(crate::init::arg_area),
        preserve_fds: x.preserve_fds,
        userns_sync: userns.as_ref().map(UsernsPlan::keep_fd),
        userns_joined: ns.user_join.is_some(),
    };
    let mut pidfd: libc::c_int = -1;
    let mut args = CloneArgs {
        flags: ns.clone_flags | sys::CLONE_PIDFD,
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if let Some(Join::IntoCgroup(fd)) = &join {
        args.flags |= sys::CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    // A pid namespace is joined by the parent for its child (setns of a pid namespace
    // applies to the caller's later children only), and left again right after.
    let pid_back = ns.enter_pid_for_children()?;
    let pid = match &ns.user_join {
        // SAFETY: the container process runs child_main (see below).
        Some(user) => unsafe { userns::clone_joined(user, &args, &|| child_main(&ctx)) },
        None => {
            // SAFETY: the child runs child_main, which only makes system calls on data
            // prepared above and ends in execve or _exit.
            let pid = unsafe { sys::clone3(&mut args) } as i32;
            if pid == 0 {
                child_main(&ctx);
            }
            pid
        }
    };
    if !pid_back.is_empty() {
        namespaces::leave_for_children(pid_back);
    }
    if pid < 0 {
        return Err(RuntimeError::sys("clone3 of the container process"));
    }
    if let Some(u) = userns {
        if let Err(e) = u.map_child(pid) {
            // SAFETY: kill(2) of our own child (which also exits on the EOF), then reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let _ = sys::waitpid(pid);
            return Err(e);
        }
    }
    if let Err(e) = process.apply_oom_score_adj(pid) {
        // SAFETY: kill(2) of our own child, then reaped.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let _ = sys::waitpid(pid);
        return Err(e);
    }
    if pidfd < 0 && ns.user_join.is_some() {
        pidfd = sys::pidfd_open(pid);
    }
    // SAFETY: clone3 (or pidfd_open) gave a fresh pidfd that we now own.
    let pidfd = (pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd) });
    drop(err_w);
    drop(join);
    drop(ns);
    stdio.forget_child_end();
    // What releases the child from its late join: the v1 groups' `tasks` paths (made now,
    // while it sets up), or an empty line for a gated start without them.
    let mut release: Option<(OwnedFd, Vec<u8>)> = None;
    if let Some((r, w)) = late_pipe {
        drop(r);
        let mut paths = Vec::new();
        if let (Some(m), Some(res), true) = (&manager, &l.cgroup_resources, late) {
            match make(m, res) {
                Ok(cg) => {
                    // One burst of joins: on v1 each costs an RCU grace period unless
                    // it follows another closely.
                    let dirs = cg
                        .paths()
                        .into_iter()
                        .chain(x.join_also.iter().map(|p| p.as_path()));
                    if in_userns {
                        // The child, root of its user namespace only, may not write the
                        // host's `tasks` files: the runtime side moves it.
                        let joined = latejoin::from_parent(pid, dirs);
                        guard.0 = Some(cg);
                        if let Err(e) = joined {
                            drop(w);
                            let _ = sys::waitpid(pid);
                            return Err(e);
                        }
                    } else {
                        for d in dirs {
                            paths.extend_from_slice(d.join("tasks").as_os_str().as_bytes());
                            paths.push(b'\n');
                        }
                        guard.0 = Some(cg);
                    }
                }
                Err(e) => {
                    drop(w); // EOF without paths: the child exits
                    let _ = sys::waitpid(pid);
                    return Err(cgroup_err(e));
                }
            }
        }
        if paths.is_empty() {
            paths.push(b'\n');
        }
        release = Some((w, paths));
    }
    let send = |rel: &mut Option<(OwnedFd, Vec<u8>)>| {
        if let Some((w, paths)) = rel.take() {
            // SAFETY: a write from a live buffer to our pipe (a child that already failed
            // makes it EPIPE, which its own report explains).
            unsafe { libc::write(w.as_raw_fd(), paths.as_ptr().cast(), paths.len()) };
        }
    };
    if !l.gate {
        send(&mut release);
    }
    if let Some(work) = l.while_starting {
        if !work(pid) {
            // EOF for a held child, which then exits.
            drop(release);
            drop(exec_release);
            // SAFETY: kill(2) of our own child, then reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let _ = sys::waitpid(pid);
            return Err(RuntimeError::Cancelled);
        }
    }
    send(&mut release);
    if let Some((_, w)) = exec_release {
        // SAFETY: a one-byte write from a stack value to our pipe (EPIPE when the child
        // already failed, which its report explains).
        unsafe { libc::write(w.as_raw_fd(), [1u8].as_ptr().cast(), 1) };
    }
    drop(x.exec_hold);
    let mut report = sys::read_report(err_r.as_raw_fd());
    if let (Some((sys::HOOKS, _)), Some(p)) = (report, hooks_parent.take()) {
        // The child waits before pivot_root: the runtime's hooks, then its own.
        if let Err(e) = p.release(pid) {
            // SAFETY: kill(2) of our own child (which also exits on the EOF), then reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let _ = sys::waitpid(pid);
            return Err(e);
        }
        report = sys::read_report(err_r.as_raw_fd());
    }
    drop(hooks);
    if let Some((stage, err)) = report.filter(|(s, _)| *s != sys::HELD) {
        let _ = sys::waitpid(pid);
        if stage == Stage::Hook as u32 {
            let mut text = Vec::new();
            let _ = std::io::Read::read_to_end(&mut std::fs::File::from(err_r), &mut text);
            return Err(RuntimeError::Hook(
                String::from_utf8_lossy(&text).into_owned(),
            ));
        }
        return Err(
            match (
                process.error_for(stage, err),
                mounts.describe(stage).or_else(|| sysctl.describe(stage)),
            ) {
                (RuntimeError::Setup { stage, source, .. }, Some(detail)) => RuntimeError::Setup {
                    stage,
                    detail,
                    source,
                },
                (e, _) => e,
            },
        );
    }
    Ok(Running {
        pid,
        pty_master: stdio.master(),
        cgroup: guard.0.take(),
        pidfd,
        seccomp_listener: notify.and_then(|(p, _)| crate::notify::parent_recv(&p)),
    })
}
