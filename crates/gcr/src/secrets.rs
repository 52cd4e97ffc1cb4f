//! `gcr secret create|ls|inspect|rm`, in the shapes of Docker's `docker secret` (which
//! needs Swarm there). No command prints a secret's value: create prints the new id,
//! inspect the name, id, times, labels and the digest of the sealed value.

use std::io::Read;
use std::path::PathBuf;

use clap::Subcommand;
use gcr_engine::{Engine, EngineError};
use zeroize::Zeroizing;

use crate::cli::Format;
use crate::out::{errln, outln};
use crate::Failure;

#[derive(Subcommand, Debug)]
pub enum SecretCmd {
    /// Create a secret from a file or from standard input (`-`).
    Create {
        name: String,
        /// The file holding the value, or `-` for standard input.
        file: PathBuf,
        /// KEY=VALUE labels.
        #[arg(short = 'l', long = "label")]
        labels: Vec<String>,
    },
    /// List secrets.
    #[command(alias = "list")]
    Ls {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Print only the ids.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Show secrets' name, id, times, labels and sealed digest (never the value).
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove secrets no container uses.
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// gcr's own errors exit 125 (Docker's code), a missing secret 1.
fn fail(e: EngineError) -> Failure {
    let code = if matches!(e, EngineError::NotFound(_)) {
        1
    } else {
        125
    };
    Failure::new(code, e.to_string())
}

/// Reads a secret's value (at most 500 KiB plus one byte, so a larger one is refused).
fn read_value(file: &PathBuf) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let mut buf = Zeroizing::new(Vec::new());
    let limit = gcr_engine::secrets::MAX_SECRET as u64 + 1;
    let res = if file.as_os_str() == "-" {
        std::io::stdin().take(limit).read_to_end(&mut buf)
    } else {
        std::fs::File::open(file).and_then(|f| f.take(limit).read_to_end(&mut buf))
    };
    res.map_err(|e| {
        let what = if file.as_os_str() == "-" {
            "standard input".to_string()
        } else {
            file.display().to_string()
        };
        Failure::new(
            125,
            format!("cannot read the secret's value from {what}: {e}; give a readable file or -"),
        )
    })?;
    Ok(buf)
}

pub fn dispatch(e: &Engine, cmd: SecretCmd) -> Result<i32, Failure> {
    match cmd {
        SecretCmd::Create { name, file, labels } => {
            let value = read_value(&file)?;
            let id = e.secret_create(&name, value, &labels).map_err(fail)?;
            outln!("{id}")?;
        }
        SecretCmd::Ls { format, quiet } => {
            let list = e.secret_list().map_err(fail)?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            if quiet {
                for s in &list {
                    outln!("{}", s.id)?;
                }
            } else if format == Format::Json {
                // One object per line, as `docker secret ls --format json`.
                for s in &list {
                    let labels: Vec<String> = s
                        .spec
                        .labels
                        .iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect();
                    let line = serde_json::json!({
                        "CreatedAt": s.created_at,
                        "Driver": "",
                        "ID": s.id,
                        "Labels": labels.join(","),
                        "Name": s.spec.name,
                        "UpdatedAt": s.updated_at,
                    });
                    outln!("{line}")?;
                }
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|s| {
                        vec![
                            s.id.clone(),
                            s.spec.name.clone(),
                            String::new(),
                            gcr_engine::humanize_ago(now - s.created_secs),
                            gcr_engine::humanize_ago(now - s.updated_secs),
                        ]
                    })
                    .collect();
                crate::render::table_out(&["ID", "NAME", "DRIVER", "CREATED", "UPDATED"], &rows)?;
            }
        }
        SecretCmd::Inspect { names } => {
            let mut found = Vec::new();
            let mut code = 0;
            for n in &names {
                match e.secret_inspect(n) {
                    Ok(s) => found.push(s),
                    Err(err) => {
                        errln!("Error: {err}");
                        code = 1;
                    }
                }
            }
            let text = serde_json::to_string_pretty(&found).unwrap_or_default();
            outln!("{text}")?;
            return Ok(code);
        }
        SecretCmd::Rm { names } => {
            let mut code = 0;
            for n in &names {
                match e.secret_remove(n) {
                    Ok(name) => outln!("{name}")?,
                    Err(err) => {
                        errln!("Error: {err}");
                        code = code.max(fail(err).code);
                    }
                }
            }
            return Ok(code);
        }
    }
    Ok(0)
}
