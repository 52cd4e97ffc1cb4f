//! The merged view of an image's overlay layers, read on the host without mounting them.
//!
//! A path is resolved one component at a time through the layer directories (top first),
//! the way the container will see it: a whiteout hides what lies below, an opaque
//! directory stops the merge, and a symlink is followed relative to the image's root
//! (an absolute target starts again at the image's root, `..` never climbs above it).
//! Every lookup is an `fstatat`/`openat` of one name with `O_NOFOLLOW` under a directory
//! descriptor of a layer, so nothing outside the layers is ever read, whatever the image's
//! symlinks say. Used for volume copy-up and for the image's `/etc/passwd` and `/etc/group`.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::fs::{File, Metadata};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

/// Symlinks followed in one lookup before giving up with ELOOP (as the kernel).
const MAX_LINKS: u32 = 40;

/// One directory of the merged view: its descriptor in every layer that contributes to it,
/// top first.
pub struct Dir {
    parts: Vec<File>,
}

/// What a name of the merged view is.
pub enum Node {
    Dir(Dir),
    /// A regular file, open for reading.
    File(File),
    /// A symlink (only returned for a last component that is not followed).
    Symlink {
        target: PathBuf,
        uid: u32,
        gid: u32,
    },
    /// A device, fifo or socket.
    Special,
}

fn os_err(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

fn cname(name: &OsStr) -> io::Result<CString> {
    if name.as_bytes().contains(&b'/') {
        return Err(os_err(libc::EINVAL));
    }
    CString::new(name.as_bytes()).map_err(|_| os_err(libc::EINVAL))
}

fn fstatat(dir: RawFd, name: &CStr) -> io::Result<libc::stat> {
    // SAFETY: a zeroed stat is a valid out-buffer; name is NUL-terminated.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(st)
    }
}

/// Opens `name` under `dir` without following a symlink.
fn open_at(dir: RawFd, name: &CStr, flags: libc::c_int) -> io::Result<File> {
    // SAFETY: openat on a NUL-terminated name; the result is a fresh descriptor we own.
    unsafe {
        let fd = libc::openat(
            dir,
            name.as_ptr(),
            flags | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY,
        );
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(File::from_raw_fd(fd))
    }
}

fn open_dir(dir: RawFd, name: &CStr) -> io::Result<File> {
    open_at(dir, name, libc::O_RDONLY | libc::O_DIRECTORY)
}

