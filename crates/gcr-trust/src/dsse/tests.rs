//! DSSE: the PAE of the specification's example, and envelopes that round-trip.

use super::*;

#[test]
fn pae_matches_the_specification() {
    // DSSE protocol.md: PAE("http://example.com/HelloWorld", "hello world").
    assert_eq!(
        pae("http://example.com/HelloWorld", b"hello world"),
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
    );
    assert_eq!(pae("", b""), b"DSSEv1 0  0 ".to_vec());
    // Lengths are bytes, not characters.
    assert_eq!(
        pae("t", "é".as_bytes()),
        "DSSEv1 1 t 2 é".as_bytes().to_vec()
    );
    // Moving bytes between type and body changes the encoding.
    assert_ne!(pae("ab", b"c"), pae("a", b"bc"));
}

#[test]
fn envelope_signs_the_pae_and_round_trips() {
    let k = PrivateKey::generate();
    let env = Envelope::sign("application/vnd.in-toto+json", b"{\"a\":1}", &k);
    assert_eq!(env.signatures.len(), 1);
    assert_eq!(env.signatures[0].keyid, k.public().id());
    let sig = decode_b64("e", "signature", &env.signatures[0].sig).unwrap();
    assert!(k
        .public()
        .verify(&pae("application/vnd.in-toto+json", b"{\"a\":1}"), &sig));
    assert!(
        !k.public().verify(b"{\"a\":1}", &sig),
        "the raw payload is not what is signed"
    );
    let json = env.to_json().unwrap();
    let back: Envelope = serde_json::from_slice(&json).unwrap();
    assert_eq!(back, env);
    assert_eq!(back.payload_bytes("e").unwrap(), b"{\"a\":1}");
    // Ed25519 is deterministic and the JSON canonical: the same inputs, the same bytes.
    assert_eq!(
        Envelope::sign("application/vnd.in-toto+json", b"{\"a\":1}", &k)
            .to_json()
            .unwrap(),
        json
    );
}

#[test]
fn base64_variants_decode() {
    for s in ["aGk/Pz4+", "aGk_Pz4-", "aGk", "aGk="] {
        assert!(decode_b64("e", "payload", s).is_ok(), "{s}");
    }
    assert!(decode_b64("e", "payload", "!!").is_err());
}
