//! Webhooks (seed 002 §8, the partners' transport): `gcr system service --webhook URL`
//! POSTs each live event (the ones `GET /v1/events` streams, `--webhook-types` to choose)
//! to URL as JSON, one request per event, in order, from the service's start on. A failed
//! delivery (no answer within 10 s, or a status other than 2xx) is tried again after 1, 2,
//! 4 … 30 seconds, and the events after it wait: each event is delivered at least once, in
//! order, while the service runs (a partner catches up on the rest with
//! `GET /v1/events/poll?after=ID`).
//!
//! Headers: `X-Gcr-Event` (the event's name), `X-Gcr-Delivery` (its id), and with
//! `--webhook-secret FILE` `X-Gcr-Signature-256: sha256=HEX`, the HMAC-SHA256 of the body
//! under the file's bytes, for the receiver to check. A URL is `https://`, or `http://` to a
//! loopback address only (an event names containers and images; it does not cross a
//! network in clear).

use std::path::PathBuf;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::errors::ApiError;
use crate::live::{Filter, Live};
use crate::server::Shared;
use crate::sse::{page, PAGE, TICK};

/// `--webhook URL [--webhook-types LIST] [--webhook-secret FILE]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookOptions {
    pub url: String,
    /// Event names or prefixes (`run_state`, `deploy.applied`); empty: all.
    pub types: Vec<String>,
    /// The HMAC key's file.
    pub secret: Option<PathBuf>,
}

/// A checked webhook, ready to deliver.
pub(crate) struct Webhook {
    url: String,
    filter: Filter,
    secret: Option<Vec<u8>>,
}

impl WebhookOptions {
    /// Checks the URL, the types and the secret's file (errors name the flag).
    pub(crate) fn open(&self) -> Result<Webhook, ApiError> {
        let bad = |m: String| ApiError::BadHost(m);
        let rest = if let Some(r) = self.url.strip_prefix("https://") {
            r
        } else if let Some(r) = self.url.strip_prefix("http://") {
            let host = r.split(['/', '?']).next().unwrap_or("");
            let host = match host.rsplit_once(':') {
                Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
                _ => host,
            };
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = host == "localhost"
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if !loopback {
                return Err(bad(format!(
                    "--webhook {}: plain http only to a loopback address; use https:// for another host",
                    self.url
                )));
            }
            r
        } else {
            return Err(bad(format!(
                "--webhook {}: give an https:// URL (or http:// to a loopback address)",
                self.url
            )));
        };
        if rest.is_empty() || rest.starts_with('/') {
            return Err(bad(format!(
                "--webhook {}: the URL names no host",
                self.url
            )));
        }
        let filter = Filter::of_types(self.types.clone())
            .map_err(|e| bad(format!("--webhook-types: {e}")))?;
        let secret = match &self.secret {
            None => None,
            Some(p) => {
                let key = std::fs::read(p).map_err(|e| {
                    ApiError::io(format!("reading --webhook-secret {}", p.display()), e)
                })?;
                if key.is_empty() {
                    return Err(bad(format!(
                        "--webhook-secret {}: the file is empty; put the shared key in it",
                        p.display()
                    )));
                }
                Some(key)
            }
        };
        Ok(Webhook {
            url: self.url.clone(),
            filter,
            secret,
        })
    }
}

/// `sha256=HEX` of the HMAC-SHA256 of `body` under `key`.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length: this never fails.
    let Ok(mut mac) = <Hmac<Sha256>>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(body);
    let out = mac.finalize().into_bytes();
    let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

impl Webhook {
    /// One delivery: Ok when the receiver answered 2xx.
    fn post(&self, agent: &ureq::Agent, l: &Live) -> Result<(), String> {
        let body = l.json().to_string();
        let mut req = agent
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header("X-Gcr-Event", &l.name)
            .header("X-Gcr-Delivery", &l.id.to_string());
        if let Some(k) = &self.secret {
            req = req.header("X-Gcr-Signature-256", &signature(k, body.as_bytes()));
        }
        match req.send(body.as_bytes()) {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!("it answered {}", r.status())),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Delivers the live events from now on, for as long as the service runs.
pub(crate) async fn deliver(st: Shared, hook: Webhook) {
    let hook = std::sync::Arc::new(hook);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut after = st.engine(|e| Ok(e.last_event_seq()?)).await.unwrap_or(0);
    loop {
        let Ok((lives, last, full)) = page(&st, after, PAGE, &hook.filter).await else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        for l in lives {
            let mut wait = Duration::from_secs(1);
            loop {
                let (h, a, ev) = (hook.clone(), agent.clone(), l.clone());
                let sent = tokio::task::spawn_blocking(move || h.post(&a, &ev))
                    .await
                    .unwrap_or_else(|e| Err(e.to_string()));
                match sent {
                    Ok(()) => break,
                    Err(e) => {
                        eprintln!(
                            "gcr: webhook {}: event {} ({}) not delivered: {e}; trying again in {}s",
                            hook.url,
                            l.id,
                            l.name,
                            wait.as_secs()
                        );
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_secs(30));
                    }
                }
            }
        }
        after = last;
        if !full {
            tokio::time::sleep(TICK).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(url: &str) -> WebhookOptions {
        WebhookOptions {
            url: url.into(),
            types: vec![],
            secret: None,
        }
    }

    #[test]
    fn urls_are_https_or_loopback_http() {
        for ok in [
            "https://hooks.example/x",
            "http://127.0.0.1:8080/hook",
            "http://localhost/x",
            "http://[::1]:9/x",
        ] {
            assert!(opts(ok).open().is_ok(), "{ok}");
        }
        for bad in [
            "http://10.0.0.5/x",
            "ftp://x/y",
            "https://",
            "http://example.com/x",
        ] {
            let e = opts(bad).open().err().expect(bad).to_string();
            assert!(e.contains("--webhook"), "{e}");
        }
        let mut o = opts("https://h/x");
        o.types = vec!["bogus".into()];
        assert!(o.open().is_err());
    }

    #[test]
    fn signatures_are_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
