//! Errors of the executor and the stage codes the child reports through its error pipe.
//!
//! The child cannot allocate, so it reports a failure as two integers (stage, errno); the
//! parent turns them into a [`RuntimeError`] that the CLI maps to Docker's exit codes with
//! [`RuntimeError::exit_code`].

use std::io;

/// Where in the container start a failure happened (sent by the child as a u32).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Sync = 1,
    Namespace,
    Propagation,
    RootfsMount,
    Mount,
    Devices,
    PivotRoot,
    MaskPaths,
    ReadonlyPaths,
    Hostname,
    Loopback,
    Rlimit,
    User,
    Capabilities,
    NoNewPrivs,
    Seccomp,
    Cwd,
    Stdio,
    Exec,
    Init,
    Cgroup,
    Secrets,
    Hook,
    Sysctl,
    Personality,
}

impl Stage {
    pub(crate) fn from_u32(v: u32) -> Stage {
        use Stage::*;
        const ALL: [Stage; 25] = [
            Sync,
            Namespace,
            Propagation,
            RootfsMount,
            Mount,
            Devices,
            PivotRoot,
            MaskPaths,
            ReadonlyPaths,
            Hostname,
            Loopback,
            Rlimit,
            User,
            Capabilities,
            NoNewPrivs,
            Seccomp,
            Cwd,
            Stdio,
            Exec,
            Init,
            Cgroup,
            Secrets,
            Hook,
            Sysctl,
            Personality,
        ];
        let v = v & 0xff;
        ALL.iter().copied().find(|s| *s as u32 == v).unwrap_or(Sync)
    }

    fn describe(self) -> &'static str {
        match self {
            Stage::Sync => "synchronising with the runtime",
            Stage::Namespace => "joining or creating namespaces",
            Stage::Propagation => "making the mount namespace private",
            Stage::RootfsMount => "mounting the root filesystem",
            Stage::Mount => "mounting a spec mount",
            Stage::Devices => "creating /dev nodes",
            Stage::PivotRoot => "pivoting into the root filesystem",
            Stage::MaskPaths => "masking paths",
            Stage::ReadonlyPaths => "making paths read-only",
            Stage::Hostname => "setting the hostname",
            Stage::Loopback => "bringing up the loopback interface",
            Stage::Rlimit => "setting rlimits",
            Stage::User => "switching user and groups",
            Stage::Capabilities => "applying capabilities",
            Stage::NoNewPrivs => "setting no_new_privs",
            Stage::Seccomp => "installing the seccomp filter",
            Stage::Cwd => "changing to the working directory",
            Stage::Stdio => "setting up stdio",
            Stage::Exec => "executing the command",
            Stage::Init => "starting the init reaper",
            Stage::Cgroup => "joining the cgroup",
            Stage::Secrets => "writing the secrets to their tmpfs",
            Stage::Hook => "running a hook",
            Stage::Sysctl => "writing the sysctl",
            Stage::Personality => "setting linux.personality",
        }
    }
}

/// Everything that can go wrong while starting or joining a container.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The command was not found in the container (Docker exit code 127).
    #[error("exec: \"{0}\": executable file not found in $PATH")]
    NotFound(String),
    /// The command exists but cannot be executed (Docker exit code 126).
    #[error("exec: \"{cmd}\": permission denied or not executable ({source})")]
    NotExecutable { cmd: String, source: io::Error },
    /// The container child failed at a setup stage (exit code 125).
    #[error("container setup failed while {}{}: {source}", .stage.describe(), .detail)]
    Setup {
        stage: Stage,
        detail: String,
        source: io::Error,
    },
    /// The runtime spec cannot be executed as given; fix the spec or the flags.
    #[error("invalid runtime spec: {0}")]
    InvalidSpec(String),
    /// A host-side system call failed.
    #[error("{what} failed: {source}")]
    Sys {
        what: &'static str,
        source: io::Error,
    },
    /// Creating or joining the cgroup failed.
    #[error("cgroup setup failed: {0}")]
    Cgroup(String),
    /// Applying the capability set failed.
    #[error("capability setup failed: {0}")]
    Caps(String),
    /// An OCI hook failed (the message names it).
    #[error("{0}")]
    Hook(String),
    /// The caller's [`crate::Launch::while_starting`] work failed; the child was killed.
    #[error("the start was cancelled by the caller")]
    Cancelled,
}

impl RuntimeError {
    /// The process exit code Docker uses for this failure: 127, 126 or 125.
    pub fn exit_code(&self) -> i32 {
        match self {
            RuntimeError::NotFound(_) => 127,
            RuntimeError::NotExecutable { .. } => 126,
            _ => 125,
        }
    }

    pub(crate) fn sys(what: &'static str) -> RuntimeError {
        RuntimeError::Sys {
            what,
            source: io::Error::last_os_error(),
        }
    }
}

/// How a container process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(i32),
    Signaled(i32),
}

impl ExitStatus {
    /// The exit code Docker reports: the code itself, or 128 + signal number.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => c,
            ExitStatus::Signaled(s) => 128 + s,
        }
    }

    pub(crate) fn from_wait(status: i32) -> ExitStatus {
        if libc::WIFSIGNALED(status) {
            ExitStatus::Signaled(libc::WTERMSIG(status))
        } else {
            ExitStatus::Exited(libc::WEXITSTATUS(status))
        }
    }
}
