//! The response recorder, for checking the service against Docker's API swagger: when
//! `GCR_API_RECORD` names a file at start, every response the service sends is appended to
//! it as one JSON line — `{"method", "path" (without the `/v1.NN` prefix), "version",
//! "status", "ctype"}` plus, for a JSON body, `"body"` (a streamed JSON-lines body gives
//! one line per object, with `"stream": true`, written as each object goes out). A body
//! that says JSON and is not gives `"invalid"` with its first bytes. Off (one check of a
//! `OnceLock`) when the variable is unset; the API tests set it and run
//! crates/gcr/tests/peers/swagger_check.py over the file.

use std::fs::File;
use std::io::Write;
use std::sync::{Mutex, OnceLock};

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::http::{Body, Resp};

/// The largest part of a stream kept while waiting for an object's end; beyond it the
/// stream's objects are no longer recorded (an `"invalid"` line says so).
const MAX_PENDING: usize = 1 << 20;

static RECORD: OnceLock<Option<Mutex<File>>> = OnceLock::new();

/// Opens the record file named by `GCR_API_RECORD` (appending), if any. Called once when
/// the service starts; a file that cannot be opened is an error naming it.
pub fn init() -> Result<(), crate::ApiError> {
    let file = match std::env::var_os("GCR_API_RECORD") {
        None => None,
        Some(p) => Some(Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p)
                .map_err(|e| {
                    crate::ApiError::io(
                        format!("opening GCR_API_RECORD's file {}", p.to_string_lossy()),
                        e,
                    )
                })?,
        )),
    };
    let _ = RECORD.set(file);
    Ok(())
}

fn on() -> bool {
    matches!(RECORD.get(), Some(Some(_)))
}

fn write(line: &Value) {
    if let Some(Some(f)) = RECORD.get() {
        let mut s = line.to_string();
        s.push('\n');
        if let Ok(mut f) = f.lock() {
            // One write of a whole line on an O_APPEND file: lines never interleave.
            let _ = f.write_all(s.as_bytes());
        }
    }
}

/// What a recorded line says about its request.
#[derive(Clone)]
pub struct Request {
    method: String,
    path: String,
    version: Option<String>,
}

/// The request's method and path, when recording.
pub fn request(method: &str, path: &str) -> Option<Request> {
    if !on() {
        return None;
    }
    let (version, path) = match path.strip_prefix("/v").and_then(|r| r.split_once('/')) {
        Some((v, rest)) if v.contains('.') && v.split('.').all(|n| n.parse::<u32>().is_ok()) => {
            (Some(v.to_string()), format!("/{rest}"))
        }
        _ => (None, path.to_string()),
    };
    Some(Request {
        method: method.to_string(),
        path,
        version,
    })
}

/// Records `resp` (a stream's objects as they go out) and returns it.
pub fn response(req: Option<Request>, resp: Resp) -> Resp {
    let Some(req) = req else { return resp };
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let base = json!({
        "method": req.method,
        "path": req.path,
        "version": req.version,
        "status": status,
        "ctype": ctype,
    });
    let is_json = ctype.starts_with("application/json");
    let (parts, body) = resp.into_parts();
    let body = match body {
        Body::Full(b) => {
            let mut line = base;
            match (&b, is_json) {
                (Some(bytes), true) => body_field(&mut line, bytes),
                (None, true) => line["invalid"] = json!(""),
                _ => {}
            }
            write(&line);
            Body::Full(b)
        }
        Body::Stream(rx) if is_json => {
            let (tx, out) = mpsc::channel(16);
            tokio::spawn(tee(base, rx, tx));
            Body::Stream(out)
        }
        stream => {
            write(&base);
            stream
        }
    };
    Resp::from_parts(parts, body)
}

fn body_field(line: &mut Value, bytes: &[u8]) {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => line["body"] = v,
        Err(_) => line["invalid"] = json!(prefix(bytes)),
    }
}

fn prefix(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(200)]).into_owned()
}

/// Forwards a stream's chunks, recording each whole JSON object in them.
async fn tee(base: Value, mut rx: mpsc::Receiver<Bytes>, tx: mpsc::Sender<Bytes>) {
    let mut pending: Vec<u8> = Vec::new();
    let mut gave_up = false;
    let mut objects = 0usize;
    while let Some(chunk) = rx.recv().await {
        if !gave_up {
            pending.extend_from_slice(&chunk);
            objects += drain(&base, &mut pending, false);
            if pending.len() > MAX_PENDING {
                let mut line = base.clone();
                line["invalid"] = json!(format!(
                    "more than {MAX_PENDING} bytes without a whole JSON object"
                ));
                write(&line);
                gave_up = true;
                pending = Vec::new();
            }
        }
        if tx.send(chunk).await.is_err() {
            return;
        }
    }
    if !gave_up {
        objects += drain(&base, &mut pending, true);
        if objects == 0 {
            // An empty stream: the status line alone.
            write(&base);
        }
    }
}

/// Records the whole objects at the start of `pending` and removes them; `end`: no more
/// bytes come, so what is left is invalid. Returns how many objects it recorded.
fn drain(base: &Value, pending: &mut Vec<u8>, end: bool) -> usize {
    let mut n = 0;
    let mut used = 0;
    {
        let mut it = serde_json::Deserializer::from_slice(pending).into_iter::<Value>();
        loop {
            match it.next() {
                Some(Ok(v)) => {
                    used = it.byte_offset();
                    let mut line = base.clone();
                    line["body"] = v;
                    line["stream"] = json!(true);
                    write(&line);
                    n += 1;
                }
                Some(Err(e)) if e.is_eof() && !end => break,
                Some(Err(_)) => {
                    let mut line = base.clone();
                    line["invalid"] = json!(prefix(&pending[used..]));
                    line["stream"] = json!(true);
                    write(&line);
                    used = pending.len();
                    break;
                }
                None => {
                    used = pending.len();
                    break;
                }
            }
        }
    }
    pending.drain(..used);
    n
}
