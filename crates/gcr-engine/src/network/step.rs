//! The network of a build step (`RUN` in a Dockerfile, as docker build gives it): a
//! namespace wired to the default `bridge` network like a container's, with an address
//! leased in the store under an owner that names the building process, and the
//! `/etc/hosts` and `/etc/resolv.conf` a container on that network gets (written in the
//! step's own directory and bind-mounted). A build killed mid-step leaves a lease whose
//! owner is gone: the next lease reclaims it (see [`stale_owner`]).

use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::path::Path;

use oci_spec::runtime::Mount;

use super::db;
use super::{host_socket, DEFAULT};
use crate::container::procfs;
use crate::{Engine, EngineError};

/// Owners of build-step leases start with this (container ids are hex).
const OWNER_PREFIX: &str = "build:";

/// A build step on the default network; [`Engine::step_detach`] releases it.
pub struct StepNet {
    owner: String,
    /// The namespace (the step's processes join it through `/proc/self/fd/N`).
    pub netns: OwnedFd,
    pub ip: Ipv4Addr,
    /// `/etc/hosts` and `/etc/resolv.conf` for the step.
    pub mounts: Vec<Mount>,
}

/// Whether a lease owner is a build step whose process is gone (its lease can go).
pub(crate) fn stale_owner(owner: &str) -> bool {
    let Some(rest) = owner.strip_prefix(OWNER_PREFIX) else {
        return false;
    };
    let mut parts = rest.split(':');
    let pid = parts.next().and_then(|p| p.parse::<i32>().ok());
    let start = parts.next().and_then(|s| s.parse::<u64>().ok());
    match (pid, start) {
        (Some(pid), Some(start)) => !procfs::running(pid, start),
        _ => true,
    }
}

/// The lease owner for step `step_id` of this process.
fn owner(step_id: &str) -> String {
    let pid = std::process::id() as i32;
    let start = procfs::start_time(pid).unwrap_or(0);
    format!(
        "{OWNER_PREFIX}{pid}:{start}:{}",
        &step_id[..12.min(step_id.len())]
    )
}

impl Engine {
    /// Attaches build step `step_id` to the default network; its files go in `dir`.
    pub fn step_attach(
        &self,
        step_id: &str,
        hostname: &str,
        dir: &Path,
    ) -> Result<StepNet, EngineError> {
        let net = self.default_network()?;
        let (ep, attached) = self.lease_and_wire(
            &net,
            owner(step_id),
            hostname.to_string(),
            format!("gb{}", &step_id[..12.min(step_id.len())]),
            (None, None),
            None,
        );
        let attached = attached.map_err(|e| match e {
            EngineError::Internal(m) => EngineError::Internal(format!(
                "cannot attach the build step to network {DEFAULT}: {m}"
            )),
            other => other,
        });
        let done = attached.and_then(|fd| {
            Ok((
                fd,
                super::files::step_files(
                    dir,
                    hostname,
                    super::files::Files::Bridge {
                        ips: &ep.ips(),
                        peers: &[],
                        resolv: None,
                    },
                )?,
            ))
        });
        match done {
            Ok((netns, mounts)) => Ok(StepNet {
                owner: ep.container,
                netns,
                ip: ep.ip,
                mounts,
            }),
            Err(e) => {
                self.step_release(&ep.container, Some(&ep.veth));
                Err(e)
            }
        }
    }

    /// Releases what [`Engine::step_attach`] set up once the step's processes are gone:
    /// the lease now, the veth pair with the namespace (when its descriptor closes).
    pub fn step_detach(&self, net: StepNet) {
        let StepNet { owner, netns, .. } = net;
        drop(netns);
        self.step_release(&owner, None);
    }

    fn step_release(&self, owner: &str, veth: Option<&str>) {
        if let Some(v) = veth {
            if let Ok(mut s) = host_socket() {
                let _ = gcr_net::link::delete(&mut s, v);
            }
        }
        if let Ok(store) = self.store() {
            let _ = store.transaction(|tx| db::delete_endpoint(tx, owner));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_name_their_process_and_only_dead_ones_are_stale() {
        let own = owner(&"ab".repeat(32));
        assert!(own.starts_with("build:"), "{own}");
        assert!(own.ends_with(":abababababab"), "{own}");
        assert!(!stale_owner(&own), "this process lives: {own}");
        // The same pid with another start time is another process.
        let pid = std::process::id();
        assert!(stale_owner(&format!("build:{pid}:1:abababababab")));
        assert!(stale_owner("build:junk"));
        // Container ids are never build owners.
        assert!(!stale_owner(&"cd".repeat(32)));
    }
}
