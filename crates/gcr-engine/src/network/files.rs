//! The per-container `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname`: written under the
//! container's run-time directory and bind-mounted over the image's. Hosts files of a
//! user-defined network's members are rewritten in place (the bind mount pins the inode)
//! whenever a member joins or leaves, so containers reach each other by name.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;

use oci_spec::runtime::{Mount, MountBuilder};

use super::db::{self, Endpoint};
use crate::container::record::Record;
use crate::{Engine, EngineError};

/// What the container's files should say.
pub(crate) enum Files<'a> {
    /// Private namespace with only loopback.
    Loopback,
    /// The host's namespace: the host's own hosts and resolv.conf.
    Host,
    /// A bridge network address, with the other members to list (user networks).
    Bridge { ip: Ipv4Addr, peers: &'a [Endpoint] },
}

fn bind(dest: &str, src: &Path) -> Result<Mount, EngineError> {
    MountBuilder::default()
        .destination(dest)
        .typ("bind")
        .source(src)
        .options(vec!["rbind".to_string(), "rprivate".to_string()])
        .build()
        .map_err(|e| EngineError::Internal(format!("mount {dest}: {e}")))
}

/// Writes `text` into `path` in place (keeping the inode a bind mount may pin).
fn write_in_place(path: &Path, text: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    f.write_all(text.as_bytes())
}

fn peer_lines(own: &str, peers: &[Endpoint]) -> Vec<(Ipv4Addr, String)> {
    peers
        .iter()
        .filter(|p| p.container != own)
        .map(|p| (p.ip, p.names.clone()))
        .collect()
}

impl Engine {
    /// Writes the files for `r` and returns their bind mounts.
    pub(crate) fn net_files(&self, r: &Record, what: Files<'_>) -> Result<Vec<Mount>, EngineError> {
        let dir = self.make_container_run_dir(&r.id)?;
        let hostname = &r.config.resolved.hostname;
        let names = own_names(r);
        let names: Vec<&str> = names.split(' ').collect();
        let (hosts, resolv) = match what {
            Files::Loopback => (gcr_net::resolv::hosts_file(None, &names, &[]), None),
            Files::Host => (
                std::fs::read_to_string("/etc/hosts")
                    .unwrap_or_else(|_| gcr_net::resolv::hosts_file(None, &names, &[])),
                Some(std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default()),
            ),
            Files::Bridge { ip, peers } => (
                gcr_net::resolv::hosts_file(Some(ip), &names, &peer_lines(&r.id, peers)),
                Some(gcr_net::resolv::container_resolv_conf()),
            ),
        };
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |e| EngineError::Io(format!("writing {}", p.display()), e)
        };
        let mut mounts = Vec::with_capacity(3);
        let p = dir.join("hosts");
        write_in_place(&p, &hosts).map_err(io(&p))?;
        mounts.push(bind("/etc/hosts", &p)?);
        let p = dir.join("hostname");
        write_in_place(&p, &format!("{hostname}\n")).map_err(io(&p))?;
        mounts.push(bind("/etc/hostname", &p)?);
        if let Some(text) = resolv {
            let p = dir.join("resolv.conf");
            write_in_place(&p, &text).map_err(io(&p))?;
            mounts.push(bind("/etc/resolv.conf", &p)?);
        }
        Ok(mounts)
    }

    /// Rewrites the hosts file of every member of `network` from the current endpoints.
    /// Runs inside the caller's write transaction so concurrent joins cannot interleave.
    pub(crate) fn refresh_hosts(&self, conn: &rusqlite::Connection, network: &str) {
        let Ok(members) = db::endpoints_on(conn, network) else {
            return;
        };
        for m in &members {
            let names: Vec<&str> = m.names.split(' ').collect();
            let text = gcr_net::resolv::hosts_file(
                Some(m.ip),
                &names,
                &peer_lines(&m.container, &members),
            );
            let p = self.container_run_dir(&m.container).join("hosts");
            if p.exists() {
                let _ = write_in_place(&p, &text);
            }
        }
    }
}

/// The names a container answers to: its hostname and its name.
pub(crate) fn own_names(r: &Record) -> String {
    let h = &r.config.resolved.hostname;
    if *h == r.name {
        h.clone()
    } else {
        format!("{h} {}", r.name)
    }
}
