//! Dependencies: content-addressed external inputs fetched from `file://` or `http(s)://`,
//! verified against their required hash, and either copied as one file or (`extract`)
//! unpacked from a `.tar`/`.tar.gz`/`.tgz` into the layer.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use gcr_core::spec::{Dependency, Source};
use gcr_store::{EntryData, LayerEntry};
use sha2::{Digest as _, Sha256};

use crate::error::{BuildError, Result};
use crate::layout::{add_parents, join_dest};

/// Largest dependency accepted (8 GiB).
const MAX_BYTES: u64 = 8 << 30;

/// Fetches a dependency into `spool`, verifying its hash; returns its length.
pub fn fetch(ctx: &Path, d: &Dependency, spool: &mut std::fs::File) -> Result<u64> {
    let fail = |reason: String| BuildError::Fetch {
        name: d.name.clone(),
        source_url: d.source.to_string(),
        reason,
    };
    let mut reader: Box<dyn Read> = match &d.source {
        Source::File(p) => {
            let path = if p.starts_with('/') {
                Path::new(p).to_path_buf()
            } else {
                ctx.join(p)
            };
            Box::new(
                std::fs::File::open(&path)
                    .map_err(|e| fail(format!("cannot open {}: {e}", path.display())))?,
            )
        }
        Source::Http(url) => {
            let resp = ureq::get(url).call().map_err(|e| fail(format!("{e}")))?;
            Box::new(resp.into_body().into_reader())
        }
    };
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut n_total = 0u64;
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| fail(format!("read failed: {e}")))?;
        if n == 0 {
            break;
        }
        n_total += n as u64;
        if n_total > MAX_BYTES {
            return Err(fail("it is larger than 8 GiB".into()));
        }
        h.update(&buf[..n]);
        spool
            .write_all(&buf[..n])
            .map_err(|e| fail(format!("cannot spool: {e}")))?;
    }
    let actual = format!("sha256:{}", hex::encode(h.finalize()));
    if actual != d.hash.to_string() {
        return Err(BuildError::HashMismatch {
            what: format!("dependency '{}'", d.name),
            expected: d.hash.to_string(),
            actual,
        });
    }
    Ok(n_total)
}

/// The file name a copied (not extracted) dependency gets under a directory `dest`.
fn file_name(d: &Dependency) -> String {
    let s = match &d.source {
        Source::File(p) => p.as_str(),
        Source::Http(u) => u.split(['?', '#']).next().unwrap_or(u),
    };
    let n = s.rsplit('/').next().unwrap_or("");
    if n.is_empty() || n == "." || n == ".." {
        format!("{}-{}", d.name, d.version)
    } else {
        n.to_string()
    }
}

/// Layer entries for a fetched dependency. For `extract`, the archive in `spool` is
/// unpacked into `out_spool`, whose offsets the entries then use.
pub fn entries(
    d: &Dependency,
    spool: &mut std::fs::File,
    len: u64,
    out_spool: &mut std::fs::File,
    mtime: u64,
) -> Result<BTreeMap<String, LayerEntry>> {
    let mut out = BTreeMap::new();
    let dest_dir = d.dest.ends_with('/');
    if !d.extract {
        let path = if dest_dir {
            join_dest(&d.dest, &file_name(d))
        } else {
            join_dest(&d.dest, "")
        };
        add_parents(&mut out, &path, mtime);
        out.insert(
            path,
            LayerEntry {
                ty: tar::EntryType::Regular,
                mode: 0o644,
                uid: 0,
                gid: 0,
                mtime,
                link: None,
                dev: (0, 0),
                data: EntryData::Spool(0, len),
            },
        );
        return Ok(out);
    }
    let bad = |reason: String| BuildError::Fetch {
        name: d.name.clone(),
        source_url: d.source.to_string(),
        reason,
    };
    spool
        .seek(SeekFrom::Start(0))
        .map_err(|e| bad(format!("cannot rewind: {e}")))?;
    unpack(&mut *spool, &d.dest, out_spool, mtime, false, &bad)
}

/// Unpacks a tar (gzip-compressed or not) read from `rd` below the image directory
/// `dest` into layer entries whose bytes go to `out_spool`. With `owners`, entries keep
/// the archive's uid/gid (else root's). Paths with `..` are refused; links stay links.
pub(crate) fn unpack(
    rd: &mut dyn Read,
    dest: &str,
    out_spool: &mut std::fs::File,
    mtime: u64,
    owners: bool,
    bad: &dyn Fn(String) -> BuildError,
) -> Result<BTreeMap<String, LayerEntry>> {
    let mut out = BTreeMap::new();
    let base = join_dest(dest, "");
    if !base.is_empty() {
        add_parents(&mut out, &format!("{base}/x"), mtime);
    }
    let mut offset = out_spool
        .stream_position()
        .map_err(|e| bad(format!("cannot spool: {e}")))?;
    let rd = crate::compress::reader(rd).map_err(|e| bad(format!("cannot decompress it: {e}")))?;
    let mut ar = tar::Archive::new(rd);
    let entries = ar
        .entries()
        .map_err(|e| bad(format!("it is not a tar archive: {e}")))?;
    for e in entries {
        let mut e = e.map_err(|e| bad(format!("corrupt archive: {e}")))?;
        let raw = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let Some(rel) = clean(&raw) else {
            return Err(bad(format!(
                "archive entry '{raw}' escapes the destination"
            )));
        };
        if rel.is_empty() {
            continue;
        }
        let path = join_dest(dest, &rel);
        let h = e.header();
        let mode = h.mode().unwrap_or(0o644) & 0o7777;
        let ty = h.entry_type();
        let (uid, gid) = if owners {
            (h.uid().unwrap_or(0), h.gid().unwrap_or(0))
        } else {
            (0, 0)
        };
        let mut ent = LayerEntry {
            ty,
            mode,
            uid,
            gid,
            mtime,
            link: None,
            dev: (0, 0),
            data: EntryData::None,
        };
        match ty {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                ent.ty = tar::EntryType::Regular;
                let n = std::io::copy(&mut e, out_spool)
                    .map_err(|e| bad(format!("cannot unpack: {e}")))?;
                ent.data = EntryData::Spool(offset, n);
                offset += n;
            }
            tar::EntryType::Directory => {}
            tar::EntryType::Symlink => {
                ent.link = Some(
                    String::from_utf8_lossy(&e.link_name_bytes().unwrap_or_default()).into_owned(),
                );
            }
            tar::EntryType::Link => {
                let l =
                    String::from_utf8_lossy(&e.link_name_bytes().unwrap_or_default()).into_owned();
                let Some(l) = clean(&l) else {
                    return Err(bad(format!(
                        "archive hardlink '{raw}' escapes the destination"
                    )));
                };
                ent.link = Some(join_dest(dest, &l));
            }
            _ => continue,
        }
        add_parents(&mut out, &path, mtime);
        out.insert(path, ent);
    }
    Ok(out)
}

/// Normalizes an archive path; `None` if it contains `..`.
fn clean(p: &str) -> Option<String> {
    let mut parts = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}
