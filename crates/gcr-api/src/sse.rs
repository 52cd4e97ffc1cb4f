//! `GET /v1/events` (Server-Sent Events) and `GET /v1/events/poll` (its polling form): the
//! live events of [`crate::live`], read from the engine's event log by number. A stream
//! starts after `Last-Event-ID` (the header a reconnecting EventSource sends) or
//! `?since_id=`, else at the newest event; each event carries its number as `id:`, so a
//! client that resumes with the last id it saw gets every later event once. Comments
//! (`: keep-alive`) keep an idle stream open through proxies. The same stream is offered
//! over a WebSocket.

use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::header::HeaderMap;
use hyper::StatusCode;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::errors::HttpError;
use crate::http::{self, Query, Resp};
use crate::live::{live, Filter, Live};
use crate::server::Shared;

/// How often the event log is read for a follower.
pub(crate) const TICK: Duration = Duration::from_millis(200);
/// Events read from the log at a time.
pub(crate) const PAGE: usize = 256;

/// The filter of `?types=` and `?container=`; an unknown event family is a 400.
fn filter(q: &Query) -> Result<Filter, HttpError> {
    Ok(Filter {
        containers: q.list("container"),
        ..Filter::of_types(q.list("types")).map_err(HttpError::bad_request)?
    })
}

/// An event number given by the client (`what` names it in the error).
fn event_id(what: &str, v: &str) -> Result<i64, HttpError> {
    v.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| {
            HttpError::bad_request(format!(
                "invalid {what} '{v}': give the number of the last event received (an `id:` of this stream), or 0 for all"
            ))
        })
}

/// A number of seconds in `0..=max` (default `def`).
fn seconds(q: &Query, k: &str, def: u64, max: u64) -> Result<u64, HttpError> {
    match q.number::<u64>(k)? {
        None => Ok(def),
        Some(n) if n <= max => Ok(n),
        Some(n) => Err(HttpError::bad_request(format!(
            "invalid {k} '{n}': at most {max} seconds"
        ))),
    }
}

/// The next events after `after` passing `f`, and the number of the last event read (the
/// next page starts after it; `after` when none was).
pub(crate) async fn page(
    st: &Shared,
    after: i64,
    limit: usize,
    f: &Filter,
) -> Result<(Vec<Live>, i64, bool), HttpError> {
    let kinds = f.kinds();
    let rows = st
        .engine(move |e| Ok(e.events_page(after, limit, &kinds)?))
        .await?;
    let full = rows.len() >= limit;
    let last = rows.last().map_or(after, |r| r.seq);
    let lives = rows
        .iter()
        .filter_map(live)
        .filter(|l| f.passes(l))
        .collect();
    Ok((lives, last, full))
}

/// Where a stream of live events starts, and its filter and keep-alive period.
struct Follow {
    f: Filter,
    keepalive: Duration,
    start: i64,
}

/// The stream's parameters: after `Last-Event-ID` (the header a reconnecting EventSource
/// sends) or `?since_id=`, else after the newest event.
async fn follow_of(st: &Shared, q: &Query, headers: &HeaderMap) -> Result<Follow, HttpError> {
    let f = filter(q)?;
    let keepalive = Duration::from_secs(seconds(q, "keepalive", 15, 3600)?.max(1));
    let resume = match headers.get("last-event-id") {
        Some(v) => Some(event_id(
            "Last-Event-ID",
            v.to_str().map_err(|_| {
                HttpError::bad_request("invalid Last-Event-ID: it is not text; send the number of the last event received")
            })?,
        )?),
        None => q
            .get("since_id")
            .filter(|v| !v.is_empty())
            .map(|v| event_id("since_id", v))
            .transpose()?,
    };
    let start = match resume {
        Some(n) => n,
        None => st.engine(|e| Ok(e.last_event_seq()?)).await?,
    };
    Ok(Follow {
        f,
        keepalive,
        start,
    })
}

