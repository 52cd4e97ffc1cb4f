//! The build context: resolving a copy `src` safely inside it, walking it (honouring
//! `.gcrignore`, never following symlinks), and digesting files through the file-metadata
//! index so an unchanged file is never re-read (and scanning for secrets what is read).

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection};
use sha2::{Digest as _, Sha256};

use crate::error::{BuildError, Result};
use crate::ignore::Ignore;
use crate::scan::Hit;

/// What a context entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File { size: u64, digest: String },
    Dir,
    Symlink(String),
}

/// One entry found under a copy source.
#[derive(Debug, Clone)]
pub struct Found {
    /// Relative to the copy source (`""` for the source itself).
    pub rel: String,
    pub abs: PathBuf,
    pub mode: u32,
    pub kind: Kind,
}

/// The file-metadata index (path, size, mtime, ctime, inode → digest), loaded for one
/// context with one range query and written back in one transaction.
///
/// With a secret scan, every file read for its digest is scanned (the same bytes, on the
/// scan thread), and only files without hits are written back: a row then also means "scanned clean". A
/// marker row (the context's path with a trailing `/`, which no file has) records the
/// rules the rows were scanned under; rows without it (an older gcr, other rules, or a
/// build that did not scan) are not trusted and their files are read again.
pub struct FileIndex {
    known: HashMap<String, (i64, i64, i64, i64, String)>,
    changed: Vec<(String, i64, i64, i64, i64, String)>,
    /// Files whose content was read (for the output and tests).
    pub hashed: usize,
    /// Scan what is read (the scanner is compiled when the first file is read).
    scan: bool,
    marker: String,
    /// The rows under the context were not scanned under these rules: drop them on save.
    reset: bool,
    /// The scan thread, started at the first file read.
    worker: Option<crate::scan::Worker>,
    /// Files with hits (after [`FileIndex::finish_scan`]), never written back.
    pub hits: Vec<(PathBuf, Vec<Hit>)>,
}

impl FileIndex {
    /// Loads every index row under `ctx` (a canonical directory); with `scan`, what is read
    /// is scanned (and rows not scanned under the current rules are distrusted).
    pub fn load(conn: &Connection, ctx: &Path, scan: bool) -> Result<FileIndex> {
        let lo = format!("{}/", ctx.display());
        let hi = format!("{}0", ctx.display());
        let mut st = conn.prepare_cached(
            "SELECT path, size, mtime_ns, ctime_ns, ino, digest FROM build_file_index WHERE path >= ?1 AND path < ?2",
        )?;
        let mut known = HashMap::new();
        let mut rows = st.query(params![lo, hi])?;
        while let Some(r) = rows.next()? {
            known.insert(
                r.get::<_, String>(0)?,
                (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?),
            );
        }
        let marked = known.remove(&lo).map(|row| row.4);
        let reset = scan && !known.is_empty() && marked.as_deref() != Some(scan_marker().as_str());
        if reset {
            known.clear();
        }
        Ok(FileIndex {
            known,
            changed: Vec::new(),
            hashed: 0,
            scan,
            marker: lo,
            reset,
            worker: None,
            hits: Vec::new(),
        })
    }

    /// The sha256 digest of a regular file, from the index when its metadata is unchanged.
    pub fn digest(&mut self, path: &Path, md: &std::fs::Metadata) -> Result<String> {
        let key = path.display().to_string();
        let stat = (
            md.size() as i64,
            md.mtime() * 1_000_000_000 + md.mtime_nsec(),
            md.ctime() * 1_000_000_000 + md.ctime_nsec(),
            md.ino() as i64,
        );
        if let Some((s, m, c, i, d)) = self.known.get(&key) {
            if (*s, *m, *c, *i) == stat {
                return Ok(d.clone());
            }
        }
        self.hashed += 1;
        let d = if self.scan {
            let (d, bytes) = crate::scan::read_for_scan(path, md.size())?;
            if let Some(bytes) = bytes {
                let w = match &mut self.worker {
                    Some(w) => w,
                    None => self.worker.insert(crate::scan::Worker::start()?),
                };
                w.send(path.to_path_buf(), bytes)?;
            }
            d
        } else {
            sha256_file(path)?
        };
        self.changed
            .push((key, stat.0, stat.1, stat.2, stat.3, d.clone()));
        Ok(d)
    }