fn readlink_at(dir: RawFd, name: &CStr) -> io::Result<PathBuf> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: readlinkat writes at most buf.len() bytes into buf.
    let n = unsafe { libc::readlinkat(dir, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(PathBuf::from(OsString::from_vec(buf)))
}

/// Whether a layer directory carries overlayfs's opaque mark.
fn opaque(dir: &File) -> bool {
    let mut v = [0u8; 2];
    // SAFETY: fgetxattr into a stack buffer of the given length.
    let n = unsafe {
        libc::fgetxattr(
            dir.as_raw_fd(),
            c"trusted.overlay.opaque".as_ptr(),
            v.as_mut_ptr().cast(),
            v.len(),
        )
    };
    n == 1 && v[0] == b'y'
}

fn is_whiteout(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == 0
}

impl Dir {
    /// The root of the image whose layer directories are `lowers`, top first.
    pub fn root<P: AsRef<Path>>(lowers: &[P]) -> io::Result<Dir> {
        let mut parts = Vec::with_capacity(lowers.len());
        for l in lowers {
            let c = CString::new(l.as_ref().as_os_str().as_bytes())
                .map_err(|_| os_err(libc::EINVAL))?;
            parts.push(open_at(
                libc::AT_FDCWD,
                &c,
                libc::O_RDONLY | libc::O_DIRECTORY,
            )?);
        }
        Ok(Dir { parts })
    }

    fn try_clone(&self) -> io::Result<Dir> {
        let parts = self
            .parts
            .iter()
            .map(File::try_clone)
            .collect::<io::Result<_>>()?;
        Ok(Dir { parts })
    }

    /// Owner, mode and times of the directory (from its topmost layer).
    pub fn metadata(&self) -> io::Result<Metadata> {
        match self.parts.first() {
            Some(f) => f.metadata(),
            None => Err(os_err(libc::ENOENT)),
        }
    }

    /// What `name` is in this directory, without following a symlink; None when absent
    /// or hidden by a whiteout.
    pub fn child(&self, name: &OsStr) -> io::Result<Option<Node>> {
        let c = cname(name)?;
        for (i, d) in self.parts.iter().enumerate() {
            let fd = d.as_raw_fd();
            let st = match fstatat(fd, &c) {
                Ok(st) => st,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(e) => return Err(e),
            };
            return Ok(match st.st_mode & libc::S_IFMT {
                _ if is_whiteout(&st) => None,
                libc::S_IFLNK => Some(Node::Symlink {
                    target: readlink_at(fd, &c)?,
                    uid: st.st_uid,
                    gid: st.st_gid,
                }),
                libc::S_IFREG => Some(Node::File(open_at(
                    fd,
                    &c,
                    libc::O_RDONLY | libc::O_NONBLOCK,
                )?)),
                libc::S_IFDIR => Some(Node::Dir(self.merge_below(i, &c)?)),
                _ => Some(Node::Special),
            });
        }
        Ok(None)
    }

    /// The merged directory `name`, found as a directory in layer `top`: that layer's
    /// copy and the lower layers' copies down to an opaque one or to a non-directory.
    fn merge_below(&self, top: usize, name: &CStr) -> io::Result<Dir> {
        let first = open_dir(self.parts[top].as_raw_fd(), name)?;
        let mut stop = opaque(&first);
        let mut parts = vec![first];
        for d in &self.parts[top + 1..] {
            if stop {
                break;
            }
            match fstatat(d.as_raw_fd(), name) {
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(e) => return Err(e),
                Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
                    let f = open_dir(d.as_raw_fd(), name)?;
                    stop = opaque(&f);
                    parts.push(f);
                }
                Ok(_) => break,
            }
        }
        Ok(Dir { parts })
    }

    /// Every name any contributing layer has here (sorted, without duplicates); some may be
    /// whiteouts or hidden, so ask [`Dir::child`] for each.
    pub fn names(&self) -> io::Result<Vec<OsString>> {
        let mut out = Vec::new();
        for d in &self.parts {
            // A fresh open file description, so the listing starts at the beginning.
            let f = open_dir(d.as_raw_fd(), c".")?;
            // SAFETY: fdopendir takes over the descriptor (released from `f`); readdir
            // entries are read before the next call and closedir frees the stream.
            unsafe {
                let dirp = libc::fdopendir(std::os::fd::IntoRawFd::into_raw_fd(f));
                if dirp.is_null() {
                    return Err(io::Error::last_os_error());
                }
                loop {
                    let e = libc::readdir(dirp);
                    if e.is_null() {
                        break;
                    }
                    let name = CStr::from_ptr((*e).d_name.as_ptr()).to_bytes();
                    if name != b"." && name != b".." {
                        out.push(OsString::from_vec(name.to_vec()));
                    }
                }
                libc::closedir(dirp);
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Resolves `path` below this directory as the container would, following symlinks
    /// (the last component's only with `follow_last`) inside the image: absolute targets
    /// and `..` never leave the directory this is called on (use the root).
    pub fn lookup(&self, path: &Path, follow_last: bool) -> io::Result<Node> {
        let mut stack: Vec<Dir> = Vec::new();
        let mut todo: Vec<OsString> = Vec::new();
        push_components(&mut todo, path);
        let mut links = 0;
        while let Some(c) = todo.pop() {
            if c == ".." {
                stack.pop();
                continue;
            }
            let cur = stack.last().unwrap_or(self);
            let last = todo.is_empty();
            match cur.child(&c)? {
                None => return Err(os_err(libc::ENOENT)),
                Some(Node::Symlink { target, .. }) if follow_last || !last => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(os_err(libc::ELOOP));
                    }
                    if target.as_os_str().is_empty() {
                        return Err(os_err(libc::ENOENT));
                    }
                    if target.is_absolute() {
                        stack.clear();
                    }
                    push_components(&mut todo, &target);
                }
                Some(Node::Dir(d)) => stack.push(d),
                Some(n) if last => return Ok(n),
                Some(_) => return Err(os_err(libc::ENOTDIR)),
            }
        }
        Ok(Node::Dir(match stack.pop() {
            Some(d) => d,
            None => self.try_clone()?,
        }))
    }

    /// Reads the regular file at `path` (symlinks followed inside the image); None when
    /// the image has no such file.
    pub fn read_file(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        match self.lookup(path, true) {
            Ok(Node::File(mut f)) => {
                let mut v = Vec::new();
                io::Read::read_to_end(&mut f, &mut v)?;
                Ok(Some(v))
            }
            Ok(_) => Ok(None),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP)
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

/// Pushes the components of `path` onto `todo` so that the first one is popped first.
fn push_components(todo: &mut Vec<OsString>, path: &Path) {
    let at = todo.len();
    for c in path.components() {
        match c {
            Component::Normal(n) => todo.push(n.to_os_string()),
            Component::ParentDir => todo.push(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    todo[at..].reverse();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn text(n: io::Result<Option<Vec<u8>>>) -> Option<String> {
        n.unwrap().map(|v| String::from_utf8(v).unwrap())
    }

    #[test]
    fn symlinks_resolve_inside_the_layers_never_on_the_host() {
        let t = tempfile::tempdir().unwrap();
        let host = t.path().join("host");
        std::fs::create_dir_all(host.join("etc")).unwrap();
        std::fs::write(host.join("etc/passwd"), "host-secret").unwrap();
        let (top, low) = (t.path().join("top"), t.path().join("low"));
        std::fs::create_dir_all(top.join("srv")).unwrap();
        std::fs::create_dir_all(low.join("real")).unwrap();
        std::fs::write(low.join("real/passwd"), "image").unwrap();
        // Absolute and climbing links that would reach `host` if followed on the host.
        symlink(&host, top.join("abs")).unwrap();
        symlink("../../../../../../..", top.join("srv/up")).unwrap();
        symlink("/real", top.join("etc")).unwrap();
        let root = Dir::root(&[&top, &low]).unwrap();
        assert_eq!(
            text(root.read_file(Path::new("/etc/passwd"))).as_deref(),
            Some("image")
        );
        // `..` stops at the image root: /srv/up/real/passwd is /real/passwd.
        assert_eq!(
            text(root.read_file(Path::new("/srv/up/real/passwd"))).as_deref(),
            Some("image")
        );
        let hostpath = host.join("etc/passwd");
        let through = Path::new("/abs").join(hostpath.strip_prefix("/").unwrap());
        assert_eq!(text(root.read_file(&through)), None);
        assert_eq!(text(root.read_file(Path::new("/abs/etc/passwd"))), None);
        // Not following the last component gives the link itself.
        assert!(matches!(
            root.lookup(Path::new("/etc"), false).unwrap(),
            Node::Symlink { ref target, .. } if target == Path::new("/real")
        ));
    }

    #[test]
    fn whiteouts_and_opaque_dirs_hide_lower_layers() {
        let t = tempfile::tempdir().unwrap();
        let (top, low) = (t.path().join("top"), t.path().join("low"));
        std::fs::create_dir_all(top.join("d")).unwrap();
        std::fs::create_dir_all(low.join("d")).unwrap();
        std::fs::write(top.join("d/a"), "top").unwrap();
        std::fs::write(low.join("d/a"), "low").unwrap();
        std::fs::write(low.join("d/b"), "low").unwrap();
        std::fs::write(low.join("d/c"), "low").unwrap();
        // A whiteout needs mknod (root); without it the merge is still checked.
        let c = CString::new(top.join("d/c").as_os_str().as_bytes()).unwrap();
        // SAFETY: mknod on a NUL-terminated path.
        let whiteout = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o600, 0) } == 0;
        let root = Dir::root(&[&top, &low]).unwrap();
        let Node::Dir(d) = root.lookup(Path::new("/d"), true).unwrap() else {
            panic!("/d is not a directory")
        };
        assert_eq!(d.names().unwrap(), ["a", "b", "c"]);
        assert_eq!(
            text(root.read_file(Path::new("d/a"))).as_deref(),
            Some("top")
        );
        assert_eq!(
            text(root.read_file(Path::new("d/b"))).as_deref(),
            Some("low")
        );
        if whiteout {
            assert!(d.child(OsStr::new("c")).unwrap().is_none());
            assert_eq!(text(root.read_file(Path::new("d/c"))), None);
        }
        // An opaque directory hides the lower layer's copy (trusted xattrs need root).
        std::fs::create_dir_all(top.join("o")).unwrap();
        std::fs::create_dir_all(low.join("o")).unwrap();
        std::fs::write(low.join("o/hidden"), "low").unwrap();
        let o = CString::new(top.join("o").as_os_str().as_bytes()).unwrap();
        // SAFETY: setxattr with a NUL-terminated path and name and a 1-byte value.
        let marked = unsafe {
            libc::setxattr(
                o.as_ptr(),
                c"trusted.overlay.opaque".as_ptr(),
                b"y".as_ptr().cast(),
                1,
                0,
            )
        } == 0;
        if marked {
            assert_eq!(text(root.read_file(Path::new("/o/hidden"))), None);
        }
        // A file in the upper layer hides a lower directory of the same name.
        std::fs::write(top.join("f"), "file").unwrap();
        std::fs::create_dir_all(low.join("f/sub")).unwrap();
        assert_eq!(text(root.read_file(Path::new("/f/sub"))), None);
        // Symlink loops end with ELOOP.
        symlink("loop", top.join("loop")).unwrap();
        let e = root.lookup(Path::new("/loop"), true).err().unwrap();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
    }
}
