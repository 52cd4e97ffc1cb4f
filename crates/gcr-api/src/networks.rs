//! `POST /networks/{id}/connect` and `/disconnect` (the engine's `network_connect`,
//! `network_disconnect`: live on a running container, see gcr-engine's network::connect),
//! the `filters` of `GET /networks` and `GET /volumes`, and the `Labels` of their create
//! bodies.

use std::collections::BTreeMap;

use gcr_engine::network::admin::NetworkInfo;
use gcr_engine::network::ConnectRequest;
use gcr_engine::volumes::admin::VolumeInfo;

use hyper::StatusCode;
use serde_json::{Map, Value};

use crate::create::{bad, field, object, string};
use crate::errors::HttpError;
use crate::http::{self, Query, Resp};
use crate::server::Shared;

/// A create body's `Labels` (an object of strings).
pub fn labels(body: &Value) -> Result<BTreeMap<String, String>, HttpError> {
    strings(body, "Labels")
}

/// A create body's object of strings `key` (absent or null: empty).
fn strings(body: &Value, key: &str) -> Result<BTreeMap<String, String>, HttpError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                v => Err(bad(format!(
                    "invalid {key} value for '{k}': {v} is not a string"
                ))),
            })
            .collect(),
        Some(v) => Err(bad(format!(
            "invalid {key} {v}: expected an object of strings"
        ))),
    }
}

/// What a `POST /networks/create` body asks of network `name`: `EnableIPv6`, each
/// `IPAM.Config` entry (`Subnet`, `Gateway`, `IPRange`, IPv4 or IPv6 by its addresses),
/// `Internal`, `Labels` and `Options`.
pub fn create_request(
    name: &str,
    body: &Value,
) -> Result<gcr_engine::network::admin::NetworkCreate, HttpError> {
    let flag = |key: &str| match &body[key] {
        Value::Null => Ok(false),
        Value::Bool(b) => Ok(*b),
        v => Err(bad(format!("invalid {key} {v}: expected true or false"))),
    };
    let mut c = gcr_engine::network::admin::NetworkCreate {
        labels: labels(body)?,
        internal: flag("Internal")?,
        options: options(body)?,
        ipv6: flag("EnableIPv6")?,
        ..Default::default()
    };
    let configs = match &body["IPAM"]["Config"] {
        Value::Null => &Vec::new(),
        Value::Array(a) => a,
        v => {
            return Err(bad(format!(
                "invalid IPAM.Config {v}: expected a list of objects"
            )))
        }
    };
    for entry in configs {
        let text = |key: &str| match &entry[key] {
            Value::Null => Ok(None),
            Value::String(s) if s.is_empty() => Ok(None),
            Value::String(s) => Ok(Some(s.as_str())),
            v => Err(bad(format!(
                "invalid IPAM.Config {key} {v}: expected a string"
            ))),
        };
        if !entry.is_object() {
            return Err(bad(format!(
                "invalid IPAM.Config entry {entry}: expected an object"
            )));
        }
        if entry["AuxiliaryAddresses"]
            .as_object()
            .is_some_and(|m| !m.is_empty())
        {
            return Err(bad(format!(
                "network {name}: auxiliary addresses are not supported by gcr's IPAM; leave out --aux-address"
            )));
        }
        c.add_ipam(name, text("Subnet")?, text("Gateway")?, text("IPRange")?)?;
    }
    Ok(c)
}

/// A create body's `Options` (Docker's bridge driver options, an object of strings; the
/// engine checks the keys and values).
pub fn options(body: &Value) -> Result<BTreeMap<String, String>, HttpError> {
    strings(body, "Options")
}

fn label_matches(labels: &BTreeMap<String, String>, want: &str) -> bool {
    match want.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(want),
    }
}

/// Docker's list filters: values of one key are alternatives (labels: all must match),
/// different keys must all match.
pub struct Filters(Vec<(String, String)>);

