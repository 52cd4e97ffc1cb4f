//! `gcr cp`, with `docker cp`'s rules: `SRC` a file or a directory (`SRC/.` for its
//! contents), `DEST` an existing directory (the source goes inside it), a new name, or `-`
//! for a tar stream; modes and times kept, owners only with `-a` (else the caller's on the
//! host, root in the container); a symlink as `SRC` is copied as a link unless `-L`.
//!
//! The container's side is never resolved by the host's path walk. Out of a container the
//! files are read through gcr-runtime's layer view (each name opened with `O_NOFOLLOW`
//! under a directory descriptor, symlinks resolved inside the container's root): for a
//! running container rooted at `/proc/PID/root`, so its volumes and tmpfs mounts are seen
//! as it sees them; for a stopped one over its layers. Into a container every directory
//! is reached with `openat2(RESOLVE_IN_ROOT)` under the container's root, and every name
//! created with `*at` calls and `O_NOFOLLOW` under it: for a running container its
//! `/proc/PID/root`, for a stopped one its overlay, mounted in a mount namespace private to
//! a helper thread (it goes away with the thread, whatever happens).

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use gcr_runtime::layerfs::{Dir, Node};
use rustix::fs::{Mode, OFlags, ResolveFlags, Timespec, Timestamps};

use super::record::Record;
use crate::{Engine, EngineError, State};

/// One side of a copy.
pub enum Side {
    /// `CONTAINER:PATH`.
    Container(String, String),
    Local(String),
}

#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    /// `-a`: keep owners.
    pub archive: bool,
    /// `-L`: follow a symlink given as the source.
    pub follow_link: bool,
}

fn usage(m: String) -> EngineError {
    EngineError::Usage(m)
}

fn io_at(what: String) -> impl FnOnce(io::Error) -> EngineError {
    move |e| EngineError::Io(what, e)
}

/// `SRC/.` (or `SRC/..` never): copy the directory's contents, not the directory.
fn contents_only(p: &str) -> bool {
    p == "." || p.ends_with("/.")
}

fn base_name(p: &str) -> String {
    let t = p.trim_end_matches("/.").trim_end_matches('/');
    t.rsplit('/').next().unwrap_or("").to_string()
}

/// The pid whose root is the running container's, checked against its start time.
fn live_pid(r: &Record) -> Option<i32> {
    let pid = r.pid?;
    (matches!(r.state, State::Running | State::Paused)
        && super::procfs::running(pid, r.extra.pid_start))
    .then_some(pid)
}

fn timespec(secs: i64, nsec: i64) -> Timespec {
    Timespec {
        tv_sec: secs,
        tv_nsec: nsec as _,
    }
}

/// Writes a node of a container's view to `dest` on the host.
fn write_local(node: Node, dest: &Path, o: &CopyOptions) -> io::Result<()> {
    match node {
        Node::Dir(d) => {
            let m = d.metadata()?;
            match std::fs::symlink_metadata(dest) {
                Ok(x) if x.is_dir() => {}
                Ok(_) => {
                    return Err(io::Error::other(format!(
                        "cannot overwrite non-directory {} with a directory",
                        dest.display()
                    )))
                }
                Err(_) => std::fs::create_dir(dest)?,
            }
            for name in d.names()? {
                if let Some(child) = d.child(&name)? {
                    write_local(child, &dest.join(&name), o)?;
                }
            }
            finish_local(dest, &m, o)
        }
        Node::File(mut f) => {
            let m = f.metadata()?;
            if std::fs::symlink_metadata(dest).is_ok_and(|x| !x.is_dir()) {
                std::fs::remove_file(dest)?;
            }
            let mut out = std::fs::File::create(dest)?;
            io::copy(&mut f, &mut out)?;
            finish_local(dest, &m, o)
        }
        Node::Symlink { target, uid, gid } => {
            if std::fs::symlink_metadata(dest).is_ok_and(|x| !x.is_dir()) {
                std::fs::remove_file(dest)?;
            }
            std::os::unix::fs::symlink(&target, dest)?;
            if o.archive {
                std::os::unix::fs::lchown(dest, Some(uid), Some(gid))?;
            }
            Ok(())
        }
        Node::Special => Ok(()),
    }
}

fn finish_local(dest: &Path, m: &std::fs::Metadata, o: &CopyOptions) -> io::Result<()> {
    if o.archive {
        std::os::unix::fs::chown(dest, Some(m.uid()), Some(m.gid()))?;
    }
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(m.mode() & 0o7777))?;
    let t = timespec(m.mtime(), m.mtime_nsec());
    rustix::fs::utimensat(
        rustix::fs::CWD,
        dest,
        &Timestamps {
            last_access: t,
            last_modification: t,
        },
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )?;
    Ok(())
}

