//! The database schema, created and migrated by `PRAGMA user_version`.

use crate::error::{Result, StoreError};
use rusqlite::Connection;

/// The schema version this build writes.
pub(crate) const VERSION: i64 = 3;

const V1: &str = "
CREATE TABLE IF NOT EXISTS images(
    id TEXT PRIMARY KEY,                 -- config digest
    manifest_digest TEXT NOT NULL,
    manifest_media_type TEXT NOT NULL,
    created INTEGER,                     -- unix seconds from the config, if any
    added_at INTEGER NOT NULL,
    size INTEGER NOT NULL,               -- config + layer blobs
    os TEXT NOT NULL DEFAULT '',
    arch TEXT NOT NULL DEFAULT '',
    config TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS images_manifest ON images(manifest_digest);
CREATE INDEX IF NOT EXISTS images_created ON images(created DESC, id);
CREATE TABLE IF NOT EXISTS tags(
    ref TEXT PRIMARY KEY,                -- docker.io/library/busybox:latest
    image_id TEXT NOT NULL REFERENCES images(id)
);
CREATE INDEX IF NOT EXISTS tags_image ON tags(image_id);
CREATE TABLE IF NOT EXISTS layers(
    digest TEXT PRIMARY KEY,             -- compressed blob digest
    diff_id TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS image_layers(
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,                -- 0 = bottom layer
    digest TEXT NOT NULL,
    chain_id TEXT NOT NULL,
    PRIMARY KEY(image_id, idx)
);
CREATE INDEX IF NOT EXISTS image_layers_digest ON image_layers(digest);
CREATE INDEX IF NOT EXISTS image_layers_chain ON image_layers(chain_id);
CREATE TABLE IF NOT EXISTS snapshots(
    chain_id TEXT PRIMARY KEY,
    key TEXT UNIQUE NOT NULL,            -- directory name under snapshots/
    diff_id TEXT NOT NULL,
    size INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS containers(
    id TEXT PRIMARY KEY,
    name TEXT UNIQUE NOT NULL,
    image_id TEXT NOT NULL,
    image_ref TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    state TEXT NOT NULL,
    config TEXT NOT NULL,
    pid INTEGER,
    started_at INTEGER,
    finished_at INTEGER,
    exit_code INTEGER,
    oom_killed INTEGER NOT NULL DEFAULT 0,
    restart_count INTEGER NOT NULL DEFAULT 0,
    extra TEXT
);
CREATE INDEX IF NOT EXISTS containers_image ON containers(image_id);
CREATE TABLE IF NOT EXISTS events(
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time_ns INTEGER NOT NULL,
    kind TEXT NOT NULL,
    object TEXT NOT NULL,
    name TEXT,
    from_state TEXT,
    to_state TEXT,
    cause TEXT
);
CREATE INDEX IF NOT EXISTS events_time ON events(time_ns);
";

/// Version 2: the records of `gcr registry serve` (repositories' manifests, tags and blob
/// links), so that `rmi`/`prune` never free blobs the registry still serves.
const V2: &str = "
CREATE TABLE IF NOT EXISTS registry_manifests(
    repo TEXT NOT NULL, digest TEXT NOT NULL, media_type TEXT NOT NULL,
    size INTEGER NOT NULL, subject TEXT, artifact_type TEXT, annotations TEXT,
    PRIMARY KEY(repo, digest));
CREATE INDEX IF NOT EXISTS registry_manifests_subject ON registry_manifests(repo, subject);
CREATE INDEX IF NOT EXISTS registry_manifests_digest ON registry_manifests(digest);
CREATE TABLE IF NOT EXISTS registry_tags(
    repo TEXT NOT NULL, tag TEXT NOT NULL, digest TEXT NOT NULL, PRIMARY KEY(repo, tag));
CREATE TABLE IF NOT EXISTS registry_blobs(
    repo TEXT NOT NULL, digest TEXT NOT NULL, PRIMARY KEY(repo, digest));
CREATE INDEX IF NOT EXISTS registry_blobs_digest ON registry_blobs(digest);
";

/// Version 3: what each snapshot looked like when it was made (see `snapdigest`): the
/// digest `doctor --snapshots` checks, and the entry count and byte total plain `doctor`
/// checks. NULL for snapshots made by older versions until `doctor --snapshots` records
/// them.
const V3: &str = "
ALTER TABLE snapshots ADD COLUMN tree_digest TEXT;
ALTER TABLE snapshots ADD COLUMN entries INTEGER;
ALTER TABLE snapshots ADD COLUMN bytes INTEGER;
";

/// Creates or migrates the schema; a single pragma read when already current.
pub(crate) fn ensure(conn: &Connection) -> Result<()> {
    let v: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if v == VERSION {
        return Ok(());
    }
    if v > VERSION {
        return Err(StoreError::SchemaTooNew {
            found: v,
            supported: VERSION,
        });
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let r = (|| -> Result<()> {
        let v: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if v < 1 {
            conn.execute_batch(V1)?;
        }
        if v < 2 {
            conn.execute_batch(V2)?;
        }
        if v < 3 {
            conn.execute_batch(V3)?;
        }
        conn.pragma_update(None, "user_version", VERSION)?;
        Ok(())
    })();
    match r {
        Ok(()) => {
            conn.execute_batch("COMMIT")?;
            Ok(())
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}
