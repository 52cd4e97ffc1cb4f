//! oci-archive / docker-archive load and save, including interop with skopeo and umoci.

mod common;
use common::*;
use gcr_store::{ArchiveFormat, NoProgress, Store};
use std::process::Command;

fn store() -> (tempfile::TempDir, Store) {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    (d, s)
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

/// A store holding an imported busybox image tagged `busybox:latest`.
fn with_busybox() -> (tempfile::TempDir, Store, String) {
    let (d, s) = store();
    let id = s
        .import_rootfs(
            &busybox_rootfs("arch")[..],
            Some("busybox"),
            Some(1_600_000_000),
        )
        .unwrap();
    (d, s, id)
}

fn save(s: &Store, name: &str, fmt: ArchiveFormat, path: &std::path::Path) {
    let f = std::fs::File::create(path).unwrap();
    s.save(&[name], fmt, std::io::BufWriter::new(f), &NoProgress)
        .unwrap();
}

#[test]
fn oci_round_trip_keeps_digests() {
    let (d, s, id) = with_busybox();
    let path = d.path().join("o.tar");
    save(&s, "busybox", ArchiveFormat::OciArchive, &path);
    let (_d2, s2) = store();
    let rep = s2.load_path(&path, &NoProgress).unwrap();
    assert_eq!(rep.format, ArchiveFormat::OciArchive);
    assert_eq!(
        rep.images,
        vec![(
            id.clone(),
            vec!["docker.io/library/busybox:latest".to_string()]
        )]
    );
    assert_eq!(
        s2.resolve_image("busybox").unwrap(),
        s.resolve_image("busybox").unwrap()
    );
    // gzip'd archives load too.
    let (_d3, s3) = store();
    let gz = gzip(&std::fs::read(&path).unwrap());
    s3.load(&gz[..], &NoProgress).unwrap();
    assert_eq!(s3.resolve_image("busybox").unwrap().id, id);
    assert!(s3.doctor().unwrap().is_clean());
}

#[test]
fn docker_round_trip() {
    let (d, s, id) = with_busybox();
    let path = d.path().join("d.tar");
    save(&s, "busybox", ArchiveFormat::DockerArchive, &path);
    let (_d2, s2) = store();
    let rep = s2.load_path(&path, &NoProgress).unwrap();
    assert_eq!(rep.format, ArchiveFormat::DockerArchive);
    assert_eq!(rep.images[0].0, id, "image id = config digest survives");
    assert_eq!(
        s2.image_tags(&id).unwrap(),
        ["docker.io/library/busybox:latest"]
    );
    let lowers = s2.prepare_rootfs("busybox").unwrap();
    assert!(lowers[0].join("bin/busybox").is_file());
}

#[test]
fn truncated_and_garbage_archives_leave_nothing() {
    let (d, s, _) = with_busybox();
    let path = d.path().join("o.tar");
    save(&s, "busybox", ArchiveFormat::OciArchive, &path);
    let full = std::fs::read(&path).unwrap();
    for bad in [
        full[..full.len() / 2].to_vec(),
        gzip(&full)[..5000].to_vec(),
        {
            let mut g = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
            g.extend_from_slice(&[0x55; 4000]);
            g
        },
    ] {
        let (_d2, s2) = store();
        let e = s2.load(&bad[..], &NoProgress).unwrap_err();
        assert!(e.to_string().contains("invalid archive"), "{e}");
        assert!(s2.list_images().unwrap().is_empty());
        assert!(s2.doctor().unwrap().is_clean());
        assert_eq!(std::fs::read_dir(s2.root().join("tmp")).unwrap().count(), 0);
    }
    // A tar that is neither format.
    let (_d2, s2) = store();
    let e = s2
        .load(&raw_tar(&[file("x", b"y")])[..], &NoProgress)
        .unwrap_err();
    assert!(
        e.to_string().contains("oci-archive or docker-archive"),
        "{e}"
    );
}

#[test]
fn skopeo_reads_our_archives_and_we_read_skopeos() {
    if !tool_or_skip("skopeo") {
        return;
    }
    let (d, s, id) = with_busybox();
    let our_oci = d.path().join("ours-oci.tar");
    let our_docker = d.path().join("ours-docker.tar");
    save(&s, "busybox", ArchiveFormat::OciArchive, &our_oci);
    save(&s, "busybox", ArchiveFormat::DockerArchive, &our_docker);
    let md = s.resolve_image("busybox").unwrap().manifest_digest;
    let layer = s.image_layers(&id).unwrap()[0].clone();

    // skopeo reads our oci-archive with the same manifest.
    let raw = run(Command::new("skopeo")
        .arg("inspect")
        .arg("--raw")
        .arg(format!("oci-archive:{}", our_oci.display())));
    assert_eq!(sha256(&raw), md);
    // ... and our docker-archive.
    let info = run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("docker-archive:{}", our_docker.display())));
    let info: serde_json::Value = serde_json::from_slice(&info).unwrap();
    assert_eq!(
        info["Layers"][0],
        layer.diff_id.as_str(),
        "docker-archive layers are diff ids"
    );

    // skopeo copy → docker-archive and oci-archive, loaded back with identical digests.
    let sk_docker = d.path().join("sk-docker.tar");
    let sk_oci = d.path().join("sk-oci.tar");
    run(Command::new("skopeo")
        .arg("copy")
        .arg(format!("oci-archive:{}", our_oci.display()))
        .arg(format!(
            "docker-archive:{}:busybox:latest",
            sk_docker.display()
        )));
    run(Command::new("skopeo")
        .arg("copy")
        .arg(format!("oci-archive:{}", our_oci.display()))
        .arg(format!("oci-archive:{}:busybox:latest", sk_oci.display())));

    let (_d2, s2) = store();
    let rep = s2.load_path(&sk_docker, &NoProgress).unwrap();
    let img = s2.resolve_image(&rep.images[0].0).unwrap();
    let sk_raw = run(Command::new("skopeo")
        .arg("inspect")
        .arg("--raw")
        .arg(format!("docker-archive:{}", sk_docker.display())));
    // skopeo's manifest but for the layers' media type: they are plain tars, which skopeo
    // labels `…diff.tar.gzip` all the same (doctor would flag that).
    let sk_text = String::from_utf8(sk_raw).unwrap();
    assert!(sk_text.contains("rootfs.diff.tar.gzip"), "{sk_text}");
    let fixed = sk_text
        .replace("rootfs.diff.tar.gzip", "rootfs.diff.tar")
        .into_bytes();
    assert_eq!(img.manifest_digest, sha256(&fixed));
    assert_eq!(s2.image_manifest(&img.id).unwrap(), fixed);
    assert!(s2.doctor().unwrap().is_clean());
    let sk_info: serde_json::Value = serde_json::from_slice(&run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("docker-archive:{}", sk_docker.display()))))
    .unwrap();
    let ours: Vec<String> = s2
        .image_layers(&img.id)
        .unwrap()
        .into_iter()
        .map(|l| l.digest)
        .collect();
    let theirs: Vec<String> = sk_info["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(ours, theirs);
    assert_eq!(rep.images[0].1, ["docker.io/library/busybox:latest"]);
    assert!(s2.prepare_rootfs(&img.id).unwrap()[0]
        .join("bin/busybox")
        .is_file());

    let (_d3, s3) = store();
    let rep = s3.load_path(&sk_oci, &NoProgress).unwrap();
    let index: serde_json::Value = serde_json::from_slice(&run(Command::new("tar")
        .arg("-xOf")
        .arg(&sk_oci)
        .arg("index.json")))
    .unwrap();
    let img = s3.resolve_image(&rep.images[0].0).unwrap();
    assert_eq!(
        img.manifest_digest,
        index["manifests"][0]["digest"].as_str().unwrap()
    );
    assert_eq!(rep.images[0].1, ["docker.io/library/busybox:latest"]);
    let sk_info: serde_json::Value = serde_json::from_slice(&run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci-archive:{}", sk_oci.display()))))
    .unwrap();
    let ours: Vec<String> = s3
        .image_layers(&img.id)
        .unwrap()
        .into_iter()
        .map(|l| l.digest)
        .collect();
    assert_eq!(serde_json::json!(ours), sk_info["Layers"]);
}

#[test]
fn umoci_unpacks_our_oci_archive() {
    if !tool_or_skip("umoci") {
        return;
    }
    let (d, s, _) = with_busybox();
    let arch = d.path().join("o.tar");
    save(&s, "busybox", ArchiveFormat::OciArchive, &arch);
    let layout = d.path().join("layout");
    std::fs::create_dir(&layout).unwrap();
    run(Command::new("tar")
        .arg("-xf")
        .arg(&arch)
        .arg("-C")
        .arg(&layout));
    let bundle = d.path().join("bundle");
    let mut cmd = Command::new("umoci");
    cmd.arg("unpack");
    if !rustix::process::geteuid().is_root() {
        cmd.arg("--rootless");
    }
    run(cmd
        .arg("--image")
        .arg(format!("{}:latest", layout.display()))
        .arg(&bundle));
    let bb = bundle.join("rootfs/bin/busybox");
    assert_eq!(
        std::fs::read(&bb).unwrap(),
        std::fs::read("/bin/busybox").unwrap()
    );
    assert_eq!(
        std::fs::read_link(bundle.join("rootfs/bin/sh"))
            .unwrap()
            .to_str(),
        Some("busybox")
    );
}

#[test]
fn multi_tag_and_shared_layer_archives() {
    let (d, s) = store();
    let tar0 = raw_tar(&[file("f", b"data"), dir("d")]);
    let x = s.import_rootfs(&tar0[..], Some("x"), Some(10)).unwrap();
    let y = s.import_rootfs(&tar0[..], Some("y"), Some(20)).unwrap();
    s.tag("x", "x:two").unwrap();
    for fmt in [ArchiveFormat::OciArchive, ArchiveFormat::DockerArchive] {
        let path = d.path().join("m.tar");
        let f = std::fs::File::create(&path).unwrap();
        s.save(&["x", "x:two", "y"], fmt, f, &NoProgress).unwrap();
        let (_d2, s2) = store();
        let rep = s2.load_path(&path, &NoProgress).unwrap();
        assert_eq!(rep.images.len(), 2, "{fmt:?}");
        assert_eq!(
            s2.image_tags(&x).unwrap(),
            ["docker.io/library/x:latest", "docker.io/library/x:two"]
        );
        assert_eq!(s2.image_tags(&y).unwrap(), ["docker.io/library/y:latest"]);
        assert_eq!(
            s2.prepare_rootfs(&x).unwrap(),
            s2.prepare_rootfs(&y).unwrap()
        );
        assert!(s2.doctor().unwrap().is_clean());
        // Saved by its id, as dockerd's save: no name travels, the image loads untagged.
        let f = std::fs::File::create(&path).unwrap();
        s.save(&[&x], fmt, f, &NoProgress).unwrap();
        let (_d3, s3) = store();
        s3.load_path(&path, &NoProgress).unwrap();
        assert!(s3.image_tags(&x).unwrap().is_empty(), "{fmt:?}");
    }
}