/// openat2(2) of `path` under `dir` with `flags` (close-on-exec) and `resolve`; EAGAIN (a
/// `..` resolved while a rename or mount elsewhere on the host moved things, so the kernel
/// could not rule out an escape) is retried, as openat2(2) advises: on a busy host it is
/// no answer about the path.
pub(crate) fn openat2(
    dir: BorrowedFd<'_>,
    path: &str,
    flags: OFlags,
    resolve: ResolveFlags,
) -> io::Result<OwnedFd> {
    let mut tries = 0;
    loop {
        match rustix::fs::openat2(dir, path, flags | OFlags::CLOEXEC, Mode::empty(), resolve) {
            Err(rustix::io::Errno::AGAIN) if tries < 128 => tries += 1,
            r => return Ok(r?),
        }
    }
}

/// The container's root for writing, as a directory descriptor.
struct Root(OwnedFd);

impl Root {
    /// Opens `path` (inside the container) with `flags`, resolved in its root.
    fn open(&self, path: &str, flags: OFlags) -> io::Result<OwnedFd> {
        let rel = path.trim_start_matches('/');
        let rel = if rel.is_empty() { "." } else { rel };
        openat2(
            self.0.as_fd(),
            rel,
            flags,
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )
    }

    /// Opens `path` (inside the container) as a directory.
    fn dir(&self, path: &str) -> io::Result<OwnedFd> {
        self.open(path, OFlags::RDONLY | OFlags::DIRECTORY)
    }

    /// What `path` is inside the container (symlinks followed inside its root).
    fn kind(&self, path: &str) -> Option<rustix::fs::FileType> {
        let fd = self.open(path, OFlags::PATH).ok()?;
        rustix::fs::fstat(&fd)
            .ok()
            .map(|s| rustix::fs::FileType::from_raw_mode(s.st_mode))
    }
}

/// Owner and mode of a host file as they go into the container.
fn owner(m: &std::fs::Metadata, o: &CopyOptions) -> (u32, u32) {
    if o.archive {
        (m.uid(), m.gid())
    } else {
        (0, 0)
    }
}

/// Removes `name` under `dir` unless it is a directory (a file or link being replaced).
fn clear(dir: &OwnedFd, name: &OsStr) -> io::Result<bool> {
    match rustix::fs::statat(dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) if rustix::fs::FileType::from_raw_mode(st.st_mode).is_dir() => Ok(true),
        Ok(_) => {
            rustix::fs::unlinkat(dir, name, rustix::fs::AtFlags::empty())?;
            Ok(false)
        }
        Err(rustix::io::Errno::NOENT) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn set_times(fd: &OwnedFd, m: &std::fs::Metadata) -> io::Result<()> {
    let t = timespec(m.mtime(), m.mtime_nsec());
    rustix::fs::futimens(
        fd,
        &Timestamps {
            last_access: t,
            last_modification: t,
        },
    )?;
    Ok(())
}

/// Copies the host path `src` into the container directory `dir` as `name`.
fn write_in(dir: &OwnedFd, name: &OsStr, src: &Path, o: &CopyOptions) -> io::Result<()> {
    let m = std::fs::symlink_metadata(src)?;
    let (uid, gid) = owner(&m, o);
    let ft = m.file_type();
    if ft.is_dir() {
        if !clear(dir, name)? {
            rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o700))?;
        }
        let sub = rustix::fs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let mut entries: Vec<_> = std::fs::read_dir(src)?.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            write_in(&sub, &e.file_name(), &e.path(), o)?;
        }
        rustix::fs::fchown(
            &sub,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
        )?;
        rustix::fs::fchmod(&sub, Mode::from_raw_mode(m.mode() & 0o7777))?;
        set_times(&sub, &m)
    } else if ft.is_symlink() {
        clear(dir, name)?;
        let target = std::fs::read_link(src)?;
        rustix::fs::symlinkat(target.as_os_str(), dir, name)?;
        rustix::fs::chownat(
            dir,
            name,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )?;
        Ok(())
    } else if ft.is_file() {
        if clear(dir, name)? {
            return Err(io::Error::other(format!(
                "cannot overwrite directory {} with a file",
                Path::new(name).display()
            )));
        }
        let fd = rustix::fs::openat(
            dir,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )?;
        let mut out = std::fs::File::from(fd);
        io::copy(&mut std::fs::File::open(src)?, &mut out)?;
        let fd = OwnedFd::from(out);
        rustix::fs::fchown(
            &fd,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
        )?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(m.mode() & 0o7777))?;
        set_times(&fd, &m)
    } else {
        // Devices, fifos and sockets are not copied (docker cp skips them too).
        Ok(())
    }
}

