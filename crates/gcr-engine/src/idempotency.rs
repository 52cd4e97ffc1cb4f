//! Idempotency keys of the API service (`Idempotency-Key` on a POST): the first answer of
//! each key, kept in the store's `api_requests` table (schema v10) until it expires, so
//! that a repeated request, even after a service restart, gets that answer instead of
//! acting again.
//!
//! A key is claimed (a row with no answer yet, owned by this process) in one transaction
//! before the request acts, and answered when it is done; a request that failed without
//! acting releases its claim. A claim whose owner process is gone (a service killed
//! mid-request) is taken over by the next request with that key.

use rusqlite::{params, OptionalExtension};

use crate::container::procfs;
use crate::container::record::now_secs;
use crate::{Engine, EngineError};

/// A recorded answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// What a claim of a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is new (or expired, or its owner died): this request acts and answers.
    New,
    /// The first answer given with this key, for the same request.
    Replay(Answer),
    /// The key was used for another request (the digest it was used with).
    Conflict(String),
    /// A request with this key and the same digest is still running.
    InFlight,
}

/// This process as an owner: `pid:start-time`.
fn me() -> String {
    let pid = std::process::id() as i32;
    format!("{pid}:{}", procfs::start_time(pid).unwrap_or(0))
}

/// Whether the owner `pid:start` is still that running process.
fn owner_alive(owner: &str) -> bool {
    let Some((pid, start)) = owner.split_once(':') else {
        return false;
    };
    match (pid.parse::<i32>(), start.parse::<u64>()) {
        (Ok(pid), Ok(start)) => pid > 0 && procfs::running(pid, start),
        _ => false,
    }
}

impl Engine {
    /// Claims `key` for a request whose digest is `digest`, kept `ttl_secs` (expired keys
    /// are swept first).
    pub fn idempotency_claim(
        &self,
        key: &str,
        digest: &str,
        ttl_secs: i64,
    ) -> Result<Claim, EngineError> {
        let now = now_secs();
        self.store()?.transaction(|tx| -> Result<Claim, EngineError> {
            tx.execute("DELETE FROM api_requests WHERE expires_at <= ?1", [now])?;
            type Row = (String, Option<i64>, Option<String>, Option<Vec<u8>>, String);
            let row: Option<Row> = tx
                .query_row(
                    "SELECT request_digest, status, content_type, body, owner \
                     FROM api_requests WHERE idempotency_key = ?1",
                    [key],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .optional()?;
            match row {
                None => {
                    tx.execute(
                        "INSERT INTO api_requests(idempotency_key, request_digest, owner, created_at, expires_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![key, digest, me(), now, now.saturating_add(ttl_secs)],
                    )?;
                    Ok(Claim::New)
                }
                Some((d, _, _, _, _)) if d != digest => Ok(Claim::Conflict(d)),
                Some((_, Some(status), ctype, body, _)) => Ok(Claim::Replay(Answer {
                    status: u16::try_from(status).unwrap_or(500),
                    content_type: ctype.unwrap_or_default(),
                    body: body.unwrap_or_default(),
                })),
                Some((_, None, _, _, owner)) if owner_alive(&owner) => Ok(Claim::InFlight),
                Some(_) => {
                    // Its owner died mid-request: this request takes the claim over.
                    tx.execute(
                        "UPDATE api_requests SET owner = ?2, created_at = ?3, expires_at = ?4 \
                         WHERE idempotency_key = ?1",
                        params![key, me(), now, now.saturating_add(ttl_secs)],
                    )?;
                    Ok(Claim::New)
                }
            }
        })
    }

    /// Records the answer of a claimed `key`, or releases the claim (`None`: the request
    /// failed without acting, a retry with the key may act).
    pub fn idempotency_finish(
        &self,
        key: &str,
        answer: Option<&Answer>,
    ) -> Result<(), EngineError> {
        let conn = self.store()?.conn();
        match answer {
            Some(a) => conn.execute(
                "UPDATE api_requests SET status = ?2, content_type = ?3, body = ?4 \
                 WHERE idempotency_key = ?1 AND status IS NULL",
                params![key, i64::from(a.status), a.content_type, a.body],
            )?,
            None => conn.execute(
                "DELETE FROM api_requests WHERE idempotency_key = ?1 AND status IS NULL",
                [key],
            )?,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_replay_conflict_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let e = Engine::open(&dir.path().join("root"), &dir.path().join("run")).unwrap();
        assert_eq!(e.idempotency_claim("k", "d1", 60).unwrap(), Claim::New);
        assert_eq!(e.idempotency_claim("k", "d1", 60).unwrap(), Claim::InFlight);
        assert_eq!(
            e.idempotency_claim("k", "d2", 60).unwrap(),
            Claim::Conflict("d1".into())
        );
        let a = Answer {
            status: 201,
            content_type: "application/json".into(),
            body: b"{}".to_vec(),
        };
        e.idempotency_finish("k", Some(&a)).unwrap();
        assert_eq!(
            e.idempotency_claim("k", "d1", 60).unwrap(),
            Claim::Replay(a)
        );
        // Released: the next claim acts.
        assert_eq!(e.idempotency_claim("r", "d", 60).unwrap(), Claim::New);
        e.idempotency_finish("r", None).unwrap();
        assert_eq!(e.idempotency_claim("r", "d", 60).unwrap(), Claim::New);
        // Expired: a new claim.
        assert_eq!(e.idempotency_claim("x", "d", 0).unwrap(), Claim::New);
        assert_eq!(e.idempotency_claim("x", "other", 60).unwrap(), Claim::New);
        // A dead owner's claim is taken over.
        e.store()
            .unwrap()
            .conn()
            .execute(
                "UPDATE api_requests SET owner = '999999999:1' WHERE idempotency_key = 'x'",
                [],
            )
            .unwrap();
        assert_eq!(e.idempotency_claim("x", "other", 60).unwrap(), Claim::New);
        assert!(owner_alive(&me()));
    }
}
