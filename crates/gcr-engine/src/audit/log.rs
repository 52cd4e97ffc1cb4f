//! `gcr audit log`: the ledger's entries, filtered. The same rows are `gcr events`: one
//! history, two views (this one with indexes, actors and leaves).

use crate::{Engine, EngineError};
use rusqlite::params;
use serde::Serialize;

/// What `audit log` keeps (Docker's `--filter` keys map onto these).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Entries at or after this time (ns since the epoch).
    pub since_ns: Option<i64>,
    /// Entries before this time.
    pub until_ns: Option<i64>,
    /// Container id, id prefix or name (entries about containers only).
    pub container: Vec<String>,
    /// Action (`container.running`), its kind (`container`) or its state (`running`).
    pub action: Vec<String>,
    /// Subject kind (`container`, `image`, `policy`, …): Docker's `type=`.
    pub kind: Vec<String>,
}

impl AuditFilter {
    /// Adds a Docker `--filter KEY=VALUE` (`container`, `event`, `type`, `image`,
    /// `since`/`until` are flags); unknown keys are an error naming the ones known.
    pub fn add_docker(&mut self, f: &str) -> Result<(), EngineError> {
        let (k, v) = f.split_once('=').ok_or_else(|| {
            EngineError::Usage(format!(
                "filter '{f}' is not KEY=VALUE; e.g. --filter container=web"
            ))
        })?;
        match k {
            "container" => self.container.push(v.to_string()),
            "event" | "action" => self.action.push(v.to_string()),
            "type" => self.kind.push(v.to_string()),
            "image" => {
                self.kind.push("image".into());
                self.container.push(v.to_string());
            }
            _ => {
                return Err(EngineError::Usage(format!(
                    "unknown filter '{k}'; use container, event, type or image"
                )))
            }
        }
        Ok(())
    }

    fn keeps(&self, e: &AuditEntry) -> bool {
        let subject_match = |want: &String| {
            e.subject_id == *want
                || (want.len() >= 4 && e.subject_id.starts_with(want.as_str()))
                || e.subject_name.as_deref() == Some(want.as_str())
        };
        (self.container.is_empty()
            || (e.subject_kind != "policy" && self.container.iter().any(subject_match)))
            && (self.action.is_empty()
                || self.action.iter().any(|a| {
                    e.action == *a
                        || e.subject_kind == *a
                        || e.action.rsplit('.').next() == Some(a.as_str())
                }))
            && (self.kind.is_empty() || self.kind.contains(&e.subject_kind))
    }
}

/// One ledger entry as listed.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub index: u64,
    pub time_ns: i64,
    /// `{"uid":…,"exe":…}` (null once compacted or for entries older than the ledger).
    pub actor: serde_json::Value,
    pub action: String,
    pub subject_kind: String,
    pub subject_id: String,
    pub subject_name: Option<String>,
    pub from: Option<String>,
    pub cause: Option<String>,
    /// The entry's leaf hash, hex.
    pub leaf: String,
    pub compacted: bool,
}

impl Engine {
    /// `gcr audit log`: the entries `filter` keeps, oldest first.
    pub fn audit_log(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, EngineError> {
        let store = self.store()?;
        let mut stmt = store.conn().prepare(
            "SELECT seq, time_ns, actor, kind, object, name, from_state, to_state, cause, leaf, compacted
             FROM events WHERE time_ns >= ?1 AND time_ns < ?2 ORDER BY seq",
        )?;
        let rows = stmt.query_map(
            params![
                filter.since_ns.unwrap_or(i64::MIN),
                filter.until_ns.unwrap_or(i64::MAX)
            ],
            |r| {
                let kind: String = r.get(3)?;
                let to: Option<String> = r.get(7)?;
                let actor: Option<String> = r.get(2)?;
                let leaf: Option<Vec<u8>> = r.get(9)?;
                Ok(AuditEntry {
                    index: (r.get::<_, i64>(0)? - 1) as u64,
                    time_ns: r.get(1)?,
                    actor: actor
                        .and_then(|a| serde_json::from_str(&a).ok())
                        .unwrap_or(serde_json::Value::Null),
                    action: gcr_store::ledger_action(
                        &kind,
                        r.get::<_, Option<String>>(6)?.as_deref(),
                        to.as_deref(),
                        r.get::<_, Option<String>>(8)?.as_deref(),
                    ),
                    subject_kind: kind,
                    subject_id: r.get(4)?,
                    subject_name: r.get(5)?,
                    from: r.get(6)?,
                    cause: r.get(8)?,
                    leaf: leaf.map(hex::encode).unwrap_or_default(),
                    compacted: r.get::<_, i64>(10)? != 0,
                })
            },
        )?;
        let mut out = Vec::new();
        for e in rows {
            let e = e?;
            if filter.keeps(&e) {
                out.push(e);
            }
        }
        Ok(out)
    }
}
