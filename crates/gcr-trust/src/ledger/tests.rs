use super::proof::ProofText;
use super::*;

fn tree(n: u64) -> (MemHashes, Vec<[u8; 32]>) {
    let mut m = MemHashes(Vec::new());
    let mut leaves = Vec::new();
    for i in 0..n {
        let leaf = tlog_tiles::record_hash(format!("entry {i}").as_bytes()).0;
        let add = hashes_to_store(i, leaf, &m).unwrap();
        m.0.extend(add);
        leaves.push(leaf);
    }
    assert_eq!(m.0.len() as u64, stored_hash_count(n));
    (m, leaves)
}

fn key() -> LedgerKey {
    LedgerKey::new(PrivateKey::generate(), "gcr.test/ledger").unwrap()
}

#[test]
fn inclusion_and_consistency_proofs_check_and_fail_when_changed() {
    let (m, leaves) = tree(37);
    let root = tree_hash(37, &m).unwrap();
    for n in [0u64, 1, 16, 36] {
        let p = prove_inclusion(37, n, &m).unwrap();
        check_inclusion(&p, 37, root, n, Hash(leaves[n as usize])).unwrap();
        assert!(check_inclusion(&p, 37, root, n, Hash([9; 32])).is_err());
    }
    let old = tree_hash(20, &m).unwrap();
    let p = prove_consistency(37, 20, &m).unwrap();
    check_consistency(&p, 37, root, 20, old).unwrap();
    assert!(check_consistency(&p, 37, root, 20, Hash([1; 32])).is_err());
}

#[test]
fn checkpoints_verify_with_the_key_only() {
    let k = key();
    let (m, _) = tree(5);
    let root = tree_hash(5, &m).unwrap();
    let note = k.sign_checkpoint(5, root).unwrap();
    let text = String::from_utf8(note.clone()).unwrap();
    assert!(text.starts_with("gcr.test/ledger\n5\n"), "{text}");
    assert!(text.contains("\n\n\u{2014} gcr.test/ledger "), "{text}");
    let c = verify_checkpoint(&note, 5, &k.verifier_key()).unwrap();
    assert_eq!((c.size, c.root), (5, root));
    // Another key, a flipped byte of the text or of the signature: refused.
    assert!(verify_checkpoint(&note, 5, &key().verifier_key()).is_err());
    let mut bad = note.clone();
    bad[17] ^= 1;
    assert!(verify_checkpoint(&bad, 5, &k.verifier_key()).is_err());
    let mut bad = note.clone();
    let l = bad.len();
    bad[l - 10] = if bad[l - 10] == b'A' { b'B' } else { b'A' };
    assert!(verify_checkpoint(&bad, 5, &k.verifier_key()).is_err());
}

#[test]
fn proof_text_round_trips_and_is_strict() {
    let p = ProofText {
        index: 12,
        hashes: vec![Hash([1; 32]), Hash([2; 32])],
        extra: Some(b"x".to_vec()),
        checkpoint: b"origin\n3\nAAAA\n\n\xe2\x80\x94 sig\n".to_vec(),
    };
    let t = p.to_text();
    assert!(t.starts_with(b"c2sp.org/tlog-proof@v1\nextra eA==\nindex 12\n"));
    assert_eq!(ProofText::parse(&t).unwrap(), p);
    for bad in [
        &b"c2sp.org/tlog-proof@v2\nindex 1\n\nx"[..],
        b"c2sp.org/tlog-proof@v1\nindex 01\n\nx",
        b"c2sp.org/tlog-proof@v1\nindex 1\nAAAA\n\nx",
        b"c2sp.org/tlog-proof@v1\nindex 1",
    ] {
        assert!(
            ProofText::parse(bad).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}