    /// Waits for the scan of every file read so far: fills [`FileIndex::hits`] and keeps
    /// the files with hits out of the index.
    pub fn finish_scan(&mut self) -> Result<()> {
        let Some(mut w) = self.worker.take() else {
            return Ok(());
        };
        let found = w.finish()?;
        if !found.is_empty() {
            let hit: std::collections::HashSet<String> =
                found.iter().map(|(p, _)| p.display().to_string()).collect();
            self.changed.retain(|row| !hit.contains(&row.0));
        }
        self.hits.extend(found);
        Ok(())
    }

    /// Writes new and changed rows back (first dropping the context's rows when they were
    /// not trusted), with the marker of the rules they were scanned under; when not
    /// scanning, removes the markers of this context and the contexts above it (whose
    /// ranges hold these rows too).
    pub fn save(&mut self, store: &gcr_store::Store) -> Result<()> {
        self.finish_scan()?;
        if self.changed.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.changed);
        let marker = self.scan.then(scan_marker);
        let ctx = PathBuf::from(self.marker.trim_end_matches('/'));
        store.transaction(|tx| -> Result<()> {
            if self.reset {
                tx.execute(
                    "DELETE FROM build_file_index WHERE path >= ?1 AND path < ?2",
                    params![self.marker, format!("{}0", ctx.display())],
                )?;
            }
            let mut st = tx.prepare_cached(
                "INSERT OR REPLACE INTO build_file_index(path, size, mtime_ns, ctime_ns, ino, digest) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for (p, s, m, c, i, d) in &rows {
                st.execute(params![p, s, m, c, i, d])?;
            }
            match &marker {
                Some(m) => {
                    st.execute(params![self.marker, 0, 0, 0, 0, m])?;
                }
                None => {
                    let mut del =
                        tx.prepare_cached("DELETE FROM build_file_index WHERE path = ?1")?;
                    for a in ctx.ancestors() {
                        del.execute(params![format!("{}/", a.display())])?;
                    }
                }
            }
            Ok(())
        })
    }
}

/// The marker row's digest column: which rules the rows were scanned under.
fn scan_marker() -> String {
    format!("scan:{}", crate::scan::rules_digest())
}

/// sha256 of a file's content as `sha256:<hex>`.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(BuildError::io("cannot read", path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(BuildError::io("cannot read", path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

/// Resolves a copy `src` (normalized, relative) inside the canonical context `ctx`.
pub fn resolve_src(ctx: &Path, src: &str) -> Result<PathBuf> {
    let shown = if src.is_empty() { "." } else { src };
    let p = ctx.join(src.trim_end_matches('/'));
    if std::fs::symlink_metadata(&p).is_err() {
        return Err(BuildError::MissingSource(shown.to_string()));
    }
    let real = p
        .canonicalize()
        .map_err(|_| BuildError::MissingSource(shown.to_string()))?;
    if !real.starts_with(ctx) {
        return Err(BuildError::EscapingSource(shown.to_string()));
    }
    Ok(real)
}

/// Walks a copy source: the source itself, then (for a directory) everything below it in
/// sorted order, skipping what `.gcrignore` excludes. `ctx_rel` is the source's path
/// relative to the context (for matching ignore rules).
pub fn walk(
    src: &Path,
    ctx_rel: &str,
    ignore: &Ignore,
    index: &mut FileIndex,
) -> Result<Vec<Found>> {
    let mut out = Vec::new();
    let md = std::fs::metadata(src).map_err(BuildError::io("cannot read", src))?;
    let top = entry(src, String::new(), &md, index)?;
    let is_dir = matches!(top.kind, Kind::Dir);
    out.push(top);
    if is_dir {
        walk_dir(src, "", ctx_rel, ignore, index, &mut out)?;
    }
    Ok(out)
}