impl Filters {
    fn parse(q: &Query, keys: &[&str], what: &str) -> Result<Filters, HttpError> {
        let f = q.filters()?;
        if let Some((k, _)) = f.iter().find(|(k, _)| !keys.contains(&k.as_str())) {
            return Err(bad(format!(
                "invalid filter '{k}': gcr filters {what} by {}",
                keys.join(", ")
            )));
        }
        Ok(Filters(f))
    }

    fn all(&self, m: impl Fn(&str, &str) -> bool) -> bool {
        let mut keys: Vec<&str> = self.0.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        keys.into_iter().all(|k| {
            let mut vals = self.0.iter().filter(|(fk, _)| fk == k);
            // Every label must match (Docker's rule), one value of any other key.
            if k == "label" {
                vals.all(|(_, v)| m(k, v))
            } else {
                vals.any(|(_, v)| m(k, v))
            }
        })
    }

    pub fn network(&self, n: &NetworkInfo) -> bool {
        let builtin = ["bridge", "host", "none"].contains(&n.name.as_str());
        self.all(|k, v| match k {
            "name" => n.name.contains(v),
            "id" => n.id.starts_with(v),
            "label" => label_matches(&n.labels, v),
            "driver" => n.driver == v,
            "type" => (v == "builtin" && builtin) || (v == "custom" && !builtin),
            "scope" => v == "local",
            _ => false,
        })
    }

    pub fn volume(&self, v: &VolumeInfo) -> bool {
        self.all(|k, want| match k {
            "name" => v.name.contains(want),
            "label" => label_matches(&v.labels, want),
            "dangling" => v.containers.is_empty() == (want == "true" || want == "1"),
            "driver" => want == "local",
            _ => false,
        })
    }
}

pub fn network_filters(q: &Query) -> Result<Filters, HttpError> {
    Filters::parse(
        q,
        &["name", "id", "label", "driver", "type", "scope"],
        "networks",
    )
}

pub fn volume_filters(q: &Query) -> Result<Filters, HttpError> {
    Filters::parse(q, &["name", "label", "dangling", "driver"], "volumes")
}

/// The `Container` of a connect or disconnect body.
fn container(body: &Map<String, Value>) -> Result<String, HttpError> {
    string(body, "Container")?
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            bad("the container to connect or disconnect (Container) must be given".into())
        })
}

pub(crate) fn body_object(body: Value) -> Result<Map<String, Value>, HttpError> {
    match body {
        Value::Object(m) => Ok(m),
        Value::Null => Ok(Map::new()),
        v => Err(bad(format!("invalid body {v}: expected a JSON object"))),
    }
}

/// The `EndpointConfig` of a connect body: `Aliases`, `IPAMConfig.IPv4Address`.
pub(crate) fn connect_request(body: &Map<String, Value>) -> Result<ConnectRequest, HttpError> {
    let mut req = ConnectRequest::default();
    let Some(ep) = object(body, "EndpointConfig")? else {
        return Ok(req);
    };
    if let Some(a) = field(ep, "Aliases") {
        let list = a
            .as_array()
            .ok_or_else(|| bad(format!("invalid Aliases {a}: expected a list of strings")))?;
        for x in list {
            let s = x
                .as_str()
                .ok_or_else(|| bad(format!("invalid Aliases: {x} is not a string")))?;
            if !req.aliases.iter().any(|y| y == s) {
                req.aliases.push(s.to_string());
            }
        }
    }
    if let Some(ipam) = object(ep, "IPAMConfig")? {
        req.ip = string(ipam, "IPv4Address")?.filter(|s| !s.is_empty());
        req.ip6 = string(ipam, "IPv6Address")?.filter(|s| !s.is_empty());
    }
    Ok(req)
}

/// `POST /networks/{id}/connect` (`{"Container", "EndpointConfig": {"Aliases",
/// "IPAMConfig": {"IPv4Address", "IPv6Address"}}}`).
pub async fn connect(st: &Shared, network: &str, body: &[u8]) -> Result<Resp, HttpError> {
    let body = body_object(http::parse_json(body)?)?;
    let c = container(&body)?;
    let r = connect_request(&body)?;
    let network = network.to_string();
    st.engine(move |e| Ok(e.network_connect(&network, &c, &r).map(|_| ())?))
        .await?;
    Ok(http::empty(StatusCode::OK))
}

