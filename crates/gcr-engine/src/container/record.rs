//! Container rows in the store's `containers` table and lifecycle events in `events`.
//! Every state change goes through [`set_state`] so that it is recorded as an event in
//! the same transaction.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

use super::config::ContainerConfig;
use super::event_rows::event_full;
pub(crate) use super::event_rows::event_with;
use super::event_rows::{attributes, event_at};
pub use super::event_rows::{container_event, event};
use crate::EngineError;
pub use gcr_core::lifecycle::State;

/// Extra run-time facts kept in the `extra` JSON column.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Extra {
    /// The process holding the container (foreground `gcr run` or the supervisor).
    #[serde(default)]
    pub holder_pid: i32,
    /// Start time of the holder (clock ticks since boot), to detect pid reuse.
    #[serde(default)]
    pub holder_start: u64,
    /// Start time (clock ticks since boot) of the container's init, to detect pid reuse.
    #[serde(default)]
    pub pid_start: u64,
    /// Set by `stop`/`kill`, so the restart policy does not bring the container back.
    #[serde(default)]
    pub stopped_by_user: bool,
    #[serde(default)]
    pub cgroup: bool,
    /// The holder is starting the container (claimed by `start` or a foreground `run`):
    /// nobody else may start or remove it until the holder records it running or gives up.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub starting: bool,
    /// Healthcheck status and recent results, when the container has a healthcheck.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<super::health::HealthState>,
}

impl Extra {
    /// A claim on a start by process `pid` (see [`Extra::starting`]).
    pub fn claimed_by(pid: i32) -> Extra {
        Extra {
            holder_pid: pid,
            holder_start: super::procfs::start_time(pid).unwrap_or(0),
            starting: true,
            ..Default::default()
        }
    }

    /// Whether another live process is starting the container.
    pub fn being_started(&self) -> bool {
        self.starting && self.holder_pid != std::process::id() as i32 && self.holder_alive()
    }

    /// Whether the process that held the container is still that same process and alive.
    pub fn holder_alive(&self) -> bool {
        self.holder_pid > 0 && super::procfs::running(self.holder_pid, self.holder_start)
    }
}

/// One container as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub name: String,
    pub image_id: String,
    pub image_ref: String,
    pub created_at: i64,
    pub state: State,
    pub config: Box<ContainerConfig>,
    pub pid: Option<i32>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub exit_code: Option<i32>,
    pub oom_killed: bool,
    pub restart_count: u32,
    pub extra: Extra,
}

const COLUMNS: &str = "id, name, image_id, image_ref, created_at, state, config, pid, \
     started_at, finished_at, exit_code, oom_killed, restart_count, extra";

/// A stored record that does not decode (a damaged database, or a newer gcr's format).
#[derive(Debug, thiserror::Error)]
#[error("the record of container {id} cannot be read ({detail}); run 'gcr doctor'")]
struct Unreadable {
    id: String,
    detail: String,
}

/// The decoding of column `col` of container `id`, or an [`Unreadable`] error.
fn decode<T: serde::de::DeserializeOwned>(id: &str, col: usize, text: &str) -> rusqlite::Result<T> {
    serde_json::from_str(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(
            col,
            rusqlite::types::Type::Text,
            Box::new(Unreadable {
                id: id.to_string(),
                detail: format!("column {}: {e}", if col == 6 { "config" } else { "extra" }),
            }),
        )
    })
}

/// A stored state name, or an [`Unreadable`] error.
fn decode_state(id: &str, s: String) -> rusqlite::Result<State> {
    State::parse(&s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            5,
            rusqlite::types::Type::Text,
            Box::new(Unreadable {
                id: id.to_string(),
                detail: format!("unknown state {s:?}"),
            }),
        )
    })
}

