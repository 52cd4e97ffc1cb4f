//! HTTP/1.1 request heads for the registry server, parsed under hard limits: a line of at
//! most [`MAX_LINE`] bytes, at most [`MAX_HEADERS`] header fields and [`MAX_HEAD`] bytes in
//! all. [`HeadScanner`] finds the end of a head as bytes arrive (so an endless line is
//! refused after 8 KiB, not buffered), [`parse_request_head`] turns a complete head into a
//! [`RequestHead`], and [`parse_target`] percent-decodes its path and query. Nothing here
//! panics on any input: every refusal is a [`WireError`] carrying the HTTP status and the
//! distribution-spec error code to answer with.

/// Longest request line or header line, in bytes (without its line ending).
pub const MAX_LINE: usize = 8 * 1024;
/// Most header fields in a request head (or in the trailer of a chunked body).
pub const MAX_HEADERS: usize = 100;
/// Longest request head (request line, header lines and line endings), in bytes.
pub const MAX_HEAD: usize = 64 * 1024;
/// Largest request body accepted, in bytes (a blob upload; manifests have their own limit).
pub const MAX_BODY: u64 = 64 << 30;
/// Empty lines tolerated before a request line (left over after a previous body).
const MAX_LEADING_EMPTY: usize = 8;

/// A request the server refuses at the HTTP level: status, spec error code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct WireError {
    /// HTTP status to answer with (400, 408, 413, 414, 431, 501, 505).
    pub status: u16,
    /// Distribution-spec error code for the JSON body.
    pub code: &'static str,
    /// One sentence naming what was wrong and what to send instead.
    pub message: String,
}

