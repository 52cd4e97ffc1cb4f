//! Container networking as the engine sees it: which network namespace a container joins,
//! its address on a bridge network, its /etc/hosts, /etc/resolv.conf and /etc/hostname,
//! its published ports, and the cleanup of all of it.
//!
//! `none` gives a private namespace with loopback only; `host` the host's namespace;
//! `bridge` (the default) and user networks a namespace created right before launch,
//! wired with a veth pair to the network's Linux bridge, with an address leased in the
//! store. The runtime joins that namespace through `/proc/self/fd/N` of a descriptor this
//! process keeps until the container is detached.

pub mod admin;
mod connect;
mod db;
mod endpoints;
mod files;
mod ipam;
mod links;
pub mod options;
pub(crate) mod publish;
mod registry;
mod setup;
mod step;
mod view;
pub use view::{EndpointView, IpamConfig, ListNet, NetView, PortView};

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Mutex;

use gcr_net::netlink::Socket;
use gcr_net::netns;
use oci_spec::runtime::Mount;

use crate::container::config::{Resolved, RunOptions};
use crate::container::record::Record;
use crate::{Engine, EngineError};
pub use connect::ConnectRequest;
pub use files::parse_add_host;
use files::Files;
pub(crate) use files::{step_files, Files as NetFiles};
pub use links::parse_link;
pub use setup::DEFAULT;
pub use step::StepNet;

/// What the runtime needs to place a container on its network.
pub struct NetAttachment {
    pub network: gcr_runtime::Network,
    pub mounts: Vec<Mount>,
}

/// Namespace descriptors of containers attached by this process, by container id.
static NETNS: Mutex<Option<HashMap<String, OwnedFd>>> = Mutex::new(None);

fn keep_netns(id: &str, fd: OwnedFd) -> std::path::PathBuf {
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd()).into();
    if let Ok(mut m) = NETNS.lock() {
        m.get_or_insert_with(HashMap::new)
            .insert(id.to_string(), fd);
    }
    path
}

fn drop_netns(id: &str) {
    if let Ok(mut m) = NETNS.lock() {
        if let Some(m) = m.as_mut() {
            m.remove(id);
        }
    }
}

/// Whether network mode `n` gives a container no interface of its own (`none`, `host`,
/// `container:X`): nothing to publish, link or address there.
pub(crate) fn no_own_interface(n: &str) -> bool {
    matches!(n, "none" | "host") || n.starts_with("container:")
}

fn host_socket() -> Result<Socket, EngineError> {
    Socket::open().map_err(|e| EngineError::Io("opening a netlink socket".into(), e))
}

