//! Inclusion proofs in the C2SP `tlog-proof` text format (`c2sp.org/tlog-proof@v1`): the
//! header line, optional `extra` data, `index N`, the proof's hashes one per line in
//! base64, an empty line, then the signed checkpoint the proof is against.

use super::{Hash, LedgerError};
use base64::prelude::*;

const HEADER: &str = "c2sp.org/tlog-proof@v1";

/// A parsed proof: the entry's index, the proof hashes, the extra data and the checkpoint
/// note (still to be verified).
#[derive(Debug, Clone, PartialEq)]
pub struct ProofText {
    pub index: u64,
    pub hashes: Vec<Hash>,
    pub extra: Option<Vec<u8>>,
    pub checkpoint: Vec<u8>,
}

impl ProofText {
    /// The text form.
    pub fn to_text(&self) -> Vec<u8> {
        let mut s = format!("{HEADER}\n");
        if let Some(e) = &self.extra {
            s.push_str(&format!("extra {}\n", BASE64_STANDARD.encode(e)));
        }
        s.push_str(&format!("index {}\n", self.index));
        for h in &self.hashes {
            s.push_str(&BASE64_STANDARD.encode(h.0));
            s.push('\n');
        }
        s.push('\n');
        let mut out = s.into_bytes();
        out.extend_from_slice(&self.checkpoint);
        out
    }

    /// Parses the text form (strictly: one header, canonical numbers, 32-byte hashes).
    pub fn parse(text: &[u8]) -> Result<ProofText, LedgerError> {
        let bad = |m: &str| LedgerError::BadProof(m.to_string());
        let split = text
            .windows(2)
            .position(|w| w == b"\n\n")
            .ok_or_else(|| bad("no empty line before the checkpoint"))?;
        let head = std::str::from_utf8(&text[..split]).map_err(|_| bad("not UTF-8"))?;
        let checkpoint = text[split + 2..].to_vec();
        let mut lines = head.split('\n');
        if lines.next() != Some(HEADER) {
            return Err(bad(&format!("the first line is not '{HEADER}'")));
        }
        let mut extra = None;
        let mut line = lines.next().ok_or_else(|| bad("no 'index' line"))?;
        if let Some(e) = line.strip_prefix("extra ") {
            extra = Some(
                BASE64_STANDARD
                    .decode(e)
                    .map_err(|_| bad("the extra data is not base64"))?,
            );
            line = lines.next().ok_or_else(|| bad("no 'index' line"))?;
        }
        let n = line
            .strip_prefix("index ")
            .ok_or_else(|| bad("no 'index' line"))?;
        if n.is_empty()
            || (n.len() > 1 && n.starts_with('0'))
            || !n.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad(&format!("'{n}' is not an index")));
        }
        let index = n
            .parse()
            .map_err(|_| bad(&format!("'{n}' is not an index")))?;
        let mut hashes = Vec::new();
        for l in lines {
            let b = BASE64_STANDARD
                .decode(l)
                .map_err(|_| bad(&format!("'{l}' is not a base64 hash")))?;
            let h: [u8; 32] = b
                .try_into()
                .map_err(|_| bad(&format!("'{l}' is not a 32-byte hash")))?;
            hashes.push(Hash(h));
        }
        if hashes.len() > 64 {
            return Err(bad("more than 64 hashes"));
        }
        Ok(ProofText {
            index,
            hashes,
            extra,
            checkpoint,
        })
    }
}
