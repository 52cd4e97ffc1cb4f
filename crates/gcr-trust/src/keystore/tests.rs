//! The key store: file modes, listing, refusals that write nothing, removal.

use std::os::unix::fs::PermissionsExt;

use super::*;

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn generate_list_remove() {
    let tmp = tempfile::tempdir().unwrap();
    let ks = KeyStore::new(tmp.path());
    assert!(ks.list().unwrap().is_empty());
    let a = ks.generate("a", None).unwrap();
    let b = ks.generate("b", Some(b"pw")).unwrap();
    let dir = tmp.path().join("keys");
    assert_eq!(
        fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert_eq!(files(&dir), ["a.key", "a.pub", "b.key", "b.pub"]);
    for f in files(&dir) {
        let mode = fs::metadata(dir.join(&f)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    let list = ks.list().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!((list[0].name.as_str(), list[0].encrypted), ("a", false));
    assert_eq!((list[1].name.as_str(), list[1].encrypted), ("b", true));
    assert_eq!(ks.public("a").unwrap().id(), a.key_id);
    assert_eq!(ks.name_of(&b.key_id).as_deref(), Some("b"));
    assert!(ks.private("b", None).is_err());
    assert_eq!(
        ks.private("b", Some(b"pw")).unwrap().public().id(),
        b.key_id
    );
    assert!(matches!(
        ks.generate("a", None),
        Err(TrustError::KeyExists(_))
    ));
    ks.remove("a").unwrap();
    assert!(matches!(ks.remove("a"), Err(TrustError::KeyNotFound(_))));
    assert!(matches!(ks.public("a"), Err(TrustError::KeyNotFound(_))));
    assert!(matches!(
        ks.private("a", None),
        Err(TrustError::KeyNotFound(_))
    ));
    assert_eq!(files(&dir), ["b.key", "b.pub"]);
}

#[test]
fn refused_imports_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let ks = KeyStore::new(tmp.path());
    let key = PrivateKey::generate();
    let enc = key.to_pem("k", Some(b"pw")).unwrap();
    let plain = key.to_pem("k", None).unwrap();
    type Case<'a> = (&'a str, &'a [u8], Option<&'a [u8]>);
    let bad: Vec<Case> = vec![
        ("x", enc.as_bytes(), None),
        ("x", enc.as_bytes(), Some(b"wrong")),
        ("x", enc.as_bytes(), Some(b"")),
        ("x", plain.as_bytes(), Some(b"pw")),
        ("x", b"garbage", None),
        ("../x", plain.as_bytes(), None),
        ("", plain.as_bytes(), None),
        ("-x", plain.as_bytes(), None),
    ];
    for (name, pem, pw) in bad {
        assert!(ks.import(name, "f", pem, pw).is_err(), "{name}");
        assert!(files(&tmp.path().join("keys")).is_empty(), "{name}");
    }
    let k = ks.import("x", "f", enc.as_bytes(), Some(b"pw")).unwrap();
    assert!(k.private && k.encrypted);
    assert_eq!(k.key_id, key.public().id());
    let p = ks
        .import("p", "f", key.public().to_pem().as_bytes(), None)
        .unwrap();
    assert!(!p.private);
    assert!(matches!(
        ks.private("p", None),
        Err(TrustError::NoPrivateKey(_))
    ));
}

#[test]
fn names() {
    for ok in ["a", "A1", "key.v2", "my_key-1", &"k".repeat(64)] {
        check_name(ok).unwrap();
    }
    for bad in [
        "",
        ".a",
        "-a",
        "_a",
        "a/b",
        "a b",
        "ä",
        &"k".repeat(65),
        "..",
    ] {
        assert!(check_name(bad).is_err(), "{bad:?}");
    }
}
