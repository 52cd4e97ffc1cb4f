//! Streamed container endpoints: `wait` (headers sent at once, the body when the condition
//! is met: the docker CLI asks for it before it starts a container) and `logs` (Docker's
//! 8-byte multiplexed frames when the container has no tty, raw bytes with one). Attach is
//! in [`crate::attach`].

use std::io::{Read, Write};
use std::time::Duration;

use bytes::Bytes;
use gcr_engine::container::attach::{frames, EXIT};
use gcr_engine::container::record::Record;
use gcr_engine::logs::LogOptions;
use gcr_engine::{EngineError, State};
use hyper::StatusCode;
use serde_json::json;
use tokio::sync::mpsc;

use crate::errors::HttpError;
use crate::http::{self, Query, Resp};
use crate::server::Shared;

/// The container `id`'s record, or None once it is gone.
pub(crate) async fn find(st: &Shared, id: &str) -> Result<Option<Record>, HttpError> {
    let id = id.to_string();
    st.engine(move |e| match e.container(&id) {
        Ok(r) => Ok(Some(r)),
        Err(EngineError::NotFound(_)) => Ok(None),
        Err(err) => Err(err.into()),
    })
    .await
}

/// Reads the supervisor's frames on an attach connection that said no hello (so it gets
/// no output and holds nothing back) until the exit code comes; None when it closed first.
fn observe_exit(mut sock: std::os::unix::net::UnixStream) -> Option<i32> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = sock.read(&mut chunk).ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
        for (kind, data) in frames(&mut buf) {
            if kind == EXIT && data.len() == 4 {
                return Some(i32::from_be_bytes([data[0], data[1], data[2], data[3]]));
            }
        }
    }
}

/// Connects to `r`'s supervisor and waits there for its exit code.
async fn watch_exit(st: &Shared, r: Record) -> Option<i32> {
    let sock = st.engine(move |e| Ok(e.connect_attach(&r)?)).await.ok()?;
    tokio::task::spawn_blocking(move || observe_exit(sock))
        .await
        .ok()
        .flatten()
}

/// After the supervisor sent an exit code: waits (10 s at most) until the exit is recorded,
/// so a client that removes the container once its wait returned finds it stopped.
async fn settle(st: &Shared, id: &str) -> Result<(), HttpError> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        match find(st, id).await? {
            Some(r) if r.state.is_alive() => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            _ => break,
        }
    }
    Ok(())
}

/// Waits for `condition` (Docker's `not-running`, `next-exit`, `removed`) and returns the
/// exit code.
async fn wait_for(st: &Shared, first: Record, condition: &str) -> Result<i32, HttpError> {
    let mut started = st.started.subscribe();
    if condition == "not-running" && !first.state.is_alive() {
        return Ok(first.exit_code.unwrap_or(0));
    }
    let (started_at, finished_at) = (first.started_at, first.finished_at);
    let id = first.id.clone();
    let mut code: Option<i32> = first.exit_code;
    let mut watched = false;
    loop {
        let Some(r) = find(st, &id).await? else {
            // Gone (auto-removed, or removed by someone): its last exit code, as an attach
            // still relaying it may know it.
            return Ok(st.exit_code(&id).await.or(code).unwrap_or(0));
        };
        if r.state.is_alive() && !watched {
            watched = true;
            if let Some(c) = watch_exit(st, r).await {
                code = Some(c);
                st.remember_exit(&id, c);
                settle(st, &id).await?;
                if condition != "removed" {
                    return Ok(c);
                }
            }
            continue;
        }
        if !r.state.is_alive() && r.state != State::Created {
            let ran = r.started_at != started_at || r.finished_at != finished_at;
            code = r.exit_code.or(code);
            if condition == "not-running" || (condition == "next-exit" && ran) {
                return Ok(r.exit_code.unwrap_or(0));
            }
        }
        if r.state.is_alive() {
            // Watched once already (the supervisor went away): poll.
            tokio::time::sleep(Duration::from_millis(50)).await;
        } else {
            watched = false;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                _ = started.recv() => {}
            }
        }
    }
}