fn walk_dir(
    dir: &Path,
    rel: &str,
    ctx_rel: &str,
    ignore: &Ignore,
    index: &mut FileIndex,
    out: &mut Vec<Found>,
) -> Result<()> {
    let rd = std::fs::read_dir(dir).map_err(BuildError::io("cannot list", dir))?;
    let entries = rd
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(BuildError::io("cannot list", dir))?;
    let mut names = stat_all(entries)?;
    names.sort_by(|a, b| a.0.cmp(&b.0));
    for (n, md) in names {
        let Some(name) = n.to_str() else {
            return Err(BuildError::Usage(format!(
                "file name {:?} in {} is not valid UTF-8; rename it or list it in .gcrignore",
                n,
                dir.display()
            )));
        };
        let child_rel = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        let in_ctx = if ctx_rel.is_empty() || ctx_rel == "." {
            child_rel.clone()
        } else {
            format!("{ctx_rel}/{child_rel}")
        };
        let abs = dir.join(name);
        let excluded = !ignore.is_empty() && ignore.excluded(&in_ctx);
        if excluded && !(md.is_dir() && ignore.may_reinclude_below(&in_ctx)) {
            continue;
        }
        let ft = md.file_type();
        if !(ft.is_file() || ft.is_dir() || ft.is_symlink()) {
            continue; // sockets, fifos and devices are not build inputs
        }
        if !excluded {
            out.push(entry(&abs, child_rel.clone(), &md, index)?);
        }
        if ft.is_dir() {
            walk_dir(&abs, &child_rel, ctx_rel, ignore, index, out)?;
        }
    }
    Ok(())
}

/// Directories with at least this many entries are stat()ed by two threads.
const PARALLEL_STAT: usize = 256;

/// The names and metadata of a directory's entries. DirEntry::metadata is an fstatat of the
/// name under the open directory (no symlink followed, no walk of the whole path again: a
/// third of a cached rebuild's time went to path lookups before). A cached rebuild is
/// mostly these system calls, so a large directory's are split between this thread and
/// one more (a 1,000-file directory: ~1.5 ms of statx on one core).
fn stat_all(
    entries: Vec<std::fs::DirEntry>,
) -> Result<Vec<(std::ffi::OsString, std::fs::Metadata)>> {
    fn stat(es: &[std::fs::DirEntry]) -> Result<Vec<(std::ffi::OsString, std::fs::Metadata)>> {
        // Sized up front (a collect through `?` grows and copies ~200-byte entries).
        let mut out = Vec::with_capacity(es.len());
        for e in es {
            let md = e
                .metadata()
                .map_err(BuildError::io("cannot read", e.path()))?;
            out.push((e.file_name(), md));
        }
        Ok(out)
    }
    if entries.len() < PARALLEL_STAT {
        return stat(&entries);
    }
    let (a, b) = entries.split_at(entries.len() / 2);
    std::thread::scope(|sc| {
        let other = sc.spawn(|| stat(b));
        let mut first = stat(a)?;
        let second = other.join().map_err(|_| {
            BuildError::Usage("a thread reading the build context stopped".into())
        })??;
        first.extend(second);
        Ok(first)
    })
}

fn entry(abs: &Path, rel: String, md: &std::fs::Metadata, index: &mut FileIndex) -> Result<Found> {
    let ft = md.file_type();
    let kind = if ft.is_symlink() {
        let t = std::fs::read_link(abs).map_err(BuildError::io("cannot read link", abs))?;
        Kind::Symlink(t.to_string_lossy().into_owned())
    } else if ft.is_dir() {
        Kind::Dir
    } else {
        Kind::File {
            size: md.size(),
            digest: index.digest(abs, md)?,
        }
    };
    Ok(Found {
        rel,
        abs: abs.to_path_buf(),
        mode: md.mode() & 0o7777,
        kind,
    })
}

