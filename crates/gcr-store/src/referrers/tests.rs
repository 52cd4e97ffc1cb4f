//! Tests of the referrers index: attach, list, filter, whole manifests, chains, removal.

use super::*;
use std::collections::BTreeMap;

const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const SBOM: &str = "application/spdx+json";

/// A store with one imported image tagged `app:1`; returns (store, temp dir, manifest digest).
fn store_with_image() -> (Store, tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s")).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "hello.txt", &b"hi\n"[..]).unwrap();
    let tarball = b.into_inner().unwrap();
    store
        .import_rootfs(&tarball[..], Some("app:1"), Some(1))
        .unwrap();
    let m = store.resolve_image("app:1").unwrap().manifest_digest;
    (store, dir, m)
}

fn notes(k: &str, v: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(k.to_string(), v.to_string())])
}

#[test]
fn an_attached_artifact_is_an_oci_manifest_with_subject_and_is_listed() {
    let (store, _d, manifest) = store_with_image();
    let d = store
        .put_referrer("app:1", BUNDLE, notes("a", "b"), BUNDLE, b"{\"sig\":1}")
        .unwrap();
    let bytes = store.read_blob(&d).unwrap();
    assert_eq!(sha256_digest(&bytes), d);
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["mediaType"], OCI_MANIFEST);
    assert_eq!(v["artifactType"], BUNDLE);
    assert_eq!(v["config"]["mediaType"], EMPTY_MEDIA_TYPE);
    assert_eq!(v["config"]["size"], 2);
    assert_eq!(
        store
            .read_blob(v["config"]["digest"].as_str().unwrap())
            .unwrap(),
        b"{}"
    );
    assert_eq!(v["layers"][0]["mediaType"], BUNDLE);
    let layer = store
        .read_blob(v["layers"][0]["digest"].as_str().unwrap())
        .unwrap();
    assert_eq!(layer, b"{\"sig\":1}");
    assert_eq!(v["subject"]["digest"], manifest.as_str());
    assert_eq!(
        v["subject"]["size"],
        store.read_blob(&manifest).unwrap().len() as u64
    );
    assert_eq!(
        v["subject"]["mediaType"],
        store.resolve_image("app:1").unwrap().manifest_media_type
    );
    assert_eq!(v["annotations"]["a"], "b");
    assert_eq!(
        store.referrer_layer(&d).unwrap(),
        (BUNDLE.to_string(), b"{\"sig\":1}".to_vec())
    );
    // A flipped byte in the stored layer is reported, not returned.
    let layer_path = store
        .blob_path(v["layers"][0]["digest"].as_str().unwrap())
        .unwrap();
    std::fs::write(&layer_path, b"{\"sig\":2}").unwrap();
    assert!(matches!(
        store.referrer_layer(&d),
        Err(StoreError::DigestMismatch { .. })
    ));
    std::fs::write(&layer_path, b"{\"sig\":1}").unwrap();

    // Named by tag, manifest digest or image id: the same list.
    let id = store.resolve_image("app:1").unwrap().id;
    for name in ["app:1", manifest.as_str(), id.as_str()] {
        let r = store.referrers(name, None).unwrap();
        assert_eq!(r.len(), 1, "{name}");
        assert_eq!(r[0].digest, d);
        assert_eq!(r[0].size, bytes.len() as u64);
        assert_eq!(r[0].media_type, OCI_MANIFEST);
        assert_eq!(r[0].artifact_type.as_deref(), Some(BUNDLE));
        assert_eq!(r[0].annotations, notes("a", "b"));
    }
    // The same artifact again: same digest, still one referrer.
    let again = store
        .put_referrer("app:1", BUNDLE, notes("a", "b"), BUNDLE, b"{\"sig\":1}")
        .unwrap();
    assert_eq!(again, d);
    assert_eq!(store.referrers("app:1", None).unwrap().len(), 1);
}

#[test]
fn the_artifact_type_filter_selects() {
    let (store, _d, _) = store_with_image();
    let sig = store
        .put_referrer("app:1", BUNDLE, BTreeMap::new(), BUNDLE, b"sig")
        .unwrap();
    let sbom = store
        .put_referrer("app:1", SBOM, BTreeMap::new(), SBOM, b"sbom")
        .unwrap();
    let all: Vec<String> = store
        .referrers("app:1", None)
        .unwrap()
        .into_iter()
        .map(|d| d.digest)
        .collect();
    assert_eq!(all, vec![sig.clone(), sbom.clone()]);
    let only = store.referrers("app:1", Some(SBOM)).unwrap();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].digest, sbom);
    assert!(store
        .referrers("app:1", Some("application/x-none"))
        .unwrap()
        .is_empty());
    // Serialized as an index descriptor: no empty annotations.
    let j = serde_json::to_value(&only[0]).unwrap();
    assert_eq!(j["artifactType"], SBOM);
    assert!(j.get("annotations").is_none());
}

