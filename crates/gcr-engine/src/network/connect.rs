//! `network connect` and `network disconnect` (Docker's verbs, used by docker-compose), and
//! the checks of a container's endpoint options (`--network-alias`, `--ip`).
//!
//! A container may be on several bridge networks: its first (`resolved.network`, `eth0`,
//! the default route and the published ports) and further ones (`opts.extra_networks`,
//! `eth1`, `eth2`, ...), each with its own endpoint row (address, veth, names).
//! - a container that is not running gets the network recorded (connect) or dropped
//!   (disconnect); it takes effect at its next start;
//! - a running container gets the interface added into its namespace, or removed, at once,
//!   and the hosts files of the network's members follow;
//! - a container without a network (`none`) that is connected gets it as its first;
//!   leaving the first network makes the next one first; leaving the last leaves `none`
//!   (loopback only, as Docker's container without endpoints);
//! - `host` and `container:X` containers share a namespace and cannot be connected.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::db::{self, NetRow};
use super::setup::DEFAULT;
use crate::container::config::NetworkJoin;
use crate::container::record::{self, Record};
use crate::{Engine, EngineError};

/// What `network connect` asks for besides the network and the container.
#[derive(Debug, Default, Clone)]
pub struct ConnectRequest {
    /// `--alias`: names the container answers to on the network.
    pub aliases: Vec<String>,
    /// `--ip`: the address to lease (user networks only).
    pub ip: Option<String>,
    /// `--ip6`: the IPv6 address to lease (dual-stack user networks only).
    pub ip6: Option<String>,
}

/// Docker's `network connect|disconnect` event of `net` for container `r` (its container
/// an attribute), written with the container's config change.
fn network_event(
    conn: &rusqlite::Connection,
    net: &NetRow,
    r: &Record,
    action: &str,
) -> Result<(), EngineError> {
    record::event_with(
        conn,
        ("network", &net.id, &net.name),
        (None, None),
        action,
        &serde_json::json!({ "container": r.id, "type": net.driver }),
    )
}

/// Checks `--network-alias` and `--ip` for a container on `network` (a resolved network
/// mode: a bridge network's name, `none`, `host` or `container:ID`), the address against
/// the network's subnet.
pub(crate) fn check_endpoint_opts(
    e: &Engine,
    network: &str,
    aliases: &[String],
    ip: Option<&str>,
    ip6: Option<&str>,
) -> Result<(), EngineError> {
    let addr = check_syntax(network, aliases, ip)?;
    let addr6 = check_ip6(network, ip6)?;
    if addr.is_none() && addr6.is_none() {
        return Ok(());
    }
    if let Some(net) = db::find_network(e.store()?.conn(), network)? {
        if let Some(a) = addr {
            super::ipam::wanted_offset(&net, a)?;
        }
        if let Some(a) = addr6 {
            super::ipam::wanted_ip6(&net, a)?;
        }
    }
    Ok(())
}

/// Whether network mode `network` is a user-defined network (not the default bridge,
/// `none`, `host` or `container:X`): the only ones with aliases and chosen addresses.
fn is_user_network(network: &str) -> bool {
    !(matches!(network, DEFAULT | "none" | "host") || network.starts_with("container:"))
}

/// `--ip6` parsed, on a user network.
fn check_ip6(network: &str, ip6: Option<&str>) -> Result<Option<Ipv6Addr>, EngineError> {
    let Some(ip) = ip6 else {
        return Ok(None);
    };
    if !is_user_network(network) {
        return Err(EngineError::Usage(format!(
            "a user-specified IPv6 address (--ip6 {ip}) is supported on user-defined networks only, not {network}"
        )));
    }
    ip.parse()
        .map(Some)
        .map_err(|_| EngineError::Usage(format!("invalid --ip6 '{ip}': give an IPv6 address")))
}

