//! The memo of signature verdicts (schema version 6): whether a signature referrer
//! verified with a key against its subject manifest. Container DNA reads it instead of
//! re-verifying Ed25519 signatures on every `ps`; `gcr verify` never uses it (it re-hashes
//! and re-verifies everything). A row is deleted with its referrer (`remove_for_subject`), and
//! only rows whose referrer is stored are read.

use crate::error::Result;
use crate::Store;
use rusqlite::params;
use std::collections::HashMap;

/// One verdict: referrer digest, key id, and whether it verified.
pub type Verdict = (String, String, bool);

impl Store {
    /// The verdicts recorded for the signature referrers of manifest `subject`, by
    /// (referrer digest, key id).
    pub fn signature_verdicts(&self, subject: &str) -> Result<HashMap<(String, String), bool>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT v.referrer, v.key_id, v.ok FROM signature_verdicts v
             JOIN referrers r ON r.digest = v.referrer WHERE v.subject = ?1",
        )?;
        let rows = stmt.query_map([subject], |r| {
            Ok(((r.get(0)?, r.get(1)?), r.get::<_, i64>(2)? != 0))
        })?;
        let mut out = HashMap::new();
        for row in rows {
            let (k, v) = row?;
            out.insert(k, v);
        }
        Ok(out)
    }

    /// Records verdicts about signatures of manifest `subject`, in one transaction; one
    /// whose referrer is no longer stored is skipped (it was removed meanwhile).
    pub fn record_signature_verdicts(&self, subject: &str, verdicts: &[Verdict]) -> Result<()> {
        if verdicts.is_empty() {
            return Ok(());
        }
        self.transaction(|tx| -> Result<()> {
            for (referrer, key_id, ok) in verdicts {
                tx.execute(
                    "INSERT OR REPLACE INTO signature_verdicts(referrer, key_id, subject, ok)
                     SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM referrers WHERE digest = ?1)",
                    params![referrer, key_id, subject, *ok as i64],
                )?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_are_kept_per_referrer_and_key_and_go_with_the_referrer() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s")).unwrap();
        // No such referrer: nothing is recorded.
        store
            .record_signature_verdicts("sha256:aa", &[("sha256:bb".into(), "k".into(), true)])
            .unwrap();
        assert!(store.signature_verdicts("sha256:aa").unwrap().is_empty());
        store
            .conn()
            .execute(
                "INSERT INTO referrers(digest, subject, media_type, size, artifact_type, added_at)
                 VALUES ('sha256:bb', 'sha256:aa', 'm', 1, 't', 0)",
                [],
            )
            .unwrap();
        store
            .record_signature_verdicts(
                "sha256:aa",
                &[
                    ("sha256:bb".into(), "k1".into(), true),
                    ("sha256:bb".into(), "k2".into(), false),
                ],
            )
            .unwrap();
        let v = store.signature_verdicts("sha256:aa").unwrap();
        assert_eq!(v.get(&("sha256:bb".into(), "k1".into())), Some(&true));
        assert_eq!(v.get(&("sha256:bb".into(), "k2".into())), Some(&false));
        assert_eq!(v.len(), 2);
        store
            .conn()
            .execute("DELETE FROM referrers WHERE digest = 'sha256:bb'", [])
            .unwrap();
        assert!(store.signature_verdicts("sha256:aa").unwrap().is_empty());
    }
}
