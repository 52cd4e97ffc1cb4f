//! The JSONL protocol (seed GATOS §7) on its own unix socket (`gcr system service --jsonl`):
//! one JSON object per line both ways. Each request line (decoded by
//! [`gcr_core::jsonl::decode_line`]) runs as its own task, so requests on one connection
//! overlap and are answered by id; their lines go through one writer. `cancel` ends a
//! request in flight. A line that is not a request (not JSON, no `id`, no `type`, longer
//! than [`MAX_LINE`]) is answered with an error line and the connection is kept. The
//! requests themselves are in [`crate::jsonl_ops`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use gcr_core::jsonl::{self, Id, Request, MAX_LINE};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedReadHalf;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

use crate::jsonl_ops;
use crate::listen;
use crate::server::Shared;

/// Requests one connection may have in flight at once.
const MAX_IN_FLIGHT: usize = 64;

/// Accepts connections whose peer credentials pass (as the API socket's) until the
/// service stops (the caller drops this future).
pub(crate) async fn accept(l: UnixListener, st: Shared, group: Option<u32>) {
    loop {
        let Ok((s, _)) = l.accept().await else {
            continue;
        };
        let Ok(cred) = s.peer_cred() else { continue };
        if !listen::peer_allowed(&cred, group) {
            // Dropped unanswered, as on the API socket.
            continue;
        }
        let me = rustix::process::geteuid().as_raw();
        let peer = Peer {
            trusted: cred.uid() == 0 || cred.uid() == me,
        };
        tokio::spawn(connection(s, st.clone(), peer));
    }
}

/// Who is on the other end.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Peer {
    /// Root or the service's own user (not only a member of `--group`): may name paths on
    /// the service's host (a build context).
    pub trusted: bool,
}

/// The lines of one request: sent through the connection's writer.
#[derive(Clone)]
pub(crate) struct Out {
    pub id: Id,
    tx: mpsc::Sender<Value>,
}

impl Out {
    /// `{"id":…,"ack":true}`.
    pub async fn ack(&self) {
        let _ = self.tx.send(jsonl::ack(&self.id)).await;
    }

    /// `{"id":…,"progress":p}`.
    pub async fn progress(&self, p: Value) {
        let _ = self.tx.send(jsonl::progress(&self.id, p)).await;
    }

    /// Any other line of this request (an `event` line).
    pub async fn line(&self, key: &str, v: Value) {
        let _ = self
            .tx
            .send(json!({ "id": self.id.to_value(), key: v }))
            .await;
    }
}

/// The requests in flight on a connection: id -> the task running it. Whoever takes an
/// entry out (the task when it ends, or a `cancel`) sends the request's final line.
type InFlight = Arc<Mutex<HashMap<Id, tokio::task::AbortHandle>>>;

/// What one read gave.
enum Line {
    Eof,
    Got(Vec<u8>),
    /// A line longer than [`MAX_LINE`] (its length), skipped.
    TooLong(usize),
}

/// Reads up to the next newline, keeping at most [`MAX_LINE`] bytes of it (a longer line
/// is skipped to its end, never held whole). A last line without a newline counts.
async fn read_line(r: &mut BufReader<OwnedReadHalf>) -> std::io::Result<Line> {
    let mut buf = Vec::new();
    let mut len = 0usize;
    loop {
        let avail = r.fill_buf().await?;
        if avail.is_empty() {
            return Ok(match len {
                0 => Line::Eof,
                n if n > MAX_LINE => Line::TooLong(n),
                _ => Line::Got(buf),
            });
        }
        let (take, done) = match avail.iter().position(|b| *b == b'\n') {
            Some(p) => (p, true),
            None => (avail.len(), false),
        };
        len = len.saturating_add(take);
        if len <= MAX_LINE {
            buf.extend_from_slice(&avail[..take]);
        } else {
            buf = Vec::new();
        }
        r.consume(take + usize::from(done));
        if done {
            return Ok(if len > MAX_LINE {
                Line::TooLong(len)
            } else {
                Line::Got(buf)
            });
        }
    }
}

