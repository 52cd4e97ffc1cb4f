//! gcr-runtime: Linux execution of an OCI runtime-spec config.
//!
//! [`spawn`] starts a container (namespaces, overlay root, /proc /dev /sys, masked paths,
//! capabilities, seccomp, rlimits, cgroup) with a single clone3 and returns once the user's
//! command has been exec'd; [`exec_in`] runs another process inside it; [`wait_exit`] reaps;
//! [`pty::relay`] and [`signal_forwarder`] serve a foreground `run`.
//!
//! Caller obligations: [`Running::cgroup`] belongs to the caller, who destroys it after
//! [`wait_exit`]; a failed [`spawn`] has already removed its cgroup and reaped its child.
//! [`RuntimeError::exit_code`] gives Docker's 125/126/127 and [`ExitStatus::code`] the
//! container's code (128 + signal when killed). Create the [`SignalForwarder`] before other
//! threads start and keep SIGWINCH out of it when [`pty::relay`] runs.

pub mod caps;
pub mod cgroups;
pub mod seccomp;
pub mod users;

mod error;
mod exec;
pub mod hooks;
mod init;
mod latejoin;
pub mod layerfs;
mod mountopts;
mod mounts;
mod namespaces;
mod notify;
mod process;
pub mod pty;
mod spawn;
mod stdio;
mod sys;
mod sysctl;
mod timens;
mod userns;
mod wait;

pub use error::{ExitStatus, RuntimeError, Stage};
pub use exec::{exec_in, exec_in_with};
pub use mounts::SecretFile;
pub use namespaces::LoopbackNetns;
pub use process::{cap_number, caps_mask, DOCKER_DEFAULT_CAPS};
pub use spawn::{spawn, spawn_with, Extras, Launch, Network, Rootfs, Running, SeccompMode, Stdio};
pub use sysctl::sysctl_namespace;
pub use wait::{signal_forwarder, wait_exit, SignalForwarder};
