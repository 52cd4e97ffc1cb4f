//! Rows of the `secrets` table (schema version 7): a secret's name, id, times, labels and
//! its sealed value (nonce, ciphertext and tag, made by gcr-trust). The store never sees
//! a clear value: sealing and opening happen in the engine, under the store's secrets key.

use rusqlite::{params, OptionalExtension};

use crate::error::Result;
use crate::Store;

/// One stored secret.
#[derive(Clone, Debug)]
pub struct SecretRow {
    pub id: String,
    pub name: String,
    /// Unix nanoseconds.
    pub created_at: i64,
    pub updated_at: i64,
    /// A JSON object of the labels.
    pub labels: String,
    /// nonce || ciphertext || tag.
    pub sealed: Vec<u8>,
    /// `sha256:<hex>` of `sealed`.
    pub digest: String,
}

const COLUMNS: &str = "id, name, created_at, updated_at, labels, sealed, digest";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SecretRow> {
    Ok(SecretRow {
        id: r.get(0)?,
        name: r.get(1)?,
        created_at: r.get(2)?,
        updated_at: r.get(3)?,
        labels: r.get(4)?,
        sealed: r.get(5)?,
        digest: r.get(6)?,
    })
}

impl Store {
    /// Inserts a secret and its `create` event in one transaction; false (nothing
    /// written) when one with its name or id exists.
    pub fn insert_secret(&self, s: &SecretRow) -> Result<bool> {
        self.transaction(|tx| {
            let n = tx.execute(
                "INSERT INTO secrets(id, name, created_at, updated_at, labels, sealed, digest)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
                params![
                    s.id,
                    s.name,
                    s.created_at,
                    s.updated_at,
                    s.labels,
                    s.sealed,
                    s.digest
                ],
            )?;
            if n == 1 {
                secret_event(tx, "create", &s.id, &s.name)?;
            }
            Ok(n == 1)
        })
    }

    /// The secret named `name`, or whose id is `name` or starts with it (unique prefix).
    pub fn secret(&self, name: &str) -> Result<Option<SecretRow>> {
        let exact = self
            .conn()
            .query_row(
                &format!("SELECT {COLUMNS} FROM secrets WHERE name = ?1 OR id = ?1"),
                [name],
                row,
            )
            .optional()?;
        if exact.is_some() || name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Ok(exact);
        }
        let mut st = self.conn().prepare_cached(&format!(
            "SELECT {COLUMNS} FROM secrets WHERE substr(id, 1, length(?1)) = ?1 LIMIT 2"
        ))?;
        let found: Vec<SecretRow> = st
            .query_map([name], row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(match <[SecretRow; 1]>::try_from(found) {
            Ok([one]) => Some(one),
            Err(_) => None,
        })
    }

    /// Every secret, by name.
    pub fn secrets(&self) -> Result<Vec<SecretRow>> {
        let mut st = self
            .conn()
            .prepare_cached(&format!("SELECT {COLUMNS} FROM secrets ORDER BY name"))?;
        let rows = st.query_map([], row)?.collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Deletes the secret with this id and records its `remove` event; false when it was
    /// gone already.
    pub fn delete_secret(&self, id: &str) -> Result<bool> {
        self.transaction(|tx| {
            let name: Option<String> = tx
                .query_row(
                    "DELETE FROM secrets WHERE id = ?1 RETURNING name",
                    [id],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(n) = &name {
                secret_event(tx, "remove", id, n)?;
            }
            Ok(name.is_some())
        })
    }
}

/// A secret event (`kind = 'secret'`): its id and name, never its value.
fn secret_event(tx: &rusqlite::Connection, action: &str, id: &str, name: &str) -> Result<()> {
    tx.execute(
        "INSERT INTO events(time_ns, kind, object, name, to_state) VALUES (?1, 'secret', ?2, ?3, ?4)",
        params![crate::util::now_ns(), id, name, action],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(id: &str, name: &str) -> SecretRow {
        SecretRow {
            id: id.into(),
            name: name.into(),
            created_at: 1,
            updated_at: 1,
            labels: "{}".into(),
            sealed: vec![1, 2, 3],
            digest: "sha256:00".into(),
        }
    }

    #[test]
    fn secrets_are_stored_found_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(store.insert_secret(&sample("abc123", "one")).unwrap());
        assert!(!store.insert_secret(&sample("def456", "one")).unwrap());
        assert!(store.insert_secret(&sample("abd999", "two")).unwrap());
        assert_eq!(store.secret("one").unwrap().unwrap().id, "abc123");
        assert_eq!(store.secret("abc").unwrap().unwrap().name, "one");
        assert!(store.secret("ab").unwrap().is_none(), "ambiguous prefix");
        assert_eq!(store.secrets().unwrap().len(), 2);
        assert!(store.delete_secret("abc123").unwrap());
        assert!(!store.delete_secret("abc123").unwrap());
        assert!(store.secret("one").unwrap().is_none());
        let events: i64 = store
            .conn()
            .query_row(
                "SELECT count(*) FROM events WHERE kind = 'secret'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(events, 3, "two creates and one remove");
    }
}
