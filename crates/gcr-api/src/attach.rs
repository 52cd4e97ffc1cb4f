//! `POST /containers/{id}/attach`: the docker CLI's hijacked connection (`Upgrade: tcp`,
//! answered 101) relayed to the container's supervisor (see gcr-engine's
//! `container::attach`): its output frames pass through as Docker's multiplexed stream (the
//! same 8-byte header) or, with a tty, as raw bytes; the client's bytes become stdin frames.
//! An attach made before the start (what `docker run` does) waits for it, and the start
//! holds the container's output until the attach said hello. `resize` sends the
//! supervisor a window size. `attach/ws` is the same relay over a WebSocket.

use gcr_engine::container::attach::{frames, header, CLOSE_STDIN, EXIT, HELLO, RESIZE, STDIN};
use gcr_engine::container::record::Record;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::errors::HttpError;
use crate::http::{self, Body, Query, Resp};
use crate::server::Shared;
use crate::stream::find;

/// What one attach relays.
#[derive(Clone, Copy)]
struct Wants {
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
    /// Output in Docker's multiplexed frames (no tty, not a WebSocket), else raw.
    framed: bool,
    /// `logs=1`: the log so far first.
    logs: bool,
    /// `stream=1`: then the live output (without it, only the log).
    stream: bool,
}

/// `POST /containers/{id}/attach?stream=&logs=&stdin=&stdout=&stderr=`.
pub async fn attach(
    st: &Shared,
    id: &str,
    q: &Query,
    req: Request<Incoming>,
) -> Result<Resp, HttpError> {
    let upgrade = req
        .headers()
        .get(hyper::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("tcp"));
    if !upgrade {
        return Err(HttpError::bad_request(
            "attach needs a connection upgrade: send 'Connection: Upgrade' and 'Upgrade: tcp'",
        ));
    }
    let keys = detach_keys(q)?;
    let (r, w) = target(st, id, q).await?;
    st.attach_begin(&r.id);
    let st2 = st.clone();
    let peer = req.extensions().get::<crate::listen::Peer>().cloned();
    tokio::spawn(async move {
        let id = r.id.clone();
        let connected = match hyper::upgrade::on(req).await {
            // A replayed log follows the 101 at once: on a unix socket, it waits until the
            // client has read the 101 (see `read_by_peer`), as a client that reads the
            // answer's head with a buffered reader and the stream from the raw socket
            // (docker-py) would otherwise lose what came with the head.
            Ok(up) if w.logs => match up.downcast::<TokioIo<tokio::net::UnixStream>>() {
                Ok(parts) => {
                    let sock = parts.io.into_inner();
                    read_by_peer(&sock).await;
                    let client = Prefixed {
                        pre: parts.read_buf,
                        io: sock,
                    };
                    relay(&st2, r, w, keys, client, peer).await
                }
                Err(up) => relay(&st2, r, w, keys, TokioIo::new(up), peer).await,
            },
            Ok(up) => relay(&st2, r, w, keys, TokioIo::new(up), peer).await,
            Err(_) => false,
        };
        st2.attach_end(&id, connected);
    });
    let mut resp = Response::new(Body::Full(None));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("Upgrade"),
    );
    h.insert(
        hyper::header::UPGRADE,
        hyper::header::HeaderValue::from_static("tcp"),
    );
    let ctype = if w.tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    h.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(ctype),
    );
    Ok(resp)
}

/// dockerd's detach keys: on a tty's stdin, the sequence (ctrl-p,ctrl-q unless
/// `detachKeys` names another; "" none) ends the attach and the container runs on.
fn detach_keys(q: &Query) -> Result<Vec<u8>, HttpError> {
    Ok(match q.get("detachKeys") {
        Some("") => Vec::new(),
        Some(k) => gcr_engine::container::attached::parse_detach_keys(k)
            .map_err(|e| HttpError::bad_request(e.replace("--detach-keys", "detachKeys")))?,
        None => gcr_engine::container::attached::DEFAULT_DETACH_KEYS.to_vec(),
    })
}

