//! The build's own tables (created on first use, outside the store's schema version): the
//! step cache (key → layer, one primary-key lookup), the file-metadata index and the build
//! transcripts keyed by image id.

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::Result;
use gcr_store::{NewLayer, Store, LAYER_MEDIA_TYPE};

const TABLES: &str = "
CREATE TABLE IF NOT EXISTS build_cache(
    key TEXT PRIMARY KEY,             -- sha256(parent chain id, canonical step, input digests)
    digest TEXT NOT NULL,
    diff_id TEXT NOT NULL,
    size INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS build_file_index(
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    ino INTEGER NOT NULL,
    digest TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS build_transcripts(
    image_id TEXT PRIMARY KEY,
    transcript TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
";

/// Creates the build tables if needed (cheap when they exist: no write).
pub fn ensure_tables(conn: &Connection) -> Result<()> {
    let have: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('build_cache', 'build_file_index', 'build_transcripts')",
        [],
        |r| r.get(0),
    )?;
    if have < 3 {
        conn.execute_batch(TABLES)?;
    }
    Ok(())
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The cached layer of a step, if its blob is still present.
pub fn lookup(store: &Store, key: &str) -> Result<Option<NewLayer>> {
    let row: Option<(String, String, i64)> = store
        .conn()
        .prepare_cached("SELECT digest, diff_id, size FROM build_cache WHERE key = ?1")?
        .query_row([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    Ok(row.and_then(|(digest, diff_id, size)| {
        store.has_blob(&digest).then(|| NewLayer {
            digest,
            diff_id,
            media_type: LAYER_MEDIA_TYPE.into(),
            size: size as u64,
        })
    }))
}

/// Records a step's layer.
pub fn insert(store: &Store, key: &str, l: &NewLayer) -> Result<()> {
    store.conn().execute(
        "INSERT OR REPLACE INTO build_cache(key, digest, diff_id, size, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![key, l.digest, l.diff_id, l.size as i64, now()],
    )?;
    Ok(())
}

/// Stores the transcript of the build that produced `image_id`.
pub fn save_transcript(store: &Store, image_id: &str, t: &serde_json::Value) -> Result<()> {
    store.conn().execute(
        "INSERT OR REPLACE INTO build_transcripts(image_id, transcript, created_at) VALUES (?1, ?2, ?3)",
        params![image_id, t.to_string(), now()],
    )?;
    Ok(())
}

/// The stored transcript of an image id, if it was built here.
pub fn transcript(store: &Store, image_id: &str) -> Result<Option<serde_json::Value>> {
    ensure_tables(store.conn())?;
    let t: Option<String> = store
        .conn()
        .query_row(
            "SELECT transcript FROM build_transcripts WHERE image_id = ?1",
            [image_id],
            |r| r.get(0),
        )
        .optional()?;
    Ok(t.and_then(|s| serde_json::from_str(&s).ok()))
}
