//! gcr-oci: gcr's executor behind runc's command line (`gcr-runc`, `gcr oci`).
//!
//! A container is a standard OCI bundle (`config.json` + a root directory) started by
//! gcr-runtime's [`gcr_runtime::spawn_with`]; its state lives in `<root>/<id>/state.json`
//! (see [`state`]) so later invocations find it. `create` leaves the process held right
//! before execve, reading the container's `exec.fifo`; `start` writes the byte that
//! releases it (runc's model). [`bundle`] turns a config into the runtime's inputs and
//! refuses what gcr does not implement, naming the field; [`docs`] holds the `spec` and
//! `features` documents. Nothing here touches gcr's store.

pub mod bundle;
mod cgroup;
mod cgroup_extra;
mod console;
pub mod docs;
mod error;
mod events;
mod exec;
mod hooks;
mod launch;
mod lifecycle;
mod linux_extra;
mod notify;
pub mod seccomp;
pub mod state;
mod userns;

pub use error::OciError;
pub use events::stats_json;
pub use exec::Exec;
pub use lifecycle::{Create, Oci, Run};
pub use state::{State, Status};

pub use gcr_core::time::format_rfc3339 as time_rfc3339;
pub use gcr_core::units::{parse_duration, parse_signal};
pub use oci_spec::runtime::LinuxResources;
