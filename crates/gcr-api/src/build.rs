//! `POST /build` (Docker's classic builder: the body is the context as a tar, plain or
//! gzip/bzip2/xz compressed) and `POST /build/prune`. The context is unpacked into a private
//! temporary directory by the store's hostile-input-safe unpacker (no entry lands outside
//! it), then built by the engine's build, the one `gcr build` runs; the output is streamed
//! as dockerd's JSON lines (`stream`, then `aux` with the image id, then `Successfully
//! built`/`Successfully tagged`, or an `errorDetail` line). The directory is removed when
//! the build ends, whether or not the client is still there.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use bytes::Bytes;
use gcr_engine::build::{BuildNet, BuildRequest, Cancel, StepOptions};
use gcr_engine::registry::{ConnectOptions, Platform, PullOptions};
use gcr_engine::{Engine, EngineError};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::buildsteps::Render;
use crate::errors::HttpError;
use crate::http::{self, Query, Resp};
use crate::server::Shared;

/// The query of `POST /build`.
#[derive(Debug, Clone)]
pub(crate) struct Params {
    tags: Vec<String>,
    dockerfile: Option<String>,
    build_args: BTreeMap<String, String>,
    labels: BTreeMap<String, String>,
    target: Option<String>,
    quiet: bool,
    /// The `aux` line with the image ID (API 1.30 and later).
    aux: bool,
    no_cache: bool,
    pull: bool,
    network: BuildNet,
    platform: Option<Platform>,
    /// What every RUN step runs with.
    steps: StepOptions,
    /// The client's connection: gone, the build is cancelled.
    peer: Option<crate::listen::Peer>,
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
        })
    }
}

/// The RUN steps' options of a build: `extrahosts` (comma-separated `NAME:IP`),
/// `shmsize`, `memory`, `memswap`, `cpushares`, `cpusetcpus`, `cpusetmems`, `cpuperiod`,
/// `cpuquota` (the docker CLI sends zeros for what was not given).
fn step_options(q: &Query) -> Result<StepOptions, HttpError> {
    let num = |k: &str| -> Result<Option<i64>, HttpError> {
        match q.get(k).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .map(|n| (n != 0).then_some(n))
                .map_err(|_| {
                    HttpError::bad_request(format!("invalid {k} '{v}': expected a number"))
                }),
        }
    };
    let text = |k: &str| q.get(k).filter(|v| !v.is_empty()).map(str::to_string);
    let positive = |k: &str| -> Result<Option<u64>, HttpError> {
        match num(k)? {
            Some(n) if n < 0 => Err(HttpError::bad_request(format!(
                "invalid {k} {n}: expected a positive number"
            ))),
            other => Ok(other.map(|n| n as u64)),
        }
    };
    let cpus = match (num("cpuquota")?, num("cpuperiod")?) {
        (Some(quota), period) if quota > 0 => {
            Some(quota as f64 / period.filter(|p| *p > 0).unwrap_or(100_000) as f64)
        }
        _ => None,
    };
    let add_hosts = q
        .all("extrahosts")
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(str::to_string)
        .collect();
    let steps = StepOptions {
        add_hosts,
        shm_size: positive("shmsize")?,
        memory: positive("memory")?,
        memory_swap: num("memswap")?,
        cpus,
        cpu_shares: positive("cpushares")?,
        cpuset_cpus: text("cpusetcpus"),
        cpuset_mems: text("cpusetmems"),
    };
    steps.check().map_err(HttpError::from)?;
    Ok(steps)
}

/// `POST /build`'s query decoded as the endpoint does (for [`crate::fuzzing`]): the
/// parameters' Debug form.
pub(crate) fn parse_query(q: &Query) -> Result<String, HttpError> {
    Params::parse(q).map(|p| format!("{p:?}"))
}

/// A blocking `Read` over the request body's chunks; a body that broke off (the client
/// left) is an error, never a shorter context.
struct BodyRead {
    rx: mpsc::Receiver<Result<Bytes, String>>,
    cur: Bytes,
}

