//! Docker's copy-up: an empty store volume mounted over a directory the image has is first
//! filled with that directory's content (ownership, modes, symlinks kept), so `-v data:/etc/app`
//! starts from the image's defaults.
//!
//! The image's directory is found as the container will see it: through the merged view of
//! its layers ([`gcr_runtime::layerfs`]), with every symlink of the image resolved inside
//! the image, never on the host (an image whose `/data` links to `/tmp` and declares the
//! volume `/data/x` gets its own `/tmp/x`, not the host's). The copy is written with
//! descriptor-relative calls under the volume directory and never follows a link.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use gcr_runtime::layerfs::{Dir, Node};
use rustix::fs::{AtFlags, Mode, OFlags};

fn cname(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// Opens the directory `name` under `dir` without following a symlink.
fn open_dir(dir: impl AsFd, name: &CString) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        name.as_c_str(),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Owner first, then mode: chown clears setuid bits.
fn set_owner_mode(fd: impl AsFd, m: &std::fs::Metadata) -> io::Result<()> {
    let fd = fd.as_fd();
    let _ = rustix::fs::fchown(
        fd,
        Some(rustix::fs::Uid::from_raw(m.uid())),
        Some(rustix::fs::Gid::from_raw(m.gid())),
    );
    rustix::fs::fchmod(fd, Mode::from_raw_mode(m.mode() & 0o7777))?;
    Ok(())
}

fn copy_tree(from: &Dir, to: &OwnedFd) -> io::Result<()> {
    for name in from.names()? {
        let Some(node) = from.child(&name)? else {
            continue; // hidden by a whiteout
        };
        let c = cname(&name)?;
        match node {
            Node::Dir(d) => {
                rustix::fs::mkdirat(to, c.as_c_str(), Mode::from_raw_mode(0o700))?;
                let sub = open_dir(to, &c)?;
                copy_tree(&d, &sub)?;
                set_owner_mode(&sub, &d.metadata()?)?;
            }
            Node::File(mut src) => {
                let fd = rustix::fs::openat(
                    to,
                    c.as_c_str(),
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )?;
                let mut dst = File::from(fd);
                io::copy(&mut src, &mut dst)?;
                set_owner_mode(&dst, &src.metadata()?)?;
            }
            Node::Symlink { target, uid, gid } => {
                rustix::fs::symlinkat(target.as_os_str(), to, c.as_c_str())?;
                let _ = rustix::fs::chownat(
                    to,
                    c.as_c_str(),
                    Some(rustix::fs::Uid::from_raw(uid)),
                    Some(rustix::fs::Gid::from_raw(gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                );
            }
            Node::Special => {} // devices, fifos and sockets are not copied
        }
    }
    Ok(())
}

/// Fills the empty volume directory `data` from the image's `dest` (layers `lowers`, top
/// first), if the container will see a directory there.
pub(crate) fn fill_if_empty(data: &Path, lowers: &[String], dest: &str) -> io::Result<()> {
    let to = rustix::fs::open(
        data,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    if std::fs::read_dir(data)?.next().is_some() {
        return Ok(());
    }
    let src = match Dir::root(lowers)?.lookup(Path::new(dest), true) {
        Ok(Node::Dir(d)) => d,
        // Nothing to copy: the runtime makes (or refuses) the mount point itself.
        Ok(_) => return Ok(()),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP)
            ) =>
        {
            return Ok(())
        }
        Err(e) => return Err(e),
    };
    copy_tree(&src, &to)?;
    set_owner_mode(&to, &src.metadata()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn fills_empty_volume_from_the_merged_layers() {
        let t = tempfile::tempdir().unwrap();
        let (top, low, vol) = (
            t.path().join("top"),
            t.path().join("low"),
            t.path().join("vol"),
        );
        std::fs::create_dir_all(top.join("etc/app/sub")).unwrap();
        std::fs::write(top.join("etc/app/sub/conf"), "top").unwrap();
        symlink("sub/conf", top.join("etc/app/link")).unwrap();
        std::fs::create_dir_all(low.join("etc/app")).unwrap();
        std::fs::write(low.join("etc/app/old"), "low").unwrap();
        std::fs::create_dir(&vol).unwrap();
        let lowers = vec![top.display().to_string(), low.display().to_string()];
        fill_if_empty(&vol, &lowers, "/etc/app").unwrap();
        assert_eq!(
            std::fs::read_to_string(vol.join("sub/conf")).unwrap(),
            "top"
        );
        assert_eq!(
            std::fs::read_link(vol.join("link")).unwrap(),
            Path::new("sub/conf")
        );
        // The container sees the lower layer's file too (no opaque mark, no whiteout).
        assert_eq!(std::fs::read_to_string(vol.join("old")).unwrap(), "low");
        // A volume with content is left alone.
        std::fs::write(top.join("etc/app/new"), "x").unwrap();
        fill_if_empty(&vol, &lowers, "/etc/app").unwrap();
        assert!(!vol.join("new").exists());
    }

    #[test]
    fn symlinks_in_the_image_never_reach_the_host() {
        let t = tempfile::tempdir().unwrap();
        let host = t.path().join("host");
        std::fs::create_dir_all(host.join("x")).unwrap();
        std::fs::write(host.join("x/secret"), "host").unwrap();
        let img = t.path().join("img");
        std::fs::create_dir_all(img.join("srv")).unwrap();
        symlink(&host, img.join("data")).unwrap();
        symlink("../../../../../../../..", img.join("srv/up")).unwrap();
        let lowers = vec![img.display().to_string()];
        let rel = host.strip_prefix("/").unwrap().display().to_string();
        for dest in [
            "/data/x".to_string(),
            format!("/srv/up/{rel}/x"),
            format!("/srv/up/../../{rel}/x"),
        ] {
            let vol = t.path().join("vol");
            std::fs::create_dir_all(&vol).unwrap();
            fill_if_empty(&vol, &lowers, &dest).unwrap();
            assert_eq!(std::fs::read_dir(&vol).unwrap().count(), 0, "{dest}");
            std::fs::remove_dir(&vol).unwrap();
        }
        // The same links resolved inside the image find the image's own directory.
        std::fs::create_dir_all(img.join(&rel).join("x")).unwrap();
        std::fs::write(img.join(&rel).join("x/own"), "image").unwrap();
        let vol = t.path().join("vol");
        std::fs::create_dir_all(&vol).unwrap();
        fill_if_empty(&vol, &lowers, "/data/x").unwrap();
        assert_eq!(std::fs::read_to_string(vol.join("own")).unwrap(), "image");
        assert!(!vol.join("secret").exists());
        assert_eq!(
            std::fs::read_to_string(host.join("x/secret")).unwrap(),
            "host"
        );
    }
}
