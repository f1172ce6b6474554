"""Verified, resumable HTTP downloads for every dataset of the project.

One function, :func:`download`, is used for all real archives (Galaxy10, the
cats-vs-dogs zip, the Bologna lens-finding challenge, ...):

* streams the body in chunks into ``dest + ".part"`` with a tqdm progress bar
  on stderr (``progress=False`` switches it off);
* resumes an existing ``.part`` with an HTTP ``Range`` request; a server that
  answers ``200`` instead of ``206`` makes it restart from byte zero, a ``416``
  either means the ``.part`` is already complete or that it must restart;
* retries connection errors, time-outs, truncated bodies and transient HTTP
  statuses (408, 425, 429, 5xx) with exponential back-off
  (``backoff * 2**k`` seconds); every retry resumes from what is on disk;
* checks ``size`` and SHA-256 and only then moves the file into place with an
  atomic :func:`os.replace`: nothing incomplete or unverified is ever at
  ``dest``.  A file failing the check is moved to ``dest + ".bad"`` and
  :class:`DownloadError` is raised;
* for sources without a published checksum, the first good download records
  its SHA-256, size, URL and date in a JSON *lock file* (keyed by URL); later
  runs verify against that record ("trust on first use").

Only the standard library (urllib) is used for HTTP.

Command line::

    python -m deepsky.data.download URL DEST [--sha256 X] [--size N] [--lock-file F]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import http.client
import json
import logging
import os
import re
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

__all__ = ["DownloadError", "download", "sha256sum", "read_lock", "main"]

log = logging.getLogger(__name__)

USER_AGENT = "deepsky-download/0.1 (+python-urllib)"
#: HTTP statuses that are worth retrying; every other error status is final.
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
LOCK_FORMAT_VERSION = 1

_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)\s*$", re.IGNORECASE)


class DownloadError(RuntimeError):
    """A download failed for good (HTTP error, retries exhausted, bad checksum)."""


class _RetryableError(Exception):
    """Internal: an attempt failed in a way a retry (with resume) may fix."""


def sha256sum(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            block = fh.read(chunk_size)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------- lock file


def read_lock(lock_file: str | os.PathLike) -> dict[str, Any]:
    """Return the ``{"version": 1, "files": {url: entry}}`` mapping of a lock file.

    A missing or empty file gives an empty mapping; a malformed one raises
    :class:`DownloadError` (a lock file is meant to be committed and reviewed).
    """
    path = Path(lock_file)
    if not path.exists() or path.stat().st_size == 0:
        return {"version": LOCK_FORMAT_VERSION, "files": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DownloadError(f"cannot read lock file {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("files", {}), dict):
        raise DownloadError(f"lock file {path} is not a mapping with a 'files' mapping")
    data.setdefault("version", LOCK_FORMAT_VERSION)
    data.setdefault("files", {})
    return data


def _lock_entry(lock_file: str | os.PathLike | None, url: str) -> dict[str, Any] | None:
    if lock_file is None:
        return None
    entry = read_lock(lock_file)["files"].get(url)
    if entry is not None and not isinstance(entry, dict):
        raise DownloadError(f"lock file {lock_file}: entry for {url} is not a mapping")
    return entry


def _record_lock(lock_file: str | os.PathLike, url: str, dest: Path, digest: str, nbytes: int) -> None:
    """Add the entry for ``url`` (read-modify-write, atomic replace)."""
    path = Path(lock_file)
    data = read_lock(path)  # re-read just before writing: keeps entries other jobs added
    old = data["files"].get(url)
    if old is not None and old.get("sha256", "").lower() == digest:
        return
    data["files"][url] = {
        "name": dest.name,
        "url": url,
        "sha256": digest,
        "size": nbytes,
        "recorded": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
    }
    data["files"] = dict(sorted(data["files"].items()))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=False)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    log.info("recorded sha256 %s (%d bytes) of %s in %s", digest, nbytes, url, path)


# --------------------------------------------------------------------------- helpers


def _check(path: Path, sha256: str | None, size: int | None) -> tuple[bool, str]:
    """Verify ``path`` against size/sha256. Returns (ok, description of the mismatch)."""
    got_size = path.stat().st_size
    if size is not None and got_size != size:
        return False, f"size mismatch: expected {size} bytes, got {got_size} bytes"
    if sha256 is not None:
        got = sha256sum(path)
        if got != sha256:
            return False, f"sha256 mismatch: expected {sha256}, got {got}"
    return True, ""


def _parse_content_range(value: str | None) -> tuple[int | None, int | None]:
    """``'bytes 10-99/100'`` -> (10, 100); ``'bytes */100'`` -> (None, 100)."""
    if not value:
        return None, None
    m = _CONTENT_RANGE.match(value)
    if not m:
        return None, None
    start = int(m.group(1)) if m.group(1) is not None else None
    total = int(m.group(3)) if m.group(3) not in (None, "*") else None
    return start, total


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _move_aside(part: Path, dest: Path) -> Path:
    bad = dest.with_name(dest.name + ".bad")
    os.replace(part, bad)
    return bad


# --------------------------------------------------------------------------- one attempt


def _attempt(
    url: str,
    part: Path,
    *,
    size: int | None,
    timeout: float,
    progress: bool,
    chunk_size: int,
    desc: str,
    restarted_after_416: list[bool],
) -> None:
    """Fetch (the rest of) ``url`` into ``part``.

    Returns normally once ``part`` holds the whole body as announced by the
    server (or the body ended without a length to compare to).  Raises
    :class:`_RetryableError` for failures a retry may fix and
    :class:`DownloadError` for final ones.
    """
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset > size:
        log.warning("%s is larger than the expected %d bytes: restarting from zero", part, size)
        part.unlink()
        offset = 0
    if size is not None and offset == size and size > 0:
        return  # already complete: just verify

    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset > 0:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)

    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        status = exc.code
        content_range = exc.headers.get("Content-Range") if exc.headers else None
        exc.close()
        if status == 416 and offset > 0:
            _, total = _parse_content_range(content_range)
            if total is not None and total == offset:
                return  # the .part is already complete
            if restarted_after_416[0]:
                raise DownloadError(f"HTTP 416 Range Not Satisfiable twice for {url}") from None
            log.warning("HTTP 416 for %s at offset %d: restarting from zero", url, offset)
            restarted_after_416[0] = True
            part.unlink(missing_ok=True)
            raise _RetryableError("HTTP 416, restart from zero", True) from None
        message = f"HTTP {status} {exc.reason} for {url}"
        if status in RETRYABLE_STATUS:
            raise _RetryableError(message) from None
        raise DownloadError(message) from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        # URLError wraps connection refused / DNS / connect time-out.
        raise _RetryableError(f"cannot connect to {url}: {exc}") from exc

    with response:
        status = response.status
        length = _int_or_none(response.headers.get("Content-Length"))
        if status == 206:
            start, total = _parse_content_range(response.headers.get("Content-Range"))
            if start != offset:
                if offset == 0:
                    raise DownloadError(f"HTTP 206 for a request without Range for {url}")
                log.warning("server answered a range from %s instead of %d: restarting", start, offset)
                part.unlink(missing_ok=True)
                raise _RetryableError("unexpected Content-Range", True)
            mode = "ab"
            if total is None and length is not None:
                total = offset + length
        elif status == 200:
            if offset > 0:
                log.warning("server ignored the Range request for %s: restarting from zero", url)
            offset = 0
            mode = "wb"
            total = length
        else:  # other 2xx (204, ...) make no sense here
            raise DownloadError(f"unexpected HTTP {status} for {url}")

        if size is not None and total is not None and total != size:
            raise DownloadError(
                f"size mismatch: expected {size} bytes, server announces {total} bytes for {url}"
            )

        # read1 returns what has arrived instead of waiting for a full chunk, so a
        # time-out or reset loses nothing already received (resume granularity)
        read = getattr(response, "read1", response.read)
        received = 0
        bar = tqdm(
            total=total,
            initial=offset,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=desc,
            file=sys.stderr,
            disable=not progress,
            leave=False,
        )
        try:
            with open(part, mode) as fh:
                while True:
                    try:
                        block = read(chunk_size)
                    except (http.client.HTTPException, OSError) as exc:
                        # IncompleteRead, ConnectionReset, TimeoutError, ...
                        raise _RetryableError(f"transfer of {url} interrupted: {exc!r}") from exc
                    if not block:
                        break
                    fh.write(block)
                    received += len(block)
                    bar.update(len(block))
        finally:
            bar.close()

        if length is not None and received < length:
            raise _RetryableError(
                f"transfer of {url} truncated: got {received} of {length} bytes of the response"
            )


# --------------------------------------------------------------------------- public API


def download(
    url: str,
    dest: str | os.PathLike,
    *,
    sha256: str | None = None,
    size: int | None = None,
    lock_file: str | os.PathLike | None = None,
    retries: int = 4,
    backoff: float = 1.0,
    timeout: float = 30,
    progress: bool = True,
    chunk_size: int = 1 << 20,
) -> Path:
    """Download ``url`` to ``dest``, resumable and verified; return ``Path(dest)``.

    Parameters
    ----------
    sha256, size:
        Expected hex SHA-256 (any case) and byte size.  Where ``sha256`` is
        ``None`` and ``lock_file`` holds an entry for ``url``, that entry's
        checksum (and size) are used instead.
    lock_file:
        JSON file recording the SHA-256/size/url/date of sources without a
        published checksum.  Written only when ``sha256`` is not given and the
        URL has no entry yet.
    retries:
        Number of retries after the first attempt (so at most ``retries + 1``
        requests).  Each retry waits ``backoff * 2**k`` seconds and resumes.
    timeout:
        Socket time-out in seconds for connecting and for every read.

    Raises
    ------
    DownloadError
        HTTP error (with status and URL), retries exhausted, or a checksum/size
        mismatch (the bad file is kept at ``dest + ".bad"``, never at ``dest``).
    """
    dest = Path(dest)
    if retries < 0:
        raise ValueError("retries must be >= 0")
    if chunk_size <= 0:
        raise ValueError("chunk_size must be > 0")
    expected_sha = sha256.strip().lower() if sha256 else None
    if expected_sha is not None and not re.fullmatch(r"[0-9a-f]{64}", expected_sha):
        raise ValueError(f"not a hex SHA-256: {sha256!r}")
    expected_size = int(size) if size is not None else None

    entry = _lock_entry(lock_file, url)
    from_lock = False
    if expected_sha is None and entry is not None and entry.get("sha256"):
        expected_sha = str(entry["sha256"]).lower()
        from_lock = True
        if expected_size is None and entry.get("size") is not None:
            expected_size = int(entry["size"])
    record = lock_file is not None and sha256 is None and not from_lock

    # ---- already there?
    if dest.exists():
        ok, why = _check(dest, expected_sha, expected_size)
        if ok:
            if expected_sha is None:
                log.warning("%s exists and there is no checksum to verify it against", dest)
            if record:
                _record_lock(lock_file, url, dest, sha256sum(dest), dest.stat().st_size)
            return dest
        bad = dest.with_name(dest.name + ".bad")
        log.warning("existing %s fails verification (%s): moved to %s, downloading again", dest, why, bad)
        os.replace(dest, bad)

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    restarted_after_416 = [False]
    failures = 0
    while True:
        try:
            _attempt(
                url,
                part,
                size=expected_size,
                timeout=timeout,
                progress=progress,
                chunk_size=chunk_size,
                desc=dest.name,
                restarted_after_416=restarted_after_416,
            )
            break
        except _RetryableError as exc:
            free_restart = len(exc.args) > 1 and exc.args[1] is True
            if free_restart:
                continue  # restart from zero decided by us, not a network failure
            failures += 1
            if failures > retries:
                raise DownloadError(
                    f"download of {url} failed after {failures} attempt(s): {exc.args[0]}"
                ) from exc
            delay = backoff * (2 ** (failures - 1))
            log.warning("%s; retry %d/%d in %.2f s", exc.args[0], failures, retries, delay)
            if delay > 0:
                time.sleep(delay)

    if not part.exists():  # zero-length body
        part.touch()
    ok, why = _check(part, expected_sha, expected_size)
    if not ok:
        bad = _move_aside(part, dest)
        source = f" (recorded in lock file {lock_file})" if from_lock else ""
        raise DownloadError(f"{why}{source} for {url}; the file was kept at {bad}")
    os.replace(part, dest)
    if record:
        _record_lock(lock_file, url, dest, sha256sum(dest), dest.stat().st_size)
    return dest


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deepsky.data.download",
        description="Resumable, checksum-verified download of one file.",
    )
    parser.add_argument("url")
    parser.add_argument("dest")
    parser.add_argument("--sha256", default=None, help="expected hex SHA-256")
    parser.add_argument("--size", type=int, default=None, help="expected size in bytes")
    parser.add_argument("--lock-file", default=None, help="JSON lock file (trust on first use)")
    parser.add_argument("--retries", type=int, default=4)
    parser.add_argument("--backoff", type=float, default=1.0)
    parser.add_argument("--timeout", type=float, default=30)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        path = download(
            args.url,
            args.dest,
            sha256=args.sha256,
            size=args.size,
            lock_file=args.lock_file,
            retries=args.retries,
            backoff=args.backoff,
            timeout=args.timeout,
            progress=not args.no_progress,
        )
    except (DownloadError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
