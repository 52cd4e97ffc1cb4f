//! A container's network facts as `inspect` and `GET /containers/json` show them
//! (Docker's `NetworkSettings`): the first network's address, gateway, bridge and published
//! ports at the top, and every network with its endpoint under `Networks`.

use std::collections::HashMap;

use rusqlite::Connection;

use super::db::{self, Endpoint, NetRow};
use super::{publish, DEFAULT};
use crate::container::record::Record;
use crate::Engine;

/// Where a view reads endpoints and networks: the store row by row (one container), or
/// all of them loaded once ([`NetView`], for a listing of many).
trait Source {
    fn endpoints(&self, container: &str) -> Vec<Endpoint>;
    fn network(&self, name: &str) -> Option<NetRow>;
}

impl Source for Connection {
    fn endpoints(&self, container: &str) -> Vec<Endpoint> {
        db::endpoints_of(self, container)
    }

    fn network(&self, name: &str) -> Option<NetRow> {
        db::find_network(self, name).ok().flatten()
    }
}

/// Every endpoint and network, read once: [`Engine::network_settings_in`] over many
/// containers costs two queries instead of three per container.
pub struct NetView {
    endpoints: HashMap<String, Vec<Endpoint>>,
    networks: HashMap<String, NetRow>,
}

impl Source for NetView {
    fn endpoints(&self, container: &str) -> Vec<Endpoint> {
        self.endpoints.get(container).cloned().unwrap_or_default()
    }

    fn network(&self, name: &str) -> Option<NetRow> {
        self.networks.get(name).cloned()
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

    /// [`Engine::network_settings`] from a [`NetView`] (a listing's).
    pub fn network_settings_in(&self, view: &NetView, r: &Record) -> serde_json::Value {
        settings(view, r)
    }
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
    let mut ports = serde_json::Map::new();
    for s in publish::split(&ep.ports) {
        let key = format!("{}/{}", s.container_port, s.proto.as_str());
        let v = serde_json::json!({ "HostIp": s.host_ip.to_string(), "HostPort": s.host_port.to_string() });
        match ports.get_mut(&key).and_then(|x| x.as_array_mut()) {
            Some(a) => a.push(v),
            None => {
                ports.insert(key, serde_json::json!([v]));
            }
        }
    }
    serde_json::json!({
        "Network": network,
        "IPAddress": ep.ip.to_string(),
        "IPPrefixLen": net.as_ref().map(|n| n.subnet.prefix).unwrap_or(0),
        "Gateway": net.as_ref().map(|n| n.gateway().to_string()).unwrap_or_default(),
        "Bridge": net.as_ref().map(|n| n.bridge.clone()).unwrap_or_default(),
        "MacAddress": gcr_net::link::mac_text(gcr_net::link::mac_for(ep.ip)),
        "HostVeth": ep.veth,
        "Ports": ports,
        "Networks": networks,
    })
}

/// Docker's `NetworkSettings.Networks` of `r`: its first network (none for `container:`
/// modes) and its further ones, each with its aliases, and its address while attached
/// (`eps`).
fn networks_view(src: &dyn Source, r: &Record, eps: &[Endpoint]) -> serde_json::Value {
    let mode = r.config.resolved.network.as_str();
    let mut out = serde_json::Map::new();
    if mode.starts_with("container:") {
        return serde_json::Value::Object(out);
    }
    let o = &r.config.opts;
    let joins = std::iter::once((mode, &o.network_aliases, &o.ip)).chain(
        o.extra_networks
            .iter()
            .map(|j| (j.name.as_str(), &j.aliases, &j.ip)),
    );
    for (name, aliases, ip) in joins {
        let net = if matches!(name, "none" | "host") {
            None
        } else {
            src.network(name)
        };
        let ep = eps.iter().find(|e| e.network == name);
        let entry = endpoint_view(r, name, net.as_ref(), ep, aliases, ip.as_deref());
        out.insert(name.to_string(), entry);
    }
    serde_json::Value::Object(out)
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
    ip: Option<&str>,
) -> serde_json::Value {
    let user = net.is_some() && name != DEFAULT;
    let mut aliases = aliases.to_vec();
    let short = &r.id[..12.min(r.id.len())];
    if user && ep.is_some() && !aliases.iter().any(|a| a == short) {
        aliases.push(short.to_string());
    }
    let ipam = ip.map(|ip| serde_json::json!({ "IPv4Address": ip }));
    let (addr, prefix, gateway, mac) = match (ep, net) {
        (Some(ep), Some(n)) => (
            ep.ip.to_string(),
            n.subnet.prefix,
            n.gateway().to_string(),
            gcr_net::link::mac_text(gcr_net::link::mac_for(ep.ip)),
        ),
        _ => (String::new(), 0, String::new(), String::new()),
    };
    serde_json::json!({
        "IPAMConfig": ipam,
        "Links": null,
        "Aliases": if user { serde_json::json!(aliases) } else { serde_json::Value::Null },
        "NetworkID": net.map(|n| n.id.as_str()).unwrap_or(name),
        "EndpointID": ep.map(|e| e.veth.as_str()).unwrap_or(""),
        "Gateway": gateway,
        "IPAddress": addr,
        "IPPrefixLen": prefix,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "MacAddress": mac,
        "DriverOpts": null,
    })
}
