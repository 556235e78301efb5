"""A real HTTP receiver for the webhook tests: http.server in a thread on a free 127.0.0.1 port.

`answers` is a list of status codes given in turn (the last one repeats): [500, 200] answers 500
to the first request and 200 afterwards. `sleep` seconds before answering (a slow receiver). Every
request is recorded as (headers, raw body bytes).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    path: str


@dataclass
class Receiver:
    answers: list[int]
    sleep: float = 0.0
    requests: list[Received] = field(default_factory=list)
    url: str = ""

    def status_for(self, number: int) -> int:
        return self.answers[min(number, len(self.answers) - 1)]


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The documented recipe: HMAC-SHA256 of the raw body with the secret, hex, after "sha256="."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers.get("X-LeadPortal-Signature", ""))


@contextmanager
def receiver(answers: list[int] | None = None, sleep: float = 0.0):
    state = Receiver(answers=list(answers or [200]), sleep=sleep)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                number = len(state.requests)
                state.requests.append(Received(dict(self.headers.items()), body, self.path))
            if state.sleep:
                time.sleep(state.sleep)
            try:
                self.send_response(state.status_for(number))
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except OSError:
                pass  # the client gave up (a timeout test)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/leadportal"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
