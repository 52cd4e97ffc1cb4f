//! `POST /build` (Docker's classic builder: the body is the context as a tar, plain or
//! gzip/bzip2/xz compressed) and `POST /build/prune`. The context is unpacked into a private
//! temporary directory by the store's hostile-input-safe unpacker (no entry lands outside
//! it), then built by the engine's build, the one `gcr build` runs; the output is streamed
//! as dockerd's JSON lines (`stream`, then `aux` with the image id, then `Successfully
//! built`/`Successfully tagged`, or an `errorDetail` line). The directory is removed when
//! the build ends, whether or not the client is still there.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use bytes::Bytes;
use gcr_engine::build::{BuildRequest, Cancel};
use gcr_engine::registry::PullOptions;
use gcr_engine::{Engine, EngineError};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::build_params::prune_options;
pub(crate) use crate::build_params::Params;
use crate::buildsteps::Render;
use crate::errors::HttpError;
use crate::http::{self, Query, Resp};
use crate::server::Shared;

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
/// Docker's pull lines; with the client's credentials (`X-Registry-Config`) for their
/// registry when it sent some.
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
        // The client's credentials for the base's registry, else the saved ones.
        let registry = crate::server::registry_of(&base);
        let credentials = p.registry_config.get(&registry).cloned();
        let opts = PullOptions {
            platform: p.platform.clone(),
            connect: crate::server::connect_to(&p.insecure_registries, &registry, credentials),
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
    p.registry_config = crate::push::registry_config(&req)?;
    p.insecure_registries = st.insecure_registries().to_vec();
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
