//! The last part of starting any container process (for `run` and `exec` alike): rlimits,
//! groups and user, capabilities, no_new_privs, seccomp, working directory, signal reset
//! and execve with a `$PATH` search inside the container.
//!
//! [`ProcessPlan::prepare`] does all allocation in the parent; [`ProcessPlan::finish`] runs in
//! the child and only makes system calls.

use std::ffi::CString;
use std::os::fd::RawFd;
use std::ptr;

use libc::c_char;
use oci_spec::runtime::{Capabilities, Capability, PosixRlimitType, Process};

use crate::error::Stage;
use crate::sys::{child_fail, errno};
use crate::{RuntimeError, SeccompMode};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's default capability set as a mask (CapBnd 00000000a80425fb).
pub const DOCKER_DEFAULT_CAPS: u64 = crate::caps::DOCKER_DEFAULT_MASK;

/// Everything the child needs to become the user's process, prepared before clone.
pub(crate) struct ProcessPlan {
    rlimits: Vec<(u32, libc::rlimit)>,
    /// `process.oomScoreAdj` as the text written to /proc/PID/oom_score_adj.
    oom_score_adj: Option<CString>,
    uid: u32,
    gid: u32,
    groups: Vec<libc::gid_t>,
    umask: u32,
    caps: u64,
    /// All five sets as given (gcr-runc); None: `caps` for bounding, effective and
    /// permitted, nothing inheritable or ambient (the engine's Docker semantics).
    sets: Option<crate::caps::CapSets>,
    nnp: bool,
    /// The filter and its SECCOMP_FILTER_FLAG_* flags.
    seccomp: Option<(&'static [libc::sock_filter], u32)>,
    cwd: CString,
    /// Create cwd when it is missing (`run -w`, not `exec`).
    cwd_create: bool,
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const c_char>,
    _env: Vec<CString>,
    env_ptrs: Vec<*const c_char>,
    candidates: Vec<CString>,
    /// argv[0], for error messages.
    pub(crate) name: String,
    /// Held before execve until a byte arrives here (see [`crate::Extras::exec_hold`]).
    pub(crate) hold: Option<RawFd>,
    /// Waits before execve, silently, until a byte arrives here (exits on EOF): the
    /// command runs only once the caller's `while_starting` work (the container's row and
    /// its `start` in the ledger) is done, so a caller killed meanwhile leaves no process
    /// that ran unrecorded.
    pub(crate) release: Option<RawFd>,
    /// Where the filter's listener descriptor goes (SCMP_ACT_NOTIFY; see `notify.rs`).
    pub(crate) notify_sock: Option<RawFd>,
    /// `linux.personality` (PER_LINUX or PER_LINUX32), set right before execve.
    pub(crate) personality: Option<libc::c_ulong>,
}

impl Drop for ProcessPlan {
    /// The environment may hold secret values (`grant://` entries filled by the engine):
    /// wiped before the memory is freed.
    fn drop(&mut self) {
        self.env_ptrs.clear();
        for e in std::mem::take(&mut self._env) {
            zeroize::Zeroize::zeroize(&mut e.into_bytes_with_nul());
        }
    }
}

fn cstring(s: &str, what: &str) -> Result<CString, RuntimeError> {
    CString::new(s)
        .map_err(|_| RuntimeError::InvalidSpec(format!("{what} {s:?} contains a NUL byte")))
}

/// The capability number of an OCI capability name.
pub fn cap_number(c: &Capability) -> u32 {
    use Capability::*;
    match c {
        Chown => 0,
        DacOverride => 1,
        DacReadSearch => 2,
        Fowner => 3,
        Fsetid => 4,
        Kill => 5,
        Setgid => 6,
        Setuid => 7,
        Setpcap => 8,
        LinuxImmutable => 9,
        NetBindService => 10,
        NetBroadcast => 11,
        NetAdmin => 12,
        NetRaw => 13,
        IpcLock => 14,
        IpcOwner => 15,
        SysModule => 16,
        SysRawio => 17,
        SysChroot => 18,
        SysPtrace => 19,
        SysPacct => 20,
        SysAdmin => 21,
        SysBoot => 22,
        SysNice => 23,
        SysResource => 24,
        SysTime => 25,
        SysTtyConfig => 26,
        Mknod => 27,
        Lease => 28,
        AuditWrite => 29,
        AuditControl => 30,
        Setfcap => 31,
        MacOverride => 32,
        MacAdmin => 33,
        Syslog => 34,
        WakeAlarm => 35,
        BlockSuspend => 36,
        AuditRead => 37,
        Perfmon => 38,
        Bpf => 39,
        CheckpointRestore => 40,
    }
}

/// The capability mask of a process: its bounding set, or Docker's default when absent.
pub fn caps_mask(process: &Process) -> u64 {
    match process
        .capabilities()
        .as_ref()
        .and_then(|c| c.bounding().as_ref())
    {
        Some(set) => set.iter().fold(0u64, |m, c| m | (1u64 << cap_number(c))),
        None => DOCKER_DEFAULT_CAPS,
    }
}

fn rlimit_resource(t: PosixRlimitType) -> u32 {
    use PosixRlimitType::*;
    #[allow(clippy::unnecessary_cast)] // the libc type differs between targets
    let r = match t {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
    } as u32;
    r
}

impl ProcessPlan {
    pub(crate) fn prepare(
        process: &Process,
        seccomp: SeccompMode,
    ) -> Result<ProcessPlan, RuntimeError> {
        let args = process.args().as_deref().unwrap_or(&[]);
        let Some(name) = args.first().cloned() else {
            return Err(RuntimeError::InvalidSpec(
                "the process has no command; give a command or an entrypoint".into(),
            ));
        };
        if name.is_empty() {
            return Err(RuntimeError::NotFound(name));
        }
        let argv = args
            .iter()
            .map(|a| cstring(a, "argument"))
            .collect::<Result<Vec<_>, _>>()?;
        let env_list = process.env().as_deref().unwrap_or(&[]);
        let env = env_list
            .iter()
            .map(|e| cstring(e, "environment entry"))
            .collect::<Result<Vec<_>, _>>()?;
        let path = env_list
            .iter()
            .rev()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(DEFAULT_PATH);
        let candidates = if name.contains('/') {
            vec![cstring(&name, "command")?]
        } else {
            path.split(':')
                .map(|d| if d.is_empty() { "." } else { d })
                .map(|d| cstring(&format!("{}/{}", d.trim_end_matches('/'), name), "command"))
                .collect::<Result<Vec<_>, _>>()?
        };
        let mut rlimits = Vec::new();
        for r in process.rlimits().as_deref().unwrap_or(&[]) {
            let res = rlimit_resource(r.typ());
            let mut cur = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: cur is a valid out-pointer; the resource number comes from the table.
            if unsafe { libc::getrlimit(res as _, &mut cur) } != 0 {
                return Err(RuntimeError::sys("getrlimit"));
            }
            let hard = r.hard().min(cur.rlim_max);
            rlimits.push((
                res,
                libc::rlimit {
                    rlim_cur: r.soft().min(hard),
                    rlim_max: hard,
                },
            ));
        }
        let caps = caps_mask(process);
        let user = process.user();
        let cwd = process.cwd().to_string_lossy();
        if !cwd.starts_with('/') {
            return Err(RuntimeError::InvalidSpec(format!(
                "the working directory {cwd:?} is not absolute; give an absolute path with -w"
            )));
        }
        let argv_ptrs = argv
            .iter()
            .map(|a| a.as_ptr())
            .chain([ptr::null()])
            .collect();
        let env_ptrs = env
            .iter()
            .map(|a| a.as_ptr())
            .chain([ptr::null()])
            .collect();
        let oom_score_adj = match process.oom_score_adj() {
            Some(a) if (-1000..=1000).contains(&a) => Some(cstring(&a.to_string(), "oomScoreAdj")?),
            Some(a) => {
                return Err(RuntimeError::InvalidSpec(format!(
                    "oomScoreAdj {a} is outside -1000..1000; give a value in that range"
                )))
            }
            None => None,
        };
        Ok(ProcessPlan {
            rlimits,
            oom_score_adj,
            uid: user.uid(),
            gid: user.gid(),
            groups: user.additional_gids().clone().unwrap_or_default(),
            umask: user.umask().unwrap_or(0o022),
            caps,
            sets: None,
            nnp: process.no_new_privileges().unwrap_or(false),
            seccomp: match seccomp {
                SeccompMode::DockerDefault => Some((crate::seccomp::default_program(caps), 0)),
                SeccompMode::Unconfined => None,
                SeccompMode::Custom(f) => Some((f.0, f.1)),
            },
            cwd_create: true,
            cwd: cstring(&cwd, "working directory")?,
            _argv: argv,
            argv_ptrs,
            _env: env,
            env_ptrs,
            candidates,
            name,
            hold: None,
            release: None,
            notify_sock: None,
            personality: None,
        })
    }

