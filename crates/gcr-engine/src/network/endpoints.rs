//! A container's further networks (`eth1`, `eth2`, ...): wiring them into its namespace at
//! start after the first, live into a running container's namespace (`network connect`),
//! and releasing one endpoint (`network disconnect`). The first network (`eth0`) is
//! made with the namespace itself (`attach_bridge`); a container with one network never
//! comes here.

use std::net::Ipv4Addr;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};

use gcr_net::netns;

use super::db::{self, Endpoint, NetRow};
use super::files::names_with;
use super::{host_socket, publish, DEFAULT};
use crate::container::config::NetworkJoin;
use crate::container::record::Record;
use crate::{Engine, EngineError};

/// The host end of the veth pair of interface `ifname` of container `id`: `gv<id12>` for
/// `eth0` (as always), `gv<id10>n<N>` for `ethN` (`n` is no hex digit: no clash).
pub(crate) fn veth_name(id: &str, ifname: &str) -> String {
    match ifname.strip_prefix("eth") {
        Some("0") | None => format!("gv{}", &id[..12.min(id.len())]),
        Some(n) => format!("gv{}n{n}", &id[..10.min(id.len())]),
    }
}

/// The lowest `ethN` that none of `eps` uses.
pub(crate) fn free_ifname(eps: &[Endpoint]) -> String {
    (0..)
        .map(|n| format!("eth{n}"))
        .find(|i| !eps.iter().any(|e| &e.ifname == i))
        .unwrap_or_else(|| "eth0".into())
}

/// The aliases `r` has on `network` (its first network's, or a further one's).
pub(crate) fn aliases_on<'a>(r: &'a Record, network: &str) -> &'a [String] {
    if r.config.resolved.network == network {
        return &r.config.opts.network_aliases;
    }
    r.config
        .opts
        .extra_networks
        .iter()
        .find(|j| j.name == network)
        .map_or(&[], |j| &j.aliases)
}

/// A descriptor of running container `r`'s network namespace, or why there is none.
pub(crate) fn container_netns(r: &Record) -> Result<OwnedFd, EngineError> {
    let gone = || {
        EngineError::Conflict(format!(
            "container {} stopped while its network changed; start it again",
            r.name
        ))
    };
    let pid = r.pid.ok_or_else(gone)?;
    let path = std::ffi::CString::new(format!("/proc/{pid}/ns/net"))
        .map_err(|_| EngineError::Internal("bad namespace path".into()))?;
    // SAFETY: opening a NUL-terminated path; the result is checked below.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(gone());
    }
    // SAFETY: fd is fresh and owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // The pid is still the container's (not reused) once its namespace is open.
    if !crate::container::procfs::running(pid, r.extra.pid_start) {
        return Err(gone());
    }
    Ok(fd)
}

impl Engine {
    /// Checks the further networks a new container asks for (a second `--network`, more
    /// `EndpointsConfig`) after its first, `first`: bridge networks that exist, each once,
    /// with valid aliases and addresses. Returns them under their stored names.
    pub(crate) fn check_extras(
        &self,
        first: &str,
        extras: &[NetworkJoin],
    ) -> Result<Vec<NetworkJoin>, EngineError> {
        if super::no_own_interface(first) {
            return Err(EngineError::Usage(format!(
                "a container on network {first} cannot join other networks; give only bridge or user-defined networks to --network"
            )));
        }
        let mut seen = vec![first.to_string()];
        let mut out = Vec::new();
        for j in extras {
            let name = match j.name.as_str() {
                "bridge" | "default" => DEFAULT.to_string(),
                n if super::no_own_interface(n) => {
                    return Err(EngineError::Usage(format!(
                        "network {n} cannot be combined with other networks; give only bridge or user-defined networks to --network"
                    )))
                }
                n => db::find_network(self.store()?.conn(), n)?
                    .ok_or_else(|| {
                        EngineError::NotFound(format!(
                            "network {n} not found; create it with 'gcr network create {n}'"
                        ))
                    })?
                    .name,
            };
            if seen.contains(&name) {
                return Err(EngineError::Usage(format!(
                    "network {name} is given twice; name each network once"
                )));
            }
            if name == DEFAULT {
                self.default_network()?;
            }
            super::connect::check_endpoint_opts(
                self,
                &name,
                &j.aliases,
                j.ip.as_deref(),
                j.ip6.as_deref(),
            )?;
            seen.push(name.clone());
            out.push(NetworkJoin { name, ..j.clone() });
        }
        Ok(out)
    }

    /// Leases an address on `net` for container `r` as interface `ifname` and wires it
    /// into the namespace `ns` (with the default route when `default_route`). Nothing is
    /// left behind on failure.
    pub(crate) fn lease_into(
        &self,
        r: &Record,
        net: &NetRow,
        join: &NetworkJoin,
        ifname: &str,
        ns: BorrowedFd<'_>,
        default_route: bool,
    ) -> Result<Endpoint, EngineError> {
        let mut ep = Endpoint {
            container: r.id.clone(),
            network: net.name.clone(),
            ip: join
                .ip
                .as_deref()
                .and_then(|ip| ip.parse().ok())
                .unwrap_or(Ipv4Addr::UNSPECIFIED),
            names: names_with(r, &join.aliases),
            veth: if net.sub_kind().is_some() {
                String::new()
            } else {
                veth_name(&r.id, ifname)
            },
            ports: String::new(),
            proxy_pid: 0,
            ifname: ifname.to_string(),
            ip6: join.ip6.as_deref().and_then(|ip| ip.parse().ok()),
        };
        let mut host = host_socket()?;
        let bridge = self.bridge_up(&mut host, net)?;
        self.store()?
            .transaction(|tx| super::ipam::lease(tx, net, &mut ep))?;
        let mac = super::endpoint_mac(Some(r), &ep);
        let wired = netns::attach_existing(
            &mut host,
            ns,
            &super::wiring(net, &ep, bridge, default_route, mac),
        );
        if let Err(e) = wired {
            let _ = self
                .store()?
                .transaction(|tx| db::delete_endpoint_on(tx, &r.id, &net.name));
            return Err(EngineError::Internal(format!(
                "cannot attach container {} to network {}: {e}",
                r.name, net.name
            )));
        }
        Ok(ep)
    }