impl Engine {
    /// Checks `--network` (each of them), `-p`/`-P`, `-v` and `--tmpfs` at create time and
    /// fills `resolved.network`, `network_data` (ports to publish) and `volume_data`; the
    /// further networks get their names as stored.
    pub(crate) fn net_validate(
        &self,
        opts: &mut RunOptions,
        image_config: &serde_json::Value,
        resolved: &mut Resolved,
    ) -> Result<(), EngineError> {
        opts.expose = publish::expose_keys(&opts.expose)?;
        let mut ports = publish::wanted(opts, image_config)?;
        let mut volumes = crate::volumes::plan::plan(opts, image_config)?;
        opts.volumes_from = self.volumes_from(&opts.volumes_from, &mut volumes)?;
        // A network's host_binding_ipv4: where its ports bind when -p names no address.
        let mut host_ip = None;
        let mut driver = options::Driver::Bridge;
        let network = match opts.network.as_deref() {
            None | Some("bridge" | "default") => {
                self.default_network()?;
                DEFAULT.to_string()
            }
            Some("none") => "none".into(),
            Some("host") => "host".into(),
            Some(other) if other.starts_with("container:") => {
                let key = &other["container:".len()..];
                let x = self.container(key).map_err(|_| {
                    EngineError::NotFound(format!(
                        "--network {other}: no such container; give a running container's name or id"
                    ))
                })?;
                if opts.hostname.is_some() {
                    return Err(EngineError::Usage(format!(
                        "--hostname and --network {other} conflict: the container takes {}'s name",
                        x.name
                    )));
                }
                resolved.hostname = x.config.resolved.hostname.clone();
                format!("container:{}", x.id)
            }
            Some(other) => {
                match db::find_network(self.store()?.conn(), other)? {
                    Some(n) => {
                        host_ip = n.opts().host_ip;
                        driver = n.driver();
                        n.name
                    }
                    None => {
                        return Err(EngineError::NotFound(format!(
                            "network {other} not found; create it with 'gcr network create {other}' or use none, host or bridge"
                        )))
                    }
                }
            }
        };
        connect::check_endpoint_opts(
            self,
            &network,
            &opts.network_aliases,
            opts.ip.as_deref(),
            opts.ip6.as_deref(),
        )?;
        if !opts.extra_networks.is_empty() {
            opts.extra_networks = self.check_extras(&network, &opts.extra_networks)?;
        }
        opts.links = self.check_links(&network, &opts.links)?;
        if let Some(m) = &opts.mac_address {
            if gcr_net::link::parse_mac(m).is_none() {
                return Err(EngineError::Usage(format!(
                    "invalid --mac-address '{m}': give a unicast address such as 02:42:ac:11:00:02"
                )));
            }
            if no_own_interface(&network) {
                return Err(EngineError::Usage(format!(
                    "--mac-address cannot be used with --network {network}; use the default bridge or a user network"
                )));
            }
        }
        if !ports.is_empty() && no_own_interface(&network) {
            return Err(EngineError::Usage(format!(
                "ports cannot be published on network {network}; drop -p/-P or use a bridge network"
            )));
        }
        if !ports.is_empty() && driver != options::Driver::Bridge {
            return Err(EngineError::Usage(format!(
                "ports cannot be published on {} network {network}: its containers are reached at their own address; drop -p/-P",
                driver.as_str()
            )));
        }
        if let Some(ip) = host_ip {
            for p in ports.iter_mut().filter(|p| p.host_ip.is_none()) {
                p.host_ip = Some(ip.into());
            }
        }
        if !ports.is_empty() {
            let list: Vec<String> = ports.iter().map(|p| p.to_string()).collect();
            resolved.network_data = serde_json::json!({ "ports": list });
        }
        resolved.network = network;
        resolved.volume_data = self.volumes_realize(&volumes)?;
        Ok(())
    }

    /// Prepares the container's network right before launch.
    pub(crate) fn net_attach(&self, r: &Record) -> Result<NetAttachment, EngineError> {
        match r.config.resolved.network.as_str() {
            "host" => Ok(NetAttachment {
                network: gcr_runtime::Network::Host,
                mounts: self.net_files(r, Files::Host)?,
            }),
            "none" => Ok(NetAttachment {
                network: crate::prestart::loopback_network(),
                mounts: self.net_files(r, Files::Loopback)?,
            }),
            other if other.starts_with("container:") => {
                let (ns, mounts) = self.join_network_of(&other["container:".len()..])?;
                Ok(NetAttachment {
                    network: gcr_runtime::Network::Join(ns),
                    mounts,
                })
            }
            name => {
                let att = self.attach_bridge(r, name);
                if att.is_err() {
                    self.net_detach(r);
                }
                att
            }
        }
    }

