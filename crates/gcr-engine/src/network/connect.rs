//! `network connect` and `network disconnect` (Docker's verbs, used by docker-compose), and
//! the checks of a container's endpoint options (`--network-alias`, `--ip`).
//!
//! A container has one network in gcr (one endpoint row, one `eth0`). So:
//! - a container that is not running gets its network replaced: `connect` when it has none
//!   (created with `--network none`, or disconnected), `disconnect` leaves it on `none`
//!   (loopback only, as Docker's container without endpoints); its aliases and `--ip` are
//!   recorded and take effect at its next start;
//! - a running container can be disconnected (its veth, lease, published ports and hosts
//!   lines go at once; it keeps loopback), but not connected: a second interface needs
//!   one endpoint per container and network, which the store does not have yet.

use std::net::Ipv4Addr;

use super::db::{self, NetRow};
use super::setup::DEFAULT;
use crate::container::record::{self, Record};
use crate::{Engine, EngineError};

/// What `network connect` asks for besides the network and the container.
#[derive(Debug, Default, Clone)]
pub struct ConnectRequest {
    /// `--alias`: names the container answers to on the network.
    pub aliases: Vec<String>,
    /// `--ip`: the address to lease (user networks only).
    pub ip: Option<String>,
}

/// Checks `--network-alias` and `--ip` for a container on `network` (a resolved network
/// mode: a bridge network's name, `none`, `host` or `container:ID`), the address against
/// the network's subnet.
pub(crate) fn check_endpoint_opts(
    e: &Engine,
    network: &str,
    aliases: &[String],
    ip: Option<&str>,
) -> Result<(), EngineError> {
    if let Some(addr) = check_syntax(network, aliases, ip)? {
        if let Some(net) = db::find_network(e.store()?.conn(), network)? {
            db::wanted_offset(&net, addr)?;
        }
    }
    Ok(())
}

/// [`check_endpoint_opts`] without the store: the address parsed.
fn check_syntax(
    network: &str,
    aliases: &[String],
    ip: Option<&str>,
) -> Result<Option<Ipv4Addr>, EngineError> {
    let user = !(network == DEFAULT
        || network == "none"
        || network == "host"
        || network.starts_with("container:"));
    if !aliases.is_empty() && !user {
        return Err(EngineError::Usage(format!(
            "network-scoped aliases are supported only on user-defined networks, not {network}; create one with 'gcr network create NAME'"
        )));
    }
    for a in aliases {
        if a.is_empty() || a.len() > 253 || a.chars().any(|c| c.is_whitespace() || c == '#') {
            return Err(EngineError::Usage(format!(
                "invalid network alias '{a}': use a host name (letters, digits, '.', '-', '_')"
            )));
        }
    }
    let Some(ip) = ip else {
        return Ok(None);
    };
    if !user {
        return Err(EngineError::Usage(format!(
            "a user-specified IP address (--ip {ip}) is supported on user-defined networks only, not {network}"
        )));
    }
    ip.parse()
        .map(Some)
        .map_err(|_| EngineError::Usage(format!("invalid --ip '{ip}': give an IPv4 address")))
}

fn pseudo_refused(mode: &str, verb: &str) -> EngineError {
    EngineError::Refused(format!(
        "container cannot be {verb} network {mode}: host, none and container:... networks are chosen at create (--network)"
    ))
}

impl Engine {
    /// The bridge network `key` names (`bridge` is the default one, made on first use).
    fn bridge_network(&self, key: &str, verb: &str) -> Result<NetRow, EngineError> {
        if matches!(key, "host" | "none") {
            return Err(pseudo_refused(key, verb));
        }
        if key == DEFAULT || key == "default" {
            return self.default_network();
        }
        db::find_network(self.store()?.conn(), key)?.ok_or_else(|| {
            EngineError::NotFound(format!(
                "network {key} not found; see 'gcr network ls' or create it with 'gcr network create {key}'"
            ))
        })
    }

    /// `network connect NETWORK CONTAINER [--alias A]... [--ip IP]`.
    pub fn network_connect(
        &self,
        network: &str,
        container: &str,
        req: &ConnectRequest,
    ) -> Result<Record, EngineError> {
        let net = self.bridge_network(network, "connected to")?;
        let r = self.container(container)?;
        let current = r.config.resolved.network.as_str();
        if current == net.name {
            return Err(EngineError::Refused(format!(
                "endpoint with name {} already exists in network {}; disconnect it first to change its aliases or address",
                r.name, net.name
            )));
        }
        if current == "host" || current.starts_with("container:") {
            return Err(pseudo_refused(
                current,
                "connected to another network besides",
            ));
        }
        if r.state.is_alive() || r.extra.being_started() {
            return Err(EngineError::Refused(format!(
                "cannot connect running container {} to network {}: gcr gives a container one network interface, chosen before it starts; stop it, 'gcr network disconnect {current} {}', then connect",
                r.name, net.name, r.name
            )));
        }
        if current != "none" {
            return Err(EngineError::Refused(format!(
                "container {} is on network {current}, and gcr gives a container one network: disconnect it from {current} first ('gcr network disconnect {current} {}')",
                r.name, r.name
            )));
        }
        check_endpoint_opts(self, &net.name, &req.aliases, req.ip.as_deref())?;
        let mut cfg = r.config.clone();
        cfg.resolved.network = net.name.clone();
        cfg.opts.network = Some(net.name.clone());
        cfg.opts.network_aliases = req.aliases.clone();
        cfg.opts.ip = req.ip.clone();
        record::set_config(
            self.store()?.conn(),
            &r,
            &cfg,
            &format!("connect: {}", net.name),
        )?;
        self.container(&r.id)
    }

