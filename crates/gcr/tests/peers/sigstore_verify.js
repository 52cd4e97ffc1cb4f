#!/usr/bin/env node
// Peer check with @sigstore/verify, no gcr code involved:
//   node sigstore_verify.js PUBPEM BUNDLE [MANIFEST [BLOBDIR]]
// Verifies the Sigstore bundle against the Ed25519 public key in PUBPEM (found by the
// bundle's publicKey hint, which must be securesystemslib's key id of that key), with the
// transparency-log, CT-log and timestamp thresholds at 0. With MANIFEST, the in-toto
// statement must also name that file's sha256 as a subject digest; with BLOBDIR (an OCI
// blobs/sha256 directory), the manifest's config and layer blobs must match their digests.
// Exit 0 when verified; 1 with the reason on stderr otherwise. Modules come from NODE_PATH.
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const { bundleFromJSON } = require('@sigstore/bundle');
const { Verifier, toSignedEntity, toTrustMaterial } = require('@sigstore/verify');
const { PublicKeyDetails } = require('@sigstore/protobuf-specs');

function main(argv) {
  const [pemFile, bundleFile, manifestFile, blobDir] = argv;
  const pem = fs.readFileSync(pemFile, 'utf8');
  const key = crypto.createPublicKey(pem);
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`not an Ed25519 key: ${key.asymmetricKeyType}`);
  const raw = Buffer.from(key.export({ format: 'jwk' }).x, 'base64url');
  // securesystemslib's key id: sha256 of the canonical JSON of the key's public metadata.
  const meta = `{"keytype":"ed25519","keyval":{"public":"${raw.toString('hex')}"},"scheme":"ed25519"}`;
  const keyid = crypto.createHash('sha256').update(meta).digest('hex');
  const der = key.export({ format: 'der', type: 'spki' });
  const keys = {
    [keyid]: { rawBytes: der, keyDetails: PublicKeyDetails.PKIX_ED25519, validFor: { start: new Date(0) } },
  };
  const root = { certificateAuthorities: [], timestampAuthorities: [], tlogs: [], ctlogs: [] };
  const bundle = bundleFromJSON(JSON.parse(fs.readFileSync(bundleFile, 'utf8')));
  const verifier = new Verifier(toTrustMaterial(root, keys), {
    tlogThreshold: 0,
    ctlogThreshold: 0,
    timestampThreshold: 0,
  });
  verifier.verify(toSignedEntity(bundle));
  if (manifestFile) {
    const want = crypto.createHash('sha256').update(fs.readFileSync(manifestFile)).digest('hex');
    const env = bundle.content.dsseEnvelope;
    const statement = JSON.parse(Buffer.from(env.payload).toString('utf8'));
    if (statement._type !== 'https://in-toto.io/Statement/v1') throw new Error('payload is not an in-toto Statement v1');
    if (!statement.subject.some((s) => s.digest && s.digest.sha256 === want)) throw new Error(`no subject has sha256 ${want}`);
  }
  if (blobDir) {
    const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8'));
    for (const d of [manifest.config, ...manifest.layers]) {
      const hex = d.digest.split(':')[1];
      const got = crypto.createHash('sha256').update(fs.readFileSync(`${blobDir}/${hex}`)).digest('hex');
      if (got !== hex) throw new Error(`blob ${d.digest} does not match its digest`);
    }
  }
  console.log(`verified by ${keyid}`);
}

try {
  main(process.argv.slice(2));
} catch (e) {
  console.error(`@sigstore/verify rejects: ${e.code || e.name}: ${e.message}`);
  process.exit(1);
}
