"""Fetch small remote files over HTTP(S): STAC items, search answers, map tiles.

Every request has a timeout and is retried with exponential backoff when the server is busy
(429, 5xx) or does not answer; a missing file (404 and other 4xx) fails at once.  Failures
raise :class:`~satdelta.imagery.errors.FetchError` with a one-line message saying what to do.
Large rasters are not fetched here: GDAL reads them with range requests
(:func:`check_range_support` tells whether a server honours them).
"""

from __future__ import annotations

import http.client
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from satdelta.imagery.errors import FetchError

__all__ = ["DEFAULT_FETCHER", "Fetcher", "check_range_support", "describe_failure", "fetch_bytes"]

log = logging.getLogger(__name__)

USER_AGENT = "satdelta (+https://github.com/satdelta)"
#: Status codes worth another try: the server is busy or briefly down.
RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Fetcher:
    """How politely and patiently to fetch.

    Attributes
    ----------
    timeout_s : float
        Seconds to wait for each answer.
    retries : int
        Further tries after the first, on timeouts, dropped connections, 429 and 5xx.
    backoff_s : float
        Wait before the first retry; doubled before each next one.
    min_interval_s : float
        Least time between the starts of two requests (a polite request rate).
    """

    timeout_s: float = 20.0
    retries: int = 3
    backoff_s: float = 0.5
    min_interval_s: float = 0.0

    def __post_init__(self) -> None:
        if not (self.timeout_s > 0 and self.retries >= 0 and self.backoff_s >= 0):
            raise ValueError(f"expected timeout_s > 0, retries >= 0, backoff_s >= 0; got {self}.")


#: The fetcher used when none is given.
DEFAULT_FETCHER = Fetcher()

_last_request = [0.0]


def _pace(min_interval_s: float) -> None:
    wait = _last_request[0] + min_interval_s - time.monotonic()
    if wait > 0:
        time.sleep(wait)
    _last_request[0] = time.monotonic()


def _get_once(url: str, headers: Mapping[str, str], timeout: float) -> tuple[int, bytes, Any]:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **headers})
    with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310 - http(s) only
        body = resp.read()
        expected = resp.headers.get("Content-Length")
        if expected and expected.isdigit() and len(body) < int(expected):
            raise http.client.IncompleteRead(body, int(expected) - len(body))
        return resp.status, body, resp.headers


def fetch_bytes(
    url: str,
    *,
    what: str = "file",
    fetcher: Fetcher = DEFAULT_FETCHER,
    headers: Mapping[str, str] | None = None,
) -> tuple[bytes, Any]:
    """GET ``url`` whole, with retries and backoff; return (body, response headers).

    Parameters
    ----------
    url : str
        An http(s) URL.
    what : str, default "file"
        What the URL is, for messages ("STAC item", "tile 12/2048/1361"...).
    fetcher : Fetcher
        Timeout, retries, backoff and request rate.
    headers : mapping, optional
        Extra request headers.

    Raises
    ------
    FetchError
        Not found or refused (4xx), still failing after the retries (timeouts, 5xx), or a
        body shorter than the server announced (truncated).
    """
    delay = fetcher.backoff_s
    last = ""
    for attempt in range(fetcher.retries + 1):
        if attempt:
            log.info("retrying %s in %.1f s (%s)", url, delay, last)
            time.sleep(delay)
            delay *= 2
        _pace(fetcher.min_interval_s)
        try:
            _, body, got = _get_once(url, headers or {}, fetcher.timeout_s)
            return body, got
        except urllib.error.HTTPError as exc:
            if exc.code not in RETRY_STATUS:
                raise _http_error(url, what, exc.code) from exc
            last = f"HTTP {exc.code}"
        except http.client.IncompleteRead as exc:
            last = f"truncated: {len(exc.partial)} bytes of {len(exc.partial) + exc.expected}"
        except TimeoutError:
            last = f"no answer within {fetcher.timeout_s:g} s"
        except (urllib.error.URLError, ConnectionError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            last = f"connection failed: {reason}"
            if isinstance(reason, TimeoutError):
                last = f"no answer within {fetcher.timeout_s:g} s"
    tries = fetcher.retries + 1
    if last.startswith("truncated"):
        raise FetchError(
            f"{what} {url} arrived {last} after {tries} tries. The server or the network cuts "
            "the transfer; try again later or download the file and pass its local path."
        )
    raise FetchError(
        f"{what} {url} failed after {tries} tries with backoff: {last}. Check the URL and "
        "your connection, or try again later."
    )


def _http_error(url: str, what: str, status: int) -> FetchError:
    error = FetchError(_http_message(url, what, status))
    error.status = status
    return error


def _http_message(url: str, what: str, status: int) -> str:
    if status == 404:
        return (
            f"{what} not found (HTTP 404) at {url}. Check the URL; a catalogue may list a file "
            "that has moved, so search again for a current item."
        )
    if status in (401, 403):
        return (
            f"{what} refused (HTTP {status}) at {url}. The server needs credentials or a "
            "signed URL; sign the item's hrefs (e.g. Planetary Computer) or use a public mirror."
        )
    return f"{what} request failed (HTTP {status}) at {url}. Check the URL and its parameters."


def check_range_support(url: str, *, what: str = "file", timeout_s: float = 20.0) -> int:
    """Ask for the first bytes of ``url``; return its size when the server honours Range.

    Reads only a handful of bytes either way (the connection is closed after them).

    Raises
    ------
    FetchError
        When the file is missing (4xx), the server does not answer, or it answers a range
        request with the whole file (then GDAL would have to download it all).
    """
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Range": "bytes=0-15"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:  # noqa: S310
            status, crange = resp.status, resp.headers.get("Content-Range", "")
            resp.read(16)
    except urllib.error.HTTPError as exc:
        raise _http_error(url, what, exc.code) from exc
    except OSError as exc:  # URLError and timeouts are OSErrors
        raise FetchError(
            f"{what} {url} did not answer within {timeout_s:g} s ({exc}). Check the URL and "
            "your connection, or try again later."
        ) from exc
    if status != 206:
        raise FetchError(
            f"the server of {url} does not honour HTTP range requests (it answered {status} to "
            "a request for 16 bytes), so the image cannot be read in windows. Download the "
            "file and pass its local path, or use a server that supports ranges."
        )
    total = crange.rsplit("/", 1)[-1]
    return int(total) if total.isdigit() else -1


def describe_failure(url: str, *, what: str = "file") -> str | None:
    """Why ``url`` cannot be read remotely, as one line, or None when it looks reachable."""
    try:
        check_range_support(url, what=what, timeout_s=10.0)
    except FetchError as exc:
        return str(exc)
    return None
