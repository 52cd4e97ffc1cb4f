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
    /// The exit code of an exit transition (`to` = `exited`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// A container event's image and labels at the time (JSON; see
    /// [`crate::docker_events::Actor`]).
    #[serde(skip)]
    pub attributes: Option<String>,
}

const COLUMNS: &str =
    "seq, time_ns, kind, object, name, from_state, to_state, cause, exit_code, attributes";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Event> {
    Ok(Event {
        seq: r.get(0)?,
        time_ns: r.get(1)?,
        kind: r.get(2)?,
        object: r.get(3)?,
        name: r.get(4)?,
        from: r.get(5)?,
        to: r.get(6)?,
        cause: r.get(7)?,
        exit_code: r.get(8)?,
        attributes: r.get(9)?,
    })
}

impl Engine {
    /// Events at or after `since_ns`, oldest first.
    pub fn events(&self, since_ns: i64) -> Result<Vec<Event>, EngineError> {
        self.events_after(since_ns, i64::MIN)
    }

    /// [`Engine::events`] after the one numbered `after_seq` (a follower's next batch).
    pub fn events_after(&self, since_ns: i64, after_seq: i64) -> Result<Vec<Event>, EngineError> {
        let mut stmt = self.store()?.conn().prepare_cached(&format!(
            "SELECT {COLUMNS} FROM events WHERE time_ns >= ?1 AND seq > ?2 ORDER BY seq"
        ))?;
        let rows = stmt
            .query_map(params![since_ns, after_seq], from_row)?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// At most `limit` events after the one numbered `after_seq`, oldest first, of the
    /// given kinds (all when empty): a page of a live feed (`GET /v1/events`).
    pub fn events_page(
        &self,
        after_seq: i64,
        limit: usize,
        kinds: &[&str],
    ) -> Result<Vec<Event>, EngineError> {
        let conn = self.store()?.conn();
        let lim = limit.min(i64::MAX as usize) as i64;
        let rows = if kinds.is_empty() {
            conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2"
            ))?
            .query_map(params![after_seq, lim], from_row)?
            .collect::<Result<_, _>>()?
        } else {
            let marks: Vec<String> = (0..kinds.len()).map(|i| format!("?{}", i + 3)).collect();
            let marks = marks.join(",");
            let mut vals: Vec<rusqlite::types::Value> = vec![after_seq.into(), lim.into()];
            vals.extend(
                kinds
                    .iter()
                    .map(|k| rusqlite::types::Value::from(k.to_string())),
            );
            conn.prepare(&format!(
                "SELECT {COLUMNS} FROM events WHERE seq > ?1 AND kind IN ({marks}) ORDER BY seq LIMIT ?2"
            ))?
            .query_map(rusqlite::params_from_iter(vals), from_row)?
            .collect::<Result<_, _>>()?
        };
        Ok(rows)
    }

    /// The number of the newest event (0 when there is none).
    pub fn last_event_seq(&self) -> Result<i64, EngineError> {
        Ok(self
            .store()?
            .conn()
            .prepare_cached("SELECT coalesce(max(seq), 0) FROM events")?
            .query_row([], |r| r.get(0))?)
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
