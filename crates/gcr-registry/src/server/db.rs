//! The registry server's records in the store's database: manifests per repository (with
//! subject and artifact type for the referrers API), tags, and blob links per repository.
//! The tables are made by the store's schema (version 2); content lives in the store's
//! blob CAS.

use crate::error::Result;
use gcr_store::Store;
use rusqlite::{params, OptionalExtension};

/// A stored manifest.
#[derive(Debug, Clone)]
pub struct ManifestRow {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    pub artifact_type: Option<String>,
    pub annotations: Option<String>,
}

/// A manifest to record.
pub struct NewManifest<'a> {
    pub repo: &'a str,
    pub digest: &'a str,
    pub media_type: &'a str,
    pub size: u64,
    pub subject: Option<&'a str>,
    pub artifact_type: Option<&'a str>,
    pub annotations: Option<String>,
    pub tag: Option<&'a str>,
}

pub fn has_blob(store: &Store, repo: &str, digest: &str) -> Result<bool> {
    let n: Option<i64> = store
        .conn()
        .query_row(
            "SELECT 1 FROM registry_blobs WHERE repo = ?1 AND digest = ?2",
            [repo, digest],
            |r| r.get(0),
        )
        .optional()?;
    Ok(n.is_some())
}

pub fn link_blob(store: &Store, repo: &str, digest: &str) -> Result<()> {
    store.conn().execute(
        "INSERT OR IGNORE INTO registry_blobs(repo, digest) VALUES (?1, ?2)",
        [repo, digest],
    )?;
    Ok(())
}

pub fn unlink_blob(store: &Store, repo: &str, digest: &str) -> Result<bool> {
    Ok(store.conn().execute(
        "DELETE FROM registry_blobs WHERE repo = ?1 AND digest = ?2",
        [repo, digest],
    )? > 0)
}

pub fn put_manifest(store: &Store, m: &NewManifest<'_>) -> Result<()> {
    store.transaction(|tx| -> Result<()> {
        tx.execute(
            "INSERT OR REPLACE INTO registry_manifests(repo, digest, media_type, size, subject, artifact_type, annotations)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![m.repo, m.digest, m.media_type, m.size as i64, m.subject, m.artifact_type, m.annotations],
        )?;
        if let Some(t) = m.tag {
            tx.execute(
                "INSERT OR REPLACE INTO registry_tags(repo, tag, digest) VALUES (?1, ?2, ?3)",
                params![m.repo, t, m.digest],
            )?;
        }
        Ok(())
    })
}

/// Resolves a tag or digest to a manifest of the repository.
pub fn manifest(store: &Store, repo: &str, reference: &str) -> Result<Option<ManifestRow>> {
    let digest = if reference.contains(':') {
        reference.to_string()
    } else {
        let d: Option<String> = store
            .conn()
            .query_row(
                "SELECT digest FROM registry_tags WHERE repo = ?1 AND tag = ?2",
                [repo, reference],
                |r| r.get(0),
            )
            .optional()?;
        match d {
            Some(d) => d,
            None => return Ok(None),
        }
    };
    Ok(store
        .conn()
        .query_row(
            "SELECT digest, media_type, size, artifact_type, annotations FROM registry_manifests WHERE repo = ?1 AND digest = ?2",
            [repo, &digest],
            |r| {
                Ok(ManifestRow {
                    digest: r.get(0)?,
                    media_type: r.get(1)?,
                    size: r.get::<_, i64>(2)? as u64,
                    artifact_type: r.get(3)?,
                    annotations: r.get(4)?,
                })
            },
        )
        .optional()?)
}

/// Deletes a tag, or a manifest (and the tags naming it) by digest; false if absent.
pub fn delete_manifest(store: &Store, repo: &str, reference: &str) -> Result<bool> {
    store.transaction(|tx| -> Result<bool> {
        if reference.contains(':') {
            tx.execute(
                "DELETE FROM registry_tags WHERE repo = ?1 AND digest = ?2",
                [repo, reference],
            )?;
            Ok(tx.execute(
                "DELETE FROM registry_manifests WHERE repo = ?1 AND digest = ?2",
                [repo, reference],
            )? > 0)
        } else {
            Ok(tx.execute(
                "DELETE FROM registry_tags WHERE repo = ?1 AND tag = ?2",
                [repo, reference],
            )? > 0)
        }
    })
}

/// Tags of a repository, sorted; None when the repository is unknown.
pub fn tags(store: &Store, repo: &str) -> Result<Option<Vec<String>>> {
    let mut st = store
        .conn()
        .prepare_cached("SELECT tag FROM registry_tags WHERE repo = ?1 ORDER BY tag")?;
    let v = st
        .query_map([repo], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    if v.is_empty() {
        let known: Option<i64> = store
            .conn()
            .query_row(
                "SELECT 1 FROM registry_manifests WHERE repo = ?1 LIMIT 1",
                [repo],
                |r| r.get(0),
            )
            .optional()?;
        if known.is_none() {
            return Ok(None);
        }
    }
    Ok(Some(v))
}

/// Repositories with at least one manifest, sorted.
pub fn repositories(store: &Store) -> Result<Vec<String>> {
    let mut st = store
        .conn()
        .prepare_cached("SELECT DISTINCT repo FROM registry_manifests ORDER BY repo")?;
    let v = st
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(v)
}

/// Manifests of `repo` whose subject is `digest`.
pub fn referrers(store: &Store, repo: &str, digest: &str) -> Result<Vec<ManifestRow>> {
    let mut st = store.conn().prepare_cached(
        "SELECT digest, media_type, size, artifact_type, annotations FROM registry_manifests
         WHERE repo = ?1 AND subject = ?2 ORDER BY digest",
    )?;
    let v = st
        .query_map([repo, digest], |r| {
            Ok(ManifestRow {
                digest: r.get(0)?,
                media_type: r.get(1)?,
                size: r.get::<_, i64>(2)? as u64,
                artifact_type: r.get(3)?,
                annotations: r.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(v)
}
