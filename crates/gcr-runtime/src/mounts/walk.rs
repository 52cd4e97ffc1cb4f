//! Child side: opens a mount destination inside the new root, creating what is missing
//! where the container would see it.
//!
//! The common case is one openat2(RESOLVE_IN_ROOT) of the whole path. When something is
//! missing, the path is walked one component at a time from the root descriptor: each
//! prefix is opened with `O_NOFOLLOW` (resolved in the root), a symlink is read and its
//! target spliced into the rest of the path (an absolute target starts again at the root,
//! `..` never climbs above it), and a missing component is created with mkdirat (or, for a
//! file bind's last component, an empty file) under the directory resolved so far. So an
//! image's `/etc/hosts -> /run/hosts` gets `/run/hosts` created inside the root, and a
//! `/data -> ../../../tmp` link never leads out of it. Fixed stack buffers only: this runs
//! between clone and execve, where allocating is not allowed.

use std::ffi::CStr;
use std::os::fd::RawFd;

use libc::c_char;

use crate::sys::{self, errno};

const RESOLVE: u64 = sys::RESOLVE_IN_ROOT | sys::RESOLVE_NO_MAGICLINKS;
/// Symlinks followed in one walk before giving up (as the kernel).
const MAX_LINKS: u32 = 40;
const CAP: usize = libc::PATH_MAX as usize;
const NAME_MAX: usize = 255;

/// A path in a fixed buffer, NUL-terminated on demand.
struct Buf {
    b: [u8; CAP + 1],
    len: usize,
}

impl Buf {
    fn new() -> Buf {
        Buf {
            b: [0; CAP + 1],
            len: 0,
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.b[..self.len]
    }

    /// The path for an *at call relative to the root: "." when empty.
    fn c(&mut self) -> *const c_char {
        if self.len == 0 {
            return c".".as_ptr();
        }
        self.b[self.len] = 0;
        self.b.as_ptr().cast()
    }

    fn push_component(&mut self, name: &[u8]) -> Result<(), i32> {
        let sep = usize::from(self.len > 0);
        if self.len + sep + name.len() > CAP {
            return Err(libc::ENAMETOOLONG);
        }
        if sep == 1 {
            self.b[self.len] = b'/';
        }
        self.b[self.len + sep..self.len + sep + name.len()].copy_from_slice(name);
        self.len += sep + name.len();
        Ok(())
    }

    fn pop_component(&mut self) {
        self.len = self.bytes().iter().rposition(|&c| c == b'/').unwrap_or(0);
    }

    fn drop_front(&mut self, n: usize) {
        self.b.copy_within(n..self.len, 0);
        self.len -= n;
    }

    /// Puts `head` and a slash in front of the path.
    fn prepend(&mut self, head: &[u8]) -> Result<(), i32> {
        let shift = head.len() + 1;
        if self.len + shift > CAP {
            return Err(libc::ENAMETOOLONG);
        }
        self.b.copy_within(0..self.len, shift);
        self.b[..head.len()].copy_from_slice(head);
        self.b[head.len()] = b'/';
        self.len += shift;
        Ok(())
    }
}

/// Opens `rel` (relative to the root) with `O_PATH`, following symlinks inside the root.
pub(super) fn open(rootfd: RawFd, rel: &CStr) -> Result<RawFd, i32> {
    let fd = sys::openat2(rootfd, rel.as_ptr(), libc::O_PATH, RESOLVE);
    if fd < 0 {
        Err(errno())
    } else {
        Ok(fd)
    }
}

fn close(fd: RawFd) {
    // SAFETY: closing a descriptor this module opened.
    unsafe { libc::close(fd) };
}

/// Whether `fd` (an `O_PATH` descriptor) is a symlink.
fn is_symlink(fd: RawFd) -> Result<bool, i32> {
    // SAFETY: fstat into a zeroed stack struct.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut st) != 0 {
            return Err(errno());
        }
        Ok(st.st_mode & libc::S_IFMT == libc::S_IFLNK)
    }
}

/// Creates `name` (NUL-terminated) in the directory `dir` resolves to: an empty file when
/// `file`, else a directory. An entry that appeared meanwhile is fine.
fn create(rootfd: RawFd, dir: &mut Buf, name: &[u8], file: bool) -> Result<(), i32> {
    let pfd = sys::openat2(
        rootfd,
        dir.c(),
        libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        RESOLVE,
    );
    if pfd < 0 {
        return Err(errno());
    }
    let name: *const c_char = name.as_ptr().cast();
    // SAFETY: mkdirat/openat of a NUL-terminated name under a directory descriptor.
    let (r, e) = unsafe {
        let r = if file {
            let f = libc::openat(
                pfd,
                name,
                libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0o644,
            );
            if f >= 0 {
                libc::close(f);
            }
            f.min(0)
        } else {
            libc::mkdirat(pfd, name, 0o755)
        };
        (r, errno())
    };
    close(pfd);
    if r != 0 && e != libc::EEXIST {
        return Err(e);
    }
    Ok(())
}