/// A database error, with an unreadable record named as such.
fn read_err(e: rusqlite::Error) -> EngineError {
    if let rusqlite::Error::FromSqlConversionFailure(_, _, inner) = &e {
        if let Some(u) = inner.downcast_ref::<Unreadable>() {
            return EngineError::Internal(u.to_string());
        }
    }
    EngineError::Db(e)
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Record> {
    let id: String = row.get(0)?;
    let id_for_state = id.clone();
    let config: String = row.get(6)?;
    let extra: Option<String> = row.get(13)?;
    let config = decode(&id, 6, &config)?;
    let extra = match extra {
        Some(e) => decode(&id, 13, &e)?,
        None => Extra::default(),
    };
    Ok(Record {
        id,
        name: row.get(1)?,
        image_id: row.get(2)?,
        image_ref: row.get(3)?,
        created_at: row.get(4)?,
        state: decode_state(&id_for_state, row.get::<_, String>(5)?)?,
        config,
        pid: row.get(7)?,
        started_at: row.get(8)?,
        finished_at: row.get(9)?,
        exit_code: row.get(10)?,
        oom_killed: row.get::<_, i64>(11)? != 0,
        restart_count: row.get::<_, i64>(12)? as u32,
        extra,
    })
}

/// Now in nanoseconds since the epoch.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Now in seconds since the epoch.
pub fn now_secs() -> i64 {
    now_ns() / 1_000_000_000
}

/// Inserts a new container and its `create` event (and `start`, for a row stored running).
fn insert_unit(conn: &Connection, r: &Record) -> Result<(), EngineError> {
    let config = serde_json::to_string(&r.config)?;
    let extra = serde_json::to_string(&r.extra)?;
    let res = conn
        .prepare_cached(&format!(
            "INSERT INTO containers ({COLUMNS}) \
             VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)"
        ))?
        .execute(params![
            r.id,
            r.name,
            r.image_id,
            r.image_ref,
            r.created_at,
            r.state.as_str(),
            config,
            r.pid,
            r.started_at,
            r.finished_at,
            r.exit_code,
            r.oom_killed as i64,
            r.restart_count as i64,
            extra
        ]);
    match res {
        Ok(_) => {}
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            return Err(EngineError::Conflict(format!(
                "the container name \"{}\" is already in use; remove that container or choose another --name",
                r.name
            )));
        }
        Err(e) => return Err(e.into()),
    }
    // An allow of the policy gate is recorded in the create event's cause.
    let cause = match &r.config.policy {
        Some(note) => format!("create ({note})"),
        None => "create".to_string(),
    };
    let attrs = attributes(r);
    let event = |states, cause: &str| event_at(conn, now_ns(), (r, &r.name, &attrs), states, cause);
    event((None, Some("created")), &cause)?;
    if r.state != State::Created {
        // Stored already started (a foreground run records its start with the row).
        event((Some("created"), Some(r.state.as_str())), "start")?;
        if r.state == State::Running {
            super::grant_events::materialized(conn, r)?;
        }
    }
    Ok(())
}

/// Loads a container by full id, unique id prefix or name.
/// Looks a container up as Docker does: full id, then exact name, then unique id prefix.
pub fn find(conn: &Connection, key: &str) -> Result<Record, EngineError> {
    let one = |col: &str| -> Result<Option<Record>, EngineError> {
        conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM containers WHERE {col} = ?1"
        ))?
        .query_row([key], from_row)
        .optional()
        .map_err(read_err)
    };
    let full_id = key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit());
    if full_id {
        if let Some(r) = one("id")? {
            return Ok(r);
        }
    }
    if let Some(r) = one("name")? {
        return Ok(r);
    }
    if !key.is_empty() && key.len() <= 64 && key.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM containers WHERE id >= ?1 AND id < ?2 LIMIT 2"
        ))?;
        let hi = format!("{key}g");
        let rows: Vec<Record> = stmt
            .query_map(params![key, hi], from_row)?
            .collect::<Result<_, _>>()
            .map_err(read_err)?;
        match rows.len() {
            1 => return Ok(rows.into_iter().next().expect("one row")),
            2 => {
                return Err(EngineError::Usage(format!(
                    "container id prefix '{key}' is ambiguous; give more characters"
                )))
            }
            _ => {}
        }
    }
    Err(EngineError::NotFound(format!(
        "no such container: {key}; see 'gcr ps -a'"
    )))
}

/// What a listing of every container's figures (`/metrics`) needs of its row: the row
/// without its stored configuration, which is most of what decoding a row costs.
#[derive(Debug, Clone)]
pub struct Head {
    pub id: String,
    pub name: String,
    pub image_ref: String,
    pub state: State,
    pub pid: Option<i32>,
    pub restart_count: u32,
    pub extra: Extra,
}

/// Every container's [`Head`], newest first.
pub fn heads(conn: &Connection) -> Result<Vec<Head>, EngineError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, name, image_ref, state, pid, restart_count, extra FROM containers \
         ORDER BY created_at DESC, rowid DESC",
    )?;
    let rows = stmt
        .query_map([], |row| {
            let id: String = row.get(0)?;
            let state = decode_state(&id, row.get(3)?)?;
            let extra = match row.get::<_, Option<String>>(6)? {
                Some(e) => decode(&id, 13, &e)?,
                None => Extra::default(),
            };
            Ok(Head {
                name: row.get(1)?,
                image_ref: row.get(2)?,
                state,
                pid: row.get(4)?,
                restart_count: row.get::<_, i64>(5)? as u32,
                extra,
                id,
            })
        })?
        .collect::<Result<_, _>>()
        .map_err(read_err)?;
    Ok(rows)
}

