//! `gcr manifest verify|sign|apply|plan`: MiniContainer manifests (seed 002). A refusal is
//! printed as the seed's one-line JSON error on stderr, `{"code":…,"field":…,"reason":…}`,
//! followed by a sentence for a person when stderr is a terminal, and exits 125.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use gcr_engine::manifest::{ManifestReport, McError};
use gcr_engine::manifest_apply::ApplyOptions;
use gcr_engine::manifest_plan::PlanTarget;
use gcr_engine::Engine;

use crate::cli::{Cmd, Format};
use crate::out::{errln, outln};
use crate::Failure;

#[derive(Subcommand, Debug)]
pub enum ManifestCmd {
    /// Check a manifest (or .llc archive): schema, provenance and grant signatures.
    Verify {
        file: PathBuf,
        /// The signer required: a key name, or a PEM public key file.
        #[arg(long)]
        key: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Sign a manifest's grants and provenance with a stored key.
    Sign {
        file: PathBuf,
        /// Name of the signing key (see `gcr key list`).
        #[arg(long)]
        key: String,
        /// Read the key's password from standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Write the signed manifest here instead of over FILE.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Verify a manifest, then pull its image and run it detached.
    Apply(ApplyArgs),
    /// Print what applying the manifest means for a runtime.
    Plan {
        file: PathBuf,
        #[arg(long, value_enum)]
        target: Target,
        /// The signer required: a key name, or a PEM public key file.
        #[arg(long)]
        key: Option<String>,
        /// Container or pod name; default `<tenant>-<service>`.
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Args, Debug)]
pub struct ApplyArgs {
    pub file: PathBuf,
    /// Apply once per key: the same key with the same manifest returns the first result.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// A value accepted once per store (the seed's X-Nonce).
    #[arg(long)]
    pub nonce: Option<String>,
    /// Container name; default `<tenant>-<service>`.
    #[arg(long)]
    pub name: Option<String>,
    /// The signer required: a key name, or a PEM public key file (default: any key of the
    /// store).
    #[arg(long)]
    pub key: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Target {
    Gcr,
    Podman,
    Kubernetes,
}

/// Prints the seed's error line (and a sentence on a terminal); exit 125.
fn refused(e: McError) -> Failure {
    errln!("{}", e.to_json());
    if std::io::stderr().is_terminal() {
        let at = if e.field.is_empty() {
            String::new()
        } else {
            format!(" ({})", e.field)
        };
        errln!("Error: manifest refused{at}: {}", e.reason);
    }
    Failure::new(125, String::new())
}

fn json<T: serde::Serialize>(v: &T) -> Result<(), Failure> {
    let s = serde_json::to_string_pretty(v).map_err(|e| Failure::new(1, e.to_string()))?;
    outln!("{s}")?;
    Ok(())
}

fn human_report(r: &ManifestReport) -> Result<(), Failure> {
    outln!("Manifest {}: verified", r.file)?;
    outln!("Reference: {}", r.reference)?;
    outln!("Image:     {}", r.image)?;
    let signer = r.signer.as_deref().unwrap_or("not a key of this store");
    outln!("Signed by: {} (key id {}, {signer})", r.kid, r.key_id)?;
    outln!(
        "Grants: {}, artifacts: {} ({} in the archive)",
        r.grants,
        r.artifacts,
        r.archive_artifacts
    )?;
    Ok(())
}

pub fn dispatch(e: &Engine, cmd: Cmd) -> Result<i32, Failure> {
    let Cmd::Manifest { cmd } = cmd else {
        return Err(Failure::new(1, "not a manifest command".into()));
    };
    match cmd {
        ManifestCmd::Verify { file, key, format } => {
            let r = e.manifest_verify(&file, key.as_deref()).map_err(refused)?;
            match format {
                Format::Json => json(&r)?,
                Format::Table => human_report(&r)?,
            }
        }
        ManifestCmd::Sign {
            file,
            key,
            password_stdin,
            output,
        } => {
            let pw = if password_stdin {
                Some(crate::trust::read_password()?)
            } else {
                None
            };
            let r = e
                .manifest_sign(&file, &key, pw.as_deref(), output.as_deref())
                .map_err(refused)?;
            outln!("{}", r.digest)?;
        }
        ManifestCmd::Apply(a) => {
            let opts = ApplyOptions {
                idempotency_key: a.idempotency_key,
                nonce: a.nonce,
                name: a.name,
                key: a.key,
            };
            let r = e.manifest_apply(&a.file, &opts).map_err(refused)?;
            match a.format {
                Format::Json => json(&r)?,
                Format::Table => outln!("{}", r.container_id)?,
            }
        }
        ManifestCmd::Plan {
            file,
            target,
            key,
            name,
        } => {
            let target = match target {
                Target::Gcr => PlanTarget::Gcr,
                Target::Podman => PlanTarget::Podman,
                Target::Kubernetes => PlanTarget::Kubernetes,
            };
            let p = e
                .manifest_plan(&file, target, key.as_deref(), name.as_deref())
                .map_err(refused)?;
            crate::out::bytes(p.text.as_bytes())?;
            for n in &p.notes {
                errln!("note: {n}");
            }
        }
    }
    Ok(0)
}