impl WireError {
    pub(crate) fn new(status: u16, code: &'static str, message: impl Into<String>) -> WireError {
        WireError {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> WireError {
        WireError::new(400, "UNSUPPORTED", message)
    }
}

/// Finds the end of a request head in bytes fed to it piece by piece, refusing as soon as
/// a limit is passed.
#[derive(Debug, Default, Clone)]
pub struct HeadScanner {
    /// Bytes of the current line so far (without `\n`).
    line: usize,
    /// Whether the last byte of the current line was `\r`.
    cr: bool,
    /// Non-empty lines seen (request line plus header lines).
    lines: usize,
    /// Empty lines seen before the request line.
    leading: usize,
    /// The method of the request line has ended (a space was seen).
    method_done: bool,
    total: usize,
}

impl HeadScanner {
    /// Feeds the next bytes of the connection. `Ok(Some(n))`: the head ends after the first
    /// `n` bytes of `bytes` (the rest belongs to the body or the next request); `Ok(None)`:
    /// every byte was part of the head and more are needed.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Option<usize>, WireError> {
        for (i, &b) in bytes.iter().enumerate() {
            self.total += 1;
            if self.total > MAX_HEAD {
                return Err(WireError::new(
                    431,
                    "UNSUPPORTED",
                    format!(
                        "the request head is over {} KiB; send fewer or shorter headers",
                        MAX_HEAD / 1024
                    ),
                ));
            }
            if b == b'\n' {
                let len = self.line - usize::from(self.cr);
                self.line = 0;
                self.cr = false;
                if len > 0 {
                    self.lines += 1;
                    if self.lines > MAX_HEADERS + 1 {
                        return Err(WireError::new(
                            431,
                            "UNSUPPORTED",
                            format!(
                                "the request has more than {MAX_HEADERS} header fields; send fewer"
                            ),
                        ));
                    }
                } else if self.lines > 0 {
                    return Ok(Some(i + 1));
                } else {
                    self.leading += 1;
                    if self.leading > MAX_LEADING_EMPTY {
                        return Err(WireError::bad(
                            "the request starts with empty lines instead of a request line",
                        ));
                    }
                }
                continue;
            }
            if self.lines == 0 && b != b'\r' {
                // Refuse what is not HTTP (a TLS hello, say) at once instead of waiting for
                // a line ending that never comes.
                let ok = if self.method_done {
                    (0x20..0x7f).contains(&b)
                } else if b == b' ' {
                    self.method_done = true;
                    self.line > 0
                } else {
                    is_tchar(b)
                };
                if !ok {
                    return Err(WireError::bad(
                        "the request does not start with an HTTP/1.1 request line (TLS to a plain-http registry?)",
                    ));
                }
            }
            self.line += 1;
            self.cr = b == b'\r';
            if self.line > MAX_LINE + 1 || (self.line > MAX_LINE && !self.cr) {
                return Err(if self.lines == 0 {
                    WireError::new(
                        414,
                        "UNSUPPORTED",
                        format!(
                            "the request line is over {} KiB; use a shorter path",
                            MAX_LINE / 1024
                        ),
                    )
                } else {
                    WireError::new(
                        431,
                        "UNSUPPORTED",
                        format!(
                            "a header line is over {} KiB; send a shorter header",
                            MAX_LINE / 1024
                        ),
                    )
                });
            }
        }
        Ok(None)
    }

    /// True when no byte of a request line has arrived yet.
    pub fn is_empty(&self) -> bool {
        self.lines == 0 && self.line == 0
    }
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// Method as sent (a token; methods are case-sensitive).
    pub method: String,
    /// Request target as sent (origin form `/path?query` or absolute form).
    pub target: String,
    /// Minor HTTP version: 0 or 1.
    pub minor: u8,
    /// Header fields in order, values trimmed.
    pub headers: Vec<(String, String)>,
}

/// How a request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// Exactly this many bytes (0 when the request announces no body).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// Splits a head into lines without their `\r\n` / `\n` endings.
fn lines(head: &[u8]) -> impl Iterator<Item = &[u8]> {
    head.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

/// Parses one header line `name: value`.
pub(crate) fn parse_field(line: &[u8]) -> Result<(String, String), WireError> {
    if matches!(line.first(), Some(b' ' | b'\t')) {
        return Err(WireError::bad(
            "folded header lines are not supported; send each header on one line",
        ));
    }
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or_else(|| WireError::bad("a header line has no ':'; send 'Name: value'"))?;
    let (name, value) = (&line[..colon], trim_ows(&line[colon + 1..]));
    if !is_token(name) {
        return Err(WireError::bad(
            "a header name is empty or has characters other than letters, digits and !#$%&'*+-.^_`|~",
        ));
    }
    if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(WireError::bad(
            "a header value has control characters; remove them",
        ));
    }
    Ok((
        String::from_utf8_lossy(name).into_owned(),
        String::from_utf8_lossy(value).into_owned(),
    ))
}

/// Parses a complete request head: the bytes up to and including the empty line that ends
/// it (bytes after that are ignored). Checks the same limits as [`HeadScanner`].
pub fn parse_request_head(buf: &[u8]) -> Result<RequestHead, WireError> {
    let end = HeadScanner::default()
        .feed(buf)?
        .ok_or_else(|| WireError::bad("the request head ended before its empty line"))?;
    let mut it = lines(&buf[..end]).skip_while(|l| l.is_empty());
    let first = it.next().unwrap_or_default();
    let mut parts = first.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(WireError::bad(
            "the request line is not 'METHOD /path HTTP/1.1'",
        ));
    };
    if !is_token(method) || method.len() > 32 {
        return Err(WireError::bad("the request method is not a valid token"));
    }
    if target.is_empty() || !target.iter().all(|b| (0x21..0x7f).contains(b)) {
        return Err(WireError::bad(
            "the request target is empty or has spaces, control or non-ASCII bytes; percent-encode them",
        ));
    }
    let minor = match version {
        b"HTTP/1.1" => 1,
        b"HTTP/1.0" => 0,
        v if v.starts_with(b"HTTP/") => {
            return Err(WireError::new(
                505,
                "UNSUPPORTED",
                "only HTTP/1.0 and HTTP/1.1 are supported",
            ))
        }
        _ => return Err(WireError::bad("the request line does not end in HTTP/1.1")),
    };
    let mut headers = Vec::new();
    for line in it.take_while(|l| !l.is_empty()) {
        headers.push(parse_field(line)?);
    }
    Ok(RequestHead {
        method: String::from_utf8_lossy(method).into_owned(),
        target: String::from_utf8_lossy(target).into_owned(),
        minor,
        headers,
    })
}

