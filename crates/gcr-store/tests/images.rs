//! Import determinism, resolution, tags, history, rmi reference counting, doctor.

mod common;
use common::*;
use gcr_store::{NoProgress, Store, StoreError};

fn store() -> (tempfile::TempDir, Store) {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    (d, s)
}

#[test]
fn an_import_is_as_old_as_its_newest_file() {
    let tar = raw_tar(&[
        E {
            mtime: 1_600_000_000,
            ..file("a", b"a")
        },
        E {
            mtime: 1_700_000_000,
            ..file("b", b"b")
        },
    ]);
    let (_d, s) = store();
    let id = s.import_rootfs(&tar[..], None, None).unwrap();
    let cfg: serde_json::Value = serde_json::from_slice(&s.image_config(&id).unwrap()).unwrap();
    assert_eq!(cfg["created"], "2023-11-14T22:13:20Z", "{cfg}");
    // The same bytes, the same image; an explicit time still wins.
    assert_eq!(s.import_rootfs(&tar[..], None, None).unwrap(), id);
    let given = s
        .import_rootfs(&tar[..], None, Some(1_650_000_000))
        .unwrap();
    let cfg: serde_json::Value = serde_json::from_slice(&s.image_config(&given).unwrap()).unwrap();
    assert_eq!(cfg["created"], "2022-04-15T05:20:00Z", "{cfg}");
}