/// A digest of the whole walked tree (names, types, modes, sizes and content digests).
pub fn tree_digest(found: &[Found]) -> String {
    let mut h = Sha256::new();
    for f in found {
        let line = match &f.kind {
            Kind::File { size, digest } => format!("f {:o} {size} {digest} {}\n", f.mode, f.rel),
            Kind::Dir => format!("d {:o} {}\n", f.mode, f.rel),
            Kind::Symlink(t) => format!("l {t} {}\n", f.rel),
        };
        h.update(line.as_bytes());
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// A digest of a file or a whole directory tree (names, types, modes and contents), read
/// without the index: a `RUN --mount=type=bind` source's part of the step's cache key.
pub fn sha256_tree(p: &Path) -> Result<String> {
    fn walk(p: &Path, rel: &str, h: &mut Sha256) -> Result<()> {
        let md = std::fs::symlink_metadata(p).map_err(BuildError::io("cannot read", p))?;
        let ft = md.file_type();
        if ft.is_symlink() {
            let t = std::fs::read_link(p).map_err(BuildError::io("cannot read link", p))?;
            h.update(format!("l {} {rel}\n", t.display()).as_bytes());
        } else if ft.is_dir() {
            h.update(format!("d {:o} {rel}\n", md.mode() & 0o7777).as_bytes());
            let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(p)
                .map_err(BuildError::io("cannot list", p))?
                .filter_map(|e| e.ok().map(|e| e.file_name()))
                .collect();
            names.sort();
            for n in names {
                let r = format!("{rel}/{}", n.to_string_lossy());
                walk(&p.join(&n), &r, h)?;
            }
        } else if ft.is_file() {
            let d = sha256_file(p)?;
            h.update(format!("f {:o} {d} {rel}\n", md.mode() & 0o7777).as_bytes());
        }
        Ok(())
    }
    let mut h = Sha256::new();
    walk(p, "", &mut h)?;
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_directory_walks_in_order_with_every_digest() {
        let d = tempfile::tempdir().unwrap();
        let store = gcr_store::Store::open(&d.path().join("root")).unwrap();
        let ctx = d.path().join("ctx");
        std::fs::create_dir_all(ctx.join("big/sub")).unwrap();
        let n = PARALLEL_STAT + 45;
        for i in 0..n {
            std::fs::write(ctx.join(format!("big/f{i:04}")), format!("file {i}")).unwrap();
        }
        std::fs::write(ctx.join("big/sub/x"), "x").unwrap();
        std::os::unix::fs::symlink("f0001", ctx.join("big/link")).unwrap();
        let ctx = ctx.canonicalize().unwrap();
        let mut index = FileIndex::load(store.conn(), &ctx, false).unwrap();
        let found = walk(&ctx.join("big"), "big", &Ignore::default(), &mut index).unwrap();
        // The source, n files, the link, sub and its file.
        assert_eq!(found.len(), 1 + n + 3);
        let rels: Vec<&str> = found.iter().map(|f| f.rel.as_str()).collect();
        assert_eq!(rels[1], "f0000");
        assert_eq!(rels[n], format!("f{:04}", n - 1));
        assert_eq!(&rels[n + 1..], ["link", "sub", "sub/x"]);
        for f in &found {
            if let Kind::File { digest, size } = &f.kind {
                assert_eq!(*digest, sha256_file(&f.abs).unwrap(), "{}", f.rel);
                assert_eq!(*size, std::fs::metadata(&f.abs).unwrap().len());
            }
        }
        assert!(matches!(&found[n + 1].kind, Kind::Symlink(t) if t == "f0001"));
    }
}
