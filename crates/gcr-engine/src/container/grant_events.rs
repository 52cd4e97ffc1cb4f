//! `grant.materialized` events: each secret a launch hands to a container (a `--secret`
//! file or a `VAR=grant://NAME` environment value) is recorded when the container is
//! recorded running, in the same unit as that transition (a start that fails records
//! none). The event names the secret, its id and the digest of its sealed value (what
//! `gcr secret inspect` shows) and where it went; never the value.
//!
//! Row: kind `grant`, object the container's id, name the container's name, to
//! `materialized`, cause the JSON object `{"secret", "secret_id", "digest", "as"}` with
//! `as` = `env:VAR` or `file:/run/secrets/NAME`.

use rusqlite::{Connection, OptionalExtension};

use super::record::{event, Record};
use crate::secrets::grant::{env_grant, parse_secret_flag};
use crate::EngineError;

/// The secrets a launch of `r` materializes: (secret name, where).
pub fn grants_of(r: &Record) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for f in &r.config.opts.secrets {
        if let Ok(s) = parse_secret_flag(f) {
            out.push((s.source, format!("file:{}", s.target.display())));
        }
    }
    for e in &r.config.resolved.env {
        if let (Some(name), Some((var, _))) = (env_grant(e), e.split_once('=')) {
            out.push((name.to_string(), format!("env:{var}")));
        }
    }
    out
}

/// Records one `grant.materialized` event per secret of `r`'s launch.
pub(crate) fn materialized(conn: &Connection, r: &Record) -> Result<(), EngineError> {
    for (name, to) in grants_of(r) {
        let row: Option<(String, String)> = conn
            .prepare_cached("SELECT id, digest FROM secrets WHERE name = ?1")?
            .query_row([&name], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        // The launch opened it a moment ago; a secret removed meanwhile keeps its name.
        let (id, digest) = row.unwrap_or_default();
        let cause = serde_json::json!({
            "secret": name,
            "secret_id": id,
            "digest": digest,
            "as": to,
        })
        .to_string();
        event(
            conn,
            "grant",
            &r.id,
            &r.name,
            None,
            Some("materialized"),
            &cause,
        )?;
    }
    Ok(())
}