/// `POST /containers/{id}/wait?condition=`.
pub async fn wait(st: &Shared, id: &str, q: &Query) -> Result<Resp, HttpError> {
    // Clients before 1.30 have no condition, and get the answer (headers too) at the exit.
    let legacy = q.version().before(30);
    let condition = q
        .get("condition")
        .filter(|c| !c.is_empty() && !legacy)
        .unwrap_or("not-running");
    if !["not-running", "next-exit", "removed"].contains(&condition) {
        return Err(HttpError::bad_request(format!(
            "invalid condition: \"{condition}\"; use not-running, next-exit or removed"
        )));
    }
    let condition = condition.to_string();
    let first = find(st, id)
        .await?
        .ok_or_else(|| HttpError::not_found(format!("No such container: {id}")))?;
    if legacy {
        let code = wait_for(st, first, &condition).await?;
        return Ok(http::json(
            StatusCode::OK,
            &json!({ "StatusCode": code, "Error": null }),
        ));
    }
    let (tx, rx) = mpsc::channel(1);
    let st = st.clone();
    tokio::spawn(async move {
        let res = tokio::select! {
            r = wait_for(&st, first, &condition) => r,
            _ = tx.closed() => return,
        };
        let v = match res {
            Ok(code) => json!({ "StatusCode": code, "Error": null }),
            Err(e) => json!({ "StatusCode": -1, "Error": { "Message": e.message } }),
        };
        let mut body = serde_json::to_vec(&v).unwrap_or_default();
        body.push(b'\n');
        let _ = tx.send(Bytes::from(body)).await;
    });
    Ok(http::stream("application/json", rx))
}

/// The log of container `r` so far (stdout and/or stderr, in the order written), as
/// Docker's multiplexed frames when `framed` (no tty) or raw bytes: what an attach with
/// `logs=1` sends first. Read on a blocking thread into a bounded channel, so a long log
/// never sits whole in memory.
pub(crate) fn log_replay(
    st: &Shared,
    r: &Record,
    framed: bool,
    out: bool,
    err: bool,
) -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel(16);
    if !r.config.opts.keeps_log() {
        // Nothing kept to replay (`--log-driver none`).
        return rx;
    }
    let st2 = st.clone();
    let id = r.id.clone();
    tokio::spawn(async move {
        let _ = st2
            .engine_ungated(move |e| {
                let path = e.container_dir(&id).join("container.log");
                let shared = Frames::new(tx, framed);
                let o = LogOptions::default();
                print_framed(&shared, &path, None, &o, (out, err), &mut || false)?;
                Ok(())
            })
            .await;
    });
    rx
}

/// The one buffer both streams of a log write into, so that their order holds (as in
/// Docker's `docker logs`: `echo 1; echo 2 >&2; echo 3` reads 1, 2, 3), sent as one chunk
/// when it fills or is flushed.
struct Frames {
    tx: mpsc::Sender<Bytes>,
    framed: bool,
    buf: Vec<u8>,
    /// The client is gone: every write fails from then on.
    broken: bool,
}

impl Frames {
    fn new(tx: mpsc::Sender<Bytes>, framed: bool) -> std::cell::RefCell<Frames> {
        std::cell::RefCell::new(Frames {
            tx,
            framed,
            buf: Vec::new(),
            broken: false,
        })
    }

    fn send(&mut self) -> std::io::Result<()> {
        if self.broken {
            return Err(std::io::ErrorKind::BrokenPipe.into());
        }
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        if self.tx.blocking_send(chunk).is_err() {
            self.broken = true;
            return Err(std::io::ErrorKind::BrokenPipe.into());
        }
        Ok(())
    }

    /// Whether the client still reads.
    fn open(&self) -> bool {
        !self.broken && !self.tx.is_closed()
    }
}

/// The log at `path` (`opened` when the caller opened it first) into `frames` as
/// `gcr_engine::logs::print_opened` prints it, the streams not wanted (`out`, `err`) left
/// out; what is left in the buffer is sent at the end.
fn print_framed(
    frames: &std::cell::RefCell<Frames>,
    path: &std::path::Path,
    opened: Option<std::fs::File>,
    o: &LogOptions,
    (out, err): (bool, bool),
    running: &mut dyn FnMut() -> bool,
) -> Result<(), gcr_engine::EngineError> {
    let (mut w_out, mut w_err) = (
        FrameSide {
            to: frames,
            kind: 1,
        },
        FrameSide {
            to: frames,
            kind: 2,
        },
    );
    let (mut sink, mut sink2) = (std::io::sink(), std::io::sink());
    let out_w: &mut dyn Write = if out { &mut w_out } else { &mut sink };
    let err_w: &mut dyn Write = if err { &mut w_err } else { &mut sink2 };
    gcr_engine::logs::print_opened(path, opened, o, out_w, err_w, running)?;
    let _ = frames.borrow_mut().send();
    Ok(())
}

