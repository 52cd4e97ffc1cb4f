//! Keys: RFC 8032 vectors through PKCS#8, PEM round trips (plain and encrypted), the
//! securesystemslib key id, and refusals of other algorithms and damaged PEM.

use base64::Engine as _;

use super::*;

/// RFC 8032 section 7.1, test 1.
const SECRET: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const SIGNATURE: &str = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
/// sha256 of `{"keytype":"ed25519","keyval":{"public":"<PUBLIC>"},"scheme":"ed25519"}`,
/// computed with Python's hashlib.
const KEY_ID: &str = "74c181c7ad8a0855d4b55e44d2ba87aabdddb196832571f15f92fece332e4916";

const P256_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgqreUCkIk55nntBIT
RAHiYv2iNUBmFCLfBEeqFSVc2D+hRANCAASaMlVOO96c9f+eyr+6igdnglvazsvu
OyyaQoaG+Gs/881TJuBd0cin/XXBq660Tq7abBCkqJ5PZHRo/BeiMnuZ
-----END PRIVATE KEY-----
";
const P256_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEmjJVTjvenPX/nsq/uooHZ4Jb2s7L
7jssmkKGhvhrP/PNUybgXdHIp/11wauutE6u2mwQpKieT2R0aPwXojJ7mQ==
-----END PUBLIC KEY-----
";
const RSA_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDF25p/WWZlHxPQ8r/bTtHv4jwU
66xxyzKtlInY95026Mp8Xi0r0uxeLst5WOUzeUuWzneqYV4H4Q/NKT9D9uV3uqKo
mxy52I7LUANHsWrslX0CczbEK4QQNrsdFnz54bOGViC7pt/QkeDm8+oDVfGVuuSW
vWqtlaG1Edjv0ulVCwIDAQAB
-----END PUBLIC KEY-----
";

/// The RFC 8032 key as a version-1 PKCS#8 PEM (RFC 8410's fixed prefix plus the seed).
fn rfc8032_pem() -> String {
    let mut der = hex::decode("302e020100300506032b657004220420").unwrap();
    der.extend(hex::decode(SECRET).unwrap());
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n")
}

#[test]
fn rfc8032_vector_through_pkcs8() {
    let k = PrivateKey::from_pem("test key", rfc8032_pem().as_bytes(), None).unwrap();
    assert_eq!(k.public().raw_hex(), PUBLIC);
    assert_eq!(hex::encode(k.sign(b"")), SIGNATURE);
    assert!(k.public().verify(b"", &hex::decode(SIGNATURE).unwrap()));
    assert!(!k.public().verify(b"x", &hex::decode(SIGNATURE).unwrap()));
    assert!(!k.public().verify(b"", &[0u8; 63]));
    // gcr writes the same PKCS#8 form back.
    assert_eq!(k.to_pem("t", None).unwrap().as_str(), rfc8032_pem());
}

#[test]
fn key_id_is_securesystemslibs() {
    let k = PrivateKey::from_pem("test key", rfc8032_pem().as_bytes(), None).unwrap();
    assert_eq!(k.public().id(), KEY_ID);
    let raw: [u8; 32] = hex::decode(PUBLIC).unwrap().try_into().unwrap();
    assert_eq!(key_id(&raw), KEY_ID);
}

#[test]
fn pem_round_trips() {
    let k = PrivateKey::generate();
    let public = k.public();
    let pem = public.to_pem();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    assert_eq!(PublicKey::from_pem("p", pem.as_bytes()).unwrap(), public);
    let private = k.to_pem("k", None).unwrap();
    assert!(!is_encrypted(private.as_bytes()));
    let back = PrivateKey::from_pem("k", private.as_bytes(), None).unwrap();
    assert_eq!(back.public(), public);
    // The public half of a private PEM.
    assert_eq!(
        PublicKey::from_pem("k", private.as_bytes()).unwrap(),
        public
    );
}

#[test]
fn encrypted_round_trip_and_wrong_password() {
    let k = PrivateKey::generate();
    let pem = k.to_pem("k", Some(b"correct horse")).unwrap();
    assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
    assert!(is_encrypted(pem.as_bytes()));
    let back = PrivateKey::from_pem("k", pem.as_bytes(), Some(b"correct horse")).unwrap();
    assert_eq!(back.public(), k.public());
    assert!(matches!(
        PrivateKey::from_pem("k", pem.as_bytes(), Some(b"wrong")),
        Err(TrustError::WrongPassword(_))
    ));
    assert!(matches!(
        PrivateKey::from_pem("k", pem.as_bytes(), None),
        Err(TrustError::PasswordNeeded(_))
    ));
    let e = PublicKey::from_pem("k", pem.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("needs the public key"), "{e}");
    // Two encryptions differ (fresh salt and IV).
    assert_ne!(
        *k.to_pem("k", Some(b"pw")).unwrap(),
        *k.to_pem("k", Some(b"pw")).unwrap()
    );
}

#[test]
fn other_algorithms_are_named() {
    for (pem, alg) in [
        (P256_PRIVATE, "an ECDSA P-256"),
        (P256_PUBLIC, "an ECDSA P-256"),
        (RSA_PUBLIC, "an RSA"),
    ] {
        let e = PublicKey::from_pem("f", pem.as_bytes()).unwrap_err();
        assert!(
            matches!(&e, TrustError::WrongAlgorithm { alg: a, .. } if a == alg),
            "{e}"
        );
    }
    let e = PrivateKey::from_pem("f", P256_PRIVATE.as_bytes(), None).unwrap_err();
    assert!(e.to_string().contains("ECDSA P-256"), "{e}");
    let trad = "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n";
    let e = PrivateKey::from_pem("f", trad.as_bytes(), None).unwrap_err();
    assert!(e.to_string().contains("an RSA key"), "{e}");
    let ssh = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
    let e = PrivateKey::from_pem("f", ssh.as_bytes(), None).unwrap_err();
    assert!(e.to_string().contains("OpenSSH"), "{e}");
    let e = PrivateKey::from_pem("f", P256_PUBLIC.as_bytes(), None).unwrap_err();
    assert!(e.to_string().contains("only a public key"), "{e}");
}

#[test]
fn damaged_pem_is_an_error_never_a_panic() {
    let good = rfc8032_pem();
    let mut cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"hello".to_vec(),
        vec![0xff, 0xfe, 0x00],
        good.replace("PRIVATE KEY-----\n", "PRIVATE KEY-----")
            .into_bytes(),
        good.as_bytes()[..good.len() / 2].to_vec(),
        good.replacen("MC4", "MC5", 1).into_bytes(),
        "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n".into(),
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".into(),
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n".into(),
    ];
    // Every single-byte change of a valid key: an error or (rarely, in the base64
    // padding) the same key, never a panic.
    for i in 0..good.len() {
        let mut b = good.clone().into_bytes();
        b[i] ^= 0x04;
        cases.push(b);
    }
    for c in &cases {
        for pw in [None, Some(&b"pw"[..])] {
            let _ = PrivateKey::from_pem("f", c, pw);
        }
        let _ = PublicKey::from_pem("f", c);
    }
    let e = PrivateKey::from_pem("key file x.pem", b"hello", None).unwrap_err();
    assert!(matches!(e, TrustError::BadPem { .. }));
    assert!(
        e.to_string()
            .starts_with("key file x.pem is not a valid PEM key"),
        "{e}"
    );
}
