//! Request bodies for the registry server: [`BodyReader`] reads exactly the bytes a request
//! announced (`Content-Length`) or decodes `Transfer-Encoding: chunked`, under a byte
//! limit, with chunk-size and trailer lines bounded like head lines. A refusal is an
//! `io::Error` of kind `InvalidData` wrapping a [`WireError`] (see [`wire_error`]), so the
//! server can answer it with the right status; a body cut short is `UnexpectedEof`.

use super::wire::{self, BodyKind, WireError, MAX_HEAD, MAX_HEADERS, MAX_LINE};
use std::io::{self, BufRead, Read};

/// Longest chunk-size line (hex size and extensions) of a chunked body.
const MAX_CHUNK_LINE: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// This many bytes of a `Content-Length` body are left.
    Length(u64),
    /// Expecting a chunk-size line.
    ChunkSize,
    /// This many bytes of the current chunk are left.
    Chunk(u64),
    /// Expecting the line ending after a chunk.
    ChunkEnd,
    Done,
    /// An earlier read failed; the connection cannot be reused.
    Failed,
}

/// A request body over a buffered connection (or any `BufRead`, for tests and fuzzing).
#[derive(Debug)]
pub struct BodyReader<R> {
    inner: R,
    state: State,
    read: u64,
    limit: u64,
}

fn refused(e: WireError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// The [`WireError`] inside an error from [`BodyReader`], if it is a refusal.
pub fn wire_error(e: &io::Error) -> Option<&WireError> {
    e.get_ref().and_then(|x| x.downcast_ref::<WireError>())
}

fn ended_early() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the request body ended before its announced length",
    )
}

/// Reads one line of at most `max` bytes (without its `\r\n` or `\n`).
fn read_line<R: BufRead>(r: &mut R, max: usize) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    loop {
        let avail = r.fill_buf()?;
        if avail.is_empty() {
            return Err(ended_early());
        }
        let (take, done) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (avail.len(), false),
        };
        if line.len() + take > max + 2 {
            return Err(refused(WireError::new(
                431,
                "UNSUPPORTED",
                format!("a chunk-size or trailer line of the body is over {max} bytes"),
            )));
        }
        line.extend_from_slice(&avail[..take]);
        r.consume(take);
        if done {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(line);
        }
    }
}

fn parse_chunk_size(line: &[u8]) -> Option<u64> {
    let size = line.split(|&b| b == b';').next().unwrap_or_default();
    let size = size.strip_suffix(b" ").unwrap_or(size);
    if size.is_empty() || size.len() > 16 || !size.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(size).ok()?, 16).ok()
}

impl<R: BufRead> BodyReader<R> {
    /// A body of `kind` over `inner`; more than `limit` bytes is refused with 413.
    pub fn new(inner: R, kind: BodyKind, limit: u64) -> BodyReader<R> {
        let state = match kind {
            BodyKind::Length(n) => State::Length(n),
            BodyKind::Chunked => State::ChunkSize,
        };
        BodyReader {
            inner,
            state,
            read: 0,
            limit,
        }
    }

    /// Bytes of `Content-Length` body still to come (None for chunked bodies).
    pub fn announced_left(&self) -> Option<u64> {
        match self.state {
            State::Length(n) => Some(n),
            _ => None,
        }
    }

