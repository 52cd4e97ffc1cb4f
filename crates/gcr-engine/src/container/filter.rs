//! Docker's container filters, for both front-ends: `gcr ps --filter` and the API's
//! `GET /containers/json?filters=`. One parse (values checked once, `before`/`since`
//! resolved to their containers, port ranges read) and one match, so the CLI and the
//! service list the same containers for the same filters.
//!
//! Values of one key are alternatives, different keys must all match, except `label`:
//! every label given must match (Docker's rule; docker-compose lists a service's
//! containers by its project's and its service's labels at once).

use std::cell::RefCell;
use std::collections::HashMap;

use gcr_net::{PortSpec, Proto};

use super::record::Record;
use crate::{Engine, EngineError, State};

/// The filter keys containers know.
pub const KEYS: [&str; 14] = [
    "status", "name", "label", "ancestor", "id", "exited", "health", "network", "volume", "before",
    "since", "publish", "expose", "is-task",
];

/// A port filter: `80`, `80/udp`, `8000-8080/tcp` (Docker's `publish` and `expose`).
#[derive(Debug, Clone, PartialEq)]
struct PortRange {
    lo: u16,
    hi: u16,
    proto: Proto,
}

impl PortRange {
    fn parse(key: &str, v: &str) -> Result<PortRange, EngineError> {
        let bad = || {
            EngineError::Usage(format!(
                "invalid filter '{key}={v}': give a port, PORT/PROTO or a range START-END[/PROTO] (tcp or udp)"
            ))
        };
        let (ports, proto) = match v.rsplit_once('/') {
            Some((p, "tcp")) => (p, Proto::Tcp),
            Some((p, "udp")) => (p, Proto::Udp),
            Some(_) => return Err(bad()),
            None => (v, Proto::Tcp),
        };
        let num = |s: &str| s.parse::<u16>().ok().filter(|n| *n > 0).ok_or_else(bad);
        let (lo, hi) = match ports.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(ports)?, num(ports)?),
        };
        if lo > hi {
            return Err(bad());
        }
        Ok(PortRange { lo, hi, proto })
    }

    fn holds(&self, port: u16, proto: Proto) -> bool {
        proto == self.proto && (self.lo..=self.hi).contains(&port)
    }
}

/// Parsed container filters (see [`Engine::container_filter`]).
#[derive(Default)]
pub struct ContainerFilter {
    pairs: Vec<(String, String)>,
    /// Created before this container (its place in the newest-first list).
    before: Option<usize>,
    /// Created after this container.
    since: Option<usize>,
    /// Every container's place in the newest-first list (creation order, ties by
    /// insertion), when `before` or `since` is given.
    order: HashMap<String, usize>,
    publish: Vec<PortRange>,
    expose: Vec<PortRange>,
    /// `is-task=true`: swarm tasks only, which gcr never has.
    tasks_only: bool,
    /// Exposed ports of an image by id, read once per listing.
    exposed: RefCell<HashMap<String, Vec<(u16, Proto)>>>,
}

impl Engine {
    /// Checks `pairs` (key, value) and resolves what they refer to. An unknown key or a
    /// malformed value is a usage error naming it; `before`/`since` naming no container
    /// is not found.
    pub fn container_filter(
        &self,
        pairs: Vec<(String, String)>,
    ) -> Result<ContainerFilter, EngineError> {
        let mut f = ContainerFilter::default();
        for (k, v) in &pairs {
            match k.as_str() {
                "exited" => {
                    v.parse::<i32>().map_err(|_| {
                        EngineError::Usage(format!(
                            "invalid filter 'exited={v}': give an exit code (a number)"
                        ))
                    })?;
                }
                "before" | "since" => {
                    let r = self.container(v).map_err(|_| {
                        EngineError::NotFound(format!(
                            "no such container: {v} (filter '{k}' takes a container's name or id)"
                        ))
                    })?;
                    if f.order.is_empty() {
                        let all = super::record::list(self.store()?.conn())?;
                        f.order = all
                            .into_iter()
                            .enumerate()
                            .map(|(i, r)| (r.id, i))
                            .collect();
                    }
                    let at = f.order.get(&r.id).copied();
                    if k == "before" {
                        f.before = at;
                    } else {
                        f.since = at;
                    }
                }
                "publish" => f.publish.push(PortRange::parse(k, v)?),
                "expose" => f.expose.push(PortRange::parse(k, v)?),
                "is-task" => match v.as_str() {
                    "true" | "1" => f.tasks_only = true,
                    "false" | "0" => {}
                    _ => {
                        return Err(EngineError::Usage(format!(
                            "invalid filter 'is-task={v}': give true or false"
                        )))
                    }
                },
                k if KEYS.contains(&k) => {}
                other => {
                    return Err(EngineError::Usage(format!(
                        "invalid filter '{other}': containers filter by {}",
                        KEYS.join(", ")
                    )))
                }
            }
        }
        f.pairs = pairs;
        Ok(f)
    }
}