    fn attach_bridge(&self, r: &Record, network: &str) -> Result<NetAttachment, EngineError> {
        let conn = self.store()?.conn();
        let net = db::find_network(conn, network)?.ok_or_else(|| {
            EngineError::NotFound(format!(
                "network {network} of container {} no longer exists; recreate it with 'gcr network create {network}'",
                r.name
            ))
        })?;
        if db::endpoint(conn, &r.id).is_some() {
            self.net_detach(r);
        }
        self.links_up(r)?;
        let o = &r.config.opts;
        let want = o.ip.as_deref().and_then(|ip| ip.parse().ok());
        let want6 = o.ip6.as_deref().and_then(|ip| ip.parse().ok());
        let (ep, fd) = self.lease_and_wire(
            &net,
            r.id.clone(),
            files::own_names(r),
            format!("gv{}", &r.id[..12.min(r.id.len())]),
            (want, want6),
            own_mac(r),
        );
        let fd = fd.map_err(|e| match e {
            EngineError::Internal(m) => EngineError::Internal(format!(
                "cannot attach container {} to network {}: {m}",
                r.name, net.name
            )),
            other => other,
        })?;
        let extras = !r.config.opts.extra_networks.is_empty();
        if extras {
            self.attach_extras(r, std::os::fd::AsFd::as_fd(&fd))?;
        }
        // A user network's containers ask the embedded DNS server: its sockets, and the
        // resolv.conf that names it.
        let (dns, resolv) = if net.name == DEFAULT {
            (None, None)
        } else {
            let (d, t) = self.embedded_dns(r, std::os::fd::AsFd::as_fd(&fd))?;
            (Some(d), Some(t))
        };
        let path = keep_netns(&r.id, fd);
        let mounts = if net.name == DEFAULT {
            self.net_files(
                r,
                Files::Bridge {
                    ips: &ep.ips(),
                    peers: &[],
                    resolv: None,
                },
            )?
        } else {
            self.store()?.transaction(|tx| {
                let peers = db::endpoints_on(tx, &net.name)?;
                let m = self.net_files(
                    r,
                    Files::Bridge {
                        ips: &ep.ips(),
                        peers: &peers,
                        resolv: resolv.as_deref(),
                    },
                )?;
                self.refresh_hosts(tx, &net.name, Some(r));
                Ok::<_, EngineError>(m)
            })?
        };
        if extras {
            self.refresh_extras(r)?;
        }
        let specs = publish::split(
            r.config
                .resolved
                .network_data
                .get("ports")
                .and_then(|p| p.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(";")
                })
                .as_deref()
                .unwrap_or(""),
        );
        let bound = if specs.is_empty() {
            Vec::new()
        } else {
            publish::bind_all(&specs)?
        };
        if !bound.is_empty() || dns.is_some() {
            // The kernel path is IPv4's; IPv6 clients go through the proxy.
            let fwd: Vec<gcr_net::dnat::Forward> = bound
                .iter()
                .filter_map(|(s, _)| match s.host_ip {
                    Some(std::net::IpAddr::V4(host_ip)) => Some(gcr_net::dnat::Forward {
                        proto: s.proto.as_str(),
                        host_ip,
                        host_port: s.host_port,
                        container_port: s.container_port,
                    }),
                    _ => None,
                })
                .collect();
            self.start_proxy(&r.id, ep.ip, bound, dns)?;
            // Local clients take the kernel path; the proxy keeps the ports and serves
            // everyone else (and everyone, where nftables is missing).
            if !fwd.is_empty() {
                gcr_net::dnat::install(&r.id, &net.bridge, ep.ip, &fwd);
            }
        }
        Ok(NetAttachment {
            network: gcr_runtime::Network::Join(path),
            mounts,
        })
    }

    /// The embedded DNS server of container `r` on a user network: its sockets at
    /// 127.0.0.11:53 in namespace `ns`, its hosts file, and the servers other names go to
    /// (none when all its networks are internal: nothing outside is reached by name
    /// either); with the container's resolv.conf text. The host's resolv.conf is read once.
    fn embedded_dns(
        &self,
        r: &Record,
        ns: std::os::fd::BorrowedFd<'_>,
    ) -> Result<(gcr_net::dns::Resolver, String), EngineError> {
        let (udp, tcp) = netns::bind_dns(ns).map_err(|e| {
            EngineError::Internal(format!(
                "cannot start the DNS server of container {}: {e}",
                r.name
            ))
        })?;
        let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let upstreams = if self.routing_network(&r.config).is_some() {
            gcr_net::resolv::upstreams(&r.config.opts.dns, &host)
        } else {
            Vec::new()
        };
        let resolv = files::embedded_resolv(r, &host, &upstreams);
        let server = gcr_net::dns::Resolver {
            udp,
            tcp,
            hosts: self.container_run_dir(&r.id).join("hosts"),
            upstreams,
        };
        Ok((server, resolv))
    }

    /// Leases an address on `net` for `owner` (`want`'s IPv4 and IPv6 ones, when given
    /// and free) and makes a
    /// namespace wired to the network's bridge through the veth pair `veth`: the endpoint
    /// as stored, and the namespace (or why it could not be made; the lease is then the
    /// caller's to drop).
    pub(crate) fn lease_and_wire(
        &self,
        net: &db::NetRow,
        owner: String,
        names: String,
        veth: String,
        want: (Option<std::net::Ipv4Addr>, Option<std::net::Ipv6Addr>),
        mac: Option<[u8; 6]>,
    ) -> (db::Endpoint, Result<OwnedFd, EngineError>) {
        let mut ep = db::Endpoint {
            container: owner,
            network: net.name.clone(),
            ip: want.0.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
            names,
            // A macvlan or ipvlan interface has no host end.
            veth: if net.sub_kind().is_some() {
                String::new()
            } else {
                veth
            },
            ports: String::new(),
            proxy_pid: 0,
            ifname: "eth0".into(),
            ip6: want.1,
        };
        let wired = (|| {
            let mut host = host_socket()?;
            let bridge = self.bridge_up(&mut host, net)?;
            self.store()?
                .transaction(|tx| ipam::lease(tx, net, &mut ep))?;
            // An internal network routes nothing beyond its subnet.
            let mac = mac.unwrap_or_else(|| gcr_net::link::mac_for(ep.ip));
            netns::create_attached(&mut host, &wiring(net, &ep, bridge, !net.internal, mac))
                .map_err(|e| EngineError::Internal(e.to_string()))
        })();
        (ep, wired)
    }

    /// Releases whatever `net_attach` set up: proxy, veths, address leases, the namespace
    /// descriptor, and the container's lines in its networks' hosts files. Idempotent;
    /// never fails.
    pub(crate) fn net_detach(&self, r: &Record) {
        let mode = r.config.resolved.network.as_str();
        if matches!(mode, "none" | "host") || mode.starts_with("container:") {
            return;
        }
        drop_netns(&r.id);
        let Ok(store) = self.store() else {
            return;
        };
        let eps = db::endpoints_of(store.conn(), &r.id);
        if eps.is_empty() {
            return;
        }
        // The veth pairs go with the namespace once its last process and our descriptor
        // are gone (the kernel does that asynchronously; deleting them here would cost
        // tens of milliseconds). Pairs whose namespace is still held are deleted now.
        let held = r
            .pid
            .is_some_and(|p| crate::container::procfs::running(p, r.extra.pid_start));
        let _ = store.transaction(|tx| {
            for ep in &eps {
                self.release_endpoint(tx, r, ep, held)?;
            }
            Ok::<_, EngineError>(())
        });
    }
}