    /// True when the whole body (and a chunked body's trailer) has been read.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done | State::Length(0))
    }

    /// Body bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// The connection underneath.
    pub fn into_inner(self) -> R {
        self.inner
    }

    fn data(&mut self, buf: &mut [u8], left: u64) -> io::Result<usize> {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(ended_early());
        }
        self.read += n as u64;
        Ok(n)
    }

    fn trailer(&mut self) -> io::Result<()> {
        let (mut count, mut total) = (0, 0);
        loop {
            let line = read_line(&mut self.inner, MAX_LINE)?;
            if line.is_empty() {
                return Ok(());
            }
            count += 1;
            total += line.len() + 2;
            if count > MAX_HEADERS || total > MAX_HEAD {
                return Err(refused(WireError::new(
                    431,
                    "UNSUPPORTED",
                    "the chunked body's trailer is too large; send fewer trailer fields",
                )));
            }
            wire::parse_field(&line).map_err(refused)?;
        }
    }

    fn step(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.state {
                State::Done | State::Length(0) => return Ok(0),
                State::Failed => {
                    return Err(io::Error::other(
                        "the request body was already refused or cut short",
                    ))
                }
                State::Length(left) => {
                    if self.read.saturating_add(left) > self.limit {
                        return Err(refused(wire::too_large(self.limit)));
                    }
                    let n = self.data(buf, left)?;
                    self.state = State::Length(left - n as u64);
                    return Ok(n);
                }
                State::ChunkSize => {
                    let line = read_line(&mut self.inner, MAX_CHUNK_LINE)?;
                    let size = parse_chunk_size(&line).ok_or_else(|| {
                        refused(WireError::new(
                            400,
                            "UNSUPPORTED",
                            "a chunk of the chunked body does not start with a hex size",
                        ))
                    })?;
                    if size == 0 {
                        self.trailer()?;
                        self.state = State::Done;
                        return Ok(0);
                    }
                    if self.read.saturating_add(size) > self.limit {
                        return Err(refused(wire::too_large(self.limit)));
                    }
                    self.state = State::Chunk(size);
                }
                State::Chunk(0) => self.state = State::ChunkEnd,
                State::Chunk(left) => {
                    let n = self.data(buf, left)?;
                    self.state = State::Chunk(left - n as u64);
                    return Ok(n);
                }
                State::ChunkEnd => {
                    let too_long = || {
                        refused(WireError::new(
                            400,
                            "UNSUPPORTED",
                            "a chunk of the chunked body is longer than its size says",
                        ))
                    };
                    match read_line(&mut self.inner, 0) {
                        Ok(l) if l.is_empty() => self.state = State::ChunkSize,
                        Ok(_) => return Err(too_long()),
                        Err(e) if wire_error(&e).is_some() => return Err(too_long()),
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }
}

impl<R: BufRead> Read for BodyReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let r = self.step(buf);
        if r.is_err() {
            self.state = State::Failed;
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(raw: &[u8], kind: BodyKind, limit: u64) -> io::Result<Vec<u8>> {
        let mut r = BodyReader::new(raw, kind, limit);
        let mut v = Vec::new();
        r.read_to_end(&mut v)?;
        assert!(r.is_done());
        Ok(v)
    }

    #[test]
    fn chunked_bodies_decode_and_bad_ones_are_refused() {
        let ok = read_all(
            b"5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nT: v\r\n\r\n",
            BodyKind::Chunked,
            100,
        );
        assert_eq!(ok.unwrap(), b"hello world");
        let status = |raw: &[u8], limit| {
            let e = read_all(raw, BodyKind::Chunked, limit).unwrap_err();
            wire_error(&e).map(|w| w.status)
        };
        assert_eq!(status(b"zz\r\n", 100), Some(400));
        assert_eq!(status(b"+5\r\nhello\r\n0\r\n\r\n", 100), Some(400));
        assert_eq!(status(b"3\r\nhello\r\n0\r\n\r\n", 100), Some(400));
        assert_eq!(status(b"5\r\nhello\r\n0\r\n\r\n", 4), Some(413));
        assert_eq!(status(b"ffffffffffffffff\r\n", u64::MAX), None, "cut short");
        assert_eq!(status(b"11111111111111111\r\n", u64::MAX), Some(400));
        let long = [b"1".repeat(2000), b"\r\n".to_vec()].concat();
        assert_eq!(status(&long, 100), Some(431));
        let e = read_all(b"5\r\nhel", BodyKind::Chunked, 100).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn length_bodies_stop_at_their_length() {
        let mut r = BodyReader::new(&b"abcNEXT"[..], BodyKind::Length(3), 10);
        let mut v = Vec::new();
        r.read_to_end(&mut v).unwrap();
        assert_eq!(v, b"abc");
        assert_eq!(r.into_inner(), b"NEXT");
        let e = read_all(b"ab", BodyKind::Length(3), 10).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        let e = read_all(b"abc", BodyKind::Length(3), 2).unwrap_err();
        assert_eq!(wire_error(&e).map(|w| w.status), Some(413));
    }
}