/// Opens `rel` like [`open`], creating the missing components inside the root first: the
/// last one as an empty file when `file`, every other one as a directory.
pub(super) fn open_or_create(rootfd: RawFd, rel: &CStr, file: bool) -> Result<RawFd, i32> {
    match open(rootfd, rel) {
        Err(libc::ENOENT) => {}
        other => return other,
    }
    let mut done = Buf::new();
    let mut todo = Buf::new();
    let rel = rel.to_bytes();
    if rel.len() > CAP {
        return Err(libc::ENAMETOOLONG);
    }
    todo.b[..rel.len()].copy_from_slice(rel);
    todo.len = rel.len();
    let mut link = [0u8; CAP];
    let mut name = [0u8; NAME_MAX + 1];
    let (mut links, mut made) = (0, 0);
    loop {
        let t = todo.bytes();
        let Some(start) = t.iter().position(|&c| c != b'/') else {
            break;
        };
        let end = t[start..]
            .iter()
            .position(|&c| c == b'/')
            .map_or(t.len(), |e| start + e);
        let n = end - start;
        if n > NAME_MAX {
            return Err(libc::ENAMETOOLONG);
        }
        name[..n].copy_from_slice(&t[start..end]);
        name[n] = 0;
        todo.drop_front(end);
        let comp = &name[..n];
        if comp == b"." {
            continue;
        }
        if comp == b".." {
            done.pop_component();
            continue;
        }
        let mark = done.len;
        done.push_component(comp)?;
        let fd = sys::openat2(rootfd, done.c(), libc::O_PATH | libc::O_NOFOLLOW, RESOLVE);
        if fd >= 0 {
            let symlink = is_symlink(fd);
            let len = match symlink {
                // SAFETY: readlinkat of the O_PATH symlink itself ("") into a stack buffer.
                Ok(true) => unsafe {
                    libc::readlinkat(fd, c"".as_ptr(), link.as_mut_ptr().cast(), link.len())
                },
                _ => 0,
            };
            let e = errno();
            close(fd);
            if !symlink? {
                continue;
            }
            done.len = mark;
            links += 1;
            if links > MAX_LINKS {
                return Err(libc::ELOOP);
            }
            if len < 0 {
                return Err(e);
            }
            let target = &link[..len as usize];
            if target.is_empty() {
                return Err(libc::ENOENT);
            }
            if target[0] == b'/' {
                done.len = 0;
            }
            todo.prepend(target)?;
            continue;
        }
        match errno() {
            libc::ENOENT => {}
            e => return Err(e),
        }
        done.len = mark;
        let last = todo.bytes().iter().all(|&c| c == b'/');
        create(rootfd, &mut done, &name[..=n], last && file)?;
        // Look at what is there now (normally what was just made) on the next round.
        made += 1;
        if made > CAP {
            return Err(libc::ELOOP);
        }
        todo.prepend(comp)?;
    }
    let fd = sys::openat2(rootfd, done.c(), libc::O_PATH | libc::O_NOFOLLOW, RESOLVE);
    if fd < 0 {
        return Err(errno());
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::symlink;
    use std::path::Path;

    fn walk(root: &Path, rel: &str, file: bool) -> Result<std::path::PathBuf, i32> {
        let dir = std::fs::File::open(root).unwrap();
        let rel = CString::new(rel).unwrap();
        let fd = open_or_create(dir.as_raw_fd(), &rel, file)?;
        let p = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
        close(fd);
        Ok(p)
    }

    #[test]
    fn creates_missing_parts_inside_the_root_through_symlinks() {
        let t = tempfile::tempdir().unwrap();
        let (root, host) = (t.path().join("root"), t.path().join("host"));
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(&host).unwrap();
        // Links that would leave the root if followed on the host.
        symlink(&host, root.join("abs")).unwrap();
        symlink("../../../../..", root.join("up")).unwrap();
        symlink("/run/hosts", root.join("etc/hosts")).unwrap();
        let p = walk(&root, "abs/x", false).unwrap();
        assert_eq!(p, root.join(host.strip_prefix("/").unwrap()).join("x"));
        assert!(p.is_dir());
        assert_eq!(walk(&root, "up/y/z", false).unwrap(), root.join("y/z"));
        let p = walk(&root, "etc/hosts", true).unwrap();
        assert_eq!(p, root.join("run/hosts"));
        assert!(p.is_file());
        // Existing paths resolve in one step, symlinks followed inside the root.
        assert_eq!(
            walk(&root, "etc/hosts", true).unwrap(),
            root.join("run/hosts")
        );
        assert_eq!(
            std::fs::read_dir(&host).unwrap().count(),
            0,
            "wrote outside"
        );
        symlink("loop", root.join("loop")).unwrap();
        assert_eq!(walk(&root, "loop/a", false), Err(libc::ELOOP));
        std::fs::write(root.join("f"), "").unwrap();
        assert_eq!(walk(&root, "f/a", false), Err(libc::ENOTDIR));
    }
}