impl RequestHead {
    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    /// How the body is delimited; refuses ambiguous or oversized announcements.
    pub fn body_kind(&self) -> Result<BodyKind, WireError> {
        let te: Vec<&str> = self.values("Transfer-Encoding").collect();
        let cl: Vec<&str> = self.values("Content-Length").collect();
        if !te.is_empty() {
            if !cl.is_empty() {
                return Err(WireError::bad(
                    "the request has both Content-Length and Transfer-Encoding; send one",
                ));
            }
            if self.minor == 0 || te.len() != 1 || !te[0].eq_ignore_ascii_case("chunked") {
                return Err(WireError::new(
                    501,
                    "UNSUPPORTED",
                    format!(
                        "transfer encoding '{}' is not supported; send Content-Length or chunked",
                        te.join(", ")
                    ),
                ));
            }
            return Ok(BodyKind::Chunked);
        }
        let Some(first) = cl.first() else {
            return Ok(BodyKind::Length(0));
        };
        if cl.iter().any(|v| v != first) {
            return Err(WireError::bad(
                "the request has different Content-Length values; send one",
            ));
        }
        let n = (!first.is_empty()
            && first.len() <= 20
            && first.bytes().all(|b| b.is_ascii_digit()))
        .then(|| first.parse::<u64>().ok())
        .flatten()
        .ok_or_else(|| WireError::bad(format!("Content-Length '{first}' is not a byte count")))?;
        if n > MAX_BODY {
            return Err(too_large(MAX_BODY));
        }
        Ok(BodyKind::Length(n))
    }

    /// Whether the connection may serve another request after this one.
    pub fn keep_alive(&self) -> bool {
        let mut conn = self.values("Connection");
        if self.minor == 0 {
            conn.any(|v| v.eq_ignore_ascii_case("keep-alive"))
        } else {
            !conn.any(|v| v.eq_ignore_ascii_case("close"))
        }
    }

    /// Whether the client waits for `100 Continue` before sending the body.
    pub fn expects_continue(&self) -> bool {
        self.minor == 1
            && self
                .header("Expect")
                .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    }
}

/// 413 for a body over `limit` bytes.
pub(crate) fn too_large(limit: u64) -> WireError {
    WireError::new(
        413,
        "SIZE_INVALID",
        format!("the request body is over the server's limit of {limit} bytes"),
    )
}

/// A request target split into its percent-decoded path and query pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub path: String,
    pub query: Vec<(String, String)>,
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` escapes (a `%` not followed by two hex digits stays as it is); refuses a
/// result that is not UTF-8.
pub fn percent_decode(s: &str) -> Result<String, WireError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            if let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            ) {
                out.push((h << 4) | l);
                i += 3;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    String::from_utf8(out).map_err(|_| {
        WireError::bad("the request path or query is not UTF-8 after percent-decoding")
    })
}

/// Splits and decodes a request target (origin form, or absolute form `http://host/path`).
pub fn parse_target(target: &str) -> Result<Target, WireError> {
    let lower = target.get(..8).unwrap_or(target).to_ascii_lowercase();
    let rest = if lower.starts_with("http://") || lower.starts_with("https://") {
        let after = target.split_once("//").map_or("", |(_, a)| a);
        match after.find('/') {
            Some(i) => &after[i..],
            None => "/",
        }
    } else {
        target
    };
    if !rest.starts_with('/') {
        return Err(WireError::bad(
            "the request target must be a path starting with '/'",
        ));
    }
    let (p, q) = rest.split_once('?').unwrap_or((rest, ""));
    let mut query = Vec::new();
    for kv in q.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        query.push((percent_decode(k)?, percent_decode(v)?));
    }
    Ok(Target {
        path: percent_decode(p)?,
        query,
    })
}

#[cfg(test)]
mod tests;