#[test]
fn unknown_subjects_are_refused_and_nothing_is_indexed() {
    let (store, _d, _) = store_with_image();
    let e = store
        .put_referrer("nope:1", BUNDLE, BTreeMap::new(), BUNDLE, b"x")
        .unwrap_err();
    assert!(e.is_not_found(), "{e}");
    let missing = format!("sha256:{}", "ab".repeat(32));
    let m = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": BUNDLE,
        "config": {"mediaType": EMPTY_MEDIA_TYPE, "digest": sha256_digest(b"{}"), "size": 2},
        "layers": [],
        "subject": {"mediaType": OCI_MANIFEST, "digest": missing, "size": 10},
    });
    store.put_blob(b"{}", None).unwrap();
    let e = store
        .index_referrer(&serde_json::to_vec(&m).unwrap())
        .unwrap_err();
    assert!(matches!(e, StoreError::ReferrerSubjectMissing(_)), "{e}");
    assert!(e.to_string().contains(&missing), "{e}");
    let n: i64 = store
        .conn()
        .query_row("SELECT count(*) FROM referrers", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
}

#[test]
fn whole_manifests_are_checked() {
    let (store, _d, manifest) = store_with_image();
    let empty = store.put_blob(b"{}", None).unwrap().0;
    let layer = format!("sha256:{}", "cd".repeat(32));
    let base = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": SBOM, "digest": empty, "size": 2},
        "layers": [{"mediaType": SBOM, "digest": layer, "size": 4}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": manifest, "size": 10},
    });
    // A layer blob that is not in the CAS.
    let e = store
        .index_referrer(&serde_json::to_vec(&base).unwrap())
        .unwrap_err();
    assert!(
        matches!(e, StoreError::BlobMissing(ref d) if *d == layer),
        "{e}"
    );
    // No subject, a bad media type, a bad digest, non-string annotations.
    for (k, v) in [
        ("subject", serde_json::Value::Null),
        ("mediaType", serde_json::json!("application/x-other")),
        (
            "layers",
            serde_json::json!([{"mediaType": SBOM, "digest": "md5:00", "size": 1}]),
        ),
        ("annotations", serde_json::json!({"a": 1})),
    ] {
        let mut m = base.clone();
        m[k] = v;
        let e = store
            .index_referrer(&serde_json::to_vec(&m).unwrap())
            .unwrap_err();
        assert!(
            matches!(e, StoreError::BadJson { .. } | StoreError::InvalidDigest(_)),
            "{k}: {e}"
        );
    }
    assert!(store.index_referrer(b"not json").is_err());
    // Without artifactType, the config's media type is the artifact type.
    let l = store.put_blob(b"sbom", None).unwrap();
    let mut m = base.clone();
    m["layers"] = serde_json::json!([{"mediaType": SBOM, "digest": l.0, "size": l.1}]);
    let bytes = serde_json::to_vec(&m).unwrap();
    let d = store.index_referrer(&bytes).unwrap();
    assert_eq!(d.artifact_type.as_deref(), Some(SBOM));
    assert_eq!(d.digest, sha256_digest(&bytes));
    assert_eq!(store.read_blob(&d.digest).unwrap(), bytes);
    // Indexing it again changes nothing.
    store.index_referrer(&bytes).unwrap();
    assert_eq!(store.referrers("app:1", None).unwrap(), vec![d]);
}

#[test]
fn referrers_of_referrers_form_a_closure_in_subject_order() {
    let (store, _d, _) = store_with_image();
    let sbom = store
        .put_referrer("app:1", SBOM, BTreeMap::new(), SBOM, b"sbom")
        .unwrap();
    let sig_of_sbom = store
        .put_referrer(&sbom, BUNDLE, BTreeMap::new(), BUNDLE, b"sig")
        .unwrap();
    let sig = store
        .put_referrer("app:1", BUNDLE, BTreeMap::new(), BUNDLE, b"sig2")
        .unwrap();
    assert_eq!(store.referrers(&sbom, None).unwrap()[0].digest, sig_of_sbom);
    let all: Vec<String> = store
        .referrer_closure("app:1")
        .unwrap()
        .into_iter()
        .map(|d| d.digest)
        .collect();
    assert_eq!(all, vec![sbom, sig, sig_of_sbom]);
}

