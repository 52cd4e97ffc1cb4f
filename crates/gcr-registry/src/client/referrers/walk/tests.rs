//! The referrers walk against a scripted registry on loopback: what it asks for, and what
//! it does not (the empty config, the referrers API of a registry found without one).

use super::*;
use crate::client::testreg::{mock, Mock};
use crate::client::transport::ConnectOptions;
use std::collections::HashMap;

fn sha(b: &[u8]) -> String {
    media::sha256(b)
}

/// A referrer manifest of `subject` (empty config, one layer) and its layer.
fn referrer(subject: &str, layer: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/example",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": EMPTY_DIGEST, "size": 2},
        "layers": [{"mediaType": "application/example", "digest": sha(layer), "size": layer.len()}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": 100},
    }))
    .unwrap()
}

fn index(manifests: &[&[u8]]) -> Vec<u8> {
    let m: Vec<_> = manifests
        .iter()
        .map(|b| serde_json::json!({"mediaType": OCI_MANIFEST, "digest": sha(b), "size": b.len()}))
        .collect();
    serde_json::to_vec(
        &serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": m}),
    )
    .unwrap()
}

/// Subject S with referrers A and B; A has a referrer C. With `api`, the registry has the
/// referrers API; without, the fallback tags list them.
fn registry(api: bool) -> (Mock, String, [Vec<u8>; 3]) {
    let s = sha(b"subject");
    let a = referrer(&s, b"layer a");
    let b = referrer(&s, b"layer b");
    let c = referrer(&sha(&a), b"layer c");
    let mut r: HashMap<String, (String, Vec<u8>)> = HashMap::new();
    for (m, l) in [(&a, &b"layer a"[..]), (&b, b"layer b"), (&c, b"layer c")] {
        r.insert(
            format!("/v2/r/manifests/{}", sha(m)),
            (OCI_MANIFEST.into(), m.clone()),
        );
        r.insert(
            format!("/v2/r/blobs/{}", sha(l)),
            ("application/octet-stream".into(), l.to_vec()),
        );
    }
    let lists = [
        (s.clone(), index(&[&a, &b])),
        (sha(&a), index(&[&c])),
        (sha(&b), index(&[])),
        (sha(&c), index(&[])),
    ];
    for (subj, idx) in lists {
        if api {
            r.insert(format!("/v2/r/referrers/{subj}"), (OCI_INDEX.into(), idx));
        } else if subj == s || subj == sha(&a) {
            // Without the API, only subjects with referrers have a fallback tag.
            let path = format!("/v2/r/manifests/{}", fallback_tag(&subj));
            r.insert(path, (OCI_INDEX.into(), idx));
        }
    }
    if !api {
        let tags = serde_json::json!({"name": "r", "tags": ["1", fallback_tag(&s), fallback_tag(&sha(&a))]});
        r.insert(
            "/v2/r/tags/list".into(),
            ("application/json".into(), tags.to_string().into_bytes()),
        );
    }
    (mock(r), s, [a, b, c])
}

fn walk(m: &Mock, subject: &str) -> (tempfile::TempDir, Prefetched) {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("tmp")).unwrap();
    std::fs::create_dir_all(root.path().join("blobs/sha256")).unwrap();
    let st = StoreTmp {
        tmp: root.path().join("tmp"),
        blobs: root.path().join("blobs/sha256"),
    };
    let t = Transport::new(&m.host, vec![], &ConnectOptions::default()).unwrap();
    let p = prefetch(&st, &t, "r", subject, &HashSet::new());
    (root, p)
}

#[test]
fn empty_digest_is_that_of_the_empty_blob() {
    assert_eq!(media::sha256(EMPTY_BLOB), EMPTY_DIGEST);
}