impl Read for BodyRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(c)) => self.cur = c,
                Some(Err(e)) => {
                    return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, e))
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}

/// JSON lines into the response body; once the client is gone they are dropped, and the
/// build is cancelled (see [`build_in`]).
pub(crate) struct Out {
    tx: mpsc::Sender<Bytes>,
}

impl Out {
    pub(crate) fn new(tx: mpsc::Sender<Bytes>) -> Out {
        Out { tx }
    }

    fn send(&self, v: Value) {
        let mut b = serde_json::to_vec(&v).unwrap_or_default();
        b.push(b'\n');
        let _ = self.tx.blocking_send(Bytes::from(b));
    }

    pub(crate) fn stream(&self, s: impl Into<String>) {
        let mut s = s.into();
        if !s.ends_with('\n') {
            s.push('\n');
        }
        self.send(json!({ "stream": s }));
    }

    fn error(&self, m: &str) {
        self.send(json!({ "errorDetail": { "message": m }, "error": m }));
    }
}

pub(crate) fn short(d: &str) -> &str {
    let h = d.strip_prefix("sha256:").unwrap_or(d);
    &h[..h.len().min(12)]
}

/// `rel` (the `dockerfile` parameter) as a path inside the context: no `..`, a leading `/`
/// dropped.
fn inside(ctx: &Path, rel: &str) -> Result<PathBuf, EngineError> {
    let mut p = ctx.to_path_buf();
    for c in Path::new(rel).components() {
        match c {
            Component::Normal(n) => p.push(n),
            Component::CurDir | Component::RootDir => {}
            _ => {
                return Err(EngineError::Usage(format!(
                    "the Dockerfile path '{rel}' leaves the build context"
                )))
            }
        }
    }
    Ok(p)
}

/// The spec to build in the unpacked context `ctx`: the `dockerfile` parameter's file, else
/// (or when the default `Dockerfile` is absent) what `gcr build CONTEXT` would take.
fn spec_in(ctx: &Path, dockerfile: Option<&str>) -> Result<PathBuf, EngineError> {
    let f = match dockerfile {
        Some(d) => {
            let f = inside(ctx, d)?;
            if f.is_file() || d != "Dockerfile" {
                f
            } else {
                gcr_engine::build::find_spec(Some(ctx), None)?
            }
        }
        None if ctx.join("Dockerfile").is_file() => ctx.join("Dockerfile"),
        None => gcr_engine::build::find_spec(Some(ctx), None)?,
    };
    // A symlinked Dockerfile must stay inside the context too.
    let real = f.canonicalize().map_err(|e| {
        EngineError::NotFound(format!(
            "Cannot locate specified Dockerfile: {} ({e})",
            dockerfile.unwrap_or("Dockerfile")
        ))
    })?;
    let root = ctx
        .canonicalize()
        .map_err(|e| EngineError::Io("reading the build context".into(), e))?;
    if !real.starts_with(&root) || !real.is_file() {
        return Err(EngineError::Usage(format!(
            "the Dockerfile {} is not a file inside the build context",
            dockerfile.unwrap_or("Dockerfile")
        )));
    }
    Ok(real)
}

/// Pulls the build's base images that are missing (all of them with `pull`), streaming
/// Docker's pull lines.
fn pull_bases(
    e: &Engine,
    req: &BuildRequest,
    p: &Params,
    lines: &crate::images::Lines,
) -> Result<(), EngineError> {
    for base in e.build_bases(req)? {
        let present = e.store()?.resolve_image(&base).is_ok();
        if present && !p.pull {
            continue;
        }
        let opts = PullOptions {
            platform: p.platform.clone(),
            connect: ConnectOptions::default(),
            no_referrers: false,
        };
        let r = e.pull(&base, &opts, lines)?;
        lines.pulled(&r.digest, &r.reference, r.up_to_date);
    }
    Ok(())
}

