//! A tiny static HTTP/1.1 server for the `FROM scratch` example image. It serves `/` (a
//! small page) and `/health` (`ok`) on the port given as the first argument, else `$PORT`,
//! else 8080. `httpd --check [PORT]` asks a running server's `/health` and exits 0 if it
//! answered `ok` (for the image's healthcheck, which has no shell to use).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

const INDEX: &str = "<!doctype html><title>gcr</title><h1>Hello from a gcr image built FROM scratch</h1>\n";

fn port(arg: Option<&String>) -> u16 {
    arg.and_then(|a| a.parse().ok())
        .or_else(|| std::env::var("PORT").ok().and_then(|p| p.parse().ok()))
        .unwrap_or(8080)
}

fn respond(mut s: TcpStream) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut r = BufReader::new(s.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    // Drain the headers.
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let (status, ctype, body) = match path {
        "/" | "/index.html" => ("200 OK", "text/html; charset=utf-8", INDEX),
        "/health" => ("200 OK", "text/plain", "ok\n"),
        _ => ("404 Not Found", "text/plain", "not found\n"),
    };
    write!(
        s,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    s.flush()
}

fn check(port: u16) -> i32 {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return 1;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
    if s
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return 1;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    if out.starts_with("HTTP/1.1 200") && out.ends_with("ok\n") {
        0
    } else {
        1
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--check") {
        std::process::exit(check(port(args.get(1))));
    }
    let port = port(args.first());
    let listener = match TcpListener::bind(("0.0.0.0", port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("httpd: cannot listen on port {port}: {e}");
            std::process::exit(1);
        }
    };
    println!("httpd: listening on port {port}");
    for conn in listener.incoming().flatten() {
        std::thread::spawn(move || {
            let _ = respond(conn);
        });
    }
}
