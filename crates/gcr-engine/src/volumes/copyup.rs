//! Docker's copy-up: an empty store volume mounted over a directory the image has is first
//! filled with that directory's content (ownership, modes, symlinks kept), so `-v data:/etc/app`
//! starts from the image's defaults.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// The image directory at `dest`: the topmost lower layer (top first) that has it.
fn image_dir(lowers: &[String], dest: &str) -> Option<std::path::PathBuf> {
    let rel = dest.trim_start_matches('/');
    for l in lowers {
        let p = Path::new(l).join(rel);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => return Some(p),
            Ok(_) => return None,
            Err(_) => {}
        }
    }
    None
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let src = e.path();
        let dst = to.join(e.file_name());
        let m = std::fs::symlink_metadata(&src)?;
        let ft = m.file_type();
        if ft.is_dir() {
            std::fs::create_dir(&dst)?;
            copy_tree(&src, &dst)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if ft.is_file() {
            std::fs::copy(&src, &dst)?;
        } else {
            continue; // devices, fifos and sockets are not copied
        }
        let _ = std::os::unix::fs::lchown(&dst, Some(m.uid()), Some(m.gid()));
        if !ft.is_symlink() {
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(m.mode() & 0o7777))?;
        }
    }
    Ok(())
}

/// Fills the empty volume directory `data` from the image's `dest`, if the image has it.
pub(crate) fn fill_if_empty(data: &Path, lowers: &[String], dest: &str) -> std::io::Result<()> {
    if std::fs::read_dir(data)?.next().is_some() {
        return Ok(());
    }
    let Some(src) = image_dir(lowers, dest) else {
        return Ok(());
    };
    let m = std::fs::metadata(&src)?;
    copy_tree(&src, data)?;
    let _ = std::os::unix::fs::lchown(data, Some(m.uid()), Some(m.gid()));
    std::fs::set_permissions(data, std::fs::Permissions::from_mode(m.mode() & 0o7777))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_empty_volume_from_top_layer_only() {
        let t = tempfile::tempdir().unwrap();
        let (top, low, vol) = (
            t.path().join("top"),
            t.path().join("low"),
            t.path().join("vol"),
        );
        std::fs::create_dir_all(top.join("etc/app/sub")).unwrap();
        std::fs::write(top.join("etc/app/sub/conf"), "top").unwrap();
        std::os::unix::fs::symlink("sub/conf", top.join("etc/app/link")).unwrap();
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
        assert!(!vol.join("old").exists());
        // A volume with content is left alone.
        std::fs::write(top.join("etc/app/new"), "x").unwrap();
        fill_if_empty(&vol, &lowers, "/etc/app").unwrap();
        assert!(!vol.join("new").exists());
    }
}
