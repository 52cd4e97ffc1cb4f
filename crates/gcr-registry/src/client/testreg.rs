//! A scripted registry on loopback for the client's tests: fixed paths answered over a real
//! socket, every request path recorded.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// A registry answering fixed paths (`GET` and `HEAD`), 404 elsewhere; records every
/// request path. Its thread ends with the test process.
pub(crate) struct Mock {
    pub(crate) host: String,
    pub(crate) log: Arc<Mutex<Vec<String>>>,
}

pub(crate) fn mock(routes: HashMap<String, (String, Vec<u8>)>) -> Mock {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let host = l.local_addr().unwrap().to_string();
    let log = Arc::new(Mutex::new(Vec::new()));
    let routes = Arc::new(routes);
    let log2 = log.clone();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(c) = c else { return };
            let (routes, log) = (routes.clone(), log2.clone());
            std::thread::spawn(move || {
                let mut rd = BufReader::new(c.try_clone().unwrap());
                let mut w = c;
                loop {
                    let mut line = String::new();
                    if rd.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut parts = line.split_whitespace();
                    let method = parts.next().unwrap_or("").to_string();
                    let path = parts.next().unwrap_or("").to_string();
                    loop {
                        let mut h = String::new();
                        if rd.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        if h == "\r\n" {
                            break;
                        }
                    }
                    log.lock().unwrap().push(path.clone());
                    let (status, ctype, body) = match routes.get(&path) {
                        Some((t, b)) => ("200 OK", t.clone(), b.clone()),
                        None => ("404 Not Found", "text/plain".into(), b"no".to_vec()),
                    };
                    let head = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    );
                    let _ = w.write_all(head.as_bytes());
                    if method != "HEAD" {
                        let _ = w.write_all(&body);
                    }
                }
            });
        }
    });
    Mock { host, log }
}
