"""The batch job's pairs list (a CSV with ``name,before,after`` or a JSON list) as :class:`Pair`.

Relative paths are resolved against the list's folder, http(s) URLs and GDAL ``/vsi`` names
are kept, and names are checked to be plain, unique folder names (each is a pair's output
folder under OUTDIR).
"""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from satdelta.imagery.errors import SatdeltaError

__all__ = ["BATCH_FILE", "Pair", "PairsFileError", "read_pairs"]

#: Name of the batch report written in OUTDIR (so no pair may be named so).
BATCH_FILE = "batch.json"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_URL_PREFIXES = ("http://", "https://", "/vsi")


class PairsFileError(SatdeltaError, ValueError):
    """The pairs list (CSV or JSON) is missing, malformed, or names pairs unsafely."""


@dataclass(frozen=True)
class Pair:
    """One before/after pair of the batch.

    Attributes
    ----------
    name : str
        Folder name of the pair's outputs under OUTDIR (letters, digits, ``.``, ``_``, ``-``;
        not starting with ``.``).
    before, after : str
        Absolute local paths, or http(s) URLs / GDAL ``/vsi`` names as given.
    """

    name: str
    before: str
    after: str

    def __post_init__(self) -> None:
        if not _SAFE_NAME.match(self.name) or self.name.lower() == BATCH_FILE:
            raise PairsFileError(
                f"pair name {self.name!r} cannot be a folder name under OUTDIR; expected 1-100 "
                "letters, digits, '.', '_' or '-', not starting with '.' or '-' (and not "
                f"{BATCH_FILE!r}). Rename the pair."
            )
        for what, src in (("before", self.before), ("after", self.after)):
            if not isinstance(src, str) or not src.strip():
                raise PairsFileError(
                    f"pair {self.name!r} has an empty {what}; expected a path or URL."
                )


def _resolve_source(text: str, base: Path) -> str:
    s = text.strip()
    if s.startswith(_URL_PREFIXES):
        return s
    p = Path(s).expanduser()
    if not p.is_absolute():
        p = base / p
    return str(p.absolute())


def read_pairs(path: str | os.PathLike[str]) -> list[Pair]:
    """Read a pairs list: a CSV with header ``name,before,after`` or a JSON list.

    Relative paths are relative to the list's folder; http(s) URLs and GDAL ``/vsi`` names are
    kept as given. Extra CSV columns (notes...) are ignored. The JSON form is a list of objects
    with the same three keys.

    Parameters
    ----------
    path : str or os.PathLike
        ``.json`` files (or content starting with ``[``) are read as JSON, others as CSV.

    Returns
    -------
    list of Pair
        In file order.

    Raises
    ------
    PairsFileError
        Missing or unreadable file, wrong header or keys, empty fields, no pairs, duplicate
        names (case-insensitive, since some filesystems are), or names that are not plain
        folder names (``../x``, ``a/b``, ``.hidden``).

    Examples
    --------
    >>> import os, tempfile
    >>> d = tempfile.mkdtemp()
    >>> with open(os.path.join(d, "pairs.csv"), "w") as fh:
    ...     _ = fh.write("name,before,after\\nsunan,b.tif,https://example.org/a.tif\\n")
    >>> p = read_pairs(os.path.join(d, "pairs.csv"))[0]
    >>> p.name, p.before == os.path.join(d, "b.tif"), p.after
    ('sunan', True, 'https://example.org/a.tif')
    """
    src = Path(path).expanduser()
    if not src.is_file():
        what = "a folder" if src.is_dir() else "missing"
        raise PairsFileError(
            f"pairs list {src} is {what}; expected a CSV (name,before,after) or JSON list file."
        )
    try:
        text = src.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise PairsFileError(
            f"cannot read pairs list {src}: {exc}. Expected a UTF-8 CSV or JSON file."
        ) from exc
    base = src.absolute().parent
    if src.suffix.lower() == ".json" or text.lstrip().startswith("["):
        rows = _json_rows(text, src)
    else:
        rows = _csv_rows(text, src)
    pairs: list[Pair] = []
    seen: dict[str, str] = {}
    for where, row in rows:
        name = row["name"].strip()
        if not row["before"].strip() or not row["after"].strip() or not name:
            raise PairsFileError(
                f"{src} {where}: name, before and after must all be given; got {row!r}."
            )
        try:
            pair = Pair(
                name, _resolve_source(row["before"], base), _resolve_source(row["after"], base)
            )
        except PairsFileError as exc:
            raise PairsFileError(f"{src} {where}: {exc}") from None
        key = name.lower()
        if key in seen:
            raise PairsFileError(
                f"{src} {where}: pair name {name!r} repeats {seen[key]}; each pair needs its "
                "own name (it is its output folder)."
            )
        seen[key] = where
        pairs.append(pair)
    if not pairs:
        raise PairsFileError(f"pairs list {src} lists no pairs; expected at least one row.")
    return pairs


def _csv_rows(text: str, src: Path) -> list[tuple[str, dict[str, str]]]:
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    reader = csv.reader(lines)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise PairsFileError(
            f"pairs list {src} is empty; expected a header name,before,after and one row per pair."
        ) from None
    missing = [k for k in ("name", "before", "after") if k not in header]
    if missing or len(set(header)) != len(header):
        raise PairsFileError(
            f"pairs list {src} has header {','.join(header)!r}; expected the columns "
            "name,before,after (extra columns are ignored)."
        )
    rows = []
    for i, values in enumerate(reader, start=2):
        if len(values) < len(header):
            raise PairsFileError(
                f"{src} row {i}: {len(values)} values for {len(header)} columns; expected "
                "name,before,after."
            )
        rows.append((f"row {i}", dict(zip(header, values, strict=False))))
    return rows


def _json_rows(text: str, src: Path) -> list[tuple[str, dict[str, str]]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PairsFileError(
            f"pairs list {src} is not valid JSON ({exc}); expected a list of "
            '{"name": ..., "before": ..., "after": ...} objects.'
        ) from None
    if not isinstance(data, list):
        raise PairsFileError(
            f"pairs list {src} holds a JSON {type(data).__name__}; expected a list of "
            '{"name": ..., "before": ..., "after": ...} objects.'
        )
    rows = []
    for i, item in enumerate(data):
        ok = isinstance(item, dict) and all(
            isinstance(item.get(k), str) for k in ("name", "before", "after")
        )
        if not ok:
            raise PairsFileError(
                f"{src} item {i}: got {item!r}; expected an object with string members name, "
                "before and after."
            )
        rows.append((f"item {i}", {k: item[k] for k in ("name", "before", "after")}))
    return rows
