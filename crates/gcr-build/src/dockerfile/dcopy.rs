//! COPY and ADD with Docker's rules: sources relative to the context (never leaving it,
//! `.dockerignore` applied, globs per path segment) or to another stage or image
//! (`--from`, owners kept); a directory source copies its contents; several sources need
//! a destination ending in `/`; a relative destination is below WORKDIR and symlinks in it
//! resolve inside the image; `--chown` (names from the stage's own /etc/passwd, a lone user
//! also gives the group) and `--chmod` apply to what is copied and the directories made
//! for it; existing directories keep their metadata. ADD also unpacks local tar archives
//! and fetches URLs (with `--checksum`) when the build has a network. Heredoc sources
//! become files. A COPY is gathered first (its sources and their digest: the step's
//! cache key) and placed at its destination only when the cache has no layer for it.

use std::collections::BTreeMap;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use gcr_core::dockerfile::words::glob_match;
use gcr_core::dockerfile::CopyInstr;
use gcr_store::{EntryData, LayerEntry};
use sha2::{Digest as _, Sha256};

use super::view::{clean, Stat, View};
use crate::context::{self, FileIndex, Kind};
use crate::error::{BuildError, Result};
use crate::ignore::Ignore;

/// Where COPY sources come from.
pub enum Source<'a> {
    Context {
        ctx: &'a Path,
        ignore: &'a Ignore,
        index: &'a mut FileIndex,
    },
    /// Another stage or an image: its filesystem and a digest naming its content.
    Image { view: View, digest: String },
}

/// What a COPY produced: entries and the spool holding their bytes.
pub struct Copied {
    pub entries: BTreeMap<String, LayerEntry>,
    pub spool: std::fs::File,
}

/// Everything a COPY needs besides its sources (already expanded).
pub struct CopyPlan<'a> {
    pub instr: &'a CopyInstr,
    pub srcs: Vec<String>,
    /// Absolute (WORKDIR applied), trailing `/` kept.
    pub dest: String,
    pub owner: Option<(u32, u32)>,
    pub chmod: Option<u32>,
    pub mtime: u64,
    pub network: bool,
    pub tmp: PathBuf,
    /// Heredoc bodies, expanded when they should be.
    pub heredocs: Vec<(String, String)>,
}

fn usage(m: String) -> BuildError {
    BuildError::Usage(m)
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Parses `--chmod` (octal).
pub fn parse_chmod(s: &str) -> std::result::Result<u32, String> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("invalid --chmod '{s}'; use an octal mode such as 0755"))
}

/// Matches a context pattern (cleaned, relative) against the context, per segment.
fn glob_context(ctx: &Path, pattern: &str, ignore: &Ignore) -> Result<Vec<String>> {
    let mut cur: Vec<String> = vec![String::new()];
    for seg in pattern.split('/').filter(|s| !s.is_empty()) {
        let mut next = Vec::new();
        for base in &cur {
            let dir = ctx.join(base);
            if !has_glob(seg) {
                let rel = if base.is_empty() {
                    seg.to_string()
                } else {
                    format!("{base}/{seg}")
                };
                if std::fs::symlink_metadata(ctx.join(&rel)).is_ok() {
                    next.push(rel);
                }
                continue;
            }
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut names: Vec<String> = rd
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| glob_match(seg.as_bytes(), n.as_bytes()))
                .collect();
            names.sort();
            for n in names {
                let rel = if base.is_empty() {
                    n
                } else {
                    format!("{base}/{n}")
                };
                if ignore.is_empty() || !ignore.excluded(&rel) {
                    next.push(rel);
                }
            }
        }
        cur = next;
    }
    Ok(cur)
}

/// A context source cleaned; an error if it climbs out of the context.
fn context_rel(src: &str) -> Result<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in src.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(usage(format!(
                        "COPY source '{src}' is outside the build context; sources must be inside the context directory"
                    )));
                }
            }
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

