//! `docker cp`: `GET`/`HEAD /containers/{id}/archive?path=` (a tar of the path, with its
//! stat in the `X-Docker-Container-Path-Stat` header, read from the first tar entry as the
//! engine's copy writes it) and `PUT /containers/{id}/archive?path=` (a tar unpacked into
//! the directory `path`, by the engine's copy: names resolved inside the container's root,
//! never following links out of it).

use std::io::Read;

use base64::Engine as _;
use bytes::Bytes;
use gcr_engine::container::copy::CopyOptions;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::json;
use tokio::sync::mpsc;

use crate::errors::HttpError;
use crate::http::{self, Query, Resp};
use crate::server::Shared;

/// A blocking `Write` into a channel of chunks (the tar the engine writes).
struct ChanWrite(mpsc::Sender<Bytes>);

impl std::io::Write for ChanWrite {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Bytes::copy_from_slice(b))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn octal(field: &[u8]) -> u64 {
    let s: String = field
        .iter()
        .take_while(|b| **b != 0)
        .map(|b| *b as char)
        .collect();
    u64::from_str_radix(s.trim(), 8).unwrap_or(0)
}

fn text(field: &[u8]) -> String {
    let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// Docker's path stat (Go's `os.FileMode` bits) from the first entry of a tar: its
/// header, or a GNU long-name entry and then the header. None until enough was read.
pub(crate) fn stat_of(tar: &[u8]) -> Option<serde_json::Value> {
    let mut at = 0;
    let mut long_name = None;
    loop {
        let h = tar.get(at..at + 512)?;
        let size = octal(&h[124..136]) as usize;
        let kind = h[156];
        if kind == b'L' {
            let data = tar.get(at + 512..at + 512 + size)?;
            long_name = Some(text(data));
            at += 512 + size.div_ceil(512) * 512;
            continue;
        }
        let name = long_name.unwrap_or_else(|| text(&h[0..100]));
        let name = name.trim_end_matches('/');
        let base = name.rsplit('/').next().unwrap_or(name);
        let perm = (octal(&h[100..108]) & 0o7777) as u32;
        let mode = match kind {
            b'5' => perm | 1 << 31,
            b'2' => perm | 1 << 27,
            _ => perm,
        };
        let mtime = gcr_engine::logs::rfc3339_nanos(octal(&h[136..148]) as i64 * 1_000_000_000);
        return Some(json!({
            "name": if base.is_empty() || base == "." { "/" } else { base },
            "size": size,
            "mode": mode,
            "mtime": mtime,
            "linkTarget": text(&h[157..257]),
        }));
    }
}

async fn joined(h: &mut tokio::task::JoinHandle<Result<(), HttpError>>) -> Result<(), HttpError> {
    h.await
        .map_err(|e| HttpError::internal(format!("the copy failed: {e}")))?
}

/// `GET|HEAD /containers/{id}/archive?path=`.
pub async fn get(st: &Shared, id: &str, q: &Query, head: bool) -> Result<Resp, HttpError> {
    let path = q
        .get("path")
        .filter(|p| !p.is_empty())
        .ok_or_else(|| HttpError::bad_request("the path in the container (path) must be given"))?
        .to_string();
    let (tx, mut rx) = mpsc::channel::<Bytes>(16);
    let id = id.to_string();
    let st2 = st.clone();
    let mut copy = tokio::spawn(async move {
        st2.engine(move |e| {
            let o = CopyOptions::default();
            let mut w = ChanWrite(tx);
            match e.copy_out(&id, &path, "-", &o, &mut w) {
                // The reader went away (a HEAD, or a client that left).
                Err(gcr_engine::EngineError::Io(_, err))
                    if err.kind() == std::io::ErrorKind::BrokenPipe =>
                {
                    Ok(())
                }
                r => Ok(r?),
            }
        })
        .await
    });
    // The first entry's header decides the stat header; the copy's error comes first.
    let mut head_bytes = Vec::new();
    let stat = loop {
        tokio::select! {
            chunk = rx.recv() => match chunk {
                Some(c) => {
                    head_bytes.extend_from_slice(&c);
                    if let Some(s) = stat_of(&head_bytes) {
                        break s;
                    }
                }
                None => {
                    joined(&mut copy).await?;
                    return Err(HttpError::internal("the container's archive came out empty"));
                }
            },
            r = &mut copy => {
                r.map_err(|e| HttpError::internal(format!("the copy failed: {e}")))??;
                // Done already: everything is in the channel.
                while let Some(c) = rx.recv().await {
                    head_bytes.extend_from_slice(&c);
                }
                break stat_of(&head_bytes)
                    .ok_or_else(|| HttpError::internal("the container's archive came out empty"))?;
            }
        }
    };
    let header = base64::engine::general_purpose::STANDARD.encode(stat.to_string());
    let (btx, brx) = mpsc::channel::<Bytes>(16);
    if !head {
        tokio::spawn(async move {
            if btx.send(Bytes::from(head_bytes)).await.is_err() {
                return;
            }
            while let Some(c) = rx.recv().await {
                if btx.send(c).await.is_err() {
                    return;
                }
            }
            let _ = copy.await;
        });
    }
    let mut resp = if head {
        http::empty(StatusCode::OK)
    } else {
        http::stream("application/x-tar", brx)
    };
    if let Ok(v) = header.parse() {
        resp.headers_mut().insert("x-docker-container-path-stat", v);
    }
    Ok(resp)
}

/// A blocking `Read` over chunks sent from the request body; a body that broke off (the
/// client left mid-upload) is an error, never a shorter tar (whose whole entries would be
/// placed).
struct ChanRead {
    rx: std::sync::mpsc::Receiver<Option<Bytes>>,
    cur: Bytes,
}

impl Read for ChanRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.recv() {
                Ok(Some(c)) => self.cur = c,
                Ok(None) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the request body broke off before its end; nothing was copied",
                    ))
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}