/// `POST /networks/{id}/disconnect` (`{"Container", "Force"}`).
pub async fn disconnect(st: &Shared, network: &str, body: &[u8]) -> Result<Resp, HttpError> {
    let body = body_object(http::parse_json(body)?)?;
    let c = container(&body)?;
    let network = network.to_string();
    st.engine(move |e| Ok(e.network_disconnect(&network, &c).map(|_| ())?))
        .await?;
    Ok(http::empty(StatusCode::OK))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn connect_bodies() {
        let b = body_object(json!({"Container": "web", "EndpointConfig": {
            "Aliases": ["web", "abc", "web"], "IPAMConfig": {"IPv4Address": "10.3.0.7"}}}))
        .unwrap();
        assert_eq!(container(&b).unwrap(), "web");
        let r = connect_request(&b).unwrap();
        assert_eq!(r.aliases, ["web", "abc"]);
        assert_eq!(r.ip.as_deref(), Some("10.3.0.7"));
        assert!(container(&Map::new()).is_err());
        let b = body_object(json!({"Container": "x", "EndpointConfig": {"Aliases": "a"}})).unwrap();
        assert!(connect_request(&b).is_err());
        assert!(body_object(json!([1])).is_err());
    }

    #[test]
    fn labels_and_create_checks() {
        let l = labels(&json!({"Labels": {"a": "1", "com.docker.compose.project": "p"}})).unwrap();
        assert_eq!(l.get("a").map(String::as_str), Some("1"));
        assert!(labels(&json!({"Labels": {"a": 1}})).is_err());
        assert!(labels(&json!({"Labels": ["a"]})).is_err());
        let c = |b: Value| create_request("n", &b);
        assert!(c(json!({"Name": "n", "Options": {}, "Internal": false})).is_ok());
        assert!(c(json!({"Name": "n", "Options": null})).is_ok());
        assert!(c(json!({"Name": "n", "Internal": true})).unwrap().internal);
        assert!(c(json!({"Name": "n", "Internal": "yes"})).is_err());
        let v6 = c(json!({"Name": "n", "EnableIPv6": true, "IPAM": {"Config": [
            {"Subnet": "10.9.0.0/24", "Gateway": "10.9.0.254"},
            {"Subnet": "fd00:9::/64", "Gateway": "fd00:9::fe"}
        ]}}))
        .unwrap();
        assert!(v6.ipv6);
        assert_eq!(v6.subnet.as_deref(), Some("10.9.0.0/24"));
        assert_eq!(v6.gateway.as_deref(), Some("10.9.0.254"));
        assert_eq!(v6.subnet6.as_deref(), Some("fd00:9::/64"));
        assert_eq!(v6.gateway6.as_deref(), Some("fd00:9::fe"));
        let twice =
            json!({"IPAM": {"Config": [{"Subnet": "fd00:9::/64"}, {"Subnet": "fd00:8::/64"}]}});
        assert!(c(twice).is_err());
        assert!(c(json!({"IPAM": {"Config": [{"Subnet": 5}]}})).is_err());
        assert!(c(json!({"IPAM": {"Config": {}}})).is_err());
        let aux = json!({"IPAM": {"Config": [{"Subnet": "10.9.0.0/24", "AuxiliaryAddresses": {"r": "10.9.0.9"}}]}});
        assert!(c(aux).is_err());
        let o = options(&json!({"Options": {"com.docker.network.driver.mtu": "1400"}})).unwrap();
        assert_eq!(o["com.docker.network.driver.mtu"], "1400");
        assert!(options(&json!({"Options": {"mtu": 1400}})).is_err());
        assert!(options(&json!({"Options": null})).unwrap().is_empty());
        assert!(label_matches(&l, "a=1") && label_matches(&l, "a") && !label_matches(&l, "a=2"));
    }
}
