//! `gcr audit …`: the tamper-evident ledger (see gcr-engine's `audit`).

use clap::Subcommand;
use gcr_engine::audit::AuditFilter;
use gcr_engine::Engine;
use std::path::PathBuf;

use crate::cli::Format;
use crate::out::{errln, outln};
use crate::Failure;

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// List ledger entries (the same history as `gcr events`, with indexes and actors).
    Log {
        /// Entries since: unix seconds, RFC 3339 or a duration like 10m.
        #[arg(long)]
        since: Option<String>,
        /// Entries before: same forms as --since.
        #[arg(long)]
        until: Option<String>,
        /// Only entries about this container (id, prefix or name); repeatable.
        #[arg(long)]
        container: Vec<String>,
        /// Only this action (`container.running`), kind (`image`) or state (`exited`).
        #[arg(long)]
        action: Vec<String>,
        /// Docker's filter syntax: container=, event=, type=, image=.
        #[arg(short, long)]
        filter: Vec<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Recompute the ledger and check every entry, hash and checkpoint.
    Verify {
        /// Check checkpoints with this note verifier key instead of the store's.
        #[arg(long)]
        key: Option<String>,
        /// Check a git mirror (made by `audit mirror --git`) against the ledger instead.
        #[arg(long, value_name = "DIR")]
        git: Option<PathBuf>,
        /// Check this inclusion proof (C2SP tlog-proof text, ours or another tool's) of an
        /// entry of this ledger instead.
        #[arg(long, value_name = "FILE")]
        proof: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Print an inclusion proof (C2SP tlog-proof) of one entry.
    Prove {
        index: u64,
        /// JSON with the entry, its leaf and the proof text.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Print a consistency proof between two tree sizes.
    Consistency {
        old_size: u64,
        new_size: Option<u64>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Make (when the ledger grew) and print the latest signed checkpoint.
    Checkpoint,
    /// Print the ledger's note verifier key (for `note.NewVerifier` and `audit verify --key`).
    Key,
    /// Write the ledger in the C2SP tlog-tiles layout.
    Export {
        #[arg(long, value_name = "DIR")]
        tiles: PathBuf,
    },
    /// Append the entries a git mirror lacks as one commit on refs/gcr/audit.
    Mirror {
        #[arg(long, value_name = "DIR")]
        git: PathBuf,
    },
    /// Drop the bodies of checkpointed entries older than a date (leaves and proofs stay).
    Compact {
        #[arg(long)]
        before: String,
    },
}

fn time_arg(flag: &str, s: &str) -> Result<i64, Failure> {
    let now = gcr_engine::container::record::now_ns();
    gcr_engine::events::parse_since(s, now).ok_or_else(|| {
        Failure::new(
            125,
            format!("invalid {flag} '{s}': use unix seconds, RFC 3339 or a duration like 10m"),
        )
    })
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Runs one `gcr audit` command.
pub fn dispatch(e: &Engine, cmd: AuditCmd) -> Result<i32, Failure> {
    match cmd {
        AuditCmd::Log {
            since,
            until,
            container,
            action,
            filter,
            format,
        } => {
            let mut f = AuditFilter {
                since_ns: since.map(|s| time_arg("--since", &s)).transpose()?,
                until_ns: until.map(|s| time_arg("--until", &s)).transpose()?,
                container,
                action,
                kind: Vec::new(),
            };
            for x in &filter {
                f.add_docker(x).map_err(Failure::from)?;
            }
            for en in e.audit_log(&f).map_err(Failure::from)? {
                if format == Format::Json {
                    outln!("{}", json(&en))?;
                } else {
                    let who = match (&en.actor["uid"], en.actor["exe"].as_str()) {
                        (serde_json::Value::Number(u), Some(x)) if !x.is_empty() => {
                            format!("uid={u} {x}")
                        }
                        (serde_json::Value::Number(u), _) => format!("uid={u}"),
                        _ => "-".into(),
                    };
                    let id = &en.subject_id[..en.subject_id.len().min(12)];
                    outln!(
                        "{:>6} {} {} {} {} ({})",
                        en.index,
                        gcr_engine::logs::rfc3339_nanos(en.time_ns),
                        en.action,
                        if id.is_empty() { "-" } else { id },
                        en.subject_name.as_deref().unwrap_or(""),
                        who
                    )?;
                }
            }
            Ok(0)
        }
        AuditCmd::Verify { git: Some(dir), .. } => {
            let n = e.audit_verify_mirror(&dir).map_err(Failure::from)?;
            outln!("git mirror OK: {n} entries match the ledger")?;
            Ok(0)
        }
        AuditCmd::Verify {
            key,
            proof: Some(file),
            format,
            ..
        } => {
            let text = std::fs::read(&file).map_err(|err| {
                Failure::new(
                    125,
                    format!("cannot read the proof {}: {err}", file.display()),
                )
            })?;
            let v = e
                .audit_check_proof(&text, key.as_deref())
                .map_err(Failure::from)?;
            if format == Format::Json {
                outln!("{}", json(&v))?;
            } else if let Some(why) = &v.problem {
                errln!("proof FAILED: {why}");
            } else {
                outln!(
                    "proof OK: entry {} is in the signed tree of {} entries",
                    v.index.unwrap_or_default(),
                    v.size.unwrap_or_default()
                )?;
            }
            Ok(if v.ok() { 0 } else { 1 })
        }
        AuditCmd::Verify {
            key,
            proof: None,
            format,
            ..
        } => {
            let r = e.audit_verify(key.as_deref()).map_err(Failure::from)?;
            if format == Format::Json {
                outln!("{}", json(&r))?;
            } else if r.ok() {
                outln!(
                    "ledger OK: {} entries ({} compacted), {} checkpoints verified with {}",
                    r.entries,
                    r.compacted,
                    r.checkpoints,
                    if r.key.is_empty() { "-" } else { &r.key }
                )?;
            } else {
                if let Some(i) = r.first_bad_index() {
                    errln!("ledger FAILED: first bad entry: {i}");
                } else {
                    errln!("ledger FAILED");
                }
                for p in &r.problems {
                    errln!("  {}", p.what);
                }
            }
            Ok(if r.ok() { 0 } else { 1 })
        }
        AuditCmd::Prove { index, format } => {
            let p = e.audit_prove(index).map_err(Failure::from)?;
            if format == Format::Json {
                let v = serde_json::json!({
                    "index": p.index,
                    "entry": p.entry.as_ref().map(|b| String::from_utf8_lossy(b).into_owned()),
                    "leaf": p.leaf.iter().map(|b| format!("{b:02x}")).collect::<String>(),
                    "proof": String::from_utf8_lossy(&p.text),
                });
                outln!("{v}")?;
            } else {
                crate::out::bytes(&p.text)?;
            }
            Ok(0)
        }
        AuditCmd::Consistency {
            old_size,
            new_size,
            format,
        } => {
            let p = e
                .audit_consistency(old_size, new_size)
                .map_err(Failure::from)?;
            if format == Format::Json {
                outln!("{}", json(&p))?;
            } else {
                outln!("old {} {}", p.old_size, p.old_root)?;
                outln!("new {} {}", p.new_size, p.new_root)?;
                for h in &p.proof {
                    outln!("{h}")?;
                }
            }
            Ok(0)
        }
        AuditCmd::Checkpoint => {
            let note = e.audit_checkpoint().map_err(Failure::from)?;
            crate::out::bytes(&note)?;
            Ok(0)
        }
        AuditCmd::Key => {
            outln!("{}", e.audit_key().map_err(Failure::from)?)?;
            Ok(0)
        }
        AuditCmd::Export { tiles } => {
            let r = e.audit_export_tiles(&tiles).map_err(Failure::from)?;
            outln!(
                "exported {} entries: {} hash tiles, {} entry bundles, checkpoint in {}",
                r.size,
                r.hash_tiles,
                r.entry_bundles,
                tiles.display()
            )?;
            Ok(0)
        }
        AuditCmd::Mirror { git } => {
            let r = e.audit_mirror(&git).map_err(Failure::from)?;
            match &r.commit {
                Some(c) => outln!(
                    "appended {} entries to {} (refs/gcr/audit {c}); it holds {}",
                    r.added,
                    git.display(),
                    r.size
                )?,
                None => outln!("the mirror is up to date ({} entries)", r.size)?,
            }
            Ok(0)
        }
        AuditCmd::Compact { before } => {
            let t = time_arg("--before", &before)?;
            let n = e.audit_compact(t).map_err(Failure::from)?;
            outln!("compacted {n} entries")?;
            Ok(0)
        }
    }
}