/// The container an attach names and what it relays (multiplexed unless it has a tty).
async fn target(st: &Shared, id: &str, q: &Query) -> Result<(Record, Wants), HttpError> {
    let r = find(st, id)
        .await?
        .ok_or_else(|| HttpError::not_found(format!("No such container: {id}")))?;
    let w = Wants {
        stdin: q.flag("stdin", false) && r.config.opts.interactive,
        stdout: q.flag("stdout", false),
        stderr: q.flag("stderr", false),
        tty: r.config.opts.tty,
        framed: !r.config.opts.tty,
        logs: q.flag("logs", false),
        stream: q.flag("stream", false),
    };
    Ok((r, w))
}

/// `GET /containers/{id}/attach/ws?stream=&logs=&stdin=&stdout=&stderr=&detachKeys=`: the
/// same attach over a WebSocket (what browser consoles use): output raw (no 8-byte
/// frames, as dockerd's), in messages (see [`crate::ws`]); the client's messages are
/// stdin.
pub async fn attach_ws(
    st: &Shared,
    id: &str,
    q: &Query,
    req: Request<Incoming>,
) -> Result<Resp, HttpError> {
    let resp = crate::ws::accept(req.headers())?;
    let keys = detach_keys(q)?;
    let (r, mut w) = target(st, id, q).await?;
    w.framed = false;
    st.attach_begin(&r.id);
    let st2 = st.clone();
    let peer = req.extensions().get::<crate::listen::Peer>().cloned();
    tokio::spawn(async move {
        let id = r.id.clone();
        let connected = match hyper::upgrade::on(req).await {
            Ok(up) => {
                let client = crate::ws::bridge(crate::ws::socket(up).await);
                relay(&st2, r, w, keys, client, peer).await
            }
            Err(_) => false,
        };
        st2.attach_end(&id, connected);
    });
    Ok(resp)
}

/// A unix socket taken back from hyper, with the bytes hyper had read past the request
/// (`pre`) read first.
struct Prefixed {
    pre: bytes::Bytes,
    io: tokio::net::UnixStream,
}

