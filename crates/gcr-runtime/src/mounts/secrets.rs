//! Secrets given to a container as files: a tmpfs on `/run/secrets` in the container's own
//! mount namespace, made after the spec's mounts and before pivot_root, holding one file
//! per secret with its owner and mode, then remounted read-only. A target outside
//! `/run/secrets` is written to the tmpfs under a hidden name, bind-mounted (read-only) on
//! the target (created inside the root if missing, as a file bind) and unlinked from the
//! tmpfs. The values exist only in that tmpfs, which dies with the mount namespace: nothing
//! is written to the host's disk. The parent prepares names and buffers; the child makes
//! system calls only.

use std::ffi::CString;
use std::os::fd::RawFd;
use std::path::PathBuf;

use zeroize::Zeroizing;

use super::{components, cstr, walk};
use crate::error::Stage;
use crate::sys::{self, child_fail, errno};
use crate::RuntimeError;

/// A secret to materialize in a container.
pub struct SecretFile {
    /// Absolute path inside the container (`/run/secrets/NAME` by default).
    pub target: PathBuf,
    pub uid: u32,
    pub gid: u32,
    /// Permission bits (e.g. 0o444).
    pub mode: u32,
    /// The clear value, wiped when dropped.
    pub data: Zeroizing<Vec<u8>>,
}

struct Prepared {
    /// Directory of the file, relative to the root ("run/secrets" or below it).
    dir: CString,
    /// File name in `dir`.
    name: CString,
    /// For a target outside /run/secrets: its path relative to the root.
    bind: Option<CString>,
    uid: u32,
    gid: u32,
    mode: u32,
    data: Zeroizing<Vec<u8>>,
}

/// The secret files of one start, prepared before clone.
#[derive(Default)]
pub(crate) struct SecretsPlan {
    files: Vec<Prepared>,
}

const DIR: &str = "run/secrets";
const DIR_C: &std::ffi::CStr = c"run/secrets";

impl SecretsPlan {
    pub(crate) fn prepare(files: Vec<SecretFile>) -> Result<SecretsPlan, RuntimeError> {
        let mut out = Vec::with_capacity(files.len());
        for (i, f) in files.into_iter().enumerate() {
            let bad = || {
                RuntimeError::InvalidSpec(format!(
                    "secret target {} must be an absolute file path without \"..\"",
                    f.target.display()
                ))
            };
            if !f.target.is_absolute() {
                return Err(bad());
            }
            let comps = components(&f.target)?;
            let (dir, name, bind) = match comps.as_slice() {
                [run, secrets, rest @ ..] if run == "run" && secrets == "secrets" => {
                    let Some((last, parents)) = rest.split_last() else {
                        return Err(bad());
                    };
                    let mut dir = DIR.to_string();
                    for p in parents {
                        dir.push('/');
                        dir.push_str(p);
                    }
                    (dir, last.clone(), None)
                }
                [] => return Err(bad()),
                _ => (
                    DIR.to_string(),
                    format!(".gcr-secret-{i}"),
                    Some(cstr(&comps.join("/"))),
                ),
            };
            out.push(Prepared {
                dir: cstr(&dir),
                name: cstr(&name),
                bind,
                uid: f.uid,
                gid: f.gid,
                mode: f.mode & 0o7777,
                data: f.data,
            });
        }
        Ok(SecretsPlan { files: out })
    }