/// One stream's writer into [`Frames`]: each write one Docker frame of `kind` when framed.
struct FrameSide<'a> {
    to: &'a std::cell::RefCell<Frames>,
    kind: u8,
}

impl Write for FrameSide<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let mut r = self.to.borrow_mut();
        if r.broken {
            return Err(std::io::ErrorKind::BrokenPipe.into());
        }
        if r.framed {
            let h = gcr_engine::container::attach::header(self.kind, data.len());
            r.buf.extend_from_slice(&h);
        }
        r.buf.extend_from_slice(data);
        if r.buf.len() >= 32 * 1024 {
            r.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.to.borrow_mut().send()
    }
}

/// Docker's `since`/`until`: unix seconds, with an optional fraction; 0 is none.
fn log_time(q: &Query, k: &str) -> Result<Option<String>, HttpError> {
    let Some(v) = q.get(k).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let secs: f64 = v
        .parse()
        .map_err(|_| HttpError::bad_request(format!("invalid {k} '{v}': expected unix seconds")))?;
    if secs <= 0.0 || !secs.is_finite() {
        return Ok(None);
    }
    Ok(Some(gcr_engine::logs::rfc3339_nanos((secs * 1e9) as i64)))
}

/// `GET /containers/{id}/logs?stdout=&stderr=&follow=&tail=&timestamps=&since=&until=`.
pub async fn logs(st: &Shared, id: &str, q: &Query) -> Result<Resp, HttpError> {
    let (out, err) = (q.flag("stdout", false), q.flag("stderr", false));
    if !out && !err {
        return Err(HttpError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let tail = match q.get("tail") {
        None | Some("all") | Some("") => None,
        Some(n) => match n.parse::<i64>() {
            Ok(n) if n < 0 => None,
            Ok(n) => Some(n as usize),
            Err(_) => {
                return Err(HttpError::bad_request(format!(
                    "invalid tail '{n}': use a number or all"
                )))
            }
        },
    };
    let o = LogOptions {
        tail,
        timestamps: q.flag("timestamps", false),
        follow: q.flag("follow", false),
        since: log_time(q, "since")?,
        until: log_time(q, "until")?,
    };
    let r = find(st, id)
        .await?
        .ok_or_else(|| HttpError::not_found(format!("No such container: {id}")))?;
    if !r.config.opts.keeps_log() {
        return Err(HttpError::new(
            StatusCode::NOT_IMPLEMENTED,
            gcr_engine::logfile::NOT_READABLE,
        ));
    }
    let framed = !r.config.opts.tty;
    // Opened before the answer: a client may remove the container as soon as it has the
    // headers (docker-py's `run` does, before it reads the body); the open file keeps
    // what was written. Made when the supervisor has not made it yet (it appends to
    // whatever is there), so the file read is the one written.
    let log_path = {
        let key = r.id.clone();
        st.engine(move |e| Ok(e.container_dir(&key).join("container.log")))
            .await?
    };
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(&log_path)
        .ok();
    let (tx, rx) = mpsc::channel(16);
    let st2 = st.clone();
    tokio::spawn(async move {
        let gate = st2.clone();
        let _ = st2
            .engine_ungated(move |e| {
                let shared = Frames::new(tx, framed);
                let mut running = || {
                    let _db = gate.gate.read();
                    shared.borrow().open()
                        && e.container(&r.id)
                            .map(|r| r.state.is_alive())
                            .unwrap_or(false)
                };
                print_framed(&shared, &log_path, opened, &o, (out, err), &mut running)?;
                Ok(())
            })
            .await;
    });
    let ctype = if framed {
        "application/vnd.docker.multiplexed-stream"
    } else {
        "application/vnd.docker.raw-stream"
    };
    let mut resp = http::stream(ctype, rx);
    *resp.status_mut() = StatusCode::OK;
    Ok(resp)
}