impl tokio::io::AsyncRead for Prefixed {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if !self.pre.is_empty() {
            let n = self.pre.len().min(buf.remaining());
            let head = self.pre.split_to(n);
            buf.put_slice(&head);
            return std::task::Poll::Ready(Ok(()));
        }
        std::pin::Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Prefixed {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write(cx, data)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Waits (up to a second) until the peer of unix socket `sock` has read everything sent on
/// it so far: for a unix socket, `SIOCOUTQ` counts the bytes still queued for the peer.
async fn read_by_peer(sock: &tokio::net::UnixStream) {
    use std::os::fd::AsRawFd;
    for _ in 0..1000 {
        let mut queued: libc::c_int = 0;
        // SAFETY: TIOCOUTQ (SIOCOUTQ) on a socket we own writes one int through a valid
        // pointer to a local.
        let r = unsafe { libc::ioctl(sock.as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
        if r != 0 || queued == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

/// The supervisor's socket of `r` once it runs (an attach made before the start waits for
/// it); None when the container went away first, or the client (`peer`) closed its
/// connection.
async fn connect_when_running(
    st: &Shared,
    r: &Record,
    peer: Option<&crate::listen::Peer>,
) -> Option<tokio::net::UnixStream> {
    let mut started = st.started.subscribe();
    loop {
        if peer.is_some_and(crate::listen::Peer::closed) {
            return None;
        }
        let cur = find(st, &r.id).await.ok()??;
        if cur.state.is_alive() {
            let sock = st.engine(move |e| Ok(e.connect_attach(&cur)?)).await.ok()?;
            sock.set_nonblocking(true).ok()?;
            return tokio::net::UnixStream::from_std(sock).ok();
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_millis(50)) => {}
            _ = started.recv() => {}
        }
    }
}

/// Relays until the container exits, the client leaves or types the detach `keys` (on a
/// tty's stdin); false when it never connected (said hello to the supervisor).
async fn relay<C>(
    st: &Shared,
    r: Record,
    w: Wants,
    keys: Vec<u8>,
    client: C,
    peer: Option<crate::listen::Peer>,
) -> bool
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut c_read, mut c_write) = tokio::io::split(client);
    // `logs=1`: the log so far, then (with `stream=1`) the live output. Output written
    // between the two may show in neither or both, as with dockerd.
    if w.logs {
        let mut replay = crate::stream::log_replay(st, &r, w.framed, w.stdout, w.stderr);
        while let Some(b) = replay.recv().await {
            if c_write.write_all(&b).await.is_err() {
                return false;
            }
        }
    }
    if !w.stream {
        let _ = c_write.flush().await;
        let _ = c_write.shutdown().await;
        return false;
    }
    let Some(sock) = connect_when_running(st, &r, peer.as_ref()).await else {
        let _ = c_write.shutdown().await;
        return false;
    };
    let (mut s_read, mut s_write) = sock.into_split();
    let mut hello = header(HELLO, 3).to_vec();
    hello.extend_from_slice(&[w.stdin as u8, w.stdout as u8, w.stderr as u8]);
    if s_write.write_all(&hello).await.is_err() {
        return false;
    }
    st.attach_connected(&r.id);
    // Client -> container stdin (only with stdin=1 on a container started with -i).
    let (detached_tx, mut detached) = tokio::sync::oneshot::channel::<()>();
    let mut detached_tx = Some(detached_tx);
    let input = tokio::spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        let keys = if w.tty { keys } else { Vec::new() };
        let mut matcher = gcr_engine::container::attached::DetachMatcher::new(&keys);
        loop {
            match c_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) if w.stdin => {
                    let (data, detach) = matcher.feed(&buf[..n]);
                    if !data.is_empty() {
                        let mut f = header(STDIN, data.len()).to_vec();
                        f.extend_from_slice(&data);
                        if s_write.write_all(&f).await.is_err() {
                            return;
                        }
                    }
                    if detach {
                        // The container keeps its stdin: only this attach ends.
                        if let Some(tx) = detached_tx.take() {
                            let _ = tx.send(());
                        }
                        let _ = s_write.flush().await;
                        std::future::pending::<()>().await;
                    }
                }
                Ok(_) => {}
            }
        }
        if w.stdin {
            let _ = s_write.write_all(&header(CLOSE_STDIN, 0)).await;
        }
        // Keep the write half until the relay ends: dropping it shuts the socket's write
        // side, which the supervisor takes for a client that left.
        let _ = s_write.flush().await;
        std::future::pending::<()>().await;
    });
    // Container output -> client.
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 32 * 1024];
    'out: loop {
        let n = tokio::select! {
            r = s_read.read(&mut chunk) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
            _ = &mut detached => break,
        };
        buf.extend_from_slice(&chunk[..n]);
        for (kind, data) in frames(&mut buf) {
            match kind {
                EXIT if data.len() == 4 => {
                    let code = i32::from_be_bytes([data[0], data[1], data[2], data[3]]);
                    st.remember_exit(&r.id, code);
                    break 'out;
                }
                1 | 2 => {
                    let sent = if !w.framed {
                        c_write.write_all(&data).await
                    } else {
                        let mut f = header(kind, data.len()).to_vec();
                        f.extend_from_slice(&data);
                        c_write.write_all(&f).await
                    };
                    if sent.is_err() {
                        break 'out;
                    }
                }
                _ => {}
            }
        }
    }
    input.abort();
    let _ = c_write.flush().await;
    let _ = c_write.shutdown().await;
    true
}

/// `POST /containers/{id}/resize?h=&w=`: the window size of a container with a tty.
pub async fn resize(st: &Shared, id: &str, q: &Query) -> Result<Resp, HttpError> {
    let h: u16 = q.number("h")?.unwrap_or(0);
    let w: u16 = q.number("w")?.unwrap_or(0);
    let id = id.to_string();
    st.engine(move |e| {
        let r = e.container(&id)?;
        if !r.state.is_alive() {
            return Err(HttpError::new(
                StatusCode::CONFLICT,
                format!("Container {} is not running", r.id),
            ));
        }
        let mut sock = e.connect_attach(&r)?;
        let mut f = header(RESIZE, 4).to_vec();
        f.extend_from_slice(&h.to_be_bytes());
        f.extend_from_slice(&w.to_be_bytes());
        std::io::Write::write_all(&mut sock, &f)
            .map_err(|err| HttpError::internal(format!("resizing container {id}: {err}")))?;
        Ok(())
    })
    .await?;
    Ok(http::empty(StatusCode::OK))
}
