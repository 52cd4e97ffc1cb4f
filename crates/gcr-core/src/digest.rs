//! Content digests: `sha256:<64 lowercase hex>` (OCI's default) and `blake3:<64 hex>`.
//! A [`Digest`] parses and prints in that form and serializes as the same string.
//! [`Hasher`] hashes incrementally; [`DigestWriter`] hashes everything written through
//! it to an inner writer, so a blob can be stored and digested in one pass.

use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Digest as _;

/// A hash algorithm gcr can address content with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Blake3,
}

impl Algorithm {
    /// The prefix used in digest strings: `sha256` or `blake3`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Blake3 => "blake3",
        }
    }

    /// Number of hex characters of a digest of this algorithm (64 for both).
    pub fn hex_len(self) -> usize {
        64
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a string is not a digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("'{0}' is not a digest; use sha256:<64 lowercase hex characters>")]
    Format(String),
    #[error("'{0}' uses an unsupported digest algorithm; use sha256 or blake3")]
    Algorithm(String),
    #[error("'{0}' is not a valid digest; expected 64 lowercase hex characters after ':'")]
    Hex(String),
}

/// A content digest. Construct it with [`Digest::from_str`], [`Digest::new`] or one of
/// the hashing functions; all of them guarantee `hex` is 64 lowercase hex characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    pub algorithm: Algorithm,
    pub hex: String,
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Digest {
    /// Builds a digest from an algorithm and its hex string, validating the hex.
    pub fn new(algorithm: Algorithm, hex: &str) -> Result<Digest, DigestError> {
        if !is_lower_hex(hex, algorithm.hex_len()) {
            return Err(DigestError::Hex(format!("{algorithm}:{hex}")));
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_string(),
        })
    }

    /// SHA-256 of `data`.
    pub fn sha256_of(data: &[u8]) -> Digest {
        Digest {
            algorithm: Algorithm::Sha256,
            hex: hex::encode(sha2::Sha256::digest(data)),
        }
    }

    /// BLAKE3 of `data`.
    pub fn blake3_of(data: &[u8]) -> Digest {
        Digest {
            algorithm: Algorithm::Blake3,
            hex: blake3::hash(data).to_hex().to_string(),
        }
    }

    /// Digest of `data` with the given algorithm.
    pub fn of(algorithm: Algorithm, data: &[u8]) -> Digest {
        match algorithm {
            Algorithm::Sha256 => Digest::sha256_of(data),
            Algorithm::Blake3 => Digest::blake3_of(data),
        }
    }

    /// True when `data` hashes to this digest.
    pub fn verify(&self, data: &[u8]) -> bool {
        Digest::of(self.algorithm, data) == *self
    }

    /// The first 12 hex characters, as Docker shows image IDs.
    pub fn short(&self) -> &str {
        &self.hex[..12.min(self.hex.len())]
    }

    /// True when `s` is a full digest string (`sha256:<64 hex>` or `blake3:<64 hex>`).
    pub fn is_digest(s: &str) -> bool {
        s.parse::<Digest>().is_ok()
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Digest, DigestError> {
        let Some((alg, hex)) = s.split_once(':') else {
            return Err(DigestError::Format(s.to_string()));
        };
        let algorithm = match alg {
            "sha256" => Algorithm::Sha256,
            "blake3" => Algorithm::Blake3,
            _ => return Err(DigestError::Algorithm(s.to_string())),
        };
        if !is_lower_hex(hex, algorithm.hex_len()) {
            return Err(DigestError::Hex(s.to_string()));
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_string(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

enum State {
    Sha256(Box<sha2::Sha256>),
    Blake3(Box<blake3::Hasher>),
}

/// An incremental hasher that also counts bytes. It implements [`Write`].
pub struct Hasher {
    state: State,
    count: u64,
}

impl Hasher {
    pub fn new(algorithm: Algorithm) -> Hasher {
        let state = match algorithm {
            Algorithm::Sha256 => State::Sha256(Box::default()),
            Algorithm::Blake3 => State::Blake3(Box::default()),
        };
        Hasher { state, count: 0 }
    }

    pub fn update(&mut self, data: &[u8]) {
        match &mut self.state {
            State::Sha256(h) => h.update(data),
            State::Blake3(h) => {
                h.update(data);
            }
        }
        self.count += data.len() as u64;
    }

    /// Bytes hashed so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The digest and the number of bytes hashed.
    pub fn finish(self) -> (Digest, u64) {
        let digest = match self.state {
            State::Sha256(h) => Digest {
                algorithm: Algorithm::Sha256,
                hex: hex::encode(h.finalize()),
            },
            State::Blake3(h) => Digest {
                algorithm: Algorithm::Blake3,
                hex: h.finalize().to_hex().to_string(),
            },
        };
        (digest, self.count)
    }
}

impl Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A writer that forwards to `inner` and hashes exactly the bytes `inner` accepted.
pub struct DigestWriter<W: Write> {
    inner: W,
    hasher: Hasher,
}

impl<W: Write> DigestWriter<W> {
    pub fn new(inner: W, algorithm: Algorithm) -> DigestWriter<W> {
        DigestWriter {
            inner,
            hasher: Hasher::new(algorithm),
        }
    }

    /// Bytes written so far.
    pub fn count(&self) -> u64 {
        self.hasher.count()
    }

    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// Returns the inner writer, the digest and the byte count.
    pub fn finish(self) -> (W, Digest, u64) {
        let (digest, count) = self.hasher.finish();
        (self.inner, digest, count)
    }
}

impl<W: Write> Write for DigestWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const ABC_SHA: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn known_vectors() {
        assert_eq!(
            Digest::sha256_of(b"").to_string(),
            format!("sha256:{EMPTY_SHA}")
        );
        assert_eq!(Digest::sha256_of(b"abc").hex, ABC_SHA);
        assert_eq!(
            Digest::blake3_of(b"").to_string(),
            "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
        assert_eq!(Digest::sha256_of(b"abc").short(), "ba7816bf8f01");
        assert!(Digest::sha256_of(b"abc").verify(b"abc"));
        assert!(!Digest::sha256_of(b"abc").verify(b"abd"));
    }

    #[test]
    fn parse_and_display_round_trip() {
        let s = format!("sha256:{ABC_SHA}");
        let d: Digest = s.parse().unwrap();
        assert_eq!(d.algorithm, Algorithm::Sha256);
        assert_eq!(d.to_string(), s);
        let b = Digest::blake3_of(b"x").to_string();
        assert_eq!(b.parse::<Digest>().unwrap().to_string(), b);
    }

    #[test]
    fn parse_errors() {
        assert_eq!(
            "abc".parse::<Digest>().unwrap_err().to_string(),
            "'abc' is not a digest; use sha256:<64 lowercase hex characters>"
        );
        assert_eq!(
            format!("md5:{ABC_SHA}").parse::<Digest>().unwrap_err(),
            DigestError::Algorithm(format!("md5:{ABC_SHA}"))
        );
        let upper = format!("sha256:{}", ABC_SHA.to_uppercase());
        assert!(matches!(upper.parse::<Digest>(), Err(DigestError::Hex(_))));
        assert!(matches!(
            "sha256:abc".parse::<Digest>(),
            Err(DigestError::Hex(_))
        ));
        assert!(matches!(
            format!("sha256:{ABC_SHA}0").parse::<Digest>(),
            Err(DigestError::Hex(_))
        ));
        assert!(Digest::new(Algorithm::Sha256, "zz").is_err());
        assert!(!Digest::is_digest("sha256:"));
    }

    #[test]
    fn serde_as_string() {
        let d = Digest::sha256_of(b"abc");
        let j = serde_json::to_string(&d).unwrap();
        assert_eq!(j, format!("\"sha256:{ABC_SHA}\""));
        assert_eq!(serde_json::from_str::<Digest>(&j).unwrap(), d);
        assert!(serde_json::from_str::<Digest>("\"sha256:nope\"").is_err());
    }

    #[test]
    fn streaming_matches_one_shot() {
        for alg in [Algorithm::Sha256, Algorithm::Blake3] {
            let mut h = Hasher::new(alg);
            h.update(b"hello ");
            h.write_all(b"world").unwrap();
            let (d, n) = h.finish();
            assert_eq!(n, 11);
            assert_eq!(d, Digest::of(alg, b"hello world"));

            let mut w = DigestWriter::new(Vec::new(), alg);
            w.write_all(b"hello ").unwrap();
            w.write_all(b"world").unwrap();
            assert_eq!(w.count(), 11);
            let (buf, d2, n2) = w.finish();
            assert_eq!(buf, b"hello world");
            assert_eq!((d2, n2), (d, 11));
        }
    }

    #[test]
    fn writer_hashes_only_accepted_bytes() {
        struct Half(Vec<u8>);
        impl Write for Half {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                let n = b.len().div_ceil(2);
                self.0.extend_from_slice(&b[..n]);
                Ok(n)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut w = DigestWriter::new(Half(Vec::new()), Algorithm::Sha256);
        w.write_all(b"abcdefg").unwrap();
        let (inner, d, n) = w.finish();
        assert_eq!(inner.0, b"abcdefg");
        assert_eq!((d, n), (Digest::sha256_of(b"abcdefg"), 7));
    }
}
