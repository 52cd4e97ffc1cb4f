//! Image archives and history: `GET /images/{name}/get` and `GET /images/get?names=` (docker
//! save: a docker-archive streamed as it is written), `POST /images/load` (docker load: the
//! tar body streamed into the store, Docker's JSON lines back) and `GET /images/{name}/history`.
//!
//! Save and load run for as long as the client sends or reads, so they do not hold the fork
//! gate's read side while they wait on the client: [`Gated`] holds it for the engine's work
//! and lets go of it around each wait (no SQLite call is in progress then).

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{RwLock, RwLockReadGuard};

use bytes::Bytes;
use gcr_engine::image_io::archive_format;
use gcr_engine::images::split_familiar;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::errors::HttpError;
use crate::http::{self, Query, Resp};
use crate::images::no_such_image;
use crate::server::Shared;

/// The fork gate's read side, held except while waiting on the client.
pub(crate) struct Gated<'a> {
    gate: &'a RwLock<()>,
    guard: Option<RwLockReadGuard<'a, ()>>,
}

impl<'a> Gated<'a> {
    pub(crate) fn hold(gate: &'a RwLock<()>) -> Gated<'a> {
        Gated {
            gate,
            guard: Some(gate.read().unwrap_or_else(|e| e.into_inner())),
        }
    }

    /// Runs `f` (a wait on the client) with the gate let go.
    fn released<T>(&mut self, f: impl FnOnce() -> T) -> T {
        self.guard = None;
        let r = f();
        self.guard = Some(self.gate.read().unwrap_or_else(|e| e.into_inner()));
        r
    }
}

/// The response side of a save: tar bytes in 256 KiB chunks.
pub(crate) struct SaveWriter<'a> {
    pub(crate) tx: mpsc::Sender<Bytes>,
    pub(crate) buf: Vec<u8>,
    pub(crate) gated: Gated<'a>,
}

const CHUNK: usize = 256 * 1024;

impl Write for SaveWriter<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        let tx = &self.tx;
        self.gated
            .released(|| tx.blocking_send(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client left"))
    }
}

/// `GET /images/{name}/get` (`name` given) and `GET /images/get?names=…`: a docker-archive
/// of the images. Unknown names are a 404 before anything is sent.
pub async fn save(st: &Shared, name: Option<&str>, q: &Query) -> Result<Resp, HttpError> {
    let names: Vec<String> = match name {
        Some(n) => vec![n.to_string()],
        None => q
            .all("names")
            .into_iter()
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect(),
    };
    if names.is_empty() {
        return Err(HttpError::bad_request(
            "no image to save: give one or more names (names=IMAGE)",
        ));
    }
    let check = names.clone();
    st.engine(move |e| {
        let store = e.store()?;
        for n in &check {
            store
                .resolve_image(n)
                .map_err(|err| no_such_image(n, err.into()))?;
        }
        Ok(())
    })
    .await?;
    let (tx, rx) = mpsc::channel(4);
    let st2 = st.clone();
    let gate = st.clone();
    tokio::spawn(async move {
        let _ = st2
            .engine_ungated(move |e| {
                let fmt = archive_format("docker-archive")?;
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                let mut w = SaveWriter {
                    tx,
                    buf: Vec::new(),
                    gated: Gated::hold(&gate.gate),
                };
                // A client that leaves ends the save at its next chunk; nothing is on disk.
                e.save_images(&refs, fmt, &mut w, &Quiet)?;
                w.flush()
                    .map_err(|err| HttpError::internal(err.to_string()))?;
                Ok(())
            })
            .await;
    });
    Ok(http::stream("application/x-tar", rx))
}

/// No progress for a save (the client counts the bytes it receives).
struct Quiet;

impl gcr_engine::Progress for Quiet {
    fn start(&self, _: u64) {}
    fn advance(&self, _: u64) {}
    fn message(&self, _: &str) {}
    fn finish(&self) {}
}

/// The request side of a load: the body's chunks, or the error that cut it short.
struct BodyReader<'a> {
    rx: mpsc::Receiver<Result<Bytes, String>>,
    cur: Bytes,
    gated: Gated<'a>,
}

impl Read for BodyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            let rx = &mut self.rx;
            match self.gated.released(|| rx.blocking_recv()) {
                Some(Ok(c)) => self.cur = c,
                Some(Err(e)) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("the request body was cut short: {e}"),
                    ))
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

/// Docker's JSON lines for a load: `Loaded image: …` as `stream` lines; bytes read as
/// `Loading` progress unless quiet (at most one line per MiB).
struct LoadLines {
    tx: mpsc::Sender<Bytes>,
    quiet: bool,
    total: AtomicU64,
    done: AtomicU64,
    shown: AtomicU64,
}

fn line(v: &Value) -> Bytes {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.push(b'\n');
    Bytes::from(b)
}

impl gcr_engine::Progress for LoadLines {
    fn start(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
    }

    fn advance(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        if self.quiet || done < self.shown.load(Ordering::Relaxed) + (1 << 20) {
            return;
        }
        self.shown.store(done, Ordering::Relaxed);
        let mut detail = json!({ "current": done });
        let total = self.total.load(Ordering::Relaxed);
        if total > 0 {
            detail["total"] = json!(total);
        }
        // Progress may be dropped when the client reads slowly; the result lines may not.
        let _ = self.tx.try_send(line(
            &json!({ "status": "Loading", "progressDetail": detail }),
        ));
    }

    fn message(&self, msg: &str) {
        let _ = self
            .tx
            .blocking_send(line(&json!({ "stream": format!("{msg}\n") })));
    }

    fn finish(&self) {}
}