/// All containers, newest first.
pub fn list(conn: &Connection) -> Result<Vec<Record>, EngineError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM containers ORDER BY created_at DESC, rowid DESC"
    ))?;
    let rows = stmt
        .query_map([], from_row)?
        .collect::<Result<_, _>>()
        .map_err(read_err)?;
    Ok(rows)
}

/// Fields that change over a container's life.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Update {
    pub pid: Option<Option<i32>>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub exit_code: Option<i32>,
    pub oom_killed: Option<bool>,
    pub restart_count: Option<u32>,
    pub extra: Option<Extra>,
}

/// Moves a container from `from` (its state in `r` when None) to `to`, recording an event
/// with `cause`, and applies `u`: the one place where a container's state changes. A move
/// the lifecycle state machine does not allow is refused, naming the current state; the
/// write is a compare-and-set on the row's state, so two processes cannot both make the
/// same transition (the loser is told the state changed).
fn set_state_unit(
    conn: &Connection,
    r: &Record,
    from: Option<State>,
    to: State,
    cause: &str,
    u: &Update,
) -> Result<(), EngineError> {
    let from = from.unwrap_or(r.state);
    if !gcr_core::lifecycle::transition_allowed(from, to) {
        return Err(EngineError::Conflict(format!(
            "container {} cannot go from {from} to {to}",
            r.name
        )));
    }
    let mut sql = String::from("UPDATE containers SET state = ?1");
    let mut vals: Vec<rusqlite::types::Value> = vec![to.as_str().to_string().into()];
    let mut push = |col: &str, v: rusqlite::types::Value| {
        vals.push(v);
        sql.push_str(&format!(", {col} = ?{}", vals.len()));
    };
    if let Some(pid) = u.pid {
        push("pid", pid.map(i64::from).into());
    }
    if let Some(t) = u.started_at {
        push("started_at", t.into());
    }
    if let Some(t) = u.finished_at {
        push("finished_at", t.into());
    }
    if let Some(c) = u.exit_code {
        push("exit_code", i64::from(c).into());
    }
    if let Some(o) = u.oom_killed {
        push("oom_killed", (o as i64).into());
    }
    if let Some(n) = u.restart_count {
        push("restart_count", i64::from(n).into());
    }
    if let Some(e) = &u.extra {
        push("extra", serde_json::to_string(e)?.into());
    }
    vals.push(r.id.clone().into());
    sql.push_str(&format!(" WHERE id = ?{}", vals.len()));
    vals.push(from.as_str().to_string().into());
    sql.push_str(&format!(" AND state = ?{}", vals.len()));
    let n = conn
        .prepare_cached(&sql)?
        .execute(rusqlite::params_from_iter(vals))?;
    if n == 0 {
        return Err(EngineError::Conflict(format!(
            "container {} changed state meanwhile; try again",
            r.name
        )));
    }
    let exit_code = if to == State::Exited {
        u.exit_code
    } else {
        None
    };
    event_full(
        conn,
        now_ns(),
        ("container", &r.id, &r.name),
        (Some(from.as_str()), Some(to.as_str())),
        cause,
        exit_code,
        Some(&attributes(r)),
    )?;
    if to == State::Running && !matches!(from, State::Running | State::Paused) {
        super::grant_events::materialized(conn, r)?;
    }
    Ok(())
}

/// Updates only the `extra` column (no state change, no event).
pub fn update_extra(conn: &Connection, r: &Record, u: &Update) -> Result<(), EngineError> {
    if let Some(e) = &u.extra {
        conn.prepare_cached("UPDATE containers SET extra = ?1 WHERE id = ?2")?
            .execute(params![serde_json::to_string(e)?, r.id])?;
    }
    Ok(())
}

/// Deletes the row of a container that just exited (`--rm`) with `code`, recording its
/// exit (`cause`: die or oom) and its removal, in two statements.
fn delete_exited_unit(
    conn: &Connection,
    r: &Record,
    cause: &str,
    code: i32,
) -> Result<(), EngineError> {
    let from: Option<String> = conn
        .prepare_cached("DELETE FROM containers WHERE id = ?1 RETURNING state")?
        .query_row([&r.id], |row| row.get(0))
        .optional()?;
    let Some(from) = from else {
        return Err(EngineError::NotFound(format!(
            "container {} is gone; it was removed meanwhile",
            r.name
        )));
    };
    let attrs = attributes(r);
    let mut now = now_ns();
    let from = if from == State::Created.as_str() {
        // It ran (only a launched process exits) but its start was lost on the way (its
        // launcher's message to the housekeeper): recorded now, so that the ledger has it.
        let states = (Some(from.as_str()), Some("running"));
        event_at(conn, now, (r, &r.name, &attrs), states, "start")?;
        super::grant_events::materialized(conn, r)?;
        now += 1;
        State::Running.as_str().to_string()
    } else {
        from
    };
    event_full(
        conn,
        now,
        ("container", &r.id, &r.name),
        (Some(&from), Some("exited")),
        cause,
        Some(code),
        Some(&attrs),
    )?;
    event_at(
        conn,
        now + 1,
        (r, &r.name, &attrs),
        (Some("exited"), None),
        "rm",
    )
}

