//! Store integrity: snapshot digests checked by doctor (a flipped byte, a truncation),
//! doctor --repair, stale temp files of killed commands, and a full disk during import.

mod common;
use common::*;
use gcr_store::{DoctorOptions, Store, StoreError};
use std::path::{Path, PathBuf};

fn store() -> (tempfile::TempDir, Store) {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    (d, s)
}

/// A store with one imported, unpacked image; returns the snapshot dir.
fn unpacked(s: &Store) -> PathBuf {
    let big: Vec<u8> = (0..50_000u32).map(|i| (i * 7) as u8).collect();
    let tar = raw_tar(&[dir("etc"), file("etc/data", &big), file("etc/motd", b"hi")]);
    let id = s
        .import_rootfs(&tar[..], Some("integrity"), Some(1))
        .unwrap();
    s.prepare_rootfs(&id).unwrap().remove(0)
}

const SNAPSHOTS: DoctorOptions = DoctorOptions {
    snapshots: true,
    repair: false,
};

#[test]
fn doctor_snapshots_catches_a_flipped_byte() {
    let (_d, s) = store();
    let snap = unpacked(&s);
    let r = s.doctor_with(SNAPSHOTS).unwrap();
    assert!(r.is_clean(), "{:?}", r.problems);
    assert_eq!((r.snapshots_checked, r.digests_recorded), (1, 0));
    let p = snap.join("etc/data");
    let mut b = std::fs::read(&p).unwrap();
    b[25_000] ^= 0x40;
    std::fs::write(&p, &b).unwrap();
    // Same size and count: only the digest sees it.
    assert!(s.doctor().unwrap().is_clean());
    let r = s.doctor_with(SNAPSHOTS).unwrap();
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    let key = snap.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        r.problems[0].contains(&key) && r.problems[0].contains("changed since it was unpacked"),
        "{:?}",
        r.problems
    );
    // Repair drops it; the next use unpacks it again from the verified blob.
    let r = s
        .doctor_with(DoctorOptions {
            snapshots: true,
            repair: true,
        })
        .unwrap();
    assert!(r.is_clean(), "{:?}", r.problems);
    assert_eq!(r.repaired.len(), 1, "{:?}", r.repaired);
    assert!(!snap.exists());
    let id = s.resolve_image("integrity").unwrap().id;
    let again = s.prepare_rootfs(&id).unwrap().remove(0);
    assert_eq!(again, snap);
    b[25_000] ^= 0x40;
    assert_eq!(std::fs::read(&p).unwrap(), b);
    assert!(s.doctor_with(SNAPSHOTS).unwrap().is_clean());
}

#[test]
fn plain_doctor_catches_truncation_and_missing_files() {
    let (_d, s) = store();
    let snap = unpacked(&s);
    std::fs::OpenOptions::new()
        .write(true)
        .open(snap.join("etc/data"))
        .unwrap()
        .set_len(1000)
        .unwrap();
    let r = s.doctor().unwrap();
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert!(
        r.problems[0].contains("50002") && r.problems[0].contains("1002"),
        "{:?}",
        r.problems
    );
    std::fs::remove_file(snap.join("etc/motd")).unwrap();
    let r = s.doctor().unwrap();
    assert!(r.problems[0].contains("2 entries"), "{:?}", r.problems);
}

#[test]
fn doctor_repair_removes_orphans_and_forgets_missing_snapshots() {
    let (_d, s) = store();
    let snap = unpacked(&s);
    let orphan = snap.parent().unwrap().join("0123456789abcdef0123");
    std::fs::create_dir_all(orphan.join("etc")).unwrap();
    std::fs::rename(&snap, snap.with_extension("moved")).unwrap();
    let r = s.doctor().unwrap();
    assert_eq!(r.problems.len(), 3, "{:?}", r.problems);
    let r = s
        .doctor_with(DoctorOptions {
            snapshots: false,
            repair: true,
        })
        .unwrap();
    assert!(r.is_clean(), "{:?}", r.problems);
    assert!(!orphan.exists());
    assert!(s.doctor().unwrap().is_clean());
}

/// A pid no process has: a child that has exited and been reaped.
fn dead_pid() -> u32 {
    let mut c = std::process::Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}

#[test]
fn killed_imports_temp_files_go_with_the_next_import_and_in_doctor() {
    let (d, s) = store();
    let tmp = d.path().join("tmp");
    let pid = dead_pid();
    // What a killed import or pull leaves: a half-written blob and an unpack directory.
    std::fs::write(tmp.join(format!("blob-{pid}-x1")), vec![0u8; 100_000]).unwrap();
    std::fs::create_dir_all(tmp.join(format!("snap-{pid}-x2/d/bin"))).unwrap();
    let r = s.doctor().unwrap();
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("2 stale temporary file(s)") && p.contains("--repair")),
        "{:?}",
        r.problems
    );
    s.import_rootfs(&raw_tar(&[file("a", b"a")])[..], None, Some(1))
        .unwrap();
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().flatten().collect();
    assert!(left.is_empty(), "{left:?}");
    // doctor --repair removes them too.
    std::fs::write(tmp.join(format!("layer-{pid}-x3")), b"x").unwrap();
    let r = s
        .doctor_with(DoctorOptions {
            snapshots: false,
            repair: true,
        })
        .unwrap();
    assert!(r.is_clean() && r.repaired.len() == 1, "{r:?}");
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
}

/// A tmpfs mounted for one test, unmounted on drop.
struct TinyFs(tempfile::TempDir);

impl Drop for TinyFs {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(self.0.path(), rustix::mount::UnmountFlags::DETACH);
    }
}

/// A 1 MiB tmpfs.
fn tiny_fs() -> TinyFs {
    let d = tempfile::tempdir().unwrap();
    rustix::mount::mount(
        "gcr-test-full",
        d.path(),
        "tmpfs",
        rustix::mount::MountFlags::empty(),
        Some(c"size=1m"),
    )
    .unwrap();
    TinyFs(d)
}

fn assert_no_space(e: &StoreError, root: &Path) {
    let msg = e.to_string();
    assert!(matches!(e, StoreError::NoSpace { .. }), "{e:?}");
    assert!(
        msg.contains(&root.display().to_string()) && msg.contains("free space"),
        "{msg}"
    );
    assert!(!msg.contains("corrupt"), "{msg}");
}

#[test]
fn a_full_disk_during_import_blames_the_disk() {
    if !root_or_skip() {
        return;
    }
    let fs = tiny_fs();
    let root = fs.0.path().join("store");
    let s = Store::open(&root).unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 31 + i / 7) as u8).collect();
    let tar = raw_tar(&[file("big", &big)]);
    let e = s.import_rootfs(&tar[..], Some("big"), Some(1)).unwrap_err();
    assert_no_space(&e, &root);
    // Storing a blob from a stream (a load or a pull).
    let e = s.put_blob_reader(&big[..], None).unwrap_err();
    assert_no_space(&e, &root);
    // Unpacking a layer onto the full disk.
    let target = root.join("tmp/unpack");
    std::fs::create_dir(&target).unwrap();
    let e = gcr_store::unpack_layer(&tar[..], &target).unwrap_err();
    assert!(
        matches!(e, gcr_store::UnpackError::NoSpace { .. }),
        "{e:?}: {e}"
    );
    drop(s);
}