#[test]
fn import_is_deterministic() {
    let tar = busybox_rootfs("a");
    let (_d1, s1) = store();
    let (_d2, s2) = store();
    let id1 = s1
        .import_rootfs(&tar[..], Some("busybox"), Some(1_700_000_000))
        .unwrap();
    let id2 = s2
        .import_rootfs(&gzip(&tar)[..], None, Some(1_700_000_000))
        .unwrap();
    assert_eq!(id1, id2);
    let m1 = s1.resolve_image("busybox").unwrap().manifest_digest;
    let m2 = s2.resolve_image(&id2).unwrap().manifest_digest;
    assert_eq!(m1, m2);
    assert_eq!(sha256(&s1.image_manifest(&id1).unwrap()), m1);
    // Importing again gives the same digests.
    let id3 = s1
        .import_rootfs(&tar[..], Some("busybox"), Some(1_700_000_000))
        .unwrap();
    assert_eq!(id1, id3);
    // A different created time gives a different config.
    let id4 = s1
        .import_rootfs(&tar[..], None, Some(1_700_000_001))
        .unwrap();
    assert_ne!(id1, id4);
    // Canonical JSON: sorted keys, no whitespace.
    let m = String::from_utf8(s1.image_manifest(&id1).unwrap()).unwrap();
    assert!(m.starts_with(r#"{"config":{"digest":"sha256:"#), "{m}");
    assert!(!m.contains(' '));
    let cfg: serde_json::Value = serde_json::from_slice(&s1.image_config(&id1).unwrap()).unwrap();
    assert_eq!(cfg["created"], "2023-11-14T22:13:20Z");
    assert_eq!(cfg["os"], "linux");
}

#[test]
fn import_normalizes_the_layer() {
    let (_d, s) = store();
    let id = s
        .import_rootfs(&busybox_rootfs("x")[..], None, Some(1000))
        .unwrap();
    let layers = s.image_layers(&id).unwrap();
    assert_eq!(layers.len(), 1);
    let blob = s.read_blob(&layers[0].digest).unwrap();
    // Fixed gzip header: no mtime, OS byte 255.
    assert_eq!(&blob[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(&blob[..]));
    let mut names = Vec::new();
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        assert!(h.mtime().unwrap() <= 1000);
        assert_eq!(h.username().unwrap(), Some(""));
        let n = String::from_utf8(e.path_bytes().to_vec()).unwrap();
        if n == "tmp/" {
            assert_eq!(h.mtime().unwrap(), 7);
        }
        if n == "bin/busybox" {
            // `bin/ash` sorts first, so it holds the data and busybox links to it.
            assert_eq!(h.entry_type(), tar::EntryType::Link);
            assert_eq!(e.link_name().unwrap().unwrap().to_str().unwrap(), "bin/ash");
        }
        if n == "bin/ash" {
            assert_eq!(h.mode().unwrap(), 0o755);
            assert!(h.size().unwrap() > 100_000);
        }
        names.push(n);
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert_eq!(
        names,
        [
            "bin/",
            "bin/ash",
            "bin/busybox",
            "bin/sh",
            "etc/",
            "etc/hostname",
            "tmp/"
        ]
    );
}

#[test]
fn resolve_tag_history_and_errors() {
    let (_d, s) = store();
    let id = s
        .import_rootfs(&busybox_rootfs("r")[..], Some("busybox:1.36"), Some(5))
        .unwrap();
    let hex = id.strip_prefix("sha256:").unwrap();
    for name in [
        "busybox:1.36",
        "docker.io/library/busybox:1.36",
        &id,
        hex,
        &hex[..4],
        &format!("sha256:{}", &hex[..12]),
    ] {
        assert_eq!(s.resolve_image(name).unwrap().id, id, "{name}");
    }
    let md = s.resolve_image(&id).unwrap().manifest_digest;
    assert_eq!(s.resolve_image(&md).unwrap().id, id);
    assert_eq!(s.resolve_image(&format!("busybox@{md}")).unwrap().id, id);
    let e = s.resolve_image("busybox").unwrap_err();
    assert!(e.is_not_found());
    assert_eq!(e.to_string(), "image 'busybox' not found; see 'gcr images'");
    assert!(matches!(
        s.resolve_image("Bad Name"),
        Err(StoreError::ImageNotFound(_))
    ));

    assert_eq!(
        s.tag("busybox:1.36", "myrepo/app:v1").unwrap(),
        "docker.io/myrepo/app:v1"
    );
    let list = s.list_images().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        list[0].repo_tags,
        ["docker.io/library/busybox:1.36", "docker.io/myrepo/app:v1"]
    );
    assert_eq!(list[0].created, Some(5));
    assert!(list[0].size > 100_000);

    let h = s.history(&id).unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].created_by, "gcr import");
    assert!(h[0].size > 100_000);

    // rmi by id with two tags needs force; by tag only untags.
    assert!(matches!(
        s.remove_image(&id, false),
        Err(StoreError::MultipleTags(_))
    ));
    assert_eq!(
        s.remove_image("myrepo/app:v1", false).unwrap(),
        ["Untagged: myrepo/app:v1"]
    );
    s.untag("busybox:1.36").unwrap();
    assert!(s.untag("busybox:1.36").unwrap_err().is_not_found());
    assert_eq!(s.list_images().unwrap()[0].repo_tags, Vec::<String>::new());
    let events: i64 = s
        .conn()
        .query_row(
            "SELECT count(*) FROM events WHERE kind = 'image'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(events >= 4);
}

#[test]
fn rmi_refcounts_shared_layers_and_snapshots() {
    let (d, s) = store();
    let tar = busybox_rootfs("shared");
    // Same layer (all mtimes ≤ both created times except busybox, clamped below both)...
    let a = s.import_rootfs(&tar[..], Some("a"), Some(100)).unwrap();
    let b = s.import_rootfs(&tar[..], Some("b"), Some(100)).unwrap();
    assert_eq!(a, b, "same input, same image");
    let c = s
        .import_rootfs(&busybox_rootfs("other")[..], Some("c"), Some(100))
        .unwrap();
    assert_ne!(a, c);
    // Two distinct images sharing one layer: same rootfs, different created → different config.
    let tar0 = raw_tar(&[file("f", b"data"), dir("d")]);
    let x = s.import_rootfs(&tar0[..], Some("x"), Some(10)).unwrap();
    let y = s.import_rootfs(&tar0[..], Some("y"), Some(20)).unwrap();
    assert_ne!(x, y);
    let lx = s.image_layers(&x).unwrap();
    assert_eq!(lx, s.image_layers(&y).unwrap());
    let px = s.prepare_rootfs("x").unwrap();
    let py = s.prepare_rootfs("y").unwrap();
    assert_eq!(px, py);
    assert_eq!(std::fs::read(px[0].join("f")).unwrap(), b"data");
    assert!(px[0].file_name().unwrap().len() == 20);
    let lines = s.remove_image("x", false).unwrap();
    assert_eq!(
        lines,
        ["Untagged: x:latest".to_string(), format!("Deleted: {x}")]
    );
    assert!(s.has_blob(&lx[0].digest), "shared layer kept");
    assert!(px[0].is_dir(), "shared snapshot kept");
    assert!(!s.has_blob(&x), "config of x freed");
    assert!(s.resolve_image("x").unwrap_err().is_not_found());
    // A container using y blocks removal.
    s.conn()
        .execute(
            "INSERT INTO containers(id, name, image_id, image_ref, created_at, state, config) VALUES ('c1', 'web', ?1, 'y', 0, 'created', '{}')",
            [&y],
        )
        .unwrap();
    let e = s.remove_image("y", false).unwrap_err();
    assert!(matches!(e, StoreError::ImageInUse { .. }), "{e}");
    assert!(e.to_string().contains("web"));
    s.conn().execute("DELETE FROM containers", []).unwrap();
    s.remove_image("y", false).unwrap();
    assert!(
        !s.has_blob(&lx[0].digest),
        "layer freed with its last image"
    );
    assert!(!px[0].exists(), "snapshot freed with its last image");
    assert!(s.doctor().unwrap().is_clean());
    let report = s.prune().unwrap();
    assert_eq!(report.images.len(), 0);
    let df = s.df().unwrap();
    assert_eq!(df.images.total, 2);
    drop(d);
}

#[test]
fn doctor_names_a_flipped_byte_and_missing_blob() {
    let (d, s) = store();
    let id = s
        .import_rootfs(&busybox_rootfs("doc")[..], Some("doc"), Some(1))
        .unwrap();
    assert!(s.doctor().unwrap().is_clean());
    let layer = s.image_layers(&id).unwrap()[0].digest.clone();
    let p = s.blob_path(&layer).unwrap();
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&p, &bytes).unwrap();
    let r = s.doctor().unwrap();
    assert!(!r.is_clean());
    let want = format!(
        "blob {layer} is corrupt (content hashes to {})",
        sha256(&bytes)
    );
    assert!(r.problems.contains(&want), "{:?}", r.problems);
    std::fs::remove_file(s.blob_path(&id).unwrap()).unwrap();
    let r = s.doctor().unwrap();
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains(&format!("config blob {id} is missing"))),
        "{:?}",
        r.problems
    );
    drop(d);
}

