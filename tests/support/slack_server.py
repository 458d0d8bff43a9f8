"""A real local HTTP server standing in for Slack's incoming webhooks (and any ping endpoint).

Responses are scripted per request: ``server.script(200)``, ``server.script((429, {"Retry-After":
"1"}))``, ``server.script("hang")`` (answers after the client gave up). Every request is recorded
with its path, headers and parsed JSON body.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback
import warnings
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)

    @property
    def json(self) -> Any:
        return json.loads(self.body or b"null")


class SlackServer:
    def __init__(self, hang_seconds: float = 5.0) -> None:
        self.requests: list[Request] = []
        self._script: list[Any] = []
        self.default: Any = 200
        self.hang_seconds = hang_seconds
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def webhook(self, path: str = "/services/T000TEST/B000TEST/abcdefSECRETtoken123") -> str:
        return self.url + path

    def script(self, *responses: Any) -> None:
        """Queue responses: an int status, ``(status, headers)``, ``(status, headers, body)`` or "hang"."""
        with self._lock:
            self._script.extend(responses)

    def _next(self) -> Any:
        with self._lock:
            return self._script.pop(0) if self._script else self.default

    def start(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server.requests.append(Request(self.command, self.path, dict(self.headers), body))
                response = server._next()
                if response == "hang":
                    time.sleep(server.hang_seconds)
                    response = 200
                status, headers, text = 200, {}, "ok"
                if isinstance(response, int):
                    status = response
                    text = "ok" if status < 300 else {404: "no_service", 400: "invalid_token"}.get(status, "error")
                elif len(response) == 2:
                    status, headers = response
                    text = "ok" if status < 300 else "rate_limited"
                else:
                    status, headers, text = response
                payload = text.encode()
                try:
                    self.send_response(status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_POST = _handle
            do_GET = _handle
            do_HEAD = _handle

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._serving = threading.Thread(target=self._server.serve_forever, daemon=True,
                                         name="slack-server")
        self._serving.start()

    #: How long :meth:`stop` waits for the serving loop (it polls every 0.5 s).
    STOP_SECONDS = 10.0

    def stop(self) -> None:
        """Stop serving. ``shutdown()`` waits for the serving loop without a limit; a loop that
        never comes back (seen once in a whole-suite run, in teardown, after the test had passed)
        would hang the suite, so the wait is bounded and its stack is reported as a warning."""
        if self._server is None:
            return
        stopper = threading.Thread(target=self._server.shutdown, daemon=True)
        stopper.start()
        stopper.join(self.STOP_SECONDS)
        if stopper.is_alive():
            frame = sys._current_frames().get(self._serving.ident or 0)
            stack = "".join(traceback.format_stack(frame)) if frame is not None else "(not running)"
            warnings.warn(f"the test HTTP server's loop did not stop within {self.STOP_SECONDS} s; "
                          f"it was at:\n{stack}", RuntimeWarning, stacklevel=2)
        self._server.server_close()
