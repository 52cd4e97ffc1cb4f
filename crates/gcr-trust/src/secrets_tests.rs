//! Tests of the secrets key file and the AEAD wrapper.

use super::*;
use std::os::unix::fs::PermissionsExt;

fn key(b: u8) -> SecretsKey {
    SecretsKey::from_bytes([b; 32])
}

#[test]
fn a_sealed_value_opens_with_its_key_name_and_id_only() {
    let k = key(7);
    let sealed = k.seal("db-pass", "id1", b"hunter2").unwrap();
    assert_eq!(sealed.len(), NONCE_LEN + 7 + TAG_LEN);
    assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
    assert_eq!(
        &k.open_sealed("db-pass", "id1", &sealed).unwrap()[..],
        b"hunter2"
    );
    // Wrong associated data: another name or another id.
    assert!(matches!(
        k.open_sealed("db-pas", "id1", &sealed),
        Err(SecretError::Open(_))
    ));
    assert!(k.open_sealed("db-pass", "id2", &sealed).is_err());
    // Wrong key.
    assert!(key(8).open_sealed("db-pass", "id1", &sealed).is_err());
    // Tampered ciphertext, nonce or tag; truncated.
    for i in [0, NONCE_LEN, sealed.len() - 1] {
        let mut t = sealed.clone();
        t[i] ^= 1;
        assert!(k.open_sealed("db-pass", "id1", &t).is_err(), "byte {i}");
    }
    assert!(k.open_sealed("db-pass", "id1", &sealed[..20]).is_err());
    assert!(k.open_sealed("db-pass", "id1", &[]).is_err());
}

#[test]
fn every_seal_has_a_fresh_nonce() {
    let k = key(1);
    let a = k.seal("n", "i", b"same").unwrap();
    let b = k.seal("n", "i", b"same").unwrap();
    assert_ne!(a[..NONCE_LEN], b[..NONCE_LEN]);
    assert_ne!(a, b);
}

#[test]
fn keyed_digests_follow_the_value_and_the_key() {
    let k = key(3);
    let d = k.keyed_digest("build", b"1234");
    assert_eq!(d, k.keyed_digest("build", b"1234"));
    assert_ne!(d, k.keyed_digest("build", b"1235"));
    assert_ne!(d, key(4).keyed_digest("build", b"1234"));
    assert_ne!(d, k.keyed_digest("other", b"1234"));
    // Not the plain digest of the value.
    assert!(!d.contains(&blake3::hash(b"1234").to_hex().to_string()));
}

#[test]
fn the_key_file_is_made_once_0600_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let a = SecretsKey::open_or_create(dir.path()).unwrap();
    let path = dir.path().join(KEY_FILE);
    let md = fs::metadata(&path).unwrap();
    assert_eq!(md.permissions().mode() & 0o777, 0o600);
    assert_eq!(md.len(), 32);
    let b = SecretsKey::open_or_create(dir.path()).unwrap();
    let sealed = a.seal("x", "y", b"v").unwrap();
    assert_eq!(&b.open_sealed("x", "y", &sealed).unwrap()[..], b"v");
    // No temporary file is left.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn a_key_file_open_to_others_damaged_or_a_link_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    SecretsKey::open_or_create(dir.path()).unwrap();
    let path = dir.path().join(KEY_FILE);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    let e = SecretsKey::open_or_create(dir.path()).unwrap_err();
    assert!(matches!(e, SecretError::KeyOpen { mode: 0o640, .. }), "{e}");
    assert!(e.to_string().contains("chmod 600"), "{e}");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(&path, b"short").unwrap();
    assert!(matches!(
        SecretsKey::open_or_create(dir.path()),
        Err(SecretError::KeyDamaged { .. })
    ));
    fs::remove_file(&path).unwrap();
    let other = dir.path().join("elsewhere");
    fs::write(&other, [0u8; 32]).unwrap();
    fs::set_permissions(&other, fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink(&other, &path).unwrap();
    assert!(matches!(
        SecretsKey::open_or_create(dir.path()),
        Err(SecretError::KeyDamaged { .. })
    ));
}