/// Serves one connection until the client closes it; then every request still in flight
/// is dropped (what they started in the engine ends as it would, see
/// [`crate::jsonl_ops`]).
async fn connection(s: UnixStream, st: Shared, peer: Peer) {
    let (rd, mut wr) = s.into_split();
    let (tx, mut rx) = mpsc::channel::<Value>(256);
    let writer = tokio::spawn(async move {
        while let Some(v) = rx.recv().await {
            let mut b = serde_json::to_vec(&v).unwrap_or_default();
            b.push(b'\n');
            if wr.write_all(&b).await.is_err() {
                return;
            }
        }
    });
    let inflight: InFlight = Arc::new(Mutex::new(HashMap::new()));
    let mut r = BufReader::with_capacity(64 * 1024, rd);
    loop {
        let line = match read_line(&mut r).await {
            Ok(Line::Eof) | Err(_) => break,
            Ok(Line::TooLong(n)) => {
                let reason = format!(
                    "the request line is {n} bytes, longer than the limit of {MAX_LINE}; send one JSON object per line"
                );
                let _ = tx
                    .send(jsonl::error(None, "invalid_request", None, &reason))
                    .await;
                continue;
            }
            Ok(Line::Got(l)) => l,
        };
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        match jsonl::decode_line(&line) {
            Err(e) => {
                let v = jsonl::error(e.id.as_ref(), "invalid_request", None, &e.reason);
                let _ = tx.send(v).await;
            }
            Ok(req) if req.kind == "cancel" => {
                let v = cancel(&inflight, &req, &tx).await;
                let _ = tx.send(v).await;
            }
            Ok(req) => begin(&st, req, &inflight, &tx, peer).await,
        }
    }
    let left: Vec<_> = inflight
        .lock()
        .map(|mut m| m.drain().map(|(_, h)| h).collect())
        .unwrap_or_default();
    for h in left {
        h.abort();
    }
    drop(tx);
    let _ = writer.await;
}

/// Starts a request's task, unless its id is in flight already or too many are.
async fn begin(
    st: &Shared,
    req: Request,
    inflight: &InFlight,
    tx: &mpsc::Sender<Value>,
    peer: Peer,
) {
    let id = req.id.clone();
    let refused = {
        let Ok(mut m) = inflight.lock() else { return };
        if m.contains_key(&id) {
            Some(format!(
                "request id {id} is in flight already on this connection; use a new id for each request"
            ))
        } else if m.len() >= MAX_IN_FLIGHT {
            Some(format!(
                "{MAX_IN_FLIGHT} requests are in flight on this connection; wait for one to end or cancel one"
            ))
        } else {
            let (st, tx2, map) = (st.clone(), tx.clone(), inflight.clone());
            // Registered before it runs: the task takes itself out when it ends.
            let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
            let task = tokio::spawn(async move {
                let _ = go_rx.await;
                let out = Out {
                    id: req.id.clone(),
                    tx: tx2.clone(),
                };
                let fin = match jsonl_ops::handle(&st, &req, &out, peer).await {
                    Ok(result) => jsonl::ok(&req.id, result),
                    Err(f) => f.line(Some(&req.id)),
                };
                let mine = map.lock().is_ok_and(|mut m| m.remove(&req.id).is_some());
                if mine {
                    let _ = tx2.send(fin).await;
                }
            });
            m.insert(id.clone(), task.abort_handle());
            let _ = go_tx.send(());
            None
        }
    };
    if let Some(reason) = refused {
        let _ = tx
            .send(jsonl::error(Some(&id), "conflict", None, &reason))
            .await;
    }
}

/// `{"type":"cancel","id":…,"target":ID}`: ends request ID (its final line is a
/// `cancelled` error); the cancel's own answer says it was.
async fn cancel(inflight: &InFlight, req: &Request, tx: &mpsc::Sender<Value>) -> Value {
    let Some(target) = req.fields.get("target").and_then(Id::from_value) else {
        return jsonl::error(
            Some(&req.id),
            "invalid_request",
            None,
            "field 'target' is missing or invalid; name the id of the request to cancel",
        );
    };
    let handle = inflight.lock().ok().and_then(|mut m| m.remove(&target));
    match handle {
        Some(h) => {
            h.abort();
            let reason = format!("cancelled by request {}", req.id);
            let _ = tx
                .send(jsonl::error(Some(&target), "cancelled", None, &reason))
                .await;
            jsonl::ok(&req.id, json!({ "cancelled": target.to_value() }))
        }
        None => jsonl::error(
            Some(&req.id),
            "not_found",
            None,
            &format!("no request {target} is in flight on this connection"),
        ),
    }
}
