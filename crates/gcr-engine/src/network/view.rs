//! A container's network facts as `inspect` and `GET /containers/json` show them
//! (Docker's `NetworkSettings`): the first network's address, gateway, bridge and published
//! ports at the top, and every network with its endpoint under `Networks`.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use rusqlite::Connection;
use serde::Serialize;

use super::db::{self, Endpoint, NetRow};
use super::{publish, DEFAULT};
use crate::container::record::Record;
use crate::Engine;

/// Where a view reads endpoints and networks: the store row by row (one container), or
/// all of them loaded once ([`NetView`], for a listing of many).
trait Source {
    fn endpoints(&self, container: &str) -> Cow<'_, [Endpoint]>;
    fn network(&self, name: &str) -> Option<Cow<'_, NetRow>>;
}

impl Source for Connection {
    fn endpoints(&self, container: &str) -> Cow<'_, [Endpoint]> {
        Cow::Owned(db::endpoints_of(self, container))
    }

    fn network(&self, name: &str) -> Option<Cow<'_, NetRow>> {
        db::find_network(self, name).ok().flatten().map(Cow::Owned)
    }
}

/// Every endpoint and network, read once: [`Engine::list_network_in`] over many
/// containers costs two queries instead of three per container.
pub struct NetView {
    endpoints: HashMap<String, Vec<Endpoint>>,
    networks: HashMap<String, NetRow>,
}

impl Source for NetView {
    fn endpoints(&self, container: &str) -> Cow<'_, [Endpoint]> {
        Cow::Borrowed(self.endpoints.get(container).map_or(&[], |v| v.as_slice()))
    }

    fn network(&self, name: &str) -> Option<Cow<'_, NetRow>> {
        self.networks.get(name).map(Cow::Borrowed)
    }
}

impl Engine {
    /// Loads a [`NetView`] (empty when the store cannot be read).
    pub fn net_view(&self) -> NetView {
        let mut v = NetView {
            endpoints: HashMap::new(),
            networks: HashMap::new(),
        };
        let Ok(store) = self.store() else { return v };
        let conn = store.conn();
        for ep in db::all_endpoints(conn) {
            v.endpoints
                .entry(ep.container.clone())
                .or_default()
                .push(ep);
        }
        // First interface first, as `endpoints_of` orders them.
        for eps in v.endpoints.values_mut() {
            eps.sort_by(|a, b| (a.ifname.len(), &a.ifname).cmp(&(b.ifname.len(), &b.ifname)));
        }
        for n in db::list_networks(conn).unwrap_or_default() {
            v.networks.insert(n.name.clone(), n);
        }
        v
    }

    /// Network facts for `inspect` (Docker's `NetworkSettings` shape, reduced): network
    /// name, and while attached the first interface's address, gateway, bridge and the
    /// published ports; `Networks` has each of the container's networks.
    pub fn network_settings(&self, r: &Record) -> serde_json::Value {
        let Ok(store) = self.store() else {
            return serde_json::json!({ "Network": r.config.resolved.network });
        };
        settings(store.conn(), r)
    }

