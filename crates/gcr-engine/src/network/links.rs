//! Docker's legacy links (`--link NAME[:ALIAS]`, `HostConfig.Links`): checked at create
//! (the linked container exists; kept with its name), required at start (it runs on a
//! network the two share), and the address under which the linking container's hosts file
//! (and its embedded DNS server) names it.

use std::net::IpAddr;

use super::db;
use crate::container::record::Record;
use crate::{Engine, EngineError};

/// `NAME`, `NAME:ALIAS` or the API's `/NAME:/CONTAINER/ALIAS` of a `--link`: the linked
/// container and the alias it gets (its name when none is given).
pub fn parse_link(s: &str) -> Option<(&str, &str)> {
    let (name, alias) = s.split_once(':').unwrap_or((s, s));
    let name = name.trim_start_matches('/');
    let alias = alias.rsplit('/').next().unwrap_or(alias);
    let ok = |n: &str| crate::names::valid_name(n) || n.len() == 64;
    (ok(name) && crate::names::valid_name(alias)).then_some((name, alias))
}

/// Container `target` and its address on a network it shares with `r` (`r`'s first
/// network preferred), when it runs there.
pub(crate) fn link_address(
    conn: &rusqlite::Connection,
    r: &Record,
    target: &str,
) -> Option<(IpAddr, Record)> {
    let t = crate::container::record::find(conn, target).ok()?;
    let mine: Vec<String> = std::iter::once(r.config.resolved.network.clone())
        .chain(r.config.opts.extra_networks.iter().map(|j| j.name.clone()))
        .collect();
    let theirs = db::endpoints_of(conn, &t.id);
    let ip = mine
        .iter()
        .find_map(|n| theirs.iter().find(|e| &e.network == n))
        .map(|e| IpAddr::V4(e.ip))?;
    Some((ip, t))
}

impl Engine {
    /// `--link`s of a new container on `network`: each names a container that exists and
    /// gets a valid alias; kept as `NAME:ALIAS` with the linked container's name.
    pub(crate) fn check_links(
        &self,
        network: &str,
        links: &[String],
    ) -> Result<Vec<String>, EngineError> {
        if links.is_empty() {
            return Ok(Vec::new());
        }
        if super::no_own_interface(network) {
            return Err(EngineError::Usage(format!(
                "--link cannot be used with --network {network}; use the default bridge or a user network"
            )));
        }
        let mut out = Vec::new();
        for l in links {
            let (name, alias) = parse_link(l).ok_or_else(|| {
                EngineError::Usage(format!(
                    "invalid --link '{l}': use NAME or NAME:ALIAS with container names"
                ))
            })?;
            let t = self.container(name).map_err(|_| {
                EngineError::NotFound(format!(
                    "--link {l}: no such container {name}; create it first or fix the name"
                ))
            })?;
            let alias = if alias == name {
                t.name.as_str()
            } else {
                alias
            };
            out.push(format!("{}:{alias}", t.name));
        }
        Ok(out)
    }

    /// Refuses to start `r` while a container it links to does not run on a network they
    /// share (Docker's "cannot link to a non running container").
    pub(crate) fn links_up(&self, r: &Record) -> Result<(), EngineError> {
        let conn = self.store()?.conn();
        for (name, _) in r.config.opts.links.iter().filter_map(|l| parse_link(l)) {
            if link_address(conn, r, name).is_none() {
                return Err(EngineError::Conflict(format!(
                    "cannot link container {} to {name}: {name} is not running on a network they share; start it first",
                    r.name
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::parse_link;

    #[test]
    fn links_are_read_in_the_cli_and_api_forms() {
        assert_eq!(parse_link("db"), Some(("db", "db")));
        assert_eq!(parse_link("db:store"), Some(("db", "store")));
        assert_eq!(parse_link("/db:/web/store"), Some(("db", "store")));
        for bad in ["", ":x", "db:", "d b:x", "db:a b"] {
            assert_eq!(parse_link(bad), None, "{bad:?}");
        }
    }
}