pub(super) fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// One source: the name it takes in a destination directory, its entries (relative to
/// it) and whether it is an archive ADD unpacks.
type Item = (String, Vec<(String, LayerEntry)>, bool);

/// The sources of a COPY, read far enough to know their digest (context files through
/// the file index, never re-read when unchanged), before anything is placed.
pub struct Gathered {
    items: Vec<Item>,
    spool: std::fs::File,
    pub input: String,
    pub files: usize,
}

/// Collects the sources of a COPY or ADD and the digest of their content.
pub fn gather(plan: &CopyPlan<'_>, source: Source<'_>) -> Result<Gathered> {
    let mut spool = tempfile::tempfile_in(&plan.tmp)
        .map_err(BuildError::io("cannot create a temp file in", &plan.tmp))?;
    let mut h = Sha256::new();
    let mut files = 0;
    // (path of the item's top relative to its source root, entries relative to the item)
    let mut items: Vec<Item> = Vec::new();
    let mut source = source;
    for src in &plan.srcs {
        if let Some(name) = src.strip_prefix("<<") {
            let name = name.trim_start_matches('-').trim_matches(['"', '\'']);
            let Some((_, body)) = plan.heredocs.iter().find(|(n, _)| n == name) else {
                return Err(usage(format!("heredoc <<{name} has no body")));
            };
            h.update(format!("heredoc {name} {}\n", body.len()).as_bytes());
            h.update(body.as_bytes());
            let off = spool
                .stream_position()
                .map_err(BuildError::io("cannot spool", &plan.tmp))?;
            spool
                .write_all(body.as_bytes())
                .map_err(BuildError::io("cannot spool", &plan.tmp))?;
            let mut e = file_entry(0o644, plan.mtime);
            e.data = EntryData::Spool(off, body.len() as u64);
            items.push((name.to_string(), vec![(String::new(), e)], false));
            files += 1;
            continue;
        }
        if plan.instr.add && is_url(src) {
            let (name, e, digest) = fetch_url(plan, src, &mut spool)?;
            h.update(format!("url {src} {digest}\n").as_bytes());
            items.push((name, vec![(String::new(), e)], false));
            files += 1;
            continue;
        }
        match &mut source {
            Source::Context { ctx, ignore, index } => {
                let rel = context_rel(src)?;
                let matches = if has_glob(&rel) {
                    glob_context(ctx, &rel, ignore)?
                } else {
                    if !rel.is_empty() && !ignore.is_empty() && ignore.excluded(&rel) {
                        return Err(BuildError::MissingSource(format!(
                            "{src} (excluded by .dockerignore)"
                        )));
                    }
                    vec![rel.clone()]
                };
                if matches.is_empty() {
                    return Err(BuildError::MissingSource(src.clone()));
                }
                for m in matches {
                    let abs = context::resolve_src(ctx, &m)?;
                    let found = context::walk(&abs, &m, ignore, index)?;
                    h.update(format!("ctx {m} {}\n", context::tree_digest(&found)).as_bytes());
                    files += crate::copy::file_count(&found);
                    let is_dir = matches!(found.first().map(|f| &f.kind), Some(Kind::Dir));
                    let mut archive = false;
                    let entries: Vec<(String, LayerEntry)> = found
                        .into_iter()
                        .map(|f| {
                            let mut e = file_entry(f.mode, plan.mtime);
                            match f.kind {
                                Kind::Dir => e.ty = tar::EntryType::Directory,
                                Kind::Symlink(t) => {
                                    e.ty = tar::EntryType::Symlink;
                                    e.mode = 0o777;
                                    e.link = Some(t);
                                }
                                Kind::File { size, .. } => {
                                    if f.rel.is_empty()
                                        && plan.instr.add
                                        && crate::compress::is_tar(&f.abs)
                                    {
                                        archive = true;
                                    }
                                    e.data = EntryData::File(f.abs.clone(), size)
                                }
                            }
                            (f.rel, e)
                        })
                        .collect();
                    let name = Path::new(&m)
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    if archive {
                        items.push((name, entries, true));
                    } else {
                        items.push((if is_dir { String::new() } else { name }, entries, false));
                    }
                }
            }
            Source::Image { view, digest } => {
                let p = format!("/{}", clean(src));
                h.update(format!("image {digest} {p}\n").as_bytes());
                let Some(entries) = view.collect(&p, &mut spool, plan.mtime)? else {
                    return Err(BuildError::MissingSource(format!(
                        "{src} (in --from={})",
                        plan.instr.from.as_deref().unwrap_or("")
                    )));
                };
                files += entries
                    .iter()
                    .filter(|(_, e)| e.ty == tar::EntryType::Regular)
                    .count();
                let is_dir = entries
                    .first()
                    .is_some_and(|(_, e)| e.ty == tar::EntryType::Directory);
                let name = Path::new(&p)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                items.push((if is_dir { String::new() } else { name }, entries, false));
            }
        }
    }
    Ok(Gathered {
        items,
        spool,
        input: format!("sha256:{}", hex::encode(h.finalize())),
        files,
    })
}

