//! The query of `POST /build` (and of `POST /build/prune`) decoded: tags, the spec, build
//! args and labels, the network, the platform, the RUN steps' options (hosts lines,
//! /dev/shm, limits), and what a prune keeps.

use std::collections::BTreeMap;

use gcr_engine::build::{BuildNet, StepOptions};
use gcr_engine::registry::Platform;
use serde_json::Value;

use crate::errors::HttpError;
use crate::http::Query;

/// The query of `POST /build`.
#[derive(Debug, Clone)]
pub(crate) struct Params {
    pub(crate) tags: Vec<String>,
    pub(crate) dockerfile: Option<String>,
    pub(crate) build_args: BTreeMap<String, String>,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) target: Option<String>,
    pub(crate) quiet: bool,
    /// The `aux` line with the image ID (API 1.30 and later).
    pub(crate) aux: bool,
    pub(crate) no_cache: bool,
    pub(crate) pull: bool,
    pub(crate) network: BuildNet,
    pub(crate) platform: Option<Platform>,
    /// What every RUN step runs with.
    pub(crate) steps: StepOptions,
    /// The client's connection: gone, the build is cancelled.
    pub(crate) peer: Option<crate::listen::Peer>,
    /// `X-Registry-Config`: the client's credentials by registry host, for the base
    /// images' pulls (Debug shows no password).
    pub(crate) registry_config: BTreeMap<String, gcr_engine::registry::Credentials>,
    /// The service's `--insecure-registry` hosts (base pulls over plain http).
    pub(crate) insecure_registries: Vec<String>,
}

/// A JSON object of strings (`buildargs`, `labels`); null values are left out (Docker's
/// `--build-arg KEY` with KEY unset in the client's environment).
fn string_map(q: &Query, k: &str) -> Result<BTreeMap<String, String>, HttpError> {
    let Some(raw) = q.get(k).filter(|s| !s.is_empty()) else {
        return Ok(BTreeMap::new());
    };
    let v: Value = serde_json::from_str(raw)
        .map_err(|e| HttpError::bad_request(format!("invalid {k} '{raw}': {e}")))?;
    let Value::Object(m) = v else {
        return Err(HttpError::bad_request(format!(
            "invalid {k} '{raw}': expected a JSON object of strings"
        )));
    };
    let mut out = BTreeMap::new();
    for (key, val) in m {
        match val {
            Value::String(s) => {
                out.insert(key, s);
            }
            Value::Null => {}
            other => {
                return Err(HttpError::bad_request(format!(
                    "invalid {k}: the value of '{key}' is {other}, not a string"
                )))
            }
        }
    }
    Ok(out)
}