    /// `network disconnect NETWORK CONTAINER`: the container is left on `none`.
    pub fn network_disconnect(
        &self,
        network: &str,
        container: &str,
    ) -> Result<Record, EngineError> {
        let r = self.container(container)?;
        let current = r.config.resolved.network.clone();
        if matches!(network, "host" | "none")
            || current == "host"
            || current.starts_with("container:")
        {
            return Err(pseudo_refused(
                if matches!(network, "host" | "none") {
                    network
                } else {
                    &current
                },
                "disconnected from",
            ));
        }
        let net = self.bridge_network(network, "disconnected from")?;
        if current != net.name {
            return Err(EngineError::Conflict(format!(
                "container {} is not connected to network {} (its network is {current})",
                r.name, net.name
            )));
        }
        if r.extra.being_started() {
            return Err(EngineError::Conflict(format!(
                "container {} is being started; disconnect it once it runs or has stopped",
                r.name
            )));
        }
        if r.state.is_alive() {
            // Veth, lease, published ports and the peers' hosts lines go now.
            self.net_detach(&r);
        }
        let mut cfg = r.config.clone();
        cfg.resolved.network = "none".into();
        cfg.opts.network = Some("none".into());
        cfg.opts.network_aliases.clear();
        cfg.opts.ip = None;
        record::set_config(
            self.store()?.conn(),
            &r,
            &cfg,
            &format!("disconnect: {}", net.name),
        )?;
        self.container(&r.id)
    }
}

/// Docker's `NetworkSettings.Networks` of `r`: its one network (none for `container:`
/// modes) with its aliases, and its address while attached (`ep`). On a user network an
/// attached container's aliases end with its short id, which it answers to (its default
/// hostname), as dockerd 20.10 lists it; docker-compose reconnects a container whose
/// aliases lack it.
pub(crate) fn networks_view(
    r: &Record,
    net: Option<&NetRow>,
    ep: Option<&db::Endpoint>,
) -> serde_json::Value {
    let mode = r.config.resolved.network.as_str();
    let mut out = serde_json::Map::new();
    if mode.starts_with("container:") {
        return serde_json::Value::Object(out);
    }
    let user = net.is_some() && mode != DEFAULT;
    let mut aliases = r.config.opts.network_aliases.clone();
    let short = &r.id[..12.min(r.id.len())];
    if user && ep.is_some() && !aliases.iter().any(|a| a == short) {
        aliases.push(short.to_string());
    }
    let ipam = r
        .config
        .opts
        .ip
        .as_ref()
        .map(|ip| serde_json::json!({ "IPv4Address": ip }));
    let (ip, prefix, gateway) = match (ep, net) {
        (Some(ep), Some(n)) => (
            ep.ip.to_string(),
            n.subnet.prefix,
            n.subnet.gateway().to_string(),
        ),
        _ => (String::new(), 0, String::new()),
    };
    out.insert(
        mode.to_string(),
        serde_json::json!({
            "IPAMConfig": ipam,
            "Links": null,
            "Aliases": if user { serde_json::json!(aliases) } else { serde_json::Value::Null },
            "NetworkID": net.map(|n| n.id.as_str()).unwrap_or(mode),
            "EndpointID": ep.map(|e| e.veth.as_str()).unwrap_or(""),
            "Gateway": gateway,
            "IPAddress": ip,
            "IPPrefixLen": prefix,
            "IPv6Gateway": "",
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "MacAddress": "",
            "DriverOpts": null,
        }),
    );
    serde_json::Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_and_ips_need_a_user_network() {
        let a = vec!["db".to_string()];
        assert_eq!(check_syntax("app", &a, None).unwrap(), None);
        assert_eq!(
            check_syntax("app", &a, Some("10.1.0.5")).unwrap(),
            Some(Ipv4Addr::new(10, 1, 0, 5))
        );
        for mode in ["bridge", "none", "host", "container:abc"] {
            let err = check_syntax(mode, &a, None).unwrap_err();
            assert!(err.to_string().contains("user-defined"), "{err}");
        }
        let err = check_syntax("bridge", &[], Some("10.1.0.5")).unwrap_err();
        assert!(
            err.to_string().contains("user-defined networks only"),
            "{err}"
        );
        let err = check_syntax("app", &[], Some("ten")).unwrap_err();
        assert!(err.to_string().contains("invalid --ip"), "{err}");
        let err = check_syntax("app", &["a b".into()], None).unwrap_err();
        assert!(err.to_string().contains("invalid network alias"), "{err}");
    }
}
