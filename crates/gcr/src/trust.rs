//! Trust commands: `key generate|list|import|export|rm`, `sign` and `verify`. Passwords
//! come only from standard input (`--password-stdin`), never from the command line.

use std::io::Read;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use gcr_engine::Engine;

use crate::cli::{Cmd, Format};
use crate::out::{errln, outln};
use crate::Failure;

#[derive(Subcommand, Debug)]
pub enum KeyCmd {
    /// Make a new Ed25519 key pair under the store root.
    Generate {
        name: String,
        /// Encrypt the private key with a password read from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List keys.
    #[command(alias = "ls")]
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Print only the key names.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Import an Ed25519 key from a PEM file (PKCS#8 private key or PKIX public key).
    Import {
        name: String,
        file: PathBuf,
        /// The password of an encrypted private key, read from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Print a key's public half (PKIX PEM).
    Export { name: String },
    /// Remove keys.
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

#[derive(Args, Debug)]
pub struct SignArgs {
    /// Image (name, id or digest).
    pub image: String,
    /// Name of the signing key (see `gcr key list`).
    #[arg(long)]
    pub key: String,
    /// Read the key's password from standard input.
    #[arg(long)]
    pub password_stdin: bool,
    /// Print only the signature's referrer digest.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Image (name, id or digest).
    pub image: String,
    /// The signer's key: a key name, or a PEM public key file.
    #[arg(long)]
    pub key: String,
    /// Verify this Sigstore bundle or DSSE envelope file instead of the image's attached
    /// signatures.
    #[arg(long)]
    pub bundle: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

/// Reads a password from standard input, without its final line break.
pub(crate) fn read_password() -> Result<Vec<u8>, Failure> {
    let mut buf = Vec::new();
    std::io::stdin()
        .take(64 * 1024)
        .read_to_end(&mut buf)
        .map_err(|e| {
            Failure::new(
                1,
                format!("cannot read the password from standard input: {e}"),
            )
        })?;
    if buf.ends_with(b"\n") {
        buf.pop();
        if buf.ends_with(b"\r") {
            buf.pop();
        }
    }
    if buf.is_empty() {
        return Err(Failure::new(
            1,
            "the password on standard input is empty; give a non-empty password".into(),
        ));
    }
    Ok(buf)
}

fn password(asked: bool) -> Result<Option<Vec<u8>>, Failure> {
    if asked {
        read_password().map(Some)
    } else {
        Ok(None)
    }
}

pub fn dispatch(e: &Engine, cmd: Cmd) -> Result<i32, Failure> {
    match cmd {
        Cmd::Key { cmd } => key(e, cmd),
        Cmd::Sign(a) => sign(e, &a),
        Cmd::Verify(a) => verify(e, &a),
        _ => Ok(2),
    }
}

fn key(e: &Engine, cmd: KeyCmd) -> Result<i32, Failure> {
    match cmd {
        KeyCmd::Generate {
            name,
            password_stdin,
        } => {
            let pw = password(password_stdin)?;
            let k = e.key_generate(&name, pw.as_deref())?;
            outln!("Generated key {}: ed25519, key id {}", k.name, k.key_id)?;
        }
        KeyCmd::Import {
            name,
            file,
            password_stdin,
        } => {
            let pw = password(password_stdin)?;
            let k = e.key_import(&name, &file, pw.as_deref())?;
            let half = if k.private {
                "private key"
            } else {
                "public key only"
            };
            outln!(
                "Imported key {}: ed25519 {half}, key id {}",
                k.name,
                k.key_id
            )?;
        }
        KeyCmd::Export { name } => {
            crate::out::bytes(e.key_export(&name)?.as_bytes())?;
        }
        KeyCmd::Rm { names } => {
            let mut code = 0;
            for n in &names {
                match e.key_remove(n) {
                    Ok(()) => outln!("{n}")?,
                    Err(err) => {
                        errln!("Error: {err}");
                        code = 1;
                    }
                }
            }
            return Ok(code);
        }
        KeyCmd::List { format, quiet } => {
            let keys = e.key_list()?;
            if format == Format::Json {
                let text = serde_json::to_string(&keys).unwrap_or_default();
                outln!("{text}")?;
            } else if quiet {
                for k in &keys {
                    outln!("{}", k.name)?;
                }
            } else {
                let rows: Vec<Vec<String>> = keys
                    .iter()
                    .map(|k| {
                        let private = match (k.private, k.encrypted) {
                            (false, _) => "no",
                            (true, false) => "yes",
                            (true, true) => "encrypted",
                        };
                        vec![
                            k.name.clone(),
                            k.key_id.clone(),
                            k.algorithm.to_string(),
                            private.to_string(),
                        ]
                    })
                    .collect();
                crate::render::table_out(&["NAME", "KEY ID", "ALGORITHM", "PRIVATE"], &rows)?;
            }
        }
    }
    Ok(0)
}

fn sign(e: &Engine, a: &SignArgs) -> Result<i32, Failure> {
    let pw = password(a.password_stdin)?;
    let s = e.sign(&a.image, &a.key, pw.as_deref())?;
    if a.quiet {
        outln!("{}", s.referrer)?;
    } else {
        outln!(
            "Signed {} ({}) with key {} ({}); signature {}",
            a.image,
            s.manifest_digest,
            a.key,
            s.key_id,
            s.referrer
        )?;
    }
    Ok(0)
}

fn verify(e: &Engine, a: &VerifyArgs) -> Result<i32, Failure> {
    let r = e.verify(&a.image, &a.key, a.bundle.as_deref())?;
    if a.format == Format::Json {
        let text = serde_json::to_string_pretty(&r).unwrap_or_default();
        outln!("{text}")?;
        return Ok(0);
    }
    outln!("Verified {} ({})", r.image, r.manifest_digest)?;
    outln!(
        "Checked:   manifest, config {} and {} layer(s) match their digests",
        r.config_digest,
        r.layer_digests.len()
    )?;
    for s in &r.signatures {
        let v = &s.verified;
        outln!("Signer:    {}", s.signer)?;
        outln!("Key ID:    {}", v.key_id)?;
        outln!("Statement: {} ({})", v.statement_type, v.predicate_type)?;
        outln!("Subject:   {}", v.subject_name)?;
        outln!("Time:      {}", v.time.as_deref().unwrap_or("(not stated)"))?;
        outln!("Signature: {}", s.source)?;
    }
    Ok(0)
}
