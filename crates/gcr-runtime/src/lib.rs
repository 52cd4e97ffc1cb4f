//! gcr-runtime: Linux execution of an OCI runtime-spec config (being written).

pub mod caps;
pub mod cgroups;
pub mod seccomp;
