//! `gcr events`: the append-only log of lifecycle transitions and image operations kept in
//! the store's `events` table.

use rusqlite::params;
use serde::Serialize;

use crate::{Engine, EngineError};

/// One recorded event.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub seq: i64,
    pub time_ns: i64,
    pub kind: String,
    pub object: String,
    pub name: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub cause: Option<String>,
}

impl Engine {
    /// Events at or after `since_ns`, oldest first.
    pub fn events(&self, since_ns: i64) -> Result<Vec<Event>, EngineError> {
        self.events_after(since_ns, i64::MIN)
    }

    /// [`Engine::events`] after the one numbered `after_seq` (a follower's next batch).
    pub fn events_after(&self, since_ns: i64, after_seq: i64) -> Result<Vec<Event>, EngineError> {
        let mut stmt = self.store()?.conn().prepare_cached(
            "SELECT seq, time_ns, kind, object, name, from_state, to_state, cause \
             FROM events WHERE time_ns >= ?1 AND seq > ?2 ORDER BY seq",
        )?;
        let rows = stmt
            .query_map(params![since_ns, after_seq], |r| {
                Ok(Event {
                    seq: r.get(0)?,
                    time_ns: r.get(1)?,
                    kind: r.get(2)?,
                    object: r.get(3)?,
                    name: r.get(4)?,
                    from: r.get(5)?,
                    to: r.get(6)?,
                    cause: r.get(7)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }
}

/// Parses `--since`: unix seconds, RFC 3339 (`2026-01-02T03:04:05Z`) or a duration ago
/// (`10m`, `1h`).
pub fn parse_since(s: &str, now_ns: i64) -> Option<i64> {
    if let Ok(secs) = s.parse::<i64>() {
        return Some(secs * 1_000_000_000);
    }
    if let Ok(d) = gcr_core::units::parse_duration(s) {
        return Some(now_ns - d.as_nanos() as i64);
    }
    gcr_core::time::Timestamp::parse(s)
        .ok()
        .map(|t| t.unix * 1_000_000_000)
}
