//! Exec: `POST /containers/{id}/exec` records what to run (Docker's exec config), `POST
//! /exec/{id}/start` runs it in the container (detached, or over a hijacked connection:
//! Docker's multiplexed frames from two pipes, or raw bytes both ways through a pty),
//! `GET /exec/{id}/json` reports it (the docker CLI reads the exit code there), and
//! `POST /exec/{id}/resize` sizes its pty.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};

use gcr_engine::container::attach::header;
use gcr_engine::container::exec::{exec_wait, ExecOptions, ExecStdio};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::errors::HttpError;
use crate::http::{self, Body, Resp};
use crate::server::Shared;

/// One exec instance.
pub(crate) struct Exec {
    container: String,
    opts: ExecOptions,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    /// Set once started; None = not started yet.
    pid: Option<i32>,
    running: bool,
    exit_code: Option<i32>,
    /// The pty master of a tty exec (for resize).
    pty: Option<Arc<OwnedFd>>,
}

/// Exec instances by id.
pub(crate) type Execs = Mutex<HashMap<String, Exec>>;

fn new_id() -> Result<String, HttpError> {
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .map_err(|e| HttpError::internal(format!("reading /dev/urandom: {e}")))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn flag(v: &Value, k: &str) -> bool {
    v.get(k).and_then(Value::as_bool).unwrap_or(false)
}

fn strings(v: &Value, k: &str) -> Result<Vec<String>, HttpError> {
    match v.get(k) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str().map(str::to_string).ok_or_else(|| {
                    HttpError::bad_request(format!("invalid {k}: {x} is not a string"))
                })
            })
            .collect(),
        Some(x) => Err(HttpError::bad_request(format!(
            "invalid {k} {x}: expected a list of strings"
        ))),
    }
}