#[test]
fn walk_with_the_referrers_api_never_fetches_the_empty_config() {
    let (m, s, [a, b, c]) = registry(true);
    let (_root, p) = walk(&m, &s);
    assert!(
        p.error.is_none(),
        "{:?}",
        p.error.as_ref().map(|e| e.to_string())
    );
    let got: Vec<&str> = p.got.iter().map(|g| g.digest.as_str()).collect();
    // Subjects before their referrers: A and B (in listing order), then C.
    assert_eq!(got, [sha(&a), sha(&b), sha(&c)]);
    // A and B need the empty config (written once for both); by C's level it is in the CAS.
    assert!(p.got[..2].iter().all(|g| g.empty) && !p.got[2].empty);
    // The empty blob is written locally, once, straight into the CAS.
    let cas = |d: &str| {
        _root
            .path()
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    assert_eq!(std::fs::read(cas(EMPTY_DIGEST)).unwrap(), b"{}");
    // So are the referrers' manifests: only their rows wait for the image.
    for g in &p.got {
        assert!(g.staged.is_empty());
        assert_eq!(std::fs::read(cas(&g.digest)).unwrap(), g.bytes);
    }
    let log = m.log.lock().unwrap().clone();
    assert!(!log.iter().any(|p| p.contains(EMPTY_DIGEST)), "{log:?}");
    // Three layers downloaded; S, A, B and C listed once each.
    assert_eq!(p.requests(), (4, 3));
    for d in [&s, &sha(&a), &sha(&b), &sha(&c)] {
        let n = log
            .iter()
            .filter(|p| **p == format!("/v2/r/referrers/{d}"))
            .count();
        assert_eq!(n, 1, "{d}: {log:?}");
    }
}

#[test]
fn walk_without_the_referrers_api_asks_for_it_once_and_reads_the_tag_list_once() {
    let (m, s, [a, b, c]) = registry(false);
    let (_root, p) = walk(&m, &s);
    assert!(
        p.error.is_none(),
        "{:?}",
        p.error.as_ref().map(|e| e.to_string())
    );
    assert_eq!(p.got.len(), 3);
    assert_eq!(p.got[2].digest, sha(&c));
    let log = m.log.lock().unwrap().clone();
    let api = log.iter().filter(|p| p.contains("/referrers/")).count();
    assert_eq!(api, 1, "the API is tried for the subject only: {log:?}");
    // The tag list is read once; only the fallback tags it has are asked for.
    assert_eq!(
        log.iter().filter(|p| p.ends_with("/tags/list")).count(),
        1,
        "{log:?}"
    );
    let tag = format!("/v2/r/manifests/{}", fallback_tag(&sha(&a)));
    assert!(log.contains(&tag), "{tag}: {log:?}");
    for d in [&sha(&b), &sha(&c)] {
        let tag = format!("/v2/r/manifests/{}", fallback_tag(d));
        assert!(!log.contains(&tag), "{tag}: {log:?}");
    }
    assert!(!log.iter().any(|p| p.contains(EMPTY_DIGEST)), "{log:?}");
}

#[test]
fn a_corrupt_layer_ends_the_walk_with_a_digest_error() {
    let s = sha(b"subject");
    let a = referrer(&s, b"layer a");
    let mut r: HashMap<String, (String, Vec<u8>)> = HashMap::new();
    r.insert(
        format!("/v2/r/referrers/{s}"),
        (OCI_INDEX.into(), index(&[&a])),
    );
    r.insert(
        format!("/v2/r/manifests/{}", sha(&a)),
        (OCI_MANIFEST.into(), a.clone()),
    );
    r.insert(
        format!("/v2/r/blobs/{}", sha(b"layer a")),
        ("x".into(), b"layer A".to_vec()),
    );
    let m = mock(r);
    let (_root, p) = walk(&m, &s);
    assert!(p.got.is_empty());
    let e = p.error.map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains(&sha(b"layer a")), "{e}");
}

#[test]
fn embedded_manifests_and_layers_are_used_without_a_request_and_checked() {
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let s = sha(b"subject");
    // A: its layer embedded in the manifest; the manifest embedded in the listing.
    let layer = b"a signature bundle";
    let a = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/example",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": EMPTY_DIGEST, "size": 2, "data": "e30="},
        "layers": [{"mediaType": "application/example", "digest": sha(layer), "size": layer.len(), "data": b64(layer)}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": s, "size": 100},
    }))
    .unwrap();
    // B: listed with data that does not match its digest: fetched as usual.
    let b = referrer(&s, b"layer b");
    let listing = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": sha(&a), "size": a.len(), "data": b64(&a)},
        {"mediaType": OCI_MANIFEST, "digest": sha(&b), "size": b.len(), "data": b64(b"forged")},
    ]});
    let mut r: HashMap<String, (String, Vec<u8>)> = HashMap::new();
    r.insert(
        format!("/v2/r/referrers/{s}"),
        (OCI_INDEX.into(), listing.to_string().into_bytes()),
    );
    r.insert(
        format!("/v2/r/manifests/{}", sha(&b)),
        (OCI_MANIFEST.into(), b.clone()),
    );
    r.insert(
        format!("/v2/r/blobs/{}", sha(b"layer b")),
        ("x".into(), b"layer b".to_vec()),
    );
    let m = mock(r);
    let (_root, p) = walk(&m, &s);
    assert!(
        p.error.is_none(),
        "{:?}",
        p.error.as_ref().map(|e| e.to_string())
    );
    assert_eq!(p.got.len(), 2);
    let got_a = p.got.iter().find(|g| g.digest == sha(&a)).unwrap();
    assert_eq!(got_a.bytes, a);
    let cas = _root
        .path()
        .join("blobs/sha256")
        .join(sha(layer).trim_start_matches("sha256:"));
    assert_eq!(std::fs::read(cas).unwrap(), layer);
    let log = m.log.lock().unwrap().clone();
    // A's own referrers are listed, but its manifest is never fetched.
    let a_manifest = format!("/v2/r/manifests/{}", sha(&a));
    assert!(!log.contains(&a_manifest), "{log:?}");
    assert!(!log.iter().any(|l| l.contains(&sha(layer))), "{log:?}");
    assert!(
        log.contains(&format!("/v2/r/manifests/{}", sha(&b))),
        "{log:?}"
    );
    // One blob downloaded (B's layer); A's came from its manifest.
    assert_eq!(p.requests().1, 1);
}
