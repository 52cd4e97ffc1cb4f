//! The deterministic layer writer shared by rootfs import and `gcr build`: a sorted map of
//! normalized entries becomes a tar (GNU headers, no user/group names, no atime/ctime, no PAX
//! records, no xattrs) compressed with gzip at a fixed level with no timestamp, no file name
//! and a fixed OS byte, written into the CAS. Also adopts a finished directory as the
//! snapshot of a chain ID and unpacks a layer's snapshot on demand.

use crate::error::{Result, StoreError};
use crate::images::NewLayer;
use crate::util::HashWriter;
use crate::Store;
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The media type of every layer gcr writes.
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Where an entry's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryData {
    /// No data (directories, links, devices, empty files).
    None,
    /// `(offset, length)` in the spool file given to [`Store::write_layer`].
    Spool(u64, u64),
    /// A file on disk and the length it must have.
    File(PathBuf, u64),
}

/// One normalized layer entry; its path is the map key (relative, no leading or trailing
/// `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerEntry {
    pub ty: tar::EntryType,
    /// Permission bits (`& 0o7777`).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    /// Symlink target, or hardlink target path (relative, like the keys).
    pub link: Option<String>,
    /// Device major/minor for char and block devices.
    pub dev: (u32, u32),
    pub data: EntryData,
}

impl LayerEntry {
    /// A directory entry.
    pub fn dir(mode: u32, uid: u64, gid: u64, mtime: u64) -> LayerEntry {
        LayerEntry {
            ty: tar::EntryType::Directory,
            mode,
            uid,
            gid,
            mtime,
            link: None,
            dev: (0, 0),
            data: EntryData::None,
        }
    }
}

impl Store {
    /// Writes `entries` (sorted by path, as the map is) as one deterministic gzip layer into
    /// the CAS and returns it. `spool` holds the bytes of [`EntryData::Spool`] entries.
    pub fn write_layer(
        &self,
        entries: &BTreeMap<String, LayerEntry>,
        mut spool: Option<&mut std::fs::File>,
    ) -> Result<NewLayer> {
        let tmp = tempfile::Builder::new()
            .prefix(&crate::tmpfiles::prefix("layer"))
            .tempfile_in(self.tmp_dir())
            .map_err(|e| StoreError::io("cannot create a temp file in", self.tmp_dir(), e))?;
        let tmp_path = tmp.path().to_path_buf();
        let wr = |e: std::io::Error| StoreError::io("cannot write", &tmp_path, e);
        let out_file = tmp.as_file().try_clone().map_err(wr)?;
        let gz_out = HashWriter::new(std::io::BufWriter::with_capacity(256 * 1024, out_file));
        let gz = flate2::GzBuilder::new()
            .mtime(0)
            .operating_system(255)
            .write(gz_out, flate2::Compression::new(6));
        let mut b = tar::Builder::new(HashWriter::new(gz));
        b.mode(tar::HeaderMode::Complete);
        for (path, it) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(it.ty);
            h.set_mode(it.mode);
            h.set_uid(it.uid);
            h.set_gid(it.gid);
            h.set_mtime(it.mtime);
            h.set_size(0);
            if matches!(it.ty, tar::EntryType::Char | tar::EntryType::Block) {
                h.set_device_major(it.dev.0).map_err(wr)?;
                h.set_device_minor(it.dev.1).map_err(wr)?;
            }
            let name = if it.ty == tar::EntryType::Directory {
                format!("{path}/")
            } else {
                path.clone()
            };
            match (&it.ty, &it.link, &it.data) {
                (tar::EntryType::Symlink | tar::EntryType::Link, Some(l), _) => {
                    b.append_link(&mut h, &name, l).map_err(wr)?;
                }
                (tar::EntryType::Regular, _, EntryData::Spool(off, len)) => {
                    let Some(sp) = spool.as_deref_mut() else {
                        return Err(StoreError::Archive(format!(
                            "layer entry '{path}' refers to a spool file that was not given"
                        )));
                    };
                    h.set_size(*len);
                    sp.seek(SeekFrom::Start(*off)).map_err(wr)?;
                    b.append_data(&mut h, &name, sp.take(*len)).map_err(wr)?;
                }
                (tar::EntryType::Regular, _, EntryData::File(p, len)) => {
                    let f =
                        std::fs::File::open(p).map_err(|e| StoreError::io("cannot read", p, e))?;
                    h.set_size(*len);
                    let mut r = ExactReader {
                        inner: f.take(*len),
                        left: *len,
                        path: p,
                    };
                    b.append_data(&mut h, &name, &mut r).map_err(wr)?;
                }
                _ => b.append_data(&mut h, &name, std::io::empty()).map_err(wr)?,
            }
        }
        let tar_hw = b.into_inner().map_err(wr)?;
        let diff_id = tar_hw.digest();
        let mut gz_out = tar_hw.inner.finish().map_err(wr)?;
        gz_out.flush().map_err(wr)?;
        let (digest, size) = (gz_out.digest(), gz_out.count);
        drop(gz_out);
        self.commit_temp(tmp, &digest, None)?;
        Ok(NewLayer {
            digest,
            diff_id,
            media_type: LAYER_MEDIA_TYPE.into(),
            size,
        })
    }

    /// The snapshot directory of a layer whose chain ID is `chain_id`, unpacking the layer
    /// blob into it when missing.
    pub fn layer_snapshot(&self, digest: &str, diff_id: &str, chain_id: &str) -> Result<PathBuf> {
        let key: Option<String> = {
            use rusqlite::OptionalExtension;
            self.conn
                .query_row(
                    "SELECT key FROM snapshots WHERE chain_id = ?1",
                    [chain_id],
                    |r| r.get(0),
                )
                .optional()?
        };
        let key = match key {
            Some(k) if self.snapshots_dir().join(&k).is_dir() => k,
            _ => self.unpack_snapshot(digest, diff_id, chain_id)?,
        };
        Ok(self.snapshots_dir().join(key))
    }

    /// Moves a finished directory (e.g. a build step's overlay upper dir, whose overlay
    /// whiteouts are what a lowerdir needs) into place as the snapshot of `chain_id` and
    /// records it. If another process already made that snapshot, `dir` is left alone.
    pub fn adopt_snapshot(
        &self,
        dir: &Path,
        chain_id: &str,
        diff_id: &str,
        size: u64,
    ) -> Result<PathBuf> {
        let key = crate::snapshots::snapshot_key(chain_id)?;
        let dest = self.snapshots_dir().join(&key);
        let mut sum = None;
        if !dest.exists() {
            sum = crate::snapdigest::digest_tree(dir).ok();
            crate::snapshots::move_into_place(dir, &dest)?;
        }
        self.record_snapshot(chain_id, &key, diff_id, size, sum.as_ref())?;
        Ok(dest)
    }

    /// The store's temporary directory (same filesystem as blobs and snapshots).
    pub fn temp_dir(&self) -> PathBuf {
        self.tmp_dir()
    }
}

/// Reads exactly `left` bytes or fails (a file that shrank while being archived).
struct ExactReader<'a, R> {
    inner: R,
    left: u64,
    path: &'a Path,
}

impl<R: Read> Read for ExactReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.left > 0 && !buf.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "{} changed size while it was being archived",
                    self.path.display()
                ),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}