/// Unpacks the body into a private directory under the store's `tmp/` and builds it.
fn run(e: &Engine, p: &Params, body: &mut BodyRead, out: &Out) -> Result<(), EngineError> {
    let tmp = e.root().join("tmp");
    std::fs::create_dir_all(&tmp)
        .map_err(|err| EngineError::Io(format!("creating {}", tmp.display()), err))?;
    // Mode 0700, removed when dropped: at the end of this call, however it ends.
    let dir = tempfile::Builder::new()
        .prefix("build-context-")
        .tempdir_in(&tmp)
        .map_err(|err| EngineError::Io("creating the build context directory".into(), err))?;
    let ctx = dir.path().join("context");
    std::fs::create_dir(&ctx)
        .map_err(|err| EngineError::Io("creating the build context directory".into(), err))?;
    gcr_engine::build::unpack_context(body, &ctx)?;
    build_in(e, p, &ctx, out).map(|_| ())
}

/// Builds the context directory `ctx` (the JSONL `build` names one on the service's host),
/// streaming dockerd's lines into `out`; the image id.
pub(crate) fn build_in(
    e: &Engine,
    p: &Params,
    ctx: &Path,
    out: &Out,
) -> Result<String, EngineError> {
    let spec = spec_in(ctx, p.dockerfile.as_deref())?;
    let dockerfile = spec.extension().is_none_or(|x| x != "gcr");
    let req = BuildRequest {
        spec_file: spec,
        context: dockerfile.then(|| ctx.to_path_buf()),
        tags: p.tags.clone(),
        no_cache: p.no_cache,
        build_args: p.build_args.clone(),
        labels: p.labels.clone(),
        target: p.target.clone(),
        network: p.network,
        platform: p.platform.as_ref().map(|pl| pl.to_string()),
        // The client gone (the response or the JSONL request dropped): the RUN step
        // running is killed and the build ends.
        steps: p.steps.clone(),
        cancel: Some(Cancel::new({
            let (tx, peer) = (out.tx.clone(), p.peer.clone());
            move || tx.is_closed() || peer.as_ref().is_some_and(crate::listen::Peer::gone)
        })),
        ..BuildRequest::default()
    };
    let lines = crate::images::Lines::new(out.tx.clone());
    pull_bases(e, &req, p, &lines)?;
    let steps = e.dockerfile_steps(&req)?;
    let mut render = Render::new(out, dockerfile, steps);
    let quiet = p.quiet;
    let built = e.build(&req, &mut |ev| {
        if !quiet {
            render.event(ev);
        }
    })?;
    if !quiet {
        render.finish();
    }
    let id = if built.id.starts_with("sha256:") {
        built.id.clone()
    } else {
        format!("sha256:{}", built.id)
    };
    if p.aux {
        out.send(json!({ "aux": { "ID": id } }));
    }
    if quiet {
        out.stream(id.as_str());
        return Ok(id);
    }
    out.stream(format!("Successfully built {}", short(&id)));
    for t in &built.tags {
        let name = match gcr_engine::Reference::parse(t) {
            Ok(r) => r.familiar(),
            Err(_) => t.clone(),
        };
        out.stream(format!("Successfully tagged {name}"));
    }
    Ok(id)
}

/// `POST /build`: the context tar in the body; `t` (repeatable), `dockerfile`,
/// `buildargs`, `labels`, `target`, `nocache`, `q`, `pull`, `networkmode`, `platform`
/// (the host's only), the RUN steps' `extrahosts`, `shmsize`, `memory`, `memswap`,
/// `cpushares`, `cpusetcpus`, `cpusetmems`, `cpuperiod`, `cpuquota`; `rm`, `forcerm`,
/// `cachefrom`, ... are accepted and ignored (gcr keeps no intermediate containers).
pub async fn build(st: &Shared, q: &Query, req: Request<Incoming>) -> Result<Resp, HttpError> {
    let mut p = Params::parse(q)?;
    p.peer = req.extensions().get::<crate::listen::Peer>().cloned();
    let (btx, brx) = mpsc::channel::<Result<Bytes, String>>(16);
    let mut body = req.into_body();
    let feeder = tokio::spawn(async move {
        while let Some(frame) = body.frame().await {
            let data = match frame {
                Ok(f) => match f.into_data() {
                    Ok(d) => d,
                    Err(_) => continue,
                },
                Err(e) => {
                    let _ = btx
                        .send(Err(format!("the build context upload broke off: {e}")))
                        .await;
                    return;
                }
            };
            if btx.send(Ok(data)).await.is_err() {
                return;
            }
        }
    });
    let (tx, rx) = mpsc::channel(64);
    let st2 = st.clone();
    tokio::spawn(async move {
        let out = Out { tx };
        let _ = st2
            .engine(move |e| {
                let mut body = BodyRead {
                    rx: brx,
                    cur: Bytes::new(),
                };
                if let Err(err) = run(e, &p, &mut body, &out) {
                    out.error(&err.to_string());
                }
                Ok(())
            })
            .await;
        feeder.abort();
    });
    Ok(http::stream("application/json", rx))
}

