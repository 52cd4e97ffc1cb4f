use super::*;

fn status(raw: &[u8]) -> Option<u16> {
    parse_request_head(raw).err().map(|e| e.status)
}

#[test]
fn heads_parse() {
    let h = parse_request_head(
        b"\r\nPUT /v2/a/blobs/uploads/x?digest=sha256%3Aab HTTP/1.1\r\nHost: h\r\nContent-Length:  12 \r\nX-E:\r\n\r\nBODY",
    )
    .unwrap();
    assert_eq!(h.method, "PUT");
    assert_eq!(h.target, "/v2/a/blobs/uploads/x?digest=sha256%3Aab");
    assert_eq!(h.minor, 1);
    assert_eq!(h.header("content-length"), Some("12"));
    assert_eq!(h.header("x-e"), Some(""));
    assert_eq!(h.body_kind(), Ok(BodyKind::Length(12)));
    assert!(h.keep_alive() && !h.expects_continue());
    let h = parse_request_head(b"GET / HTTP/1.0\nTransfer-Encoding: chunked\n\n").unwrap();
    assert!(!h.keep_alive());
    assert_eq!(h.body_kind().map_err(|e| e.status), Err(501));
    let h = parse_request_head(b"PATCH / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n").unwrap();
    assert_eq!(h.body_kind(), Ok(BodyKind::Chunked));
    assert!(h.expects_continue() && !h.keep_alive());
}

#[test]
fn bad_heads_are_refused_with_their_status() {
    assert_eq!(status(b"GET / HTTP/1.1\r\n"), Some(400), "incomplete");
    assert_eq!(status(b"GET /  HTTP/1.1\r\n\r\n"), Some(400));
    assert_eq!(status(b"GET /\xc3\xa9 HTTP/1.1\r\n\r\n"), Some(400));
    assert_eq!(status(b"G(T / HTTP/1.1\r\n\r\n"), Some(400));
    assert_eq!(status(b"GET / HTTP/2.0\r\n\r\n"), Some(505));
    assert_eq!(status(b"GET / FTP/1.0\r\n\r\n"), Some(400));
    assert_eq!(status(b"GET / HTTP/1.1\r\nNo colon\r\n\r\n"), Some(400));
    assert_eq!(
        status(b"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n"),
        Some(400)
    );
    assert_eq!(status(b"GET / HTTP/1.1\r\nA: b\x01c\r\n\r\n"), Some(400));
    assert_eq!(status(b"GET / HTTP/1.1\r\n: v\r\n\r\n"), Some(400));
    assert_eq!(
        status(&[&b"\r\n".repeat(20)[..], b"GET / HTTP/1.1\r\n\r\n"].concat()),
        Some(400)
    );
    let long_target = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_LINE));
    assert_eq!(status(long_target.as_bytes()), Some(414));
    let long_header = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_LINE));
    assert_eq!(status(long_header.as_bytes()), Some(431));
    let many = format!(
        "GET / HTTP/1.1\r\n{}\r\n",
        "X: y\r\n".repeat(MAX_HEADERS + 1)
    );
    assert_eq!(status(many.as_bytes()), Some(431));
    let big = format!(
        "GET / HTTP/1.1\r\n{}\r\n",
        format!("X: {}\r\n", "v".repeat(4000)).repeat(20)
    );
    assert_eq!(status(big.as_bytes()), Some(431));
    // Exactly at the limits is fine.
    let at = format!(
        "GET / HTTP/1.1\r\nX: {}\r\n{}\r\n",
        "a".repeat(MAX_LINE - 3),
        "X: y\r\n".repeat(MAX_HEADERS - 1)
    );
    assert_eq!(status(at.as_bytes()), None);
}

#[test]
fn body_announcements() {
    let kind = |h: &str| {
        parse_request_head(format!("POST / HTTP/1.1\r\n{h}\r\n\r\n").as_bytes())
            .unwrap()
            .body_kind()
            .map_err(|e| e.status)
    };
    assert_eq!(kind("Content-Length: 5"), Ok(BodyKind::Length(5)));
    assert_eq!(
        kind("Content-Length: 5\r\nContent-Length: 5"),
        Ok(BodyKind::Length(5))
    );
    assert_eq!(kind("Content-Length: 5, 6"), Err(400));
    assert_eq!(kind("Content-Length: -1"), Err(400));
    assert_eq!(kind("Content-Length: +1"), Err(400));
    assert_eq!(kind("Content-Length: 99999999999999999999999"), Err(400));
    assert_eq!(kind("Content-Length: 18446744073709551615"), Err(413));
    assert_eq!(
        kind("Content-Length: 5\r\nTransfer-Encoding: chunked"),
        Err(400)
    );
    assert_eq!(kind("Transfer-Encoding: gzip, chunked"), Err(501));
    assert_eq!(kind("X: y"), Ok(BodyKind::Length(0)));
}

#[test]
fn the_scanner_refuses_an_endless_line_early() {
    let mut s = HeadScanner::default();
    assert!(s.is_empty());
    assert_eq!(s.feed(b"GET / HTTP/1.1\r\nX: "), Ok(None));
    assert!(!s.is_empty());
    let chunk = vec![b'a'; 1024];
    let mut fed = 0;
    let err = loop {
        match s.feed(&chunk) {
            Ok(None) => fed += chunk.len(),
            Ok(Some(_)) => panic!("no end in an endless line"),
            Err(e) => break e,
        }
    };
    assert_eq!(err.status, 431);
    assert!(fed <= MAX_LINE, "refused after {fed} bytes");
    // A TLS hello is not HTTP: refused at its first byte.
    let e = HeadScanner::default().feed(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03");
    assert_eq!(e.map_err(|e| e.status), Err(400));
    let e = HeadScanner::default().feed(b"GET /\xc3\xa9");
    assert_eq!(e.map_err(|e| e.status), Err(400));
    let mut s = HeadScanner::default();
    assert_eq!(s.feed(b"GET / HTTP/1.1\r\n"), Ok(None));
    assert_eq!(s.feed(b"\r\nnext"), Ok(Some(2)));
}

#[test]
fn targets_decode_without_panicking_on_any_bytes() {
    let t = parse_target("/v2/a%2Fb/manifests/x?n=1&last=a%26b&flag").unwrap();
    assert_eq!(t.path, "/v2/a/b/manifests/x");
    assert_eq!(
        t.query,
        vec![
            ("n".to_string(), "1".to_string()),
            ("last".to_string(), "a&b".to_string()),
            ("flag".to_string(), String::new())
        ]
    );
    assert_eq!(parse_target("/v2%C3%A9").unwrap().path, "/v2é");
    assert_eq!(parse_target("/%").unwrap().path, "/%");
    assert_eq!(parse_target("/%4").unwrap().path, "/%4");
    assert_eq!(parse_target("/%+1").unwrap().path, "/%+1");
    assert_eq!(parse_target("/%41").unwrap().path, "/A");
    assert_eq!(parse_target("/v2%C3").map_err(|e| e.status), Err(400));
    assert_eq!(parse_target("/?a=%FF").map_err(|e| e.status), Err(400));
    assert_eq!(parse_target("http://h:5000/v2/").unwrap().path, "/v2/");
    assert_eq!(parse_target("HTTP://h").unwrap().path, "/");
    assert_eq!(parse_target("*").map_err(|e| e.status), Err(400));
    assert_eq!(parse_target("é").map_err(|e| e.status), Err(400));
}