/// Places gathered sources at the destination: the layer's entries.
pub fn place(plan: &CopyPlan<'_>, g: Gathered, dest_view: &View) -> Result<Copied> {
    let Gathered {
        items, mut spool, ..
    } = g;
    let multi = items.len() > 1 || plan.srcs.len() > 1;
    let dest_dir_syntax = plan.dest.ends_with('/') || plan.dest.ends_with("/.");
    if multi && !dest_dir_syntax {
        return Err(usage(format!(
            "{} with more than one source needs a destination directory ending with /: {}/",
            if plan.instr.add { "ADD" } else { "COPY" },
            plan.dest.trim_end_matches('/')
        )));
    }
    let dest = dest_view.resolve(&plan.dest)?;
    let dest_is_dir = dest_dir_syntax || matches!(dest_view.stat(&dest), Stat::Dir { .. });
    let mut out: BTreeMap<String, LayerEntry> = BTreeMap::new();
    let owner = plan.owner;
    for (name, entries, archive) in items {
        let top_is_dir = entries
            .first()
            .is_some_and(|(_, e)| e.ty == tar::EntryType::Directory);
        if archive {
            // ADD of a local archive: unpacked into the destination directory.
            let Some((_, EntryData::File(path, _))) =
                entries.first().map(|(r, e)| (r, e.data.clone()))
            else {
                continue;
            };
            let mut f = std::fs::File::open(&path).map_err(BuildError::io("cannot read", &path))?;
            spool
                .seek(SeekFrom::End(0))
                .map_err(BuildError::io("cannot spool", &plan.tmp))?;
            let bad = |r: String| usage(format!("ADD {}: {r}", path.display()));
            let unpacked = crate::deps::unpack(
                &mut f,
                &format!("/{dest}/"),
                &mut spool,
                plan.mtime,
                true,
                &bad,
            )?;
            for (p, mut e) in unpacked {
                if let Some((u, g)) = owner {
                    e.uid = u as u64;
                    e.gid = g as u64;
                }
                out.insert(p, e);
            }
            continue;
        }
        let top = if top_is_dir || !dest_is_dir {
            dest.clone()
        } else if dest.is_empty() {
            name.clone()
        } else {
            format!("{dest}/{name}")
        };
        for (rel, mut e) in entries {
            let path = match (top.is_empty(), rel.is_empty()) {
                (true, _) => rel,
                (false, true) => top.clone(),
                (false, false) => format!("{top}/{rel}"),
            };
            if path.is_empty() {
                continue;
            }
            if let Some((u, g)) = owner {
                e.uid = u as u64;
                e.gid = g as u64;
            }
            if let Some(m) = plan.chmod {
                if e.ty != tar::EntryType::Symlink {
                    e.mode = m;
                }
            }
            // The destination directory of a directory source keeps its metadata when it
            // exists, else it is made like any parent (0755, the --chown owner): a
            // source directory's own mode and --chmod apply to what is inside.
            if e.ty == tar::EntryType::Directory && path == top {
                e = match dest_view.stat(&path) {
                    Stat::Dir { mode, uid, gid } => {
                        LayerEntry::dir(mode, uid as u64, gid as u64, plan.mtime)
                    }
                    _ => {
                        let (u, g) = owner.unwrap_or((0, 0));
                        LayerEntry::dir(0o755, u as u64, g as u64, plan.mtime)
                    }
                };
            }
            out.insert(path, e);
        }
    }
    // Parent directories: as they are in the image, else made (0755, the --chown owner).
    let paths: Vec<String> = out.keys().cloned().collect();
    for p in paths {
        let mut acc = String::new();
        let parts: Vec<&str> = p.split('/').collect();
        for part in &parts[..parts.len() - 1] {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(part);
            if out.contains_key(&acc) {
                continue;
            }
            let e = match dest_view.stat(&acc) {
                Stat::Dir { mode, uid, gid } => {
                    LayerEntry::dir(mode, uid as u64, gid as u64, plan.mtime)
                }
                _ => {
                    let (u, g) = owner.unwrap_or((0, 0));
                    LayerEntry::dir(0o755, u as u64, g as u64, plan.mtime)
                }
            };
            out.insert(acc.clone(), e);
        }
    }
    spool
        .flush()
        .map_err(BuildError::io("cannot spool", &plan.tmp))?;
    Ok(Copied {
        entries: out,
        spool,
    })
}