    /// Maps a child report at [`Stage::Exec`] or another stage to the caller's error.
    pub(crate) fn error_for(&self, stage: u32, err: i32) -> RuntimeError {
        let stage = Stage::from_u32(stage);
        let source = std::io::Error::from_raw_os_error(err);
        match (stage, err) {
            (Stage::Exec, libc::ENOENT) | (Stage::Exec, libc::ENOTDIR) => {
                RuntimeError::NotFound(self.name.clone())
            }
            (Stage::Exec, libc::EACCES)
            | (Stage::Exec, libc::ENOEXEC)
            | (Stage::Exec, libc::EPERM)
            | (Stage::Exec, libc::EISDIR) => RuntimeError::NotExecutable {
                cmd: self.name.clone(),
                source,
            },
            (Stage::Cwd, _) => RuntimeError::Setup {
                stage,
                detail: format!(" {:?}", self.cwd),
                source,
            },
            _ => RuntimeError::Setup {
                stage,
                detail: String::new(),
                source,
            },
        }
    }

    fn install_seccomp(&self, errfd: RawFd) {
        if let Some((prog, flags)) = self.seccomp {
            let listener = libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32;
            let flags = match self.notify_sock {
                Some(_) => flags | listener,
                None => flags & !listener,
            };
            match (crate::seccomp::install(prog, flags), self.notify_sock) {
                (Err(_), _) => child_fail(errfd, Stage::Seccomp as u32, errno()),
                (Ok(fd), Some(sock)) if !crate::notify::child_send(sock, fd) => {
                    child_fail(errfd, Stage::Seccomp as u32, errno())
                }
                _ => {}
            }
        }
    }

