//! Relays TCP 127.0.0.1:PORT to TARGET with the port proxy, for measuring it in isolation:
//! `relay PORT TARGET_IP:TARGET_PORT`.

use std::net::TcpListener;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(port), Some(target)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: relay PORT TARGET_IP:TARGET_PORT");
        std::process::exit(2);
    };
    let l = TcpListener::bind(format!("127.0.0.1:{port}")).expect("bind");
    let target = target.parse().expect("target address");
    gcr_net::proxy::spawn_relay(gcr_net::proxy::Relay {
        listener: l.into(),
        proto: gcr_net::Proto::Tcp,
        target,
    })
    .expect("relay");
    std::thread::park();
}
