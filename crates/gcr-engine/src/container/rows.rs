//! The two store writes of a foreground `gcr run`, shared by the run itself and the
//! housekeeper that can do them for it on a warm connection (see [`crate::housekeeper`]):
//! storing the new container's row (after checking the image it was started from) and
//! recording its exit.

use gcr_store::Store;
use serde::{Deserialize, Serialize};

use super::record::{self, now_secs, Record, State, Update};
use crate::{names, EngineError};

/// How storing a new container's row went.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Stored {
    /// Stored (running, and under another name if the generated one was taken).
    Row(Box<Record>),
    /// The image the start came from (the run dir's image cache) is no longer what its
    /// name resolves to; nothing was stored.
    Stale,
}

/// What a foreground run asks to be stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct NewRow {
    pub row: Record,
    /// Check first that the row's image reference still resolves to its image id, with
    /// these snapshot dirs (a start from the image cache).
    pub check_image: bool,
    /// The name was generated: replace it when another container has it.
    pub generated_name: bool,
    /// An earlier attempt may have stored it already (its answer was lost).
    pub maybe_stored: bool,
}

/// Stores `req.row` with its `create` and `start` events, in one transaction.
pub(crate) fn store_new(store: &Store, req: NewRow) -> Result<Stored, EngineError> {
    let NewRow {
        mut row,
        check_image,
        generated_name,
        maybe_stored,
    } = req;
    if maybe_stored {
        if let Ok(r) = record::find(store.conn(), &row.id) {
            return Ok(Stored::Row(Box::new(r)));
        }
    }
    if check_image && !same_image(store, &row)? {
        return Ok(Stored::Stale);
    }
    for _ in 0..8 {
        match store.transaction(|tx| record::insert(tx, &row)) {
            Ok(()) => return Ok(Stored::Row(Box::new(row))),
            Err(EngineError::Conflict(m)) => {
                if maybe_stored {
                    // Stored by the earlier attempt after all (its id is taken, by itself).
                    if let Ok(r) = record::find(store.conn(), &row.id) {
                        return Ok(Stored::Row(Box::new(r)));
                    }
                }
                if !generated_name {
                    return Err(EngineError::Conflict(m));
                }
                row.name = names::random_name();
            }
            Err(e) => return Err(e),
        }
    }
    Err(EngineError::Conflict(
        "no free container name was found; pass --name".into(),
    ))
}

/// A stored `created` row whose process now runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Started {
    pub row: Record,
    pub update: Update,
}

/// Records that a row stored `created` runs (the `start` event).
pub(crate) fn store_started(store: &Store, s: &Started) -> Result<(), EngineError> {
    store.transaction(|tx| {
        record::set_state(
            tx,
            &s.row,
            Some(State::Created),
            State::Running,
            "start",
            &s.update,
        )
    })
}

/// Whether the row's image reference still names its image, with the same snapshot
/// directories. A name that no longer resolves is a change; any other failure (a busy
/// database) is an error, not a reason to start over.
fn same_image(store: &Store, row: &Record) -> Result<bool, EngineError> {
    use gcr_store::StoreError;
    let gone = |e: &StoreError| {
        matches!(
            e,
            StoreError::ImageNotFound(_) | StoreError::TagNotFound(_) | StoreError::AmbiguousId(_)
        )
    };
    let image = match store.resolve_image(&row.image_ref) {
        Ok(i) => i,
        Err(e) if gone(&e) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    if image.id != row.image_id {
        return Ok(false);
    }
    let lowers = match store.prepare_rootfs(&row.image_id) {
        Ok(l) => l,
        Err(e) if gone(&e) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    Ok(lowers.iter().map(|p| p.as_os_str()).eq(row
        .config
        .resolved
        .lowers
        .iter()
        .map(std::ffi::OsStr::new)))
}

/// The exit of a foreground container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Exit {
    pub row: Record,
    pub code: i32,
    pub oom: bool,
    /// An earlier attempt may have recorded it already (its answer was lost).
    pub maybe_recorded: bool,
}

/// Records an exit: a `--rm` container's row goes (both transitions recorded), another's
/// becomes `exited`.
pub(crate) fn store_exit(store: &Store, e: &Exit) -> Result<(), EngineError> {
    let r = &e.row;
    let cause = if e.oom { "oom" } else { "die" };
    let res = store.transaction(|tx| -> Result<(), EngineError> {
        if r.config.opts.rm {
            return record::delete_exited(tx, r, cause, e.code);
        }
        let u = Update {
            pid: Some(None),
            finished_at: Some(now_secs()),
            exit_code: Some(e.code),
            oom_killed: Some(e.oom),
            ..Default::default()
        };
        let mut cur = record::find(tx, &r.id)?;
        if cur.state == State::Created {
            // It ran, but its start was lost on the way (see `record::delete_exited`).
            record::set_state(
                tx,
                &cur,
                Some(State::Created),
                State::Running,
                "start",
                &Update::default(),
            )?;
            cur.state = State::Running;
        }
        if !cur.state.is_alive() {
            // Recorded already (by an earlier attempt, or by the process that reaped it):
            // the first record of an exit stands, it is never overwritten.
            if e.maybe_recorded {
                return Ok(());
            }
            return Err(EngineError::Conflict(format!(
                "container {} is {} already; its exit was recorded",
                cur.name, cur.state
            )));
        }
        record::set_state(tx, &cur, Some(cur.state), State::Exited, cause, &u)
    });
    match res {
        // A lost answer: the first attempt removed it.
        Err(EngineError::NotFound(_)) if e.maybe_recorded && r.config.opts.rm => Ok(()),
        other => other,
    }
}

/// An engine error as it crosses the housekeeper's socket.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum WireError {
    NotFound(String),
    Conflict(String),
    Other(String),
}

impl From<EngineError> for WireError {
    fn from(e: EngineError) -> WireError {
        match e {
            EngineError::NotFound(m) => WireError::NotFound(m),
            EngineError::Conflict(m) => WireError::Conflict(m),
            other => WireError::Other(other.to_string()),
        }
    }
}

/// A housekeeper's answer, settled: `Ok(Some(v))` when it did the work, `Err` for a refusal
/// to report as is (a name in use, a container gone), `Ok(None)` when the caller does the
/// work itself; `lost` is then set if the answer was lost (the housekeeper may have done it).
pub(crate) fn settle<T>(
    answer: Option<Result<T, WireError>>,
    lost: &mut bool,
) -> Result<Option<T>, EngineError> {
    match answer {
        Some(Ok(v)) => Ok(Some(v)),
        Some(Err(WireError::NotFound(m))) => Err(EngineError::NotFound(m)),
        Some(Err(WireError::Conflict(m))) => Err(EngineError::Conflict(m)),
        Some(Err(WireError::Other(_))) => Ok(None),
        None => {
            *lost = true;
            Ok(None)
        }
    }
}