    /// What `GET /containers/json` shows of `r`'s networking, from a listing's
    /// [`NetView`]: its published ports and its networks.
    pub fn list_network_in(&self, view: &NetView, r: &Record) -> ListNet {
        let eps = view.endpoints(&r.id);
        let mut ports: Vec<PortView> = eps
            .first()
            .map(|ep| {
                publish::split(&ep.ports)
                    .into_iter()
                    .map(|s| PortView {
                        ip: s.host_ip.map(|i| i.to_string()).unwrap_or_default(),
                        private_port: s.container_port,
                        public_port: s.host_port,
                        kind: s.proto.as_str(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        // As `inspect`'s `Ports` map orders them: by "port/proto" text.
        ports.sort_by_cached_key(|p| format!("{}/{}", p.private_port, p.kind));
        ListNet {
            ports,
            networks: networks_view(view, r, &eps),
        }
    }
}

/// A published port as `GET /containers/json` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct PortView {
    #[serde(rename = "IP")]
    pub ip: String,
    #[serde(rename = "PrivatePort")]
    pub private_port: u16,
    #[serde(rename = "PublicPort")]
    pub public_port: u16,
    #[serde(rename = "Type")]
    pub kind: &'static str,
}

/// A container's `Ports` and `NetworkSettings.Networks` in a listing.
#[derive(Debug, Clone)]
pub struct ListNet {
    pub ports: Vec<PortView>,
    pub networks: BTreeMap<String, EndpointView>,
}

/// One network of a container under Docker's `NetworkSettings.Networks`.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointView {
    #[serde(rename = "IPAMConfig")]
    pub ipam_config: Option<IpamConfig>,
    /// Legacy links: gcr has none (`null`, as dockerd shows a container without).
    #[serde(rename = "Links")]
    pub links: Option<Vec<String>>,
    #[serde(rename = "Aliases")]
    pub aliases: Option<Vec<String>>,
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(rename = "Gateway")]
    pub gateway: String,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: u8,
    #[serde(rename = "IPv6Gateway")]
    pub ipv6_gateway: String,
    #[serde(rename = "GlobalIPv6Address")]
    pub global_ipv6_address: String,
    #[serde(rename = "GlobalIPv6PrefixLen")]
    pub global_ipv6_prefix_len: u8,
    #[serde(rename = "MacAddress")]
    pub mac_address: String,
    /// Driver options: gcr's bridge takes none (`null`).
    #[serde(rename = "DriverOpts")]
    pub driver_opts: Option<BTreeMap<String, String>>,
}

/// The addresses a container asked for on a network (`--ip`, `--ip6`).
#[derive(Debug, Clone, Serialize)]
pub struct IpamConfig {
    #[serde(rename = "IPv4Address", skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<String>,
    #[serde(rename = "IPv6Address", skip_serializing_if = "Option::is_none")]
    pub ipv6_address: Option<String>,
}

fn settings(src: &dyn Source, r: &Record) -> serde_json::Value {
    let network = &r.config.resolved.network;
    let eps = src.endpoints(&r.id);
    let networks = networks_view(src, r, &eps);
    let Some(ep) = eps.first() else {
        return serde_json::json!({
            "Network": network,
            "Networks": networks,
        });
    };
    let net = src.network(&ep.network);
    let ports = publish::port_map(publish::split(&ep.ports), |s| {
        (
            s.host_ip.map(|i| i.to_string()).unwrap_or_default(),
            s.host_port.to_string(),
        )
    });
    let v6 = net.as_ref().and_then(|n| n.v6_of(ep));
    serde_json::json!({
        "Network": network,
        "IPAddress": ep.ip.to_string(),
        "IPPrefixLen": net.as_ref().map(|n| n.subnet.prefix).unwrap_or(0),
        "Gateway": net.as_ref().map(|n| n.gateway().to_string()).unwrap_or_default(),
        "Bridge": net.as_ref().map(|n| n.bridge.clone()).unwrap_or_default(),
        "MacAddress": gcr_net::link::mac_text(super::endpoint_mac(Some(r), ep)),
        "GlobalIPv6Address": v6.map(|v| v.ip.to_string()).unwrap_or_default(),
        "GlobalIPv6PrefixLen": v6.map_or(0, |v| v.prefix),
        "IPv6Gateway": v6.map(|v| v.gateway.to_string()).unwrap_or_default(),
        "HostVeth": ep.veth,
        "Ports": ports,
        "Networks": networks,
    })
}

/// Docker's `NetworkSettings.Networks` of `r`: its first network (none for `container:`
/// modes) and its further ones, each with its aliases, and its address while attached
/// (`eps`).
fn networks_view(src: &dyn Source, r: &Record, eps: &[Endpoint]) -> BTreeMap<String, EndpointView> {
    let mode = r.config.resolved.network.as_str();
    let mut out = BTreeMap::new();
    if mode.starts_with("container:") {
        return out;
    }
    let o = &r.config.opts;
    let joins = std::iter::once((mode, &o.network_aliases, (&o.ip, &o.ip6))).chain(
        o.extra_networks
            .iter()
            .map(|j| (j.name.as_str(), &j.aliases, (&j.ip, &j.ip6))),
    );
    for (name, aliases, ip) in joins {
        let net = if matches!(name, "none" | "host") {
            None
        } else {
            src.network(name)
        };
        let ep = eps.iter().find(|e| e.network == name);
        let entry = endpoint_view(r, name, net.as_deref(), ep, aliases, ip);
        out.insert(name.to_string(), entry);
    }
    out
}

/// One network of `r` under `Networks`. On a user network an attached container's aliases
/// end with its short id, which it answers to (its default hostname), as dockerd 20.10
/// lists it; docker-compose reconnects a container whose aliases lack it.
fn endpoint_view(
    r: &Record,
    name: &str,
    net: Option<&NetRow>,
    ep: Option<&Endpoint>,
    aliases: &[String],
    (ip, ip6): (&Option<String>, &Option<String>),
) -> EndpointView {
    let user = net.is_some() && name != DEFAULT;
    let aliases = user.then(|| {
        let mut aliases = aliases.to_vec();
        let short = &r.id[..12.min(r.id.len())];
        if ep.is_some() && !aliases.iter().any(|a| a == short) {
            aliases.push(short.to_string());
        }
        aliases
    });
    let (ip_address, ip_prefix_len, gateway, mac_address) = match (ep, net) {
        (Some(ep), Some(n)) => (
            ep.ip.to_string(),
            n.subnet.prefix,
            n.gateway().to_string(),
            gcr_net::link::mac_text(super::endpoint_mac(Some(r), ep)),
        ),
        _ => (String::new(), 0, String::new(), String::new()),
    };
    let (ipv6_gateway, global_ipv6_address, global_ipv6_prefix_len) =
        match net.zip(ep).and_then(|(n, e)| n.v6_of(e)) {
            Some(v) => (v.gateway.to_string(), v.ip.to_string(), v.prefix),
            None => (String::new(), String::new(), 0),
        };
    EndpointView {
        ipam_config: (ip.is_some() || ip6.is_some()).then(|| IpamConfig {
            ipv4_address: ip.clone(),
            ipv6_address: ip6.clone(),
        }),
        links: None,
        aliases,
        network_id: net.map_or(name, |n| n.id.as_str()).to_string(),
        endpoint_id: ep.map_or("", |e| e.veth.as_str()).to_string(),
        gateway,
        ip_address,
        ip_prefix_len,
        ipv6_gateway,
        global_ipv6_address,
        global_ipv6_prefix_len,
        mac_address,
        driver_opts: None,
    }
}