fn string(v: &Value, k: &str) -> Option<String> {
    v.get(k)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// `POST /containers/{id}/exec`.
pub async fn create(st: &Shared, id: &str, body: &[u8]) -> Result<Resp, HttpError> {
    let body = http::parse_json(body)?;
    let cmd = strings(&body, "Cmd")?;
    if cmd.is_empty() {
        return Err(HttpError::bad_request("No exec command specified"));
    }
    let id = id.to_string();
    let r = st.engine(move |e| Ok(e.container(&id)?)).await?;
    if r.state != gcr_engine::State::Running {
        return Err(HttpError::new(
            StatusCode::CONFLICT,
            format!("Container {} is not running", r.id),
        ));
    }
    let exec = Exec {
        container: r.id,
        opts: ExecOptions {
            cmd,
            env: strings(&body, "Env")?,
            user: string(&body, "User"),
            workdir: string(&body, "WorkingDir"),
            tty: flag(&body, "Tty"),
            interactive: flag(&body, "AttachStdin"),
            detach: false,
        },
        stdin: flag(&body, "AttachStdin"),
        stdout: flag(&body, "AttachStdout"),
        stderr: flag(&body, "AttachStderr"),
        pid: None,
        running: false,
        exit_code: None,
        pty: None,
    };
    let exec_id = new_id()?;
    st.execs
        .lock()
        .map_err(|_| HttpError::internal("the exec table is unusable"))?
        .insert(exec_id.clone(), exec);
    Ok(http::json(StatusCode::CREATED, &json!({ "Id": exec_id })))
}

fn no_such_exec(id: &str) -> HttpError {
    HttpError::not_found(format!("No such exec instance: {id}"))
}

/// `GET /exec/{id}/json`.
pub async fn inspect(st: &Shared, id: &str) -> Result<Resp, HttpError> {
    let execs = st
        .execs
        .lock()
        .map_err(|_| HttpError::internal("the exec table is unusable"))?;
    let x = execs.get(id).ok_or_else(|| no_such_exec(id))?;
    let v = json!({
        "ID": id,
        "ContainerID": x.container,
        "Running": x.running,
        "ExitCode": x.exit_code,
        "Pid": x.pid.unwrap_or(0),
        "OpenStdin": x.stdin,
        "OpenStdout": x.stdout,
        "OpenStderr": x.stderr,
        "CanRemove": false,
        "DetachKeys": "",
        "ProcessConfig": {
            "tty": x.opts.tty,
            "entrypoint": x.opts.cmd.first(),
            "arguments": x.opts.cmd.get(1..).unwrap_or_default(),
            "privileged": false,
            "user": x.opts.user.clone().unwrap_or_default(),
        },
    });
    Ok(http::json(StatusCode::OK, &v))
}

/// `POST /exec/{id}/resize?h=&w=`.
pub async fn resize(st: &Shared, id: &str, q: &crate::http::Query) -> Result<Resp, HttpError> {
    let h: u16 = q.number("h")?.unwrap_or(0);
    let w: u16 = q.number("w")?.unwrap_or(0);
    let pty = {
        let execs = st
            .execs
            .lock()
            .map_err(|_| HttpError::internal("the exec table is unusable"))?;
        let x = execs.get(id).ok_or_else(|| no_such_exec(id))?;
        x.pty.clone()
    };
    let Some(pty) = pty else {
        return Err(HttpError::new(
            StatusCode::CONFLICT,
            format!("exec {id} has no terminal to resize"),
        ));
    };
    let ws = rustix::termios::Winsize {
        ws_row: h,
        ws_col: w,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(pty.as_fd(), ws)
        .map_err(|e| HttpError::internal(format!("resizing exec {id}: {e}")))?;
    Ok(http::empty(StatusCode::OK))
}

/// The streams of a started exec: the pty master, or the pipes' parent ends.
enum Streams {
    Pty(OwnedFd),
    Pipes {
        stdin: Option<OwnedFd>,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
}

fn pipe() -> Result<(OwnedFd, OwnedFd), HttpError> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| HttpError::internal(format!("making a pipe for exec: {e}")))
}

/// Starts exec `id` (`detach`: output to /dev/null): its pid and streams.
async fn spawn(st: &Shared, id: &str, detach: bool) -> Result<(i32, Option<Streams>), HttpError> {
    let (container, mut opts, wants) = {
        let mut execs = st
            .execs
            .lock()
            .map_err(|_| HttpError::internal("the exec table is unusable"))?;
        let x = execs.get_mut(id).ok_or_else(|| no_such_exec(id))?;
        if x.pid.is_some() {
            return Err(HttpError::new(
                StatusCode::CONFLICT,
                format!("Exec {id} has already been started"),
            ));
        }
        x.pid = Some(0);
        (
            x.container.clone(),
            x.opts.clone(),
            [x.stdin, x.stdout, x.stderr],
        )
    };
    opts.interactive = wants[0] && !detach;
    let started = st
        .engine_forking(move |e| {
            let (stdio, streams) = if opts.tty && !detach {
                (ExecStdio::Pty, None)
            } else if detach {
                let null = |w: bool| {
                    std::fs::OpenOptions::new()
                        .write(w)
                        .read(!w)
                        .open("/dev/null")
                        .map(OwnedFd::from)
                        .map_err(|err| HttpError::internal(format!("opening /dev/null: {err}")))
                };
                (
                    ExecStdio::Fds {
                        stdin: None,
                        stdout: null(true)?,
                        stderr: null(true)?,
                    },
                    None,
                )
            } else {
                let (out_r, out_w) = pipe()?;
                let (err_r, err_w) = pipe()?;
                let (in_r, in_w) = if opts.interactive {
                    let (r, w) = pipe()?;
                    (Some(r), Some(w))
                } else {
                    (None, None)
                };
                (
                    ExecStdio::Fds {
                        stdin: in_r,
                        stdout: out_w,
                        stderr: err_w,
                    },
                    Some(Streams::Pipes {
                        stdin: in_w,
                        stdout: out_r,
                        stderr: err_r,
                    }),
                )
            };
            let mut running = e
                .exec_spawn(&container, &opts, stdio)
                .map_err(HttpError::from)?;
            let streams = match running.pty_master.take() {
                Some(m) => Some(Streams::Pty(m)),
                None => streams,
            };
            Ok((running, streams))
        })
        .await;
    let (running, streams) = match started {
        Ok(v) => v,
        Err(e) => {
            if let Ok(mut execs) = st.execs.lock() {
                if let Some(x) = execs.get_mut(id) {
                    x.pid = None;
                }
            }
            return Err(e);
        }
    };
    let pid = running.pid;
    let pty = match &streams {
        Some(Streams::Pty(m)) => m.try_clone().ok().map(Arc::new),
        _ => None,
    };
    if let Ok(mut execs) = st.execs.lock() {
        if let Some(x) = execs.get_mut(id) {
            x.pid = Some(pid);
            x.running = true;
            x.pty = pty;
        }
    }
    // The reaping: the exit code goes to the exec's record.
    let (st3, id3) = (st.clone(), id.to_string());
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    tokio::task::spawn_blocking(move || {
        let code = exec_wait(&running).unwrap_or(-1);
        if let Ok(mut execs) = st3.execs.lock() {
            if let Some(x) = execs.get_mut(&id3) {
                x.running = false;
                x.exit_code = Some(code);
                x.pty = None;
            }
        }
        let _ = done_tx.send(code);
    });
    if let Ok(mut w) = st.exec_done.lock() {
        w.insert(id.to_string(), done_rx);
    }
    Ok((pid, streams))
}

/// `POST /exec/{id}/start` (`{"Detach": bool}`).
pub async fn start(st: &Shared, id: &str, req: Request<Incoming>) -> Result<Resp, HttpError> {
    let upgrade = req
        .headers()
        .get(hyper::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("tcp"));
    let (parts, body) = req.into_parts();
    let body = http::read_json(body).await?;
    let detach = flag(&body, "Detach");
    if !detach && !upgrade {
        return Err(HttpError::bad_request(
            "an attached exec start needs a connection upgrade: send 'Connection: Upgrade' and 'Upgrade: tcp'",
        ));
    }
    if detach {
        spawn(st, id, true).await?;
        // Detached: nobody waits for its exit but the exec's record.
        if let Ok(mut w) = st.exec_done.lock() {
            w.remove(id);
        }
        return Ok(http::empty(StatusCode::OK));
    }
    let tty = {
        let execs = st
            .execs
            .lock()
            .map_err(|_| HttpError::internal("the exec table is unusable"))?;
        let x = execs.get(id).ok_or_else(|| no_such_exec(id))?;
        if x.pid.is_some() {
            return Err(HttpError::new(
                StatusCode::CONFLICT,
                format!("Exec {id} has already been started"),
            ));
        }
        x.opts.tty
    };
    // Upgraded first, as Docker: a command that cannot start is told in the stream, and
    // its exit code (126, 127) is the exec's.
    let req = Request::from_parts(parts, ());
    let (st2, id2) = (st.clone(), id.to_string());
    tokio::spawn(async move {
        let Ok(up) = hyper::upgrade::on(req).await else {
            return;
        };
        let mut io = TokioIo::new(up);
        match spawn(&st2, &id2, false).await {
            Ok((_, Some(streams))) => {
                let done = st2.exec_done.lock().ok().and_then(|mut w| w.remove(&id2));
                relay(io, streams, done).await;
            }
            Ok((_, None)) => {}
            Err(e) => {
                if let Ok(mut execs) = st2.execs.lock() {
                    if let Some(x) = execs.get_mut(&id2) {
                        x.pid = Some(0);
                        x.exit_code = Some(e.exit_code);
                    }
                }
                let msg = format!("{}\n", e.message);
                let mut out = Vec::new();
                if !tty {
                    out.extend_from_slice(&header(2, msg.len()));
                }
                out.extend_from_slice(msg.as_bytes());
                let _ = io.write_all(&out).await;
                let _ = io.shutdown().await;
            }
        }
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
    let ctype = if tty {
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

/// Reads `fd` (blocking, on a blocking thread) into chunks sent on `tx` as `kind` (0: raw).
fn pump_out(fd: OwnedFd, kind: u8, tx: mpsc::Sender<Vec<u8>>) {
    let mut f = std::fs::File::from(fd);
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match std::io::Read::read(&mut f, &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let mut chunk = Vec::with_capacity(n + 8);
                if kind != 0 {
                    chunk.extend_from_slice(&header(kind, n));
                }
                chunk.extend_from_slice(&buf[..n]);
                if tx.blocking_send(chunk).is_err() {
                    return;
                }
            }
        }
    }
}

async fn relay<C>(client: C, streams: Streams, done: Option<tokio::sync::oneshot::Receiver<i32>>)
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut c_read, mut c_write) = tokio::io::split(client);
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(16);
    let input: Option<OwnedFd> = match streams {
        Streams::Pty(m) => {
            let out = m.try_clone().ok();
            if let Some(out) = out {
                let tx = tx.clone();
                tokio::task::spawn_blocking(move || pump_out(out, 0, tx));
            }
            Some(m)
        }
        Streams::Pipes {
            stdin,
            stdout,
            stderr,
        } => {
            let (t1, t2) = (tx.clone(), tx.clone());
            tokio::task::spawn_blocking(move || pump_out(stdout, 1, t1));
            tokio::task::spawn_blocking(move || pump_out(stderr, 2, t2));
            stdin
        }
    };
    drop(tx);
    // Client -> the process's stdin (blocking writes on a blocking thread).
    let (in_tx, in_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    if let Some(fd) = input {
        tokio::task::spawn_blocking(move || {
            let mut f = std::fs::File::from(fd);
            while let Ok(b) = in_rx.recv() {
                if std::io::Write::write_all(&mut f, &b).is_err() {
                    return;
                }
            }
        });
    }
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match c_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if in_tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
        // Dropping the sender closes the process's stdin (a pipe; a pty stays open).
    });
    while let Some(chunk) = rx.recv().await {
        if c_write.write_all(&chunk).await.is_err() {
            break;
        }
    }
    // Output is over: the exit code must be recorded before the client asks for it.
    if let Some(d) = done {
        let _ = d.await;
    }
    reader.abort();
    let _ = c_write.flush().await;
    let _ = c_write.shutdown().await;
}