    /// Child side, before the user switch: rlimits (and seccomp when no_new_privs is off,
    /// because installing it later would need CAP_SYS_ADMIN).
    pub(crate) fn limits(&self, errfd: RawFd) {
        for (res, lim) in &self.rlimits {
            // SAFETY: lim is a valid rlimit value prepared by the parent.
            if unsafe { libc::setrlimit(*res as _, lim) } != 0 {
                child_fail(errfd, Stage::Rlimit as u32, errno());
            }
        }
    }

    /// Parent side, right after clone: the child's `process.oomScoreAdj` (written from
    /// here, as runc does: lowering it needs CAP_SYS_RESOURCE, which the container may
    /// not have); the command inherits it through execve.
    pub(crate) fn apply_oom_score_adj(&self, pid: i32) -> Result<(), RuntimeError> {
        let Some(adj) = &self.oom_score_adj else {
            return Ok(());
        };
        let p = format!("/proc/{pid}/oom_score_adj");
        std::fs::write(&p, adj.as_bytes()).map_err(|e| {
            let why = if e.raw_os_error() == Some(libc::EACCES) {
                ": lowering it needs CAP_SYS_RESOURCE, which this process lacks; give 0 or more"
            } else {
                ""
            };
            RuntimeError::Caps(format!(
                "cannot set the OOM score adjustment to {} ({e}){why}",
                adj.to_string_lossy()
            ))
        })
    }