impl Params {
    pub(crate) fn parse(q: &Query) -> Result<Params, HttpError> {
        if q.get("remote").is_some_and(|r| !r.is_empty()) {
            return Err(HttpError::bad_request(
                "remote build contexts (remote=) are not supported by gcr; send the context as the request body",
            ));
        }
        if q.get("version").is_some_and(|v| v == "2") {
            return Err(HttpError::bad_request(
                "BuildKit (version=2) is not supported by gcr's API; use the classic builder (DOCKER_BUILDKIT=0)",
            ));
        }
        let network = match q.get("networkmode").filter(|n| !n.is_empty()) {
            None => BuildNet::Bridge,
            Some(n) => gcr_engine::build::build_network(Some(n)).ok_or_else(|| {
                HttpError::bad_request(format!(
                    "invalid networkmode '{n}': gcr builds with default (bridge), none or host"
                ))
            })?,
        };
        // dockerd reads `platform` from API 1.32 on.
        let asked = q
            .get("platform")
            .filter(|p| !p.is_empty() && !q.version().before(32));
        let platform = match asked {
            None => None,
            Some(p) => {
                let want = Platform::parse(p).ok_or_else(|| {
                    HttpError::bad_request(format!(
                        "invalid platform '{p}': use os/arch[/variant], e.g. linux/amd64"
                    ))
                })?;
                let host = Platform::host();
                if want.os != host.os || want.architecture != host.architecture {
                    return Err(HttpError::bad_request(format!(
                        "platform {p} cannot be built here: gcr builds only for the host's platform, {host}"
                    )));
                }
                Some(want)
            }
        };
        let tags = q
            .all("t")
            .into_iter()
            .filter(|t| !t.is_empty())
            .map(|t| {
                gcr_engine::Reference::parse(t)
                    .map(|_| t.to_string())
                    .map_err(|e| HttpError::bad_request(format!("invalid tag '{t}': {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Params {
            tags,
            dockerfile: q
                .get("dockerfile")
                .filter(|d| !d.is_empty())
                .map(str::to_string),
            build_args: string_map(q, "buildargs")?,
            labels: string_map(q, "labels")?,
            target: q
                .get("target")
                .filter(|t| !t.is_empty())
                .map(str::to_string),
            quiet: q.flag("q", false),
            aux: !q.version().before(30),
            no_cache: q.flag("nocache", false),
            pull: q.flag("pull", false),
            network,
            platform,
            steps: step_options(q)?,
            peer: None,
            registry_config: BTreeMap::new(),
            insecure_registries: Vec::new(),
        })
    }
}

/// The RUN steps' options of a build: `extrahosts` (comma-separated `NAME:IP`),
/// `shmsize`, `memory`, `memswap`, `cpushares`, `cpusetcpus`, `cpusetmems`, `cpuperiod`,
/// `cpuquota` (the docker CLI sends zeros for what was not given), `ulimits` (a JSON list
/// of `{"Name","Soft","Hard"}`, `null` when none).
fn step_options(q: &Query) -> Result<StepOptions, HttpError> {
    let num = |k: &str| Ok::<_, HttpError>(q.number::<i64>(k)?.filter(|n| *n != 0));
    let text = |k: &str| q.get(k).filter(|v| !v.is_empty()).map(str::to_string);
    let positive = |k: &str| -> Result<Option<u64>, HttpError> {
        match num(k)? {
            Some(n) if n < 0 => Err(HttpError::bad_request(format!(
                "invalid {k} {n}: expected a positive number"
            ))),
            other => Ok(other.map(|n| n as u64)),
        }
    };
    let ulimits = match q.get("ulimits").filter(|v| !v.is_empty()) {
        None => Vec::new(),
        Some(text) => {
            let v: serde_json::Value = serde_json::from_str(text).map_err(|e| {
                HttpError::bad_request(format!(
                    "invalid ulimits {text:?}: {e}; expected a JSON list of {{\"Name\",\"Soft\",\"Hard\"}}"
                ))
            })?;
            if !(v.is_null() || v.is_array()) {
                return Err(HttpError::bad_request(format!(
                    "invalid ulimits {text:?}: expected a JSON list of {{\"Name\",\"Soft\",\"Hard\"}}"
                )));
            }
            crate::create::ulimit_flags(&v)?
        }
    };
    let steps = StepOptions {
        add_hosts: q.list("extrahosts"),
        shm_size: positive("shmsize")?,
        memory: positive("memory")?,
        memory_swap: num("memswap")?,
        cpus: StepOptions::cpus_of(num("cpuquota")?, num("cpuperiod")?),
        cpu_shares: positive("cpushares")?,
        cpuset_cpus: text("cpusetcpus"),
        cpuset_mems: text("cpusetmems"),
        ulimits,
    };
    steps.check().map_err(HttpError::from)?;
    Ok(steps)
}

/// `POST /build`'s query decoded as the endpoint does (for [`crate::fuzzing`]): the
/// parameters' Debug form.
pub(crate) fn parse_query(q: &Query) -> Result<String, HttpError> {
    Params::parse(q).map(|p| format!("{p:?}"))
}

/// `all`, `keep-storage` (bytes; 0 is none) and `filters` (`until` only: a duration ago,
/// unix seconds or RFC 3339) of `POST /build/prune`.
pub(crate) fn prune_options(q: &Query) -> Result<gcr_engine::build::CachePruneOptions, HttpError> {
    let mut until = None;
    for (k, g) in q.filters()? {
        if k != "until" {
            return Err(HttpError::bad_request(format!(
                "invalid filter '{k}': gcr's build cache filters by until only"
            )));
        }
        let now = gcr_engine::container::record::now_ns();
        let t = gcr_engine::events::parse_since(&g, now).ok_or_else(|| {
            HttpError::bad_request(format!(
                "invalid until '{g}': use a duration (24h), unix seconds or RFC 3339"
            ))
        })?;
        until = Some(t / 1_000_000_000);
    }
    Ok(gcr_engine::build::CachePruneOptions {
        all: q.flag("all", false),
        until,
        keep_storage: q.number::<u64>("keep-storage")?.filter(|n| *n > 0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_parameters() {
        let q = |s: &str| Query::parse(Some(s));
        let o = prune_options(&q(
            "all=1&keep-storage=1000&filters=%7B%22until%22%3A%5B%2224h%22%5D%7D",
        ))
        .unwrap();
        assert!(o.all && o.keep_storage == Some(1000));
        let day_ago = gcr_engine::container::record::now_ns() / 1_000_000_000 - 86_400;
        assert!((o.until.unwrap() - day_ago).abs() < 5, "{o:?}");
        assert!(prune_options(&q("filters=%7B%22type%22%3A%5B%22x%22%5D%7D")).is_err());
        assert!(prune_options(&q("keep-storage=lots")).is_err());
        assert_eq!(
            prune_options(&q("keep-storage=0")).unwrap().keep_storage,
            None
        );
    }

    #[test]
    fn build_parameters() {
        let q = Query::parse(Some(
            "t=x%3A1&t=y&buildargs=%7B%22A%22%3A%221%22%2C%22B%22%3Anull%7D&q=1&networkmode=none",
        ));
        let p = Params::parse(&q).unwrap();
        assert_eq!(p.tags, vec!["x:1", "y"]);
        assert_eq!(p.build_args.get("A").map(String::as_str), Some("1"));
        assert!(!p.build_args.contains_key("B"));
        assert!(p.quiet);
        assert_eq!(p.network, BuildNet::None);
        assert!(Params::parse(&Query::parse(Some("networkmode=weird"))).is_err());
        assert!(Params::parse(&Query::parse(Some("buildargs=%5B%5D"))).is_err());
        assert!(Params::parse(&Query::parse(Some("platform=windows/amd64"))).is_err());
        assert!(Params::parse(&Query::parse(Some("remote=https://x/y.git"))).is_err());
    }
}
