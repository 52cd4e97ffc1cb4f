//! The `volumes` table (made by the store's schema, version 4) and volume directories.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};

use crate::container::record;
use crate::EngineError;

/// One volume row.
#[derive(Debug, Clone)]
pub struct VolRow {
    pub name: String,
    pub created: i64,
    pub anonymous: bool,
    /// `--label`s (schema version 11).
    pub labels: BTreeMap<String, String>,
}

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<VolRow> {
    Ok(VolRow {
        name: r.get(0)?,
        created: r.get(1)?,
        anonymous: r.get::<_, i64>(2)? != 0,
        labels: serde_json::from_str(&r.get::<_, String>(3)?).unwrap_or_default(),
    })
}

pub fn find(conn: &Connection, name: &str) -> Result<Option<VolRow>, EngineError> {
    Ok(conn
        .query_row(
            "SELECT name, created, anonymous, labels FROM volumes WHERE name = ?1",
            [name],
            from_row,
        )
        .optional()?)
}

pub fn list(conn: &Connection) -> Result<Vec<VolRow>, EngineError> {
    let mut st =
        conn.prepare("SELECT name, created, anonymous, labels FROM volumes ORDER BY name")?;
    let rows = st.query_map([], from_row)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Inserts a volume unless present, with its `create` event; returns whether it was new.
pub fn insert(
    conn: &Connection,
    name: &str,
    created: i64,
    anonymous: bool,
) -> Result<bool, EngineError> {
    record::atomically(conn, || {
        let n = conn.execute(
            "INSERT OR IGNORE INTO volumes (name, created, anonymous) VALUES (?1, ?2, ?3)",
            params![name, created, anonymous as i64],
        )?;
        if n > 0 {
            record::event_with(
                conn,
                ("volume", name, name),
                (None, Some("created")),
                "create",
                &serde_json::json!({ "driver": "local" }),
            )?;
        }
        Ok(n > 0)
    })
}

/// Sets a volume's labels.
pub fn set_labels(
    conn: &Connection,
    name: &str,
    labels: &BTreeMap<String, String>,
) -> Result<(), EngineError> {
    let json = serde_json::to_string(labels).unwrap_or_else(|_| "{}".into());
    conn.execute(
        "UPDATE volumes SET labels = ?2 WHERE name = ?1",
        params![name, json],
    )?;
    Ok(())
}

/// Deletes a volume's row with its `destroy` event.
pub fn delete(conn: &Connection, name: &str) -> Result<(), EngineError> {
    record::atomically(conn, || {
        if conn.execute("DELETE FROM volumes WHERE name = ?1", [name])? > 0 {
            record::event_with(
                conn,
                ("volume", name, name),
                (Some("created"), None),
                "destroy",
                &serde_json::json!({ "driver": "local" }),
            )?;
        }
        Ok(())
    })
}