/// Deletes a container row and records the `destroy` event.
/// Fails with NotFound when the row is gone already (removed by someone else meanwhile).
fn delete_unit(conn: &Connection, r: &Record, cause: &str) -> Result<(), EngineError> {
    let n = conn
        .prepare_cached("DELETE FROM containers WHERE id = ?1")?
        .execute([&r.id])?;
    if n == 0 {
        return Err(removed_meanwhile(&r.name));
    }
    container_event(conn, r, &r.name, Some(r.state.as_str()), None, cause)
}

/// The error of a change to container `name` that another process removed meanwhile.
pub(crate) fn removed_meanwhile(name: &str) -> EngineError {
    EngineError::NotFound(format!(
        "no such container: {name}; it was removed meanwhile"
    ))
}

/// Renames a container with its event, as one unit; Conflict when the name is taken.
pub fn rename(conn: &Connection, r: &Record, new: &str) -> Result<(), EngineError> {
    atomically(conn, || {
        if name_taken(conn, new)? {
            return Err(EngineError::Conflict(format!(
                "the container name {new} is already in use; choose another name or remove that container"
            )));
        }
        let n = conn
            .prepare_cached("UPDATE containers SET name = ?2 WHERE id = ?1")?
            .execute(params![r.id, new])?;
        if n == 0 {
            return Err(removed_meanwhile(&r.name));
        }
        let state = Some(r.state.as_str());
        let cause = format!("rename from {}", r.name);
        container_event(conn, r, new, state, state, &cause)
    })
}

/// Stores a container's changed configuration (`gcr update`) with its event, as one unit.
pub fn set_config(
    conn: &Connection,
    r: &Record,
    cfg: &ContainerConfig,
    cause: &str,
) -> Result<(), EngineError> {
    atomically(conn, || {
        let n = conn
            .prepare_cached("UPDATE containers SET config = ?2 WHERE id = ?1")?
            .execute(params![r.id, serde_json::to_string(cfg)?])?;
        if n == 0 {
            return Err(removed_meanwhile(&r.name));
        }
        let state = Some(r.state.as_str());
        container_event(conn, r, &r.name, state, state, cause)
    })
}

/// Whether a name is taken.
pub fn name_taken(conn: &Connection, name: &str) -> Result<bool, EngineError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM containers WHERE name = ?1")?
        .query_row([name], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Runs `f` as one unit: the change and its events are all written or none. Inside the
/// caller's transaction (the hot path's writes) that transaction is the unit; otherwise
/// `f` gets one of its own (IMMEDIATE: it writes).
pub(crate) fn atomically<T>(
    conn: &Connection,
    f: impl FnOnce() -> Result<T, EngineError>,
) -> Result<T, EngineError> {
    if !conn.is_autocommit() {
        return f();
    }
    // Rolled back when dropped uncommitted (`f` failed).
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    let v = f()?;
    tx.commit()?;
    Ok(v)
}

/// Inserts a new container and its `create` event (and `start`, for a row stored running),
/// as one unit.
pub fn insert(conn: &Connection, r: &Record) -> Result<(), EngineError> {
    atomically(conn, || insert_unit(conn, r))
}

/// Moves a container to `to` with its event, as one unit (see [`set_state_unit`]).
pub fn set_state(
    conn: &Connection,
    r: &Record,
    from: Option<State>,
    to: State,
    cause: &str,
    u: &Update,
) -> Result<(), EngineError> {
    atomically(conn, || set_state_unit(conn, r, from, to, cause, u))
}

/// Deletes the row of a container that just exited with `code`, with its two events, as
/// one unit.
pub fn delete_exited(
    conn: &Connection,
    r: &Record,
    cause: &str,
    code: i32,
) -> Result<(), EngineError> {
    atomically(conn, || delete_exited_unit(conn, r, cause, code))
}

/// Deletes a container row with its event, as one unit; NotFound when it is gone already.
pub fn delete(conn: &Connection, r: &Record, cause: &str) -> Result<(), EngineError> {
    atomically(conn, || delete_unit(conn, r, cause))
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