impl ContainerFilter {
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Whether the listing must look at stopped containers too (a `status` or `exited`
    /// filter, as Docker's).
    pub fn wants_all(&self) -> bool {
        self.pairs
            .iter()
            .any(|(k, _)| k == "status" || k == "exited")
    }

    /// Whether container `r` passes every filter.
    pub fn matches(&self, e: &Engine, r: &Record) -> bool {
        if self.tasks_only {
            return false;
        }
        if self.before.is_some() || self.since.is_some() {
            // Newest first: a smaller place is a later creation.
            let Some(at) = self.order.get(&r.id) else {
                return false;
            };
            if self.before.is_some_and(|b| *at <= b) || self.since.is_some_and(|s| *at >= s) {
                return false;
            }
        }
        if !self.publish.is_empty() {
            let bound = e.published_ports(r);
            let hit = |p: &PortRange| bound.iter().any(|s| p.holds(s.host_port, s.proto));
            if !self.publish.iter().any(hit) {
                return false;
            }
        }
        if !self.expose.is_empty() {
            let ports = self.exposed_ports(e, r);
            let hit = |p: &PortRange| ports.iter().any(|(n, pr)| p.holds(*n, *pr));
            if !self.expose.iter().any(hit) {
                return false;
            }
        }
        let mut keys: Vec<&str> = self.pairs.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        keys.into_iter().all(|k| {
            let mut values = self.pairs.iter().filter(|(fk, _)| fk == k);
            if k == "label" {
                values.all(|(_, v)| passes(e, r, k, v))
            } else {
                values.any(|(_, v)| passes(e, r, k, v))
            }
        })
    }

    /// The container ports `r` exposes: those its image declares and those it publishes.
    fn exposed_ports(&self, e: &Engine, r: &Record) -> Vec<(u16, Proto)> {
        let mut out = self
            .exposed
            .borrow_mut()
            .entry(r.image_id.clone())
            .or_insert_with(|| image_exposed(e, &r.image_id))
            .clone();
        out.extend(own_exposed(r));
        out
    }
}

/// The container ports `r` exposes besides its image's: `--expose`'s and those it
/// publishes.
pub(crate) fn own_exposed(r: &Record) -> impl Iterator<Item = (u16, Proto)> + '_ {
    let given = r
        .config
        .opts
        .expose
        .iter()
        .filter_map(|k| PortSpec::exposed(k).ok());
    let published = r.config.resolved.network_data["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| PortSpec::parse(p.as_str()?).ok());
    given.chain(published).map(|s| (s.container_port, s.proto))
}

/// The `ExposedPorts` of image `id`'s config (none when it cannot be read).
pub(crate) fn image_exposed(e: &Engine, id: &str) -> Vec<(u16, Proto)> {
    let Ok(store) = e.store() else {
        return Vec::new();
    };
    let Ok(bytes) = store.image_config(id) else {
        return Vec::new();
    };
    let cfg: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    cfg.pointer("/config/ExposedPorts")
        .and_then(|v| v.as_object())
        .into_iter()
        .flat_map(|m| m.keys())
        .filter_map(|k| PortSpec::exposed(k).ok())
        .map(|s| (s.container_port, s.proto))
        .collect()
}

/// Docker's `label=KEY` or `label=KEY=VALUE` against `labels`.
pub fn label_matches(labels: &[(String, String)], want: &str) -> bool {
    match want.split_once('=') {
        Some((k, v)) => labels.iter().any(|(a, b)| a == k && b == v),
        None => labels.iter().any(|(a, _)| a == want),
    }
}

/// Whether `want` names the image of a container (`image_ref`, `image_id`): the
/// reference as given or normalized, or an id prefix.
pub fn image_matches(want: &str, image_ref: &str, image_id: &str) -> bool {
    image_ref == want
        || image_id
            .trim_start_matches("sha256:")
            .starts_with(want.trim_start_matches("sha256:"))
        || gcr_core::Reference::parse(want)
            .is_ok_and(|x| x.to_string() == image_ref || x.familiar() == image_ref)
}

/// Whether `r` passes one value of a plain key.
fn passes(e: &Engine, r: &Record, key: &str, want: &str) -> bool {
    match key {
        "id" => r.id.starts_with(want),
        // Docker matches names as a regular expression against "/NAME".
        "name" => {
            let name = format!("/{}", r.name);
            name == want
                || r.name == want
                || regex::Regex::new(want).is_ok_and(|re| re.is_match(&name))
        }
        "status" => r.state.as_str() == want,
        "exited" => {
            r.state == State::Exited && r.exit_code.map(|c| c.to_string()).as_deref() == Some(want)
        }
        "label" => label_matches(&r.config.resolved.labels, want),
        "ancestor" => {
            let bare = want.strip_suffix(":latest").unwrap_or(want);
            let (repo, _) = crate::images::split_familiar(&r.image_ref);
            repo == bare || image_matches(want, &r.image_ref, &r.image_id)
        }
        "network" => {
            r.config.resolved.network == want
                || r.config.opts.extra_networks.iter().any(|j| j.name == want)
        }
        "health" => {
            r.extra
                .health
                .as_ref()
                .map_or("none", |h| h.status.as_str())
                == want
        }
        "volume" => e.mounts_view(r).as_array().is_some_and(|ms| {
            ms.iter()
                .any(|m| m["Name"] == want || m["Destination"] == want)
        }),
        // Checked by `matches` itself.
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges_parse_like_docker() {
        let p = PortRange::parse("publish", "8000-8080/udp").unwrap();
        assert!(p.holds(8000, Proto::Udp) && p.holds(8080, Proto::Udp));
        assert!(!p.holds(8081, Proto::Udp) && !p.holds(8000, Proto::Tcp));
        assert_eq!(
            PortRange::parse("expose", "80").unwrap(),
            PortRange {
                lo: 80,
                hi: 80,
                proto: Proto::Tcp
            }
        );
        for bad in ["", "0", "80/sctp", "90-80", "x", "80-", "70000"] {
            let e = PortRange::parse("publish", bad).unwrap_err().to_string();
            assert!(e.contains(&format!("'publish={bad}'")), "{bad}: {e}");
        }
    }
}