fn file_entry(mode: u32, mtime: u64) -> LayerEntry {
    LayerEntry {
        ty: tar::EntryType::Regular,
        mode,
        uid: 0,
        gid: 0,
        mtime,
        link: None,
        dev: (0, 0),
        data: EntryData::None,
    }
}

/// ADD URL: fetched (only with a network), checked against `--checksum`.
fn fetch_url(
    plan: &CopyPlan<'_>,
    url: &str,
    spool: &mut std::fs::File,
) -> Result<(String, LayerEntry, String)> {
    if !plan.network {
        return Err(usage(format!(
            "ADD {url} needs the network, and this build has none; build without --network none (the build is then recorded as non-hermetic) or add the file to the context"
        )));
    }
    let fail = |r: String| usage(format!("ADD {url}: {r}"));
    let resp = ureq::get(url).call().map_err(|e| fail(e.to_string()))?;
    let mut rd = resp.into_body().into_reader();
    let off = spool.stream_position().map_err(|e| fail(e.to_string()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0u64;
    loop {
        let k = std::io::Read::read(&mut rd, &mut buf).map_err(|e| fail(e.to_string()))?;
        if k == 0 {
            break;
        }
        n += k as u64;
        if n > 8 << 30 {
            return Err(fail("it is larger than 8 GiB".into()));
        }
        h.update(&buf[..k]);
        spool
            .write_all(&buf[..k])
            .map_err(|e| fail(e.to_string()))?;
    }
    let digest = format!("sha256:{}", hex::encode(h.finalize()));
    if let Some(want) = &plan.instr.checksum {
        if *want != digest {
            return Err(BuildError::HashMismatch {
                what: format!("ADD {url}"),
                expected: want.clone(),
                actual: digest,
            });
        }
    }
    let name = url
        .split(['?', '#'])
        .next()
        .and_then(|u| u.rsplit('/').next())
        .filter(|n| !n.is_empty())
        .unwrap_or("index.html")
        .to_string();
    let mut e = file_entry(0o600, plan.mtime);
    e.data = EntryData::Spool(off, n);
    Ok((name, e, digest))
}