fn error_line(msg: &str) -> Bytes {
    line(&json!({ "errorDetail": { "message": msg }, "error": msg }))
}

/// The request body's chunks on a channel (a blocking reader's side, [`BodyReader`]), fed
/// by a task the caller aborts when done; a body cut short ends with its error.
fn feed(
    req: Request<Incoming>,
) -> (
    tokio::task::JoinHandle<()>,
    mpsc::Receiver<Result<Bytes, String>>,
) {
    let (body_tx, body_rx) = mpsc::channel::<Result<Bytes, String>>(8);
    let mut body = req.into_body();
    let feeder = tokio::spawn(async move {
        while let Some(frame) = body.frame().await {
            let msg = match frame {
                Ok(f) => match f.into_data() {
                    Ok(d) => Ok(d),
                    Err(_) => continue,
                },
                Err(e) => Err(e.to_string()),
            };
            let failed = msg.is_err();
            if body_tx.send(msg).await.is_err() || failed {
                return;
            }
        }
    });
    (feeder, body_rx)
}

/// `POST /images/load?quiet=`: loads the tar body (docker-archive or oci-archive, plain or
/// gzip'd). Answers 200 with Docker's JSON lines; a failure is an `error` line, and leaves
/// nothing in the store (the spool is a temp dir, removed when the load fails).
pub async fn load(st: &Shared, q: &Query, req: Request<Incoming>) -> Result<Resp, HttpError> {
    let quiet = q.flag("quiet", false);
    let (feeder, body_rx) = feed(req);
    let (tx, rx) = mpsc::channel(64);
    let st2 = st.clone();
    let gate = st.clone();
    tokio::spawn(async move {
        let out = tx.clone();
        let res = st2
            .engine_ungated(move |e| {
                let lines = LoadLines {
                    tx,
                    quiet,
                    total: AtomicU64::new(0),
                    done: AtomicU64::new(0),
                    shown: AtomicU64::new(0),
                };
                let input = BodyReader {
                    rx: body_rx,
                    cur: Bytes::new(),
                    gated: Gated::hold(&gate.gate),
                };
                let report = e.load_images(input, &lines)?;
                if report.images.is_empty() {
                    return Err(HttpError::bad_request(
                        "the archive holds no image; give a docker save or oci-archive tar",
                    ));
                }
                Ok(())
            })
            .await;
        feeder.abort();
        if let Err(err) = res {
            let _ = out.send(error_line(&err.message)).await;
        }
    });
    Ok(http::stream("application/json", rx))
}

/// `GET /images/{name}/history`: Docker's entries, newest first; the newest carries the
/// image's id and tags, the others `<missing>` (gcr keeps no parent images).
pub async fn history(st: &Shared, name: &str) -> Result<Resp, HttpError> {
    let name = name.to_string();
    let h = st
        .engine(move |e| e.history(&name).map_err(|err| no_such_image(&name, err)))
        .await?;
    let tags: Vec<String> = h
        .tags
        .iter()
        .map(|t| {
            let (r, tag) = split_familiar(t);
            format!("{r}:{tag}")
        })
        .collect();
    let items: Vec<Value> = h
        .entries
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let top = i == 0;
            json!({
                "Id": if top { h.id.clone() } else { "<missing>".to_string() },
                "Created": x.created.unwrap_or(0),
                "CreatedBy": x.created_by,
                "Tags": if top { json!(tags) } else { Value::Null },
                "Size": x.size,
                "Comment": x.comment,
            })
        })
        .collect();
    Ok(http::json(StatusCode::OK, &Value::Array(items)))
}

/// `POST /images/create?fromSrc=-&repo=&tag=&changes=&message=` (`docker import`): the body
/// (a rootfs tarball, plain or gzip'd) as a one-layer image, named `repo[:tag]`, its config
/// changed by `changes` (Dockerfile instructions) — the engine's `gcr import`. Answers
/// Docker's JSON lines ending with `{"status": "sha256:…"}`; a failure is an `error` line
/// and leaves no image. A URL source is refused: the service fetches nothing from the
/// network on a client's behalf.
pub async fn import(st: &Shared, q: &Query, req: Request<Incoming>) -> Result<Resp, HttpError> {
    let src = q.get("fromSrc").unwrap_or_default();
    if src != "-" {
        return Err(HttpError::bad_request(format!(
            "importing from '{src}' is not supported: gcr fetches no URL for a client; download it and import the file (docker import FILE)"
        )));
    }
    let reference = match (q.get("repo").filter(|r| !r.is_empty()), q.get("tag")) {
        (Some(r), Some(t)) if !t.is_empty() => Some(format!("{r}:{t}")),
        (r, _) => r.map(str::to_string),
    };
    let changes: Vec<String> = q.all("changes").into_iter().map(str::to_string).collect();
    let message = q
        .get("message")
        .filter(|m| !m.is_empty())
        .map(str::to_string);
    let (feeder, body_rx) = feed(req);
    let (tx, rx) = mpsc::channel(64);
    let st2 = st.clone();
    let gate = st.clone();
    tokio::spawn(async move {
        let res = st2
            .engine_ungated(move |e| {
                let input = BodyReader {
                    rx: body_rx,
                    cur: Bytes::new(),
                    gated: Gated::hold(&gate.gate),
                };
                Ok(e.import(input, reference.as_deref(), &changes, message.as_deref())?)
            })
            .await;
        feeder.abort();
        let _ = match res {
            Ok(id) => tx.send(line(&json!({ "status": id }))).await,
            Err(err) => tx.send(error_line(&err.message)).await,
        };
    });
    Ok(http::stream("application/json", rx))
}
