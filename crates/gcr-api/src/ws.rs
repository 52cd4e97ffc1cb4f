//! WebSocket (RFC 6455) for the endpoints that offer it: `GET /containers/{id}/attach/ws`
//! and the live events (`GET /v1/events` with `Upgrade: websocket`). [`accept`] checks a
//! client's handshake and makes the 101; the frames are tokio-tungstenite's. [`bridge`]
//! turns the upgraded connection into a byte stream for the attach relay: what the relay
//! writes goes out as messages, and the messages a client sends are what it reads.
//!
//! Output goes out in text frames where it is UTF-8, as dockerd's (API 1.41 and earlier);
//! a character split between two reads waits for its end, and bytes that are no text go
//! in a binary frame (API 1.42 sends only binary frames; a text frame must be UTF-8).

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper::header::{HeaderMap, HeaderValue};
use hyper::upgrade::Upgraded;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_tungstenite::tungstenite::protocol::{Message, Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

use crate::errors::HttpError;
use crate::http::{Body, Resp};

/// Bytes buffered between the relay and the socket, each way.
const PIPE: usize = 64 * 1024;

/// True when the request asks for a WebSocket (`Upgrade: websocket`).
pub fn wanted(h: &HeaderMap) -> bool {
    h.get(hyper::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The 101 answer to a WebSocket handshake; a request that is not one (no
/// `Sec-WebSocket-Key`, another version than 13) is a 400 naming what is missing.
pub fn accept(h: &HeaderMap) -> Result<Resp, HttpError> {
    if !wanted(h) {
        return Err(HttpError::bad_request(
            "this endpoint speaks WebSocket: send 'Connection: Upgrade' and 'Upgrade: websocket'",
        ));
    }
    let version = h.get("sec-websocket-version").and_then(|v| v.to_str().ok());
    if version != Some("13") {
        return Err(HttpError::bad_request(
            "unsupported WebSocket version: send 'Sec-WebSocket-Version: 13'",
        ));
    }
    let key = h
        .get("sec-websocket-key")
        .map(|k| k.as_bytes())
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            HttpError::bad_request("a WebSocket handshake needs a 'Sec-WebSocket-Key' header")
        })?;
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key);
    let mut resp = Response::new(Body::Full(None));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let hm = resp.headers_mut();
    hm.insert(
        hyper::header::CONNECTION,
        HeaderValue::from_static("Upgrade"),
    );
    hm.insert(
        hyper::header::UPGRADE,
        HeaderValue::from_static("websocket"),
    );
    if let Ok(v) = HeaderValue::from_str(&accept) {
        hm.insert("sec-websocket-accept", v);
    }
    Ok(resp)
}

/// The largest message (and frame) a client may send: stdin comes in keystrokes and
/// pastes, and the events stream reads nothing (tungstenite's default is 64 MiB).
const MAX_IN: usize = 1 << 20;

/// The server's side of an upgraded connection.
pub async fn socket(up: Upgraded) -> WebSocketStream<TokioIo<Upgraded>> {
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_IN))
        .max_frame_size(Some(MAX_IN));
    WebSocketStream::from_raw_socket(TokioIo::new(up), Role::Server, Some(config)).await
}

/// A byte stream over `ws`: writes become messages (text where UTF-8, see the module
/// doc), and the data of the client's text and binary messages is what reads return; a
/// close from the client (or a broken connection) is the end of input, and once the
/// socket is gone writes fail. The pumps end with the stream.
pub fn bridge(ws: WebSocketStream<TokioIo<Upgraded>>) -> DuplexStream {
    let (mine, theirs) = tokio::io::duplex(PIPE);
    let (mut from_app, mut to_app) = tokio::io::split(mine);
    let (mut sink, mut stream) = ws.split();
    let outgoing = tokio::spawn(async move {
        let mut text = Utf8Frames::default();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = match from_app.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            for m in text.push(&buf[..n]) {
                if sink.send(m).await.is_err() {
                    return;
                }
            }
        }
        if let Some(m) = text.finish() {
            let _ = sink.send(m).await;
        }
        let _ = sink.send(Message::Close(None)).await;
        let _ = sink.close().await;
    });
    tokio::spawn(async move {
        while let Some(m) = stream.next().await {
            let data: Bytes = match m {
                Ok(Message::Text(t)) => Bytes::copy_from_slice(t.as_bytes()),
                Ok(Message::Binary(b)) => b,
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(_) => continue,
            };
            if to_app.write_all(&data).await.is_err() {
                break;
            }
        }
        let _ = to_app.shutdown().await;
        // The client is gone: so is the way out (the relay's writes now fail).
        outgoing.abort();
    });
    theirs
}

/// Cuts output into WebSocket messages: text frames for UTF-8, a character split across
/// two chunks held for the next, binary frames for bytes that are no text.
#[derive(Default)]
pub(crate) struct Utf8Frames {
    pending: Vec<u8>,
}

impl Utf8Frames {
    pub(crate) fn push(&mut self, data: &[u8]) -> Vec<Message> {
        self.pending.extend_from_slice(data);
        let bytes = std::mem::take(&mut self.pending);
        match std::str::from_utf8(&bytes) {
            Ok(s) => vec![Message::text(s)],
            // Only an unfinished character at the end: send the rest, keep it.
            Err(e) if e.error_len().is_none() => {
                let (ok, tail) = bytes.split_at(e.valid_up_to());
                self.pending = tail.to_vec();
                match std::str::from_utf8(ok) {
                    Ok(s) if !s.is_empty() => vec![Message::text(s)],
                    _ => Vec::new(),
                }
            }
            Err(_) => vec![Message::binary(bytes)],
        }
    }

    /// What is held at the end of output (an unfinished character): binary.
    pub(crate) fn finish(&mut self) -> Option<Message> {
        (!self.pending.is_empty()).then(|| Message::binary(std::mem::take(&mut self.pending)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(m: &[Message]) -> Vec<String> {
        m.iter()
            .map(|m| match m {
                Message::Text(t) => format!("t:{}", t.as_str()),
                Message::Binary(b) => format!("b:{:?}", b.as_ref()),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn output_is_text_where_it_is_utf8() {
        let mut f = Utf8Frames::default();
        assert_eq!(texts(&f.push(b"hello\n")), ["t:hello\n"]);
        // "é" is C3 A9: split across two reads, it goes out whole.
        assert_eq!(texts(&f.push(b"caf\xc3")), ["t:caf"]);
        assert_eq!(texts(&f.push(b"\xa9!")), ["t:\u{e9}!"]);
        assert_eq!(texts(&f.push(b"\xc3")), Vec::<String>::new());
        assert_eq!(
            texts(&f.finish().into_iter().collect::<Vec<_>>()),
            ["b:[195]"]
        );
        // Bytes that are no text at all: binary.
        assert_eq!(texts(&f.push(b"\xff\x00a")), ["b:[255, 0, 97]"]);
        assert!(f.finish().is_none());
    }

    #[test]
    fn a_handshake_needs_key_and_version() {
        let mut h = HeaderMap::new();
        assert!(accept(&h).is_err());
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        h.insert("sec-websocket-version", HeaderValue::from_static("13"));
        let e = accept(&h).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("Sec-WebSocket-Key"), "{e}");
        // RFC 6455's example key and answer.
        h.insert(
            "sec-websocket-key",
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        let r = accept(&h).unwrap();
        assert_eq!(r.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(
            r.headers()["sec-websocket-accept"],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        h.insert("sec-websocket-version", HeaderValue::from_static("8"));
        assert!(accept(&h).is_err());
    }
}