    /// Apply the five capability sets of `process` as given (a missing set is empty), as
    /// runc does, instead of the bounding set everywhere.
    pub(crate) fn exact_caps(&mut self, process: &Process) {
        let c = process.capabilities().as_ref();
        let mask = |set: Option<&Capabilities>| {
            set.map(|s| s.iter().fold(0u64, |m, c| m | (1u64 << cap_number(c))))
                .unwrap_or(0)
        };
        self.sets = Some(crate::caps::CapSets {
            bounding: mask(c.and_then(|c| c.bounding().as_ref())),
            effective: mask(c.and_then(|c| c.effective().as_ref())),
            permitted: mask(c.and_then(|c| c.permitted().as_ref())),
            inheritable: mask(c.and_then(|c| c.inheritable().as_ref())),
            ambient: mask(c.and_then(|c| c.ambient().as_ref())),
        });
    }

    /// Do not create a missing working directory (for `exec`, as Docker).
    pub(crate) fn no_cwd_create(&mut self) {
        self.cwd_create = false;
    }

    /// Child side: changes to the working directory, creating it (as root, like Docker's
    /// `-w`) when it is missing. Runs inside the new root with no host descriptor open, so
    /// a path like /proc/self/fd/N cannot reach a host directory (CVE-2024-21626). Missing
    /// parts are made where the container sees them: through the image's symlinks,
    /// resolved inside the root (see `mounts::walk`).
    fn chdir(&self, errfd: RawFd) {
        // SAFETY: chdir/open/fchdir on NUL-terminated strings prepared by the parent and on
        // descriptors opened here.
        unsafe {
            if libc::chdir(self.cwd.as_ptr()) == 0 {
                return;
            }
            if errno() != libc::ENOENT || !self.cwd_create {
                child_fail(errfd, Stage::Cwd as u32, errno());
            }
            let root = libc::open(
                c"/".as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            );
            if root < 0 {
                child_fail(errfd, Stage::Cwd as u32, errno());
            }
            let fd = crate::mounts::create_in_root(root, &self.cwd)
                .unwrap_or_else(|e| child_fail(errfd, Stage::Cwd as u32, e));
            libc::close(root);
            if libc::fchdir(fd) != 0 {
                child_fail(errfd, Stage::Cwd as u32, errno());
            }
            libc::close(fd);
        }
    }

