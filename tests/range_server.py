"""A tiny HTTP file server that answers Range requests with 206 (for remote-read tests).

``python -m http.server`` ignores Range, so GDAL's /vsicurl/ would fetch whole files through it.
Usage: ``python tests/range_server.py ROOT LOGFILE`` -- serves ROOT on 127.0.0.1 at a free port,
prints ``PORT <n>`` on stdout once listening, and appends one JSON line per request to LOGFILE:
``{"method", "path", "range", "status", "bytes"}`` (bytes = body bytes answered, logged before
the answer goes out).
Multi-range requests are answered with the whole file (200), which the spec allows.

Misbehaviours for failure tests, chosen by the first path segment (then the file's path):
``/norange/...`` ignores Range (always 200 with the whole file), ``/slow/...`` waits
``SLOW_S`` seconds before answering, ``/flaky/...`` answers 503 to the first request of each
path, ``/truncated/...`` announces the whole length but sends half and closes.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
MODES = ("norange", "slow", "flaky", "truncated")
SLOW_S = 3.0
CONTENT_TYPES = {".json": "application/json", ".png": "image/png", ".jpg": "image/jpeg"}


def make_handler(root: Path, log_path: Path) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()
    seen: set[str] = set()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet stderr
            pass

        def _log(self, status: int, nbytes: int) -> None:
            rec = {
                "method": self.command,
                "path": self.path,
                "range": self.headers.get("Range"),
                "status": status,
                "bytes": nbytes,
            }
            with lock, open(log_path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(rec) + "\n")

        def _mode(self) -> tuple[str, str]:
            """(misbehaviour or "", path of the file under root)."""
            rel = self.path.split("?", 1)[0].lstrip("/")
            first, _, rest = rel.partition("/")
            return (first, rest) if first in MODES else ("", rel)

        def _target(self) -> Path | None:
            p = (root / self._mode()[1]).resolve()
            if root not in p.parents or not p.is_file():
                return None
            return p

        def _empty(self, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self._log(status, 0)
            self.end_headers()

        def _send(self, body: bool) -> None:
            mode = self._mode()[0]
            if mode == "slow":
                time.sleep(SLOW_S)
            if mode == "flaky":
                with lock:
                    first = self.path not in seen
                    seen.add(self.path)
                if first:
                    self._empty(503)
                    return
            path = self._target()
            if path is None:
                self._empty(404)
                return
            size = path.stat().st_size
            start, end, status = 0, size - 1, 200
            m = RANGE_RE.match(self.headers.get("Range", "") or "")
            if mode == "norange":
                m = None
            if m and (m.group(1) or m.group(2)):
                if m.group(1):
                    start = int(m.group(1))
                    end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
                else:  # suffix range: the last n bytes
                    start = max(size - int(m.group(2)), 0)
                if start >= size or start > end:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self._log(416, 0)
                    self.end_headers()
                    return
                status = 206
            length = end - start + 1
            self.send_response(status)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Type", CONTENT_TYPES.get(path.suffix, "image/tiff"))
            stat = path.stat()
            self.send_header("ETag", f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"')
            self.send_header("Last-Modified", self.date_time_string(int(stat.st_mtime)))
            self.send_header("Content-Length", str(length))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            data = b""
            if body:
                with open(path, "rb") as fh:
                    fh.seek(start)
                    data = fh.read(length)
                if mode == "truncated":
                    data = data[: len(data) // 2]
                    self.close_connection = True
            self._log(status, len(data))  # before answering: a client never sees an unlogged one
            self.end_headers()
            self.wfile.write(data)

        def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
            self._send(body=False)

        def do_GET(self) -> None:  # noqa: N802
            self._send(body=True)

    return Handler


class QuietServer(ThreadingHTTPServer):
    """Clients that hang up early (a range check reading 16 bytes) are no server error."""

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


def serve(handler: type[BaseHTTPRequestHandler]) -> int:
    """Serve on 127.0.0.1 at a free port, announced as ``PORT <n>`` on stdout, until killed."""
    server = QuietServer(("127.0.0.1", 0), handler)
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:  # pragma: no cover
        pass
    return 0


def main(argv: list[str]) -> int:
    root, log_path = Path(argv[1]).resolve(), Path(argv[2]).resolve()
    return serve(make_handler(root, log_path))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
