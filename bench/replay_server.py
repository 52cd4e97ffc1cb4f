#!/usr/bin/env python3
"""A Docker API server that does no work: it answers /_ping and every GET of
/containers/json with a body recorded beforehand, as fast as Python answers anything.

bench/api.sh times `docker ps -a` against it with the very bytes gcr's service sent for
200 containers: the same CLI, the same requests and the same JSON, with the server's own
time taken out. That figure is the floor any server can reach with this CLI on this
machine, and it tells the CLI's share of `docker ps` from the server's.

Usage: replay_server.py SOCKET BODY_FILE
"""
import os
import socketserver
import sys
from http.server import BaseHTTPRequestHandler


def main():
    sock, body_file = sys.argv[1], sys.argv[2]
    with open(body_file, "rb") as f:
        body = f.read()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def head(self, status, length, ctype):
            self.send_response(status)
            self.send_header("Api-Version", "1.41")
            self.send_header("Ostype", "linux")
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(length))
            self.end_headers()

        def do_HEAD(self):
            self.head(200, 2, "text/plain")

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            if path.endswith("/_ping"):
                self.head(200, 2, "text/plain")
                self.wfile.write(b"OK")
            elif path.endswith("/containers/json"):
                self.head(200, len(body), "application/json")
                self.wfile.write(body)
            else:
                msg = b'{"message":"the replay server answers /_ping and /containers/json only"}'
                self.head(404, len(msg), "application/json")
                self.wfile.write(msg)

    class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True

        def get_request(self):
            conn, _ = super().get_request()
            return conn, ("replay", 0)

    if os.path.exists(sock):
        os.unlink(sock)
    Server(sock, Handler).serve_forever()


if __name__ == "__main__":
    main()