    /// Child side: everything from the user switch to execve. Never returns.
    /// With `init` (the caller's command line area, see [`crate::init::arg_area`]), pid 1
    /// becomes the reaper and the command runs in its child.
    /// `after_hold` runs once a held process is released (the `startContainer` hooks).
    pub(crate) fn finish(
        &self,
        errfd: RawFd,
        init: Option<crate::init::ArgArea>,
        after_hold: &dyn Fn(),
    ) -> ! {
        self.chdir(errfd);
        if !self.nnp {
            self.install_seccomp(errfd);
        }
        // SAFETY: plain system calls on values prepared by the parent.
        unsafe {
            if self.uid != 0 && crate::caps::keep_caps_for_setuid().is_err() {
                child_fail(errfd, Stage::User as u32, errno());
            }
            // Raw system calls, not glibc's wrappers: the child is a copy of a parent that
            // may have had other threads, and glibc would try to switch their ids too and
            // wait forever for threads that do not exist here.
            if libc::syscall(libc::SYS_setgroups, self.groups.len(), self.groups.as_ptr()) != 0
                || libc::syscall(libc::SYS_setresgid, self.gid, self.gid, self.gid) != 0
                || libc::syscall(libc::SYS_setresuid, self.uid, self.uid, self.uid) != 0
            {
                child_fail(errfd, Stage::User as u32, errno());
            }
        }
        let applied = match &self.sets {
            Some(s) => crate::caps::apply_sets(s),
            None => crate::caps::apply(self.caps),
        };
        if applied.is_err() {
            child_fail(errfd, Stage::Capabilities as u32, errno());
        }
        if self.nnp {
            // SAFETY: prctl with integer arguments.
            if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
                child_fail(errfd, Stage::NoNewPrivs as u32, errno());
            }
            self.install_seccomp(errfd);
        }
        // SAFETY: umask and sigprocmask on stack values.
        unsafe {
            libc::umask(self.umask as libc::mode_t);
        }
        if let Some(p) = self.personality {
            // SAFETY: personality(2) with an integer argument.
            if unsafe { libc::personality(p) } < 0 {
                child_fail(errfd, Stage::Personality as u32, errno());
            }
        }
        if let Some(fd) = self.hold {
            // A command that cannot run fails the create, as with runc, not the later start.
            self.check_executable(errfd);
            crate::sys::hold(errfd, fd);
            after_hold();
        }
        if let Some(fd) = self.release {
            crate::sys::wait_release(fd);
        }
        if let Some(args) = init {
            crate::init::run_reaper(errfd, self, args)
        }
        self.exec(errfd)
    }

    /// Child side: fails (as the exec would) unless a `$PATH` candidate is an executable
    /// regular file for this process.
    fn check_executable(&self, errfd: RawFd) {
        let mut err = libc::ENOENT;
        for c in &self.candidates {
            // SAFETY: stat/faccessat on a NUL-terminated path into a stack buffer.
            unsafe {
                let mut st: libc::stat = std::mem::zeroed();
                if libc::stat(c.as_ptr(), &mut st) != 0 {
                    continue;
                }
                if st.st_mode & libc::S_IFMT != libc::S_IFREG {
                    err = libc::EACCES;
                    continue;
                }
                if libc::faccessat(libc::AT_FDCWD, c.as_ptr(), libc::X_OK, libc::AT_EACCESS) == 0 {
                    return;
                }
                err = errno();
            }
        }
        child_fail(errfd, Stage::Exec as u32, err)
    }

    /// Child side: resets signals and tries each `$PATH` candidate. Never returns.
    pub(crate) fn exec(&self, errfd: RawFd) -> ! {
        reset_signals();
        let mut denied = 0;
        for c in &self.candidates {
            // SAFETY: the candidate, argv and envp arrays are NUL-terminated and outlive the call.
            unsafe { libc::execve(c.as_ptr(), self.argv_ptrs.as_ptr(), self.env_ptrs.as_ptr()) };
            match errno() {
                libc::ENOENT | libc::ENOTDIR => {}
                libc::EACCES | libc::EPERM | libc::EISDIR if self.candidates.len() > 1 => {
                    denied = errno()
                }
                e => child_fail(errfd, Stage::Exec as u32, e),
            }
        }
        child_fail(
            errfd,
            Stage::Exec as u32,
            if denied != 0 { denied } else { libc::ENOENT },
        )
    }
}

/// Restores default dispositions of signals a parent commonly ignores and unblocks all.
pub(crate) fn reset_signals() {
    // SAFETY: signal and sigprocmask with stack values are async-signal-safe.
    unsafe {
        for s in [
            libc::SIGPIPE,
            libc::SIGINT,
            libc::SIGQUIT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGTSTP,
            libc::SIGTTIN,
            libc::SIGTTOU,
            libc::SIGCHLD,
            libc::SIGUSR1,
            libc::SIGUSR2,
            libc::SIGWINCH,
        ] {
            libc::signal(s, libc::SIG_DFL);
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, ptr::null_mut());
    }
}