impl Engine {
    /// The merged view of container `r`'s files for reading.
    fn read_view(&self, r: &Record) -> Result<Dir, EngineError> {
        let what = || format!("reading the files of container {}", r.name);
        match live_pid(r) {
            // `/.`: the magic link is followed (the view opens names without following).
            Some(pid) => Dir::root(&[format!("/proc/{pid}/root/.")]).map_err(io_at(what())),
            None => Dir::root(&self.container_layers(r)).map_err(io_at(what())),
        }
    }

    /// `gcr cp CONTAINER:SRC DEST` (`DEST` `-`: a tar stream on `out`).
    pub fn copy_out(
        &self,
        key: &str,
        src: &str,
        dest: &str,
        o: &CopyOptions,
        out: &mut dyn Write,
    ) -> Result<(), EngineError> {
        let r = self.container(key)?;
        let view = self.read_view(&r)?;
        let follow = o.follow_link || src.ends_with('/') || contents_only(src);
        let missing = || {
            EngineError::NotFound(format!(
                "could not find the file {src} in container {}",
                r.name
            ))
        };
        let node = view.lookup(Path::new(src), follow).map_err(|_| missing())?;
        let name = base_name(src);
        if dest == "-" {
            let mut tar = tar::Builder::new(out);
            let res = match node {
                Node::Dir(d) if contents_only(src) => {
                    super::export::append_children(&mut tar, &d, "")
                }
                n => super::export::append_node(
                    &mut tar,
                    n,
                    if name.is_empty() { "." } else { &name },
                ),
            };
            return res
                .and_then(|()| tar.finish())
                .map_err(io_at(format!("copying {src} out of {}", r.name)));
        }
        let dest_path = Path::new(dest);
        let dest_is_dir = dest_path.is_dir();
        if !dest_is_dir && dest.ends_with('/') {
            return Err(usage(format!(
                "destination directory {dest} does not exist; create it first"
            )));
        }
        let target: PathBuf = match (&node, dest_is_dir) {
            (Node::Dir(_), true) if contents_only(src) => dest_path.to_path_buf(),
            (_, true) if !name.is_empty() => dest_path.join(&name),
            _ => {
                let parent = dest_path
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                if !parent.is_dir() {
                    return Err(usage(format!(
                        "the parent directory of {dest} does not exist; create it first"
                    )));
                }
                dest_path.to_path_buf()
            }
        };
        write_local(node, &target, o).map_err(io_at(format!(
            "copying {src} out of container {} to {}",
            r.name,
            target.display()
        )))
    }

    /// `gcr cp SRC CONTAINER:DEST` (`SRC` `-`: a tar stream from `input`, unpacked in DEST).
    pub fn copy_in(
        &self,
        src: &str,
        key: &str,
        dest: &str,
        o: &CopyOptions,
        input: &mut (dyn Read + Send),
    ) -> Result<(), EngineError> {
        let r = self.container(key)?;
        if src != "-" && std::fs::symlink_metadata(src).is_err() {
            return Err(EngineError::NotFound(format!(
                "could not find the file {src} on this host; check the path"
            )));
        }
        let what = format!("copying {src} into container {}:{dest}", r.name);
        match live_pid(&r) {
            Some(pid) => {
                let root = rustix::fs::open(
                    format!("/proc/{pid}/root"),
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| EngineError::Io(what.clone(), e.into()))?;
                put(&Root(root), src, dest, o, input, &what)
            }
            None => self.with_mounted(&r, |root| put(root, src, dest, o, input, &what)),
        }
    }