/// The destination directory and copy options of an archive PUT's query.
pub(crate) fn put_params(q: &Query) -> Result<(String, CopyOptions), HttpError> {
    let path = q
        .get("path")
        .filter(|p| !p.is_empty())
        .ok_or_else(|| HttpError::bad_request("the destination directory (path) must be given"))?
        .to_string();
    let o = CopyOptions {
        archive: q.flag("copyUIDGID", false),
        follow_link: false,
    };
    Ok((path, o))
}

/// `PUT /containers/{id}/archive?path=&copyUIDGID=`: the tar body unpacked into `path`.
pub async fn put(
    st: &Shared,
    id: &str,
    q: &Query,
    req: Request<Incoming>,
) -> Result<Resp, HttpError> {
    let (path, o) = put_params(q)?;
    let (tx, rx) = std::sync::mpsc::channel::<Option<Bytes>>();
    let mut body = req.into_body();
    let feeder = tokio::spawn(async move {
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                let _ = tx.send(None);
                return;
            };
            if let Ok(data) = frame.into_data() {
                if tx.send(Some(data)).is_err() {
                    return;
                }
            }
        }
    });
    let id = id.to_string();
    let res = st
        .engine(move |e| {
            let mut input = ChanRead {
                rx,
                cur: Bytes::new(),
            };
            e.copy_in("-", &id, &path, &o, &mut input)?;
            Ok(())
        })
        .await;
    feeder.abort();
    res?;
    Ok(http::empty(StatusCode::OK))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, kind: u8, mode: u32, size: usize) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let m = format!("{mode:07o}\0");
        h[100..108].copy_from_slice(m.as_bytes());
        let s = format!("{size:011o}\0");
        h[124..136].copy_from_slice(s.as_bytes());
        h[136..148].copy_from_slice(b"00000000000\0");
        h[156] = kind;
        h
    }

    #[test]
    fn stats_from_tar_headers() {
        let s = stat_of(&header("etc", b'5', 0o755, 0)).unwrap();
        assert_eq!(s["name"], "etc");
        assert_eq!(s["mode"], (0o755u32 | 1 << 31));
        let s = stat_of(&header("hostname", b'0', 0o644, 13)).unwrap();
        assert_eq!(
            (s["name"].as_str(), s["size"].as_u64()),
            (Some("hostname"), Some(13))
        );
        assert!(stat_of(&[0u8; 100]).is_none());
        let long = "x".repeat(150);
        let mut t = header("././@LongLink", b'L', 0o644, long.len() + 1);
        let mut data = long.clone().into_bytes();
        data.resize(512, 0);
        t.extend_from_slice(&data);
        assert!(stat_of(&t).is_none(), "the real header is still missing");
        t.extend_from_slice(&header("short", b'0', 0o600, 1));
        assert_eq!(stat_of(&t).unwrap()["name"], long);
    }
}