/// [`check_endpoint_opts`] without the store: the address parsed.
fn check_syntax(
    network: &str,
    aliases: &[String],
    ip: Option<&str>,
) -> Result<Option<Ipv4Addr>, EngineError> {
    let user = is_user_network(network);
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
        let mode = r.config.resolved.network.as_str();
        if mode == "host" || mode.starts_with("container:") {
            return Err(EngineError::Refused(format!(
                "container {} shares the network namespace of {}, so it cannot be connected to network {}; recreate it with --network {}",
                r.name,
                if mode == "host" { "the host" } else { "another container" },
                net.name,
                net.name
            )));
        }
        if mode == net.name
            || r.config
                .opts
                .extra_networks
                .iter()
                .any(|j| j.name == net.name)
        {
            return Err(EngineError::Refused(format!(
                "endpoint with name {} already exists in network {}; disconnect it first to change its aliases or address",
                r.name, net.name
            )));
        }
        if r.extra.being_started() {
            return Err(EngineError::Conflict(format!(
                "container {} is being started; connect it once it runs or has stopped",
                r.name
            )));
        }
        check_endpoint_opts(
            self,
            &net.name,
            &req.aliases,
            req.ip.as_deref(),
            req.ip6.as_deref(),
        )?;
        let join = NetworkJoin {
            name: net.name.clone(),
            aliases: req.aliases.clone(),
            ip: req.ip.clone(),
            ip6: req.ip6.clone(),
        };
        let mut cfg = r.config.clone();
        if mode == "none" {
            // No network yet: this one becomes its first (eth0, the default route).
            cfg.resolved.network = net.name.clone();
            cfg.opts.network = Some(net.name.clone());
            cfg.opts.network_aliases = join.aliases.clone();
            cfg.opts.ip = join.ip.clone();
            cfg.opts.ip6 = join.ip6.clone();
        } else {
            cfg.opts.extra_networks.push(join.clone());
        }
        let cause = format!("connect: {}", net.name);
        let store = self.store()?;
        if !r.state.is_alive() {
            // Takes effect at its next start.
            store.transaction(|tx| {
                record::set_config(tx, &r, &cfg, &cause)?;
                network_event(tx, &net, &r, "connect")
            })?;
            return self.container(&r.id);
        }
        let ep = self.connect_live(&r, &net, &join)?;
        let done = store.transaction(|tx| {
            record::set_config(tx, &r, &cfg, &cause)?;
            network_event(tx, &net, &r, "connect")?;
            if net.name != DEFAULT {
                self.refresh_hosts(tx, &net.name, Some(&r));
            }
            Ok::<_, EngineError>(())
        });
        if let Err(e) = done {
            let _ = store.transaction(|tx| self.release_endpoint(tx, &r, &ep, true));
            return Err(e);
        }
        self.container(&r.id)
    }

    /// `network disconnect NETWORK CONTAINER`: its interface on the network goes at once
    /// when it runs. Leaving its first network makes the next one first; leaving its last
    /// leaves it on `none`.
    pub fn network_disconnect(
        &self,
        network: &str,
        container: &str,
    ) -> Result<Record, EngineError> {
        let r = self.container(container)?;
        let mode = r.config.resolved.network.clone();
        if matches!(network, "host" | "none") || mode == "host" || mode.starts_with("container:") {
            return Err(pseudo_refused(
                if matches!(network, "host" | "none") {
                    network
                } else {
                    &mode
                },
                "disconnected from",
            ));
        }
        let net = self.bridge_network(network, "disconnected from")?;
        let extras = &r.config.opts.extra_networks;
        let extra = extras.iter().position(|j| j.name == net.name);
        if mode != net.name && extra.is_none() {
            let mut on: Vec<&str> = vec![&mode];
            on.extend(extras.iter().map(|j| j.name.as_str()));
            return Err(EngineError::Conflict(format!(
                "container {} is not connected to network {} (its networks: {})",
                r.name,
                net.name,
                on.join(", ")
            )));
        }
        if r.extra.being_started() {
            return Err(EngineError::Conflict(format!(
                "container {} is being started; disconnect it once it runs or has stopped",
                r.name
            )));
        }
        let routing_before = self.routing_network(&r.config);
        let mut cfg = r.config.clone();
        match extra {
            Some(i) => {
                cfg.opts.extra_networks.remove(i);
            }
            None if !cfg.opts.extra_networks.is_empty() => {
                let next = cfg.opts.extra_networks.remove(0);
                cfg.resolved.network = next.name.clone();
                cfg.opts.network = Some(next.name);
                cfg.opts.network_aliases = next.aliases;
                cfg.opts.ip = next.ip;
                cfg.opts.ip6 = next.ip6;
            }
            None => {
                cfg.resolved.network = "none".into();
                cfg.opts.network = Some("none".into());
                cfg.opts.network_aliases.clear();
                cfg.opts.ip = None;
                cfg.opts.ip6 = None;
            }
        }
        let store = self.store()?;
        let ep = r
            .state
            .is_alive()
            .then(|| db::endpoints_of(store.conn(), &r.id))
            .and_then(|eps| eps.into_iter().find(|e| e.network == net.name));
        store.transaction(|tx| {
            if let Some(ep) = &ep {
                // Veth, lease, published ports (first interface) and the peers' hosts lines.
                self.release_endpoint(tx, &r, ep, true)?;
            }
            record::set_config(tx, &r, &cfg, &format!("disconnect: {}", net.name))?;
            network_event(tx, &net, &r, "disconnect")
        })?;
        if ep.is_some() && routing_before.as_deref() == Some(net.name.as_str()) {
            // It left the network of its default route: the next network that can carry
            // one takes it, as in Docker.
            if let Some(next) = self.routing_network(&cfg) {
                self.move_default_route(&r, &next).map_err(|e| {
                    EngineError::Internal(format!(
                        "container {} left network {}, but its default route could not move to network {next}: {e}; restart the container",
                        r.name, net.name
                    ))
                })?;
            }
        }
        self.container(&r.id)
    }

    /// Points the default route of running container `r` through `network`'s gateway.
    fn move_default_route(&self, r: &Record, network: &str) -> Result<(), EngineError> {
        let net = self.bridge_network(network, "routed through")?;
        let ep = db::endpoints_of(self.store()?.conn(), &r.id)
            .into_iter()
            .find(|e| e.network == net.name)
            .ok_or_else(|| {
                EngineError::Internal(format!("it has no interface on network {}", net.name))
            })?;
        let ns = super::endpoints::container_netns(r)?;
        use std::os::fd::AsFd;
        let gateway6 = ep.ip6.and(net.gateway6());
        gcr_net::netns::set_default_route(ns.as_fd(), &ep.ifname, net.gateway(), gateway6)
            .map_err(|e| EngineError::Internal(e.to_string()))
    }
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