#[test]
fn many_images_list_and_lookup_fast() {
    let (_d, s) = store();
    let tar0 = raw_tar(&[file("f", b"x")]);
    for i in 0..200 {
        s.import_rootfs(&tar0[..], Some(&format!("img{i}")), Some(i))
            .unwrap();
    }
    let t = std::time::Instant::now();
    let l = s.list_images().unwrap();
    assert_eq!(l.len(), 200);
    let t1 = t.elapsed();
    let t = std::time::Instant::now();
    for i in 0..100 {
        s.resolve_image(&format!("img{i}")).unwrap();
    }
    let t2 = t.elapsed() / 100;
    eprintln!("list 200: {t1:?}, lookup: {t2:?}");
    let _ = NoProgress;
}

/// Timing check for the performance bars (run with `--ignored --nocapture`); the CI bars
/// are measured by bench/, this prints in-process figures.
#[test]
#[ignore]
fn perf_open_list_lookup() {
    let (d, s) = store();
    let cfg = r#"{"architecture":"amd64","os":"linux","created":"2024-01-01T00:00:00Z","rootfs":{"type":"layers","diff_ids":[]}}"#;
    s.transaction(|tx| -> rusqlite::Result<()> {
        for i in 0..10_000 {
            let id = sha256(format!("img{i}").as_bytes());
            tx.execute(
                "INSERT INTO images(id, manifest_digest, manifest_media_type, created, added_at, size, os, arch, config)
                 VALUES (?1, ?1, 'm', ?2, 0, 1000, 'linux', 'amd64', ?3)",
                rusqlite::params![id, i, cfg],
            )?;
            tx.execute(
                "INSERT INTO tags(ref, image_id) VALUES (?1, ?2)",
                rusqlite::params![format!("docker.io/library/img{i}:latest"), id],
            )?;
        }
        Ok(())
    })
    .unwrap();
    drop(s);
    let t = std::time::Instant::now();
    let s = Store::open(d.path()).unwrap();
    let open = t.elapsed();
    let t = std::time::Instant::now();
    let n = s.list_images().unwrap().len();
    let list = t.elapsed();
    let t = std::time::Instant::now();
    for i in 0..1000 {
        s.resolve_image(&format!("img{}", i * 7)).unwrap();
    }
    let lookup = t.elapsed() / 1000;
    let t = std::time::Instant::now();
    s.resolve_image(&sha256(b"img42")[7..15]).unwrap();
    let prefix = t.elapsed();
    eprintln!(
        "open {open:?}; list {n}: {list:?}; lookup by name: {lookup:?}; by short id: {prefix:?}"
    );
}

#[test]
fn prune_removes_dangling_and_orphans_only() {
    let (_d, s) = store();
    let keep = s
        .import_rootfs(&raw_tar(&[file("k", b"keep")])[..], Some("keep"), Some(1))
        .unwrap();
    let dangling = s
        .import_rootfs(&raw_tar(&[file("g", b"gone")])[..], None, Some(1))
        .unwrap();
    let lowers = s.prepare_rootfs(&keep).unwrap();
    let (orphan, _) = s.put_blob(b"orphan", None).unwrap();
    std::fs::create_dir(s.root().join("snapshots/deadbeefdeadbeefdead")).unwrap();
    std::fs::write(s.root().join("tmp/dead-old"), b"x").unwrap();
    let r = s.prune().unwrap();
    assert_eq!(r.images, [format!("Deleted: {dangling}")]);
    assert!(
        r.blobs_removed >= 1 && r.snapshots_removed == 1 && r.tmp_removed >= 1,
        "{r:?}"
    );
    assert!(!s.has_blob(&orphan));
    assert!(!s.root().join("snapshots/deadbeefdeadbeefdead").exists());
    assert!(lowers[0].is_dir(), "used snapshot kept");
    assert!(s.has_blob(&keep));
    assert_eq!(s.list_images().unwrap().len(), 1);
    assert!(s.doctor().unwrap().is_clean());
}
