"""Tests of deepsky.data.download against a local, misbehaving-on-demand HTTP server."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from deepsky.data.download import DownloadError, download, main, read_lock, sha256sum

FAST = dict(progress=False, backoff=0.01, timeout=5, chunk_size=4096)


def _payload(n: int = 50_000, seed: int = 0) -> bytes:
    # deterministic pseudo-random bytes, no numpy needed
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}-{counter}".encode()).digest()
        counter += 1
    return bytes(out[:n])


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- test server


class _State:
    """What the server serves and what it has seen."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.files: dict[str, tuple[bytes, str]] = {}
        self.hits: dict[str, int] = {}
        self.log: list[dict] = []
        self.active = 0  # handlers running; > 0 before any byte of a response is sent
        self.base = ""

    def add(self, path: str, data: bytes, mode: str = "normal") -> str:
        self.files[path] = (data, mode)
        return self.base + path

    def requests(self, path: str) -> list[dict]:
        # the client may have its answer before the handler thread logged it
        deadline = time.monotonic() + 3
        while self.active and time.monotonic() < deadline:
            time.sleep(0.005)
        with self.lock:
            return [r for r in self.log if r["path"] == path]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def _record(self, status: int, sent: int) -> None:
        state: _State = self.server.state  # type: ignore[attr-defined]
        with state.lock:
            state.log.append(
                {"path": self.path, "range": self.headers.get("Range"), "status": status, "sent": sent}
            )

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        state: _State = self.server.state  # type: ignore[attr-defined]
        with state.lock:
            state.active += 1
            n = state.hits.get(self.path, 0) + 1
            state.hits[self.path] = n
        try:
            self._serve(state, n)
        finally:
            with state.lock:
                state.active -= 1

    def _serve(self, state: _State, n: int) -> None:
        spec = state.files.get(self.path)
        if spec is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            self._record(404, 0)
            return
        data, mode = spec
        if mode == "error500":
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()
            self._record(500, 0)
            return

        status, start = 200, 0
        rng = self.headers.get("Range")
        if rng and mode != "norange":
            m = re.fullmatch(r"bytes=(\d+)-", rng.strip())
            assert m, rng
            start = int(m.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                self._record(416, 0)
                return
            status = 206
        body = data[start:]
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()

        if mode == "truncate_always" or (mode == "truncate_once" and n == 1):
            send = body[: len(body) // 2]  # fewer bytes than Content-Length, then a clean close
            self.wfile.write(send)
            self._record(status, len(send))
            return
        if mode == "drop_once" and n == 1:
            send = body[: len(body) // 3]
            self.wfile.write(send)
            self._record(status, len(send))
            # abortive close: RST instead of FIN
            self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            os.close(self.request.detach())
            return
        if mode == "stall_once" and n == 1:
            send = body[:100]
            self.wfile.write(send)
            self._record(status, len(send))
            time.sleep(0.6)  # longer than the client's time-out
            return
        self.wfile.write(body)
        self._record(status, len(body))


@pytest.fixture
def server():
    state = _State()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.state = state  # type: ignore[attr-defined]
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


# --------------------------------------------------------------------------- tests


def test_sha256sum(tmp_path):
    p = tmp_path / "x.bin"
    data = _payload(10_000)
    p.write_bytes(data)
    assert sha256sum(p) == _sha(data)
    assert sha256sum(p, chunk_size=7) == _sha(data)


def test_good_download(server, tmp_path):
    data = _payload()
    url = server.add("/data/file.bin", data)
    dest = tmp_path / "sub" / "file.bin"
    out = download(url, dest, sha256=_sha(data).upper(), size=len(data), **FAST)
    assert out == dest
    assert dest.read_bytes() == data
    assert not (tmp_path / "sub" / "file.bin.part").exists()
    assert [r["status"] for r in server.requests("/data/file.bin")] == [200]
    assert server.requests("/data/file.bin")[0]["range"] is None


def test_resume_with_range(server, tmp_path):
    data = _payload()
    url = server.add("/f.bin", data)
    dest = tmp_path / "f.bin"
    half = len(data) // 2
    (tmp_path / "f.bin.part").write_bytes(data[:half])
    download(url, dest, sha256=_sha(data), **FAST)
    assert dest.read_bytes() == data
    reqs = server.requests("/f.bin")
    assert len(reqs) == 1
    assert reqs[0]["range"] == f"bytes={half}-"
    assert reqs[0]["status"] == 206
    assert reqs[0]["sent"] == len(data) - half  # only the rest travelled


def test_server_ignoring_range_restarts(server, tmp_path):
    data = _payload()
    url = server.add("/norange.bin", data, mode="norange")
    dest = tmp_path / "norange.bin"
    # a .part whose content is even wrong: a restart from zero must discard it
    (tmp_path / "norange.bin.part").write_bytes(b"\0" * 1000)
    download(url, dest, sha256=_sha(data), **FAST)
    assert dest.read_bytes() == data
    reqs = server.requests("/norange.bin")
    assert [(r["range"], r["status"]) for r in reqs] == [("bytes=1000-", 200)]


def test_truncated_transfer_is_retried_and_resumed(server, tmp_path):
    data = _payload()
    url = server.add("/trunc.bin", data, mode="truncate_once")
    dest = tmp_path / "trunc.bin"
    download(url, dest, sha256=_sha(data), size=len(data), **FAST)
    assert dest.read_bytes() == data
    reqs = server.requests("/trunc.bin")
    assert len(reqs) == 2
    assert reqs[0]["range"] is None and reqs[0]["sent"] == len(data) // 2
    assert reqs[1]["range"] == f"bytes={len(data) // 2}-"
    assert reqs[1]["status"] == 206


def test_always_truncated_raises_and_nothing_at_dest(server, tmp_path):
    data = _payload()
    url = server.add("/bad.bin", data, mode="truncate_always")
    dest = tmp_path / "bad.bin"
    with pytest.raises(DownloadError, match="truncated") as info:
        download(url, dest, sha256=_sha(data), retries=2, **FAST)
    assert url in str(info.value)
    assert not dest.exists()
    assert len(server.requests("/bad.bin")) == 3  # 1 attempt + 2 retries
    # what was received is kept for a later resume
    part = tmp_path / "bad.bin.part"
    assert part.exists() and data.startswith(part.read_bytes())


def test_connection_dropped_then_success(server, tmp_path):
    data = _payload(200_000)
    url = server.add("/drop.bin", data, mode="drop_once")
    dest = tmp_path / "drop.bin"
    download(url, dest, sha256=_sha(data), **FAST)
    assert dest.read_bytes() == data
    assert len(server.requests("/drop.bin")) == 2


def test_stalled_transfer_times_out_and_retries(server, tmp_path):
    data = _payload()
    url = server.add("/stall.bin", data, mode="stall_once")
    dest = tmp_path / "stall.bin"
    opts = dict(FAST, timeout=0.2)
    download(url, dest, sha256=_sha(data), **opts)
    assert dest.read_bytes() == data
    reqs = server.requests("/stall.bin")
    assert len(reqs) == 2
    assert reqs[1]["range"] == "bytes=100-"


def test_wrong_checksum(server, tmp_path):
    data = _payload()
    url = server.add("/x.bin", data)
    dest = tmp_path / "x.bin"
    wrong = "0" * 64
    with pytest.raises(DownloadError) as info:
        download(url, dest, sha256=wrong, **FAST)
    msg = str(info.value)
    assert "expected" in msg and wrong in msg
    assert "got" in msg and _sha(data) in msg
    assert url in msg
    assert not dest.exists()
    assert not (tmp_path / "x.bin.part").exists()
    assert (tmp_path / "x.bin.bad").read_bytes() == data


def test_wrong_size(server, tmp_path):
    data = _payload()
    url = server.add("/s.bin", data)
    dest = tmp_path / "s.bin"
    with pytest.raises(DownloadError, match=rf"expected {len(data) + 1} bytes") as info:
        download(url, dest, size=len(data) + 1, **FAST)
    assert url in str(info.value)
    assert not dest.exists()


def test_404(server, tmp_path):
    url = server.base + "/missing.bin"
    dest = tmp_path / "missing.bin"
    with pytest.raises(DownloadError) as info:
        download(url, dest, **FAST)
    assert "404" in str(info.value) and url in str(info.value)
    assert not dest.exists()
    assert len(server.requests("/missing.bin")) == 1  # 404 is final: no retries


def test_500_retried_then_error(server, tmp_path):
    url = server.add("/err.bin", b"", mode="error500")
    dest = tmp_path / "err.bin"
    with pytest.raises(DownloadError) as info:
        download(url, dest, retries=2, **FAST)
    assert "500" in str(info.value) and url in str(info.value)
    assert len(server.requests("/err.bin")) == 3
    assert not dest.exists()


def test_connection_refused(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there any more
    url = f"http://127.0.0.1:{port}/x"
    with pytest.raises(DownloadError, match="failed after 2 attempt") as info:
        download(url, tmp_path / "x", retries=1, **FAST)
    assert url in str(info.value)


def test_complete_part_gets_416_and_is_verified(server, tmp_path):
    data = _payload()
    url = server.add("/done.bin", data)
    dest = tmp_path / "done.bin"
    (tmp_path / "done.bin.part").write_bytes(data)
    download(url, dest, sha256=_sha(data), **FAST)  # no size given: must ask the server
    assert dest.read_bytes() == data
    assert [r["status"] for r in server.requests("/done.bin")] == [416]


def test_oversized_part_restarts(server, tmp_path):
    data = _payload()
    url = server.add("/big.bin", data)
    dest = tmp_path / "big.bin"
    (tmp_path / "big.bin.part").write_bytes(data + b"garbage")
    download(url, dest, sha256=_sha(data), **FAST)
    assert dest.read_bytes() == data
    assert [r["status"] for r in server.requests("/big.bin")] == [416, 200]


def test_existing_verified_file_makes_no_request(server, tmp_path):
    data = _payload()
    url = server.add("/here.bin", data)
    dest = tmp_path / "here.bin"
    dest.write_bytes(data)
    assert download(url, dest, sha256=_sha(data), size=len(data), **FAST) == dest
    assert server.requests("/here.bin") == []


def test_existing_corrupt_file_is_replaced(server, tmp_path):
    data = _payload()
    url = server.add("/c.bin", data)
    dest = tmp_path / "c.bin"
    dest.write_bytes(b"corrupt")
    download(url, dest, sha256=_sha(data), **FAST)
    assert dest.read_bytes() == data
    assert (tmp_path / "c.bin.bad").read_bytes() == b"corrupt"


def test_lock_file_records_then_refuses_mismatch(server, tmp_path):
    data = _payload()
    url = server.add("/nosum.zip", data)
    lock = tmp_path / "locks" / "datasets.lock.json"
    dest = tmp_path / "nosum.zip"
    download(url, dest, lock_file=lock, **FAST)
    entry = json.loads(lock.read_text())["files"][url]
    assert entry["sha256"] == _sha(data)
    assert entry["size"] == len(data)
    assert entry["url"] == url and entry["name"] == "nosum.zip"
    assert re.match(r"\d{4}-\d\d-\d\dT", entry["recorded"])

    # second run, file present: verified against the lock, no request
    download(url, dest, lock_file=lock, **FAST)
    assert len(server.requests("/nosum.zip")) == 1

    # the upstream file changes: the lock refuses it
    dest.unlink()
    changed = _payload(seed=1)
    server.add("/nosum.zip", changed)
    with pytest.raises(DownloadError) as info:
        download(url, dest, lock_file=lock, **FAST)
    msg = str(info.value)
    assert _sha(data) in msg and _sha(changed) in msg and url in msg
    assert "lock file" in msg
    assert not dest.exists()
    assert (tmp_path / "nosum.zip.bad").read_bytes() == changed
    assert read_lock(lock)["files"][url]["sha256"] == _sha(data)  # record unchanged


def test_lock_file_keeps_other_entries(server, tmp_path):
    a, b = _payload(1000, 1), _payload(1000, 2)
    ua, ub = server.add("/a", a), server.add("/b", b)
    lock = tmp_path / "lock.json"
    download(ua, tmp_path / "a", lock_file=lock, **FAST)
    download(ub, tmp_path / "b", lock_file=lock, **FAST)
    files = read_lock(lock)["files"]
    assert files[ua]["sha256"] == _sha(a) and files[ub]["sha256"] == _sha(b)


def test_explicit_sha_does_not_write_lock(server, tmp_path):
    data = _payload(1000)
    url = server.add("/k", data)
    lock = tmp_path / "lock.json"
    download(url, tmp_path / "k", sha256=_sha(data), lock_file=lock, **FAST)
    assert not lock.exists()


def test_cli(server, tmp_path, capsys):
    data = _payload(1000)
    url = server.add("/cli.bin", data)
    dest = tmp_path / "cli.bin"
    rc = main([url, str(dest), "--sha256", _sha(data), "--size", str(len(data)), "--no-progress"])
    assert rc == 0 and dest.read_bytes() == data
    assert capsys.readouterr().out.strip() == str(dest)
    rc = main([server.base + "/nope", str(tmp_path / "nope"), "--no-progress", "--retries", "0"])
    assert rc == 1
    assert "404" in capsys.readouterr().err


def test_progress_bar_goes_to_stderr(server, tmp_path, capsys):
    data = _payload(20_000)
    url = server.add("/p.bin", data)
    download(url, tmp_path / "p.bin", sha256=_sha(data), progress=True, backoff=0.01, timeout=5)
    captured = capsys.readouterr()
    assert captured.out == ""