#[test]
fn rmi_removes_referrers_and_their_blobs_prune_keeps_live_ones() {
    let (store, _d, _) = store_with_image();
    let sbom = store
        .put_referrer("app:1", SBOM, BTreeMap::new(), SBOM, b"sbom-bytes")
        .unwrap();
    let sig = store
        .put_referrer(&sbom, BUNDLE, BTreeMap::new(), BUNDLE, b"sig-bytes")
        .unwrap();
    let layer_of = |d: &str| -> String {
        let v: serde_json::Value = serde_json::from_slice(&store.read_blob(d).unwrap()).unwrap();
        v["layers"][0]["digest"].as_str().unwrap().to_string()
    };
    let (sbom_layer, sig_layer) = (layer_of(&sbom), layer_of(&sig));
    // prune keeps what referrers use.
    store.prune().unwrap();
    for d in [&sbom, &sig, &sbom_layer, &sig_layer] {
        assert!(store.has_blob(d), "{d}");
    }
    store.remove_image("app:1", false).unwrap();
    for d in [&sbom, &sig, &sbom_layer, &sig_layer] {
        assert!(!store.has_blob(d), "{d} survived rmi");
    }
    let n: (i64, i64) = store
        .conn()
        .query_row(
            "SELECT (SELECT count(*) FROM referrers), (SELECT count(*) FROM referrer_blobs)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(n, (0, 0));
}

#[test]
fn the_lookup_uses_the_subject_index() {
    let (store, _d, _) = store_with_image();
    let plan: Vec<String> = store
        .conn()
        .prepare(
            "EXPLAIN QUERY PLAN SELECT digest, media_type, size, artifact_type, annotations
             FROM referrers WHERE subject = ?1 AND (?2 IS NULL OR artifact_type = ?2) ORDER BY rowid",
        )
        .unwrap()
        .query_map(params!["x", "y"], |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert!(
        plan.iter().any(|p| p.contains("referrers_subject")),
        "{plan:?}"
    );
}

#[test]
fn an_oci_archive_carries_referrers_and_load_indexes_them() {
    let (store, _d, manifest) = store_with_image();
    let sbom = store
        .put_referrer("app:1", SBOM, notes("k", "v"), SBOM, b"sbom")
        .unwrap();
    let sig = store
        .put_referrer(&sbom, BUNDLE, BTreeMap::new(), BUNDLE, b"sig")
        .unwrap();
    let mut tar = Vec::new();
    store
        .save(
            &["app:1"],
            crate::ArchiveFormat::OciArchive,
            &mut tar,
            &crate::NoProgress,
        )
        .unwrap();
    // A docker-archive has no place for them, and still saves.
    store
        .save(
            &["app:1"],
            crate::ArchiveFormat::DockerArchive,
            std::io::sink(),
            &crate::NoProgress,
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fresh = Store::open(&dir.path().join("s")).unwrap();
    let rep = fresh.load(&tar[..], &crate::NoProgress).unwrap();
    assert_eq!(rep.images.len(), 1, "referrers are not images");
    assert_eq!(rep.referrers, 2);
    assert_eq!(
        fresh.resolve_image("app:1").unwrap().manifest_digest,
        manifest
    );
    assert_eq!(
        fresh.referrers("app:1", None).unwrap(),
        store.referrers("app:1", None).unwrap()
    );
    assert_eq!(fresh.referrers(&sbom, None).unwrap()[0].digest, sig);
    assert_eq!(
        fresh.read_blob(&sig).unwrap(),
        store.read_blob(&sig).unwrap()
    );
    // Loading again changes nothing.
    fresh.load(&tar[..], &crate::NoProgress).unwrap();
    assert_eq!(fresh.referrer_closure("app:1").unwrap().len(), 2);
}

#[test]
fn a_manifest_already_in_the_cas_is_indexed_without_a_second_copy() {
    let (store, _d, manifest) = store_with_image();
    let layer = store.put_blob(b"{\"sig\":2}", None).unwrap();
    let (empty, _) = store.put_blob(EMPTY_BLOB, None).unwrap();
    let m = canonical_json(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": Descriptor::plain(EMPTY_MEDIA_TYPE, &empty, 2),
        "layers": [Descriptor::plain(BUNDLE, &layer.0, layer.1)],
        "subject": Descriptor::plain(OCI_MANIFEST, &manifest, 1),
    }));
    // As a pull leaves it: the manifest committed (durable) before it is indexed.
    let (digest, _) = store.put_blob(&m, None).unwrap();
    let before = std::fs::metadata(store.blob_path(&digest).unwrap()).unwrap();
    let d = store.index_referrer(&m).unwrap();
    assert_eq!(d.digest, digest);
    let after = std::fs::metadata(store.blob_path(&digest).unwrap()).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        before.ino(),
        after.ino(),
        "the stored copy is kept, not replaced"
    );
    assert_eq!(store.referrers(&manifest, None).unwrap().len(), 1);
    assert_eq!(
        std::fs::read_dir(store.root().join("tmp")).unwrap().count(),
        0
    );
}