/// `POST /build/prune?all=`: the step cache no image uses (`all`: all of it), Docker's
/// `{"CachesDeleted": [...], "SpaceReclaimed": N}`.
pub async fn prune(st: &Shared, q: &Query) -> Result<Resp, HttpError> {
    let o = prune_options(q)?;
    let pruned = st
        .engine(move |e| Ok(e.build_cache_prune_with(&o)?))
        .await?;
    let space: u64 = pruned.iter().map(|p| p.freed).sum();
    let ids: Vec<String> = pruned.into_iter().map(|p| p.key).collect();
    Ok(http::json(
        StatusCode::OK,
        &json!({ "CachesDeleted": ids, "SpaceReclaimed": space }),
    ))
}

/// `all`, `keep-storage` (bytes; 0 is none) and `filters` (`until` only: a duration ago,
/// unix seconds or RFC 3339) of `POST /build/prune`.
fn prune_options(q: &Query) -> Result<gcr_engine::build::CachePruneOptions, HttpError> {
    let keep = match q.get("keep-storage").filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => match v.parse::<u64>() {
            Ok(0) => None,
            Ok(n) => Some(n),
            Err(_) => {
                return Err(HttpError::bad_request(format!(
                    "invalid keep-storage '{v}': expected bytes"
                )))
            }
        },
    };
    let mut until = None;
    if let Some(raw) = q.get("filters").filter(|f| !f.is_empty()) {
        let v: Value = serde_json::from_str(raw)
            .map_err(|e| HttpError::bad_request(format!("invalid filters '{raw}': {e}")))?;
        let Value::Object(m) = v else {
            return Err(HttpError::bad_request(format!(
                "invalid filters '{raw}': expected a JSON object"
            )));
        };
        for (k, vals) in m {
            if k != "until" {
                return Err(HttpError::bad_request(format!(
                    "invalid filter '{k}': gcr's build cache filters by until only"
                )));
            }
            // Docker's two shapes: ["24h"] and {"24h": true}.
            let given: Vec<String> = match vals {
                Value::Array(a) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect(),
                Value::Object(o) => o.keys().cloned().collect(),
                _ => Vec::new(),
            };
            for g in given {
                let now = gcr_engine::container::record::now_ns();
                let t = gcr_engine::events::parse_since(&g, now).ok_or_else(|| {
                    HttpError::bad_request(format!(
                        "invalid until '{g}': use a duration (24h), unix seconds or RFC 3339"
                    ))
                })?;
                until = Some(t / 1_000_000_000);
            }
        }
    }
    Ok(gcr_engine::build::CachePruneOptions {
        all: q.flag("all", false),
        until,
        keep_storage: keep,
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
    fn dockerfile_paths_stay_in_the_context() {
        let ctx = Path::new("/ctx");
        assert_eq!(
            inside(ctx, "sub/Dockerfile").unwrap(),
            ctx.join("sub/Dockerfile")
        );
        assert_eq!(inside(ctx, "/Dockerfile").unwrap(), ctx.join("Dockerfile"));
        assert!(inside(ctx, "../Dockerfile").is_err());
        assert!(inside(ctx, "a/../../b").is_err());
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