    /// Runs `f` with stopped container `r`'s overlay mounted read-write in a mount
    /// namespace of a helper thread's own.
    fn with_mounted<T: Send>(
        &self,
        r: &Record,
        f: impl FnOnce(&Root) -> Result<T, EngineError> + Send,
    ) -> Result<T, EngineError> {
        let dir = self.container_dir(&r.id);
        let lowers = r.config.resolved.lowers.join(":");
        let tmp = tempfile::Builder::new()
            .prefix("cp-")
            .tempdir_in(self.store()?.temp_dir())
            .map_err(io_at("making a mount point".into()))?;
        let target = tmp.path().to_path_buf();
        let data = std::ffi::CString::new(format!(
            "lowerdir={lowers},upperdir={},workdir={}",
            dir.join("upper").display(),
            dir.join("work").display()
        ))
        .map_err(|_| usage(format!("container {} has an invalid layer path", r.name)))?;
        std::thread::scope(|s| {
            s.spawn(move || -> Result<T, EngineError> {
                let err = |what: &str| {
                    let what = what.to_string();
                    move |e: rustix::io::Errno| EngineError::Io(what, e.into())
                };
                // SAFETY: unshare with constant flags affects only this helper thread, which
                // shares no filesystem state it relies on with other threads afterwards.
                if unsafe { libc::unshare(libc::CLONE_NEWNS | libc::CLONE_FS) } != 0 {
                    return Err(EngineError::Io(
                        "entering a private mount namespace".into(),
                        io::Error::last_os_error(),
                    ));
                }
                rustix::mount::mount_change(
                    "/",
                    rustix::mount::MountPropagationFlags::REC
                        | rustix::mount::MountPropagationFlags::PRIVATE,
                )
                .map_err(err("making mounts private"))?;
                rustix::mount::mount(
                    "overlay",
                    &target,
                    "overlay",
                    rustix::mount::MountFlags::empty(),
                    data.as_c_str(),
                )
                .map_err(err("mounting the container's files"))?;
                let root = rustix::fs::open(
                    &target,
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(err("opening the container's files"))?;
                f(&Root(root))
                // The namespace, and the mount in it, end with this thread.
            })
            .join()
            .unwrap_or_else(|_| Err(EngineError::Internal("the copy thread panicked".into())))
        })
    }
}

/// Unpacks the tar stream `input` into the existing directory `dest` of the tree rooted at
/// the host directory `root`, as `docker cp - CONTAINER:DEST` does into a container's root:
/// `dest` resolved inside `root` (symlinks too), every entry placed below it. The API's
/// archive PUT path without a container (gcr-api's request fuzzing uses it).
pub fn unpack_in(
    root: &Path,
    dest: &str,
    o: &CopyOptions,
    input: &mut (dyn Read + Send),
) -> Result<(), EngineError> {
    let what = format!(
        "unpacking a tar stream into {dest} under {}",
        root.display()
    );
    let fd = rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| EngineError::Io(what.clone(), e.into()))?;
    put(&Root(fd), "-", dest, o, input, &what)
}

/// Places `src` (a host path, or `-` for a tar stream) at `dest` inside `root`.
fn put(
    root: &Root,
    src: &str,
    dest: &str,
    o: &CopyOptions,
    input: &mut (dyn Read + Send),
    what: &str,
) -> Result<(), EngineError> {
    let ioerr = |e: io::Error| EngineError::Io(what.to_string(), e);
    let dest_kind = root.kind(dest);
    if src == "-" {
        if !dest_kind.is_some_and(|k| k.is_dir()) {
            return Err(usage(format!(
                "destination {dest} must be an existing directory in the container to unpack a tar stream"
            )));
        }
        let dir = root.dir(dest).map_err(ioerr)?;
        return untar(&dir, input, o).map_err(ioerr);
    }
    let src_path = Path::new(src);
    let src_is_dir = src_path.is_dir();
    let name = base_name(src);
    if dest_kind.is_some_and(|k| k.is_dir()) {
        let dir = root.dir(dest).map_err(ioerr)?;
        if src_is_dir && contents_only(src) {
            let mut entries: Vec<_> = std::fs::read_dir(src_path)
                .map_err(ioerr)?
                .flatten()
                .collect();
            entries.sort_by_key(|e| e.file_name());
            for e in entries {
                write_in(&dir, &e.file_name(), &e.path(), o).map_err(ioerr)?;
            }
            return Ok(());
        }
        return write_in(&dir, OsStr::new(&name), src_path, o).map_err(ioerr);
    }
    if dest.ends_with('/') {
        return Err(usage(format!(
            "destination directory {dest} does not exist in the container; create it first"
        )));
    }
    let trimmed = dest.trim_end_matches('/');
    let (parent, leaf) = match trimmed.rsplit_once('/') {
        Some((p, l)) => (if p.is_empty() { "/" } else { p }, l),
        None => ("/", trimmed),
    };
    if leaf.is_empty() || leaf == "." || leaf == ".." {
        return Err(usage(format!("invalid destination {dest}")));
    }
    let dir = root.dir(parent).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            usage(format!(
                "the parent directory {parent} of {dest} does not exist in the container"
            ))
        } else {
            ioerr(e)
        }
    })?;
    write_in(&dir, OsStr::new(leaf), src_path, o).map_err(ioerr)
}

/// Unpacks a tar stream under `dir`, each entry placed through `*at` calls below it.
fn untar(dir: &OwnedFd, input: &mut dyn Read, o: &CopyOptions) -> io::Result<()> {
    let staging = tempfile::tempdir()?;
    let mut ar = tar::Archive::new(input);
    ar.set_preserve_permissions(true);
    ar.set_preserve_mtime(true);
    ar.set_preserve_ownerships(o.archive);
    // Unpacked on the host first (the tar crate refuses `..` and links out of it), then
    // placed with the same rules as a directory copy.
    ar.unpack(staging.path())?;
    let mut entries: Vec<_> = std::fs::read_dir(staging.path())?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        write_in(dir, &e.file_name(), &e.path(), o)?;
    }
    Ok(())
}