/// The hardware address `r` asked for its first interface (`--mac-address`).
fn own_mac(r: &Record) -> Option<[u8; 6]> {
    r.config
        .opts
        .mac_address
        .as_deref()
        .and_then(gcr_net::link::parse_mac)
}

/// The hardware address of endpoint `ep` of container `r`: the one it asked for on its
/// first interface, else Docker's `02:42:<address>` (how it is wired, and what inspect
/// shows).
pub(crate) fn endpoint_mac(r: Option<&Record>, ep: &db::Endpoint) -> [u8; 6] {
    r.filter(|_| ep.ifname == "eth0")
        .and_then(own_mac)
        .unwrap_or_else(|| gcr_net::link::mac_for(ep.ip))
}

/// How endpoint `ep` (leased) of `net` is wired as its interface `ep.ifname` on bridge
/// index `bridge` (a macvlan or ipvlan network: its parent's index), with the default
/// routes when `default_route`, and hardware address `mac`.
fn wiring(
    net: &db::NetRow,
    ep: &db::Endpoint,
    bridge: u32,
    default_route: bool,
    mac: [u8; 6],
) -> netns::Endpoint {
    let opts = net.opts();
    netns::Endpoint {
        host_if: ep.veth.clone(),
        bridge,
        peer_if: ep.ifname.clone(),
        ip: ep.ip,
        prefix: net.subnet.prefix,
        gateway: net.gateway(),
        default_route,
        mtu: opts.mtu,
        isolated: !opts.icc,
        v6: net.v6_of(ep),
        sub: net.sub_kind().map(|k| (bridge, k)),
        mac,
    }
}

impl Engine {
    /// After a rename: the names a container's networks resolve follow it.
    pub(crate) fn net_renamed(&self, id: &str) {
        let Ok(store) = self.store() else {
            return;
        };
        let Ok(r) = crate::container::record::find(store.conn(), id) else {
            return;
        };
        let eps = db::endpoints_of(store.conn(), id);
        let _ = store.transaction(|tx| {
            for ep in &eps {
                let names = files::names_with(&r, endpoints::aliases_on(&r, &ep.network));
                db::set_names(tx, id, &ep.network, &names)?;
                if ep.network != DEFAULT {
                    self.refresh_hosts(tx, &ep.network, Some(&r));
                }
            }
            Ok::<_, EngineError>(())
        });
    }
}