    /// Child side: the tmpfs, the files, the binds, then read-only.
    pub(crate) fn apply(&self, errfd: RawFd, rootfd: RawFd) {
        if self.files.is_empty() {
            return;
        }
        let code = Stage::Secrets as u32;
        let fail = |e| child_fail(errfd, code, e);
        let mut buf = [0u8; 32];
        let mut buf2 = [0u8; 32];
        let ro = libc::MS_BIND
            | libc::MS_REMOUNT
            | libc::MS_RDONLY
            | libc::MS_NOSUID
            | libc::MS_NODEV
            | libc::MS_NOEXEC;
        // SAFETY: system calls on descriptors opened here (resolved inside the root) and
        // NUL-terminated strings and buffers prepared by the parent.
        unsafe {
            let fd = walk::open_or_create(rootfd, DIR_C, false).unwrap_or_else(fail);
            let path = sys::proc_fd_path(&mut buf, fd);
            if libc::mount(
                c"tmpfs".as_ptr(),
                path,
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                c"mode=0755".as_ptr().cast(),
            ) != 0
            {
                fail(errno());
            }
            libc::close(fd);
            for f in &self.files {
                let dfd = walk::open_or_create(rootfd, &f.dir, false).unwrap_or_else(fail);
                let file = libc::openat(
                    dfd,
                    f.name.as_ptr(),
                    libc::O_WRONLY
                        | libc::O_CREAT
                        | libc::O_EXCL
                        | libc::O_NOFOLLOW
                        | libc::O_CLOEXEC,
                    0o600,
                );
                if file < 0 {
                    fail(errno());
                }
                let mut done = 0;
                while done < f.data.len() {
                    let n = libc::write(file, f.data[done..].as_ptr().cast(), f.data.len() - done);
                    if n < 0 {
                        if errno() == libc::EINTR {
                            continue;
                        }
                        fail(errno());
                    }
                    done += n as usize;
                }
                if libc::fchown(file, f.uid, f.gid) != 0 || libc::fchmod(file, f.mode) != 0 {
                    fail(errno());
                }
                libc::close(file);
                if let Some(target) = &f.bind {
                    let src = libc::openat(
                        dfd,
                        f.name.as_ptr(),
                        libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                    );
                    if src < 0 {
                        fail(errno());
                    }
                    let tfd = walk::open_or_create(rootfd, target, true).unwrap_or_else(fail);
                    let from = sys::proc_fd_path(&mut buf, src);
                    let to = sys::proc_fd_path(&mut buf2, tfd);
                    if libc::mount(from, to, std::ptr::null(), libc::MS_BIND, std::ptr::null()) != 0
                    {
                        fail(errno());
                    }
                    libc::close(tfd);
                    libc::close(src);
                    // Reopen: the old descriptor names the covered file, not the bind.
                    let tfd = walk::open(rootfd, target).unwrap_or_else(fail);
                    let to = sys::proc_fd_path(&mut buf2, tfd);
                    if libc::mount(std::ptr::null(), to, std::ptr::null(), ro, std::ptr::null())
                        != 0
                    {
                        fail(errno());
                    }
                    libc::close(tfd);
                    if libc::unlinkat(dfd, f.name.as_ptr(), 0) != 0 {
                        fail(errno());
                    }
                }
                libc::close(dfd);
            }
            let fd = walk::open(rootfd, DIR_C).unwrap_or_else(fail);
            let path = sys::proc_fd_path(&mut buf, fd);
            if libc::mount(
                std::ptr::null(),
                path,
                std::ptr::null(),
                ro,
                std::ptr::null(),
            ) != 0
            {
                fail(errno());
            }
            libc::close(fd);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(target: &str) -> SecretFile {
        SecretFile {
            target: PathBuf::from(target),
            uid: 1,
            gid: 2,
            mode: 0o100440,
            data: Zeroizing::new(b"v".to_vec()),
        }
    }

    #[test]
    fn targets_split_into_tmpfs_files_and_binds() {
        let plan = SecretsPlan::prepare(vec![
            file("/run/secrets/db"),
            file("/run/secrets/app/key"),
            file("/etc/app/pw"),
        ])
        .unwrap();
        type Row<'a> = (&'a [u8], &'a [u8], Option<&'a [u8]>, u32);
        let got: Vec<Row> = plan
            .files
            .iter()
            .map(|f| {
                (
                    f.dir.as_bytes(),
                    f.name.as_bytes(),
                    f.bind.as_deref().map(|b| b.to_bytes()),
                    f.mode,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (&b"run/secrets"[..], &b"db"[..], None, 0o440),
                (b"run/secrets/app", b"key", None, 0o440),
                (
                    b"run/secrets",
                    b".gcr-secret-2",
                    Some(&b"etc/app/pw"[..]),
                    0o440
                ),
            ]
        );
    }

    #[test]
    fn bad_targets_are_refused() {
        for t in ["run/secrets/x", "/run/secrets", "/", "/run/secrets/../x"] {
            assert!(SecretsPlan::prepare(vec![file(t)]).is_err(), "{t}");
        }
    }
}