    /// Whether bridge network `name` can carry a default route (it exists and is not
    /// internal).
    pub(crate) fn routes_outside(&self, name: &str) -> bool {
        self.store()
            .ok()
            .and_then(|s| db::find_network(s.conn(), name).ok().flatten())
            .is_some_and(|n| !n.internal)
    }

    /// The network of a container's default route: the first of its networks (`network`,
    /// then `extra_networks` in order) that is not internal.
    pub(crate) fn routing_network(
        &self,
        cfg: &crate::container::config::ContainerConfig,
    ) -> Option<String> {
        std::iter::once(cfg.resolved.network.as_str())
            .chain(cfg.opts.extra_networks.iter().map(|j| j.name.as_str()))
            .find(|n| self.routes_outside(n))
            .map(str::to_string)
    }

    /// At start, after the first network: the container's further networks as `eth1`,
    /// `eth2`, ... in namespace `ns` (then [`Engine::refresh_extras`] once its own files
    /// are written).
    pub(crate) fn attach_extras(&self, r: &Record, ns: BorrowedFd<'_>) -> Result<(), EngineError> {
        // The default route goes through the first network that is not internal.
        let mut routed = self.routes_outside(&r.config.resolved.network);
        for (i, join) in r.config.opts.extra_networks.iter().enumerate() {
            let net = db::find_network(self.store()?.conn(), &join.name)?.ok_or_else(|| {
                EngineError::NotFound(format!(
                    "network {} of container {} no longer exists; recreate it or 'gcr network disconnect {} {}'",
                    join.name, r.name, join.name, r.name
                ))
            })?;
            let default_route = !routed && !net.internal;
            routed |= default_route;
            self.lease_into(r, &net, join, &format!("eth{}", i + 1), ns, default_route)?;
        }
        Ok(())
    }

    /// The hosts files of the members of `r`'s further networks (its own among them).
    pub(crate) fn refresh_extras(&self, r: &Record) -> Result<(), EngineError> {
        self.store()?.transaction(|tx| {
            for join in &r.config.opts.extra_networks {
                if join.name != DEFAULT {
                    self.refresh_hosts(tx, &join.name, Some(r));
                }
            }
            Ok::<_, EngineError>(())
        })
    }

    /// Takes endpoint `ep` of container `r` away: its proxy and forwarding rules (first
    /// interface), its veth pair when the container still runs (`held`), and its row, in
    /// the caller's transaction `tx` (with the peers' hosts files).
    pub(crate) fn release_endpoint(
        &self,
        tx: &rusqlite::Connection,
        r: &Record,
        ep: &Endpoint,
        held: bool,
    ) -> Result<(), EngineError> {
        publish::kill_proxy(ep.proxy_pid, &r.id);
        if !ep.ports.is_empty() {
            gcr_net::dnat::remove(&r.id);
        }
        if held && !ep.veth.is_empty() {
            if let Ok(mut s) = host_socket() {
                let _ = gcr_net::link::delete(&mut s, &ep.veth);
            }
        } else if held {
            // A macvlan or ipvlan interface lives in the container's namespace only.
            if let Ok(ns) = container_netns(r) {
                let _ = netns::delete_inside(ns.as_fd(), &ep.ifname);
            }
        }
        db::delete_endpoint_on(tx, &r.id, &ep.network)?;
        if ep.network != DEFAULT {
            self.refresh_hosts(tx, &ep.network, None);
            if held {
                // Its own file forgets that network's members too.
                self.refresh_own_hosts(tx, r);
            }
        }
        Ok(())
    }

    /// Rewrites running container `r`'s hosts file from its remaining endpoints.
    fn refresh_own_hosts(&self, tx: &rusqlite::Connection, r: &Record) {
        match db::endpoints_of(tx, &r.id)
            .into_iter()
            .find(|e| e.network != DEFAULT)
        {
            Some(e) => self.refresh_hosts(tx, &e.network, None),
            None => {
                let ips = db::endpoint(tx, &r.id).map(|e| e.ips()).unwrap_or_default();
                self.rewrite_hosts(r, &ips);
            }
        }
    }

    /// `network connect` of running container `r` to `net`: a new interface now. It is
    /// `eth0` with the default route when the container had no network (`none`).
    pub(crate) fn connect_live(
        &self,
        r: &Record,
        net: &NetRow,
        join: &NetworkJoin,
    ) -> Result<Endpoint, EngineError> {
        let ns = container_netns(r)?;
        let eps = db::endpoints_of(self.store()?.conn(), &r.id);
        let ifname = free_ifname(&eps);
        let routed = eps.iter().any(|e| self.routes_outside(&e.network));
        self.lease_into(r, net, join, &ifname, ns.as_fd(), !routed && !net.internal)
    }
}
