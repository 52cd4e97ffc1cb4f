//! The build's tables (made by the store's schema, version 4): the step cache (key → layer,
//! one primary-key lookup), the file-metadata index and the build transcripts keyed by
//! image id.

use rusqlite::{params, OptionalExtension};

use crate::error::Result;
use gcr_store::{NewLayer, Store, LAYER_MEDIA_TYPE};

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

/// A step-cache entry as `system df` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    pub key: String,
    /// Its layer's blob digest and compressed size.
    pub digest: String,
    pub size: u64,
    /// Unix seconds.
    pub created_at: i64,
    /// An image has its layer (a prune without `all` keeps it).
    pub in_use: bool,
}

/// Every step-cache entry, oldest first.
pub fn entries(store: &Store) -> Result<Vec<CacheEntry>> {
    let mut st = store.conn().prepare(
        "SELECT key, digest, size, created_at,
                digest IN (SELECT digest FROM image_layers)
         FROM build_cache ORDER BY created_at, key",
    )?;
    let v = st
        .query_map([], |r| {
            Ok(CacheEntry {
                key: r.get(0)?,
                digest: r.get(1)?,
                size: r.get::<_, i64>(2)?.max(0) as u64,
                created_at: r.get(3)?,
                in_use: r.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(v)
}

/// A step-cache entry removed by [`prune`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrunedStep {
    pub key: String,
    pub digest: String,
    /// Bytes of its layer blob freed (0 when an image still uses the layer).
    pub freed: u64,
}

/// What a [`prune`] removes (`docker builder prune [-a] [--filter until=…]
/// [--keep-storage N]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneOptions {
    /// Also the entries whose layer an image uses.
    pub all: bool,
    /// Only entries made before this time (unix seconds).
    pub until: Option<i64>,
    /// Keep this many bytes of cache: the oldest entries go until the cache is no larger.
    pub keep_storage: Option<u64>,
}

/// `docker builder prune`: removes the step-cache entries whose layer no image uses (with
/// `all`, every entry), then each removed entry's layer blob when nothing references it.
pub fn prune(store: &Store, all: bool) -> Result<Vec<PrunedStep>> {
    prune_with(
        store,
        &PruneOptions {
            all,
            ..PruneOptions::default()
        },
    )
}

/// [`prune`] with a time limit (`until`) and a size to keep (`keep_storage`): the
/// candidates go oldest first, and with `keep_storage` only until the cache (every entry's
/// layer size) fits in it.
pub fn prune_with(store: &Store, o: &PruneOptions) -> Result<Vec<PrunedStep>> {
    let all_entries = entries(store)?;
    let mut total: u64 = all_entries.iter().map(|e| e.size).sum();
    let mut rows: Vec<(String, String)> = Vec::new();
    for e in all_entries {
        if (!o.all && e.in_use) || o.until.is_some_and(|u| e.created_at >= u) {
            continue;
        }
        if let Some(keep) = o.keep_storage {
            if total <= keep {
                break;
            }
            total = total.saturating_sub(e.size);
        }
        rows.push((e.key, e.digest));
    }
    rows.sort();
    let mut out = Vec::with_capacity(rows.len());
    for (key, digest) in rows {
        store
            .conn()
            .execute("DELETE FROM build_cache WHERE key = ?1", [&key])?;
        let still_cached: bool = store.conn().query_row(
            "SELECT EXISTS(SELECT 1 FROM build_cache WHERE digest = ?1)",
            [&digest],
            |r| r.get(0),
        )?;
        let freed = if still_cached {
            0
        } else {
            store.remove_blob_if_unreferenced(&digest)?
        };
        out.push(PrunedStep { key, digest, freed });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(store: &Store, data: &[u8]) -> NewLayer {
        let (digest, size) = store.put_blob(data, None).unwrap();
        NewLayer {
            diff_id: digest.clone(),
            digest,
            media_type: LAYER_MEDIA_TYPE.into(),
            size,
        }
    }

    #[test]
    fn prune_removes_unused_steps_and_their_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = layer(&store, b"layer a");
        let b = layer(&store, b"layer bb");
        insert(&store, "k1", &a).unwrap();
        insert(&store, "k2", &b).unwrap();
        insert(&store, "k3", &b).unwrap();
        assert!(lookup(&store, "k1").unwrap().is_some());
        let pruned = prune(&store, false).unwrap();
        let keys: Vec<&str> = pruned.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["k1", "k2", "k3"]);
        // b's blob goes with the last entry using it.
        let freed: Vec<u64> = pruned.iter().map(|p| p.freed).collect();
        assert_eq!(freed, [7, 0, 8]);
        assert!(!store.has_blob(&a.digest) && !store.has_blob(&b.digest));
        assert!(lookup(&store, "k1").unwrap().is_none());
        assert!(prune(&store, true).unwrap().is_empty());
    }

    #[test]
    fn prune_keeps_what_is_newer_or_fits() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for (k, data, at) in [
            ("old", &b"0123456789"[..], 100),
            ("mid", b"abcdefghij", 200),
            ("new", b"ABCDEFGHIJ", 300),
        ] {
            let l = layer(&store, data);
            insert(&store, k, &l).unwrap();
            store
                .conn()
                .execute(
                    "UPDATE build_cache SET created_at = ?1 WHERE key = ?2",
                    params![at, k],
                )
                .unwrap();
        }
        // Only what was made before 250, oldest first.
        let o = PruneOptions {
            until: Some(250),
            keep_storage: Some(15),
            ..PruneOptions::default()
        };
        let keys: Vec<String> = prune_with(&store, &o)
            .unwrap()
            .into_iter()
            .map(|p| p.key)
            .collect();
        // 30 bytes cached, 15 to keep: old and mid go (new is too recent anyway).
        assert_eq!(keys, ["mid", "old"]);
        assert!(lookup(&store, "new").unwrap().is_some());
        let o = PruneOptions {
            keep_storage: Some(10),
            ..PruneOptions::default()
        };
        assert!(
            prune_with(&store, &o).unwrap().is_empty(),
            "10 bytes left fit in 10"
        );
        let o = PruneOptions {
            until: Some(300),
            ..PruneOptions::default()
        };
        assert!(
            prune_with(&store, &o).unwrap().is_empty(),
            "new was made at 300"
        );
    }
}
