//! Writing the `events` table: one row per change, written by the change's own unit (see
//! [`super::record`]), with the details that sit beside its ledger leaf — an exit's code
//! and the subject's Docker attributes (a container's image and labels as they were, a
//! volume's driver, a network's type).

use rusqlite::{params, Connection};

use super::record::{now_ns, Record};
use crate::EngineError;

/// Appends one event row.
pub fn event(
    conn: &Connection,
    kind: &str,
    object: &str,
    name: &str,
    from: Option<&str>,
    to: Option<&str>,
    cause: &str,
) -> Result<(), EngineError> {
    event_full(
        conn,
        now_ns(),
        (kind, object, name),
        (from, to),
        cause,
        None,
        None,
    )
}

/// Appends one event of a volume or network, with Docker's attributes for it (a flat
/// JSON object: a volume's `driver`, a network's `type`).
pub(crate) fn event_with(
    conn: &Connection,
    (kind, object, name): (&str, &str, &str),
    (from, to): (Option<&str>, Option<&str>),
    cause: &str,
    attributes: &serde_json::Value,
) -> Result<(), EngineError> {
    let attrs = attributes.to_string();
    let subject = (kind, object, name);
    event_full(
        conn,
        now_ns(),
        subject,
        (from, to),
        cause,
        None,
        Some(&attrs),
    )
}

/// Appends one event of container `r` (under `name`), with its attributes (see
/// [`attributes`]).
pub fn container_event(
    conn: &Connection,
    r: &Record,
    name: &str,
    from: Option<&str>,
    to: Option<&str>,
    cause: &str,
) -> Result<(), EngineError> {
    let attrs = attributes(r);
    event_at(conn, now_ns(), (r, name, &attrs), (from, to), cause)
}

/// A container event at `time_ns` (several in one unit keep their order in time too),
/// under `name`, with its [`attributes`] made once for the unit.
pub(super) fn event_at(
    conn: &Connection,
    time_ns: i64,
    (r, name, attrs): (&Record, &str, &str),
    states: (Option<&str>, Option<&str>),
    cause: &str,
) -> Result<(), EngineError> {
    let subject = ("container", r.id.as_str(), name);
    event_full(conn, time_ns, subject, states, cause, None, Some(attrs))
}

/// What Docker's events show of a container besides its name, as it was at the event:
/// its image (reference and id) and labels, kept with the event (a detail of the row,
/// outside its ledger leaf) so that a removed container's events still have them. Read
/// back as [`crate::docker_events::Actor`].
pub(super) fn attributes(r: &Record) -> String {
    #[derive(serde::Serialize)]
    struct Attributes<'a> {
        image: &'a str,
        image_id: &'a str,
        labels: &'a [(String, String)],
    }
    serde_json::to_string(&Attributes {
        image: &r.image_ref,
        image_id: &r.image_id,
        labels: &r.config.resolved.labels,
    })
    .unwrap_or_default()
}

/// One event row; `exit_code` for an exit transition, `attrs` the subject's Docker
/// attributes (a container's: see [`attributes`]).
pub(super) fn event_full(
    conn: &Connection,
    time_ns: i64,
    (kind, object, name): (&str, &str, &str),
    (from, to): (Option<&str>, Option<&str>),
    cause: &str,
    exit_code: Option<i32>,
    attrs: Option<&str>,
) -> Result<(), EngineError> {
    conn.prepare_cached(
        "INSERT INTO events (time_ns, kind, object, name, from_state, to_state, cause, exit_code, \
         attributes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        time_ns, kind, object, name, from, to, cause, exit_code, attrs
    ])?;
    Ok(())
}
