#!/usr/bin/env python3
"""Peer check with securesystemslib (>= 1.0), no gcr code involved.

  sslib.py keyid PUBPEM                       print securesystemslib's key id of a PEM key
  sslib.py verify PUBPEM FILE [MANIFEST [BLOBDIR]]
                                              verify FILE (a DSSE envelope, or a Sigstore
                                              bundle's dsseEnvelope) with Envelope.verify and
                                              an SSlibKey from the PEM; with MANIFEST, also
                                              require an in-toto subject with its sha256; with
                                              BLOBDIR (an OCI blobs/sha256 directory), also
                                              check the manifest's config and layer blobs
  sslib.py sign PRIVPEM|new DIGEST NAME OUT [PUBOUT]
                                              sign an in-toto Statement v1 about DIGEST
                                              (sha256 hex) with CryptoSigner; "new" makes an
                                              Ed25519 key and writes its public PEM to PUBOUT
Exit 0 on success, 1 (with the reason on stderr) when verification fails.
"""
import base64
import hashlib
import json
import sys

from cryptography.hazmat.primitives import serialization
from securesystemslib.dsse import Envelope
from securesystemslib.signer import CryptoSigner, SSlibKey


def load_key(path):
    with open(path, "rb") as f:
        return SSlibKey.from_crypto(serialization.load_pem_public_key(f.read()))


def main(argv):
    cmd = argv[1]
    if cmd == "keyid":
        print(load_key(argv[2]).keyid)
        return 0
    if cmd == "verify":
        key = load_key(argv[2])
        with open(argv[3], "rb") as f:
            doc = json.load(f)
        env = Envelope.from_dict(doc.get("dsseEnvelope", doc))
        try:
            env.verify([key], 1)
        except Exception as e:  # VerificationError, or a malformed signature
            print(f"securesystemslib rejects: {type(e).__name__}: {e}", file=sys.stderr)
            return 1
        if len(argv) > 4:
            with open(argv[4], "rb") as f:
                want = hashlib.sha256(f.read()).hexdigest()
            statement = json.loads(env.payload)
            if statement.get("_type") != "https://in-toto.io/Statement/v1":
                print("payload is not an in-toto Statement v1", file=sys.stderr)
                return 1
            if not any(s.get("digest", {}).get("sha256") == want for s in statement["subject"]):
                print(f"no subject has sha256 {want}", file=sys.stderr)
                return 1
        if len(argv) > 5:
            with open(argv[4], "rb") as f:
                manifest = json.load(f)
            for d in [manifest["config"]] + manifest["layers"]:
                hexd = d["digest"].split(":", 1)[1]
                with open(f"{argv[5]}/{hexd}", "rb") as f:
                    if hashlib.sha256(f.read()).hexdigest() != hexd:
                        print(f"blob {d['digest']} does not match its digest", file=sys.stderr)
                        return 1
        print(f"verified by {key.keyid}")
        return 0
    if cmd == "sign":
        if argv[2] == "new":
            signer = CryptoSigner.generate_ed25519()
            with open(argv[6], "wb") as f:
                f.write(signer._private_key.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        else:
            with open(argv[2], "rb") as f:
                priv = serialization.load_pem_private_key(f.read(), password=None)
            signer = CryptoSigner(priv)
        statement = {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": argv[4], "digest": {"sha256": argv[3]}}],
            "predicateType": "https://example.com/peer/v1",
            "predicate": {"signedAt": "2024-01-02T03:04:05Z", "by": "securesystemslib"},
        }
        payload = json.dumps(statement).encode()
        env = Envelope(payload, "application/vnd.in-toto+json", {})
        env.sign(signer)
        with open(argv[5], "w") as f:
            json.dump(env.to_dict(), f)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
