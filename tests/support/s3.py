"""A real S3-compatible server for the tests, and a fault-injecting proxy in front of it.

:class:`MotoServer` runs moto's standalone server (``moto[server]``) as a subprocess on a free
loopback port: it speaks the S3 API over HTTP to the real boto3 client. moto does not check the
checksums it is sent, which is why tcgjobs proves uploads on the client side.

:class:`FaultProxy` forwards HTTP/1.1 between the client and that server, one request per
connection, and applies scripted faults to the requests that match a rule: an error answer
(500, 503 SlowDown, 403 AccessDenied), a connection reset part-way through the request body, an
answer that never comes, or request body bytes flipped on the way.
"""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServerUnavailable(Exception):
    """moto's server could not be started here."""


class MotoServer:
    """moto's S3 server on 127.0.0.1, started as a subprocess."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.log: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait_s: float = 30.0) -> None:
        try:
            import moto.server  # noqa: F401
        except ImportError as exc:
            raise ServerUnavailable(f"moto[server] is not installed: {exc}") from exc
        # Its request log goes to a file: an unread pipe fills up and then blocks the server.
        self.log = tempfile.NamedTemporaryFile(prefix="moto-", suffix=".log")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                error = Path(self.log.name).read_text(errors="replace")[-500:]
                raise ServerUnavailable(f"moto's server exited: {error}")
            try:
                with urllib.request.urlopen(self.url + "/moto-api/", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise ServerUnavailable(f"moto's server did not answer within {wait_s:g}s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self.log is not None:
            self.log.close()


@dataclass
class Rule:
    """A fault for requests whose method is ``method`` (None: any) and whose path contains
    ``path``; applied ``times`` times (None: always). ``action``: error, reset, hang, corrupt."""

    action: str
    method: str | None = None
    path: str = ""
    times: int | None = None
    status: int = 503
    code: str = "SlowDown"
    after_bytes: int = 0  # reset: body bytes read before the reset
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        return (self.method is None or self.method == method) and self.path in path


@dataclass
class FaultProxy:
    """A loopback HTTP proxy to ``upstream`` (host, port) applying :class:`Rule` faults."""

    upstream: tuple[str, int]
    rules: list[Rule] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True, name="fault-proxy").start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def close(self) -> None:
        self._stop.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _rule_for(self, method: str, path: str) -> Rule | None:
        with self._lock:
            self.requests.append((method, path))
            for rule in self.rules:
                if rule.matches(method, path):
                    rule.hits += 1
                    return rule
        return None

    def _serve(self, client: socket.socket) -> None:
        try:
            head, rest = _read_head(client)
            if head is None:
                return
            if b"\r\nexpect: 100-continue" in head.lower():  # botocore waits for it on PUTs
                client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                head = b"\r\n".join(line for line in head.split(b"\r\n")
                                     if not line.lower().startswith(b"expect:"))
            method, path = head.split(b" ", 2)[:2]
            length = _content_length(head)
            rule = self._rule_for(method.decode(), path.decode())
            if rule is not None and rule.action == "reset":
                _read_body(client, rest, min(length, rule.after_bytes))
                _reset(client)
                return
            body = _read_body(client, rest, length)
            if rule is None or rule.action == "corrupt":
                if rule is not None and body:
                    middle = len(body) // 2
                    body = body[:middle] + bytes([body[middle] ^ 0xFF]) + body[middle + 1:]
                self._forward(client, head, body)
            elif rule.action == "error":
                _answer_error(client, rule.status, rule.code)
            elif rule.action == "hang":
                self._stop.wait(600)
        except OSError:
            pass
        finally:
            client.close()

    def _forward(self, client: socket.socket, head: bytes, body: bytes) -> None:
        lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"connection:")]
        request = b"\r\n".join(lines + [b"Connection: close"]) + b"\r\n\r\n" + body
        with socket.create_connection(self.upstream, timeout=60) as upstream:
            upstream.sendall(request)
            while chunk := upstream.recv(65536):
                client.sendall(chunk)


def _read_head(sock: socket.socket) -> tuple[bytes | None, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None, b""
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    return head, rest


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0


def _read_body(sock: socket.socket, rest: bytes, length: int) -> bytes:
    body = rest
    while len(body) < length:
        chunk = sock.recv(min(65536, length - len(body)))
        if not chunk:
            break
        body += chunk
    return body[:length] if length else body


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0): the client sees 'connection reset by peer'."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _answer_error(sock: socket.socket, status: int, code: str) -> None:
    reason = {500: "Internal Server Error", 503: "Slow Down", 403: "Forbidden"}.get(status, "Error")
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>injected by the test proxy</Message></Error>").encode()
    sock.sendall(f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\n"
                 f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