/// Sends the events after `fo.start` as `render` makes them, and `idle` after each
/// keep-alive period without one, until the receiver is dropped.
async fn follow(
    st: Shared,
    fo: Follow,
    tx: mpsc::Sender<Bytes>,
    render: fn(&Live) -> Bytes,
    idle: Bytes,
) {
    let mut after = fo.start;
    let mut quiet_since = Instant::now();
    loop {
        let Ok((lives, last, full)) = page(&st, after, PAGE, &fo.f).await else {
            return;
        };
        after = last;
        for l in lives {
            if tx.send(render(&l)).await.is_err() {
                return;
            }
            quiet_since = Instant::now();
        }
        if quiet_since.elapsed() >= fo.keepalive {
            if tx.send(idle.clone()).await.is_err() {
                return;
            }
            quiet_since = Instant::now();
        }
        if tx.is_closed() {
            return;
        }
        if !full {
            tokio::time::sleep(TICK).await;
        }
    }
}

/// `GET /v1/events[?since_id=N][&types=run_state,deploy][&container=X][&keepalive=S]`.
pub async fn events(st: &Shared, q: &Query, headers: &HeaderMap) -> Result<Resp, HttpError> {
    let fo = follow_of(st, q, headers).await?;
    let (tx, rx) = mpsc::channel(64);
    // The reconnection delay, and a first line so that the client knows it is in.
    let hello = format!("retry: 2000\n: gcr live events after {}\n\n", fo.start);
    let _ = tx.send(Bytes::from(hello)).await;
    tokio::spawn(follow(
        st.clone(),
        fo,
        tx,
        |l| Bytes::from(l.sse()),
        Bytes::from_static(b": keep-alive\n\n"),
    ));
    let mut r = http::stream("text/event-stream", rx);
    let h = r.headers_mut();
    h.insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-cache"),
    );
    h.insert(
        "x-accel-buffering",
        hyper::header::HeaderValue::from_static("no"),
    );
    Ok(r)
}

/// `GET /v1/events` with `Upgrade: websocket` (seed 002's optional transport): the same
/// events and parameters, each a text message with the poll's shape (`{"id", "event",
/// "data"}`; `since_id=` resumes), and a ping after each keep-alive period without one.
pub async fn events_ws(
    st: &Shared,
    q: &Query,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<Resp, HttpError> {
    let resp = crate::ws::accept(req.headers())?;
    let fo = follow_of(st, q, req.headers()).await?;
    let st = st.clone();
    tokio::spawn(async move {
        let Ok(up) = hyper::upgrade::on(req).await else {
            return;
        };
        let (mut sink, mut stream) = futures_util::StreamExt::split(crate::ws::socket(up).await);
        let (tx, mut rx) = mpsc::channel(64);
        tokio::spawn(follow(
            st,
            fo,
            tx,
            |l| Bytes::from(l.json().to_string()),
            Bytes::new(),
        ));
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        loop {
            tokio::select! {
                item = rx.recv() => {
                    let Some(b) = item else { break };
                    let m = match std::str::from_utf8(&b) {
                        Ok(_) if b.is_empty() => Message::Ping(Bytes::new()),
                        Ok(t) => Message::text(t),
                        Err(_) => Message::Binary(b),
                    };
                    if sink.send(m).await.is_err() {
                        return;
                    }
                }
                m = stream.next() => match m {
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => {}
                },
            }
        }
        let _ = sink.send(Message::Close(None)).await;
    });
    Ok(resp)
}

/// `GET /v1/events/poll?after=N&limit=N&wait=S` (and the filters of [`events`]):
/// `{"events": [{"id", "event", "data"}], "next": N}`, waiting up to `wait` seconds for
/// the first event; `next` is the `after` of the following poll.
pub async fn poll(st: &Shared, q: &Query) -> Result<Resp, HttpError> {
    let f = filter(q)?;
    let mut after = match q.get("after").filter(|v| !v.is_empty()) {
        Some(v) => event_id("after", v)?,
        None => 0,
    };
    let limit = match q.number::<usize>("limit")? {
        None => 100,
        Some(n) if (1..=1000).contains(&n) => n,
        Some(n) => {
            return Err(HttpError::bad_request(format!(
                "invalid limit '{n}': give 1 to 1000 events"
            )))
        }
    };
    let deadline = Instant::now() + Duration::from_secs(seconds(q, "wait", 0, 60)?);
    loop {
        let (lives, last, full) = page(st, after, limit, &f).await?;
        after = last;
        if !lives.is_empty() || Instant::now() >= deadline {
            let events: Vec<Value> = lives.iter().map(Live::json).collect();
            return Ok(http::json(
                StatusCode::OK,
                &json!({ "events": events, "next": after }),
            ));
        }
        if !full {
            tokio::time::sleep(TICK).await;
        }
    }
}
