"""Shared libraries this process has loaded, by name (Linux: ``/proc/self/maps``).

For the few places satdelta calls a C library that rasterio's wheel carries (libtiff's
error printer in :mod:`~satdelta.imagery.cog`, GDAL's polygonizer in
:mod:`~satdelta.imagery.polygonize`) through ``ctypes``: the copy already loaded, never
another one found on the system.
"""

from __future__ import annotations

__all__ = ["loaded_library_paths"]


def loaded_library_paths(name: str) -> list[str]:
    """Sorted paths of the loaded shared objects whose path contains ``name`` (e.g.
    ``"libgdal"``); none where ``/proc/self/maps`` cannot be read (not Linux).

    Examples
    --------
    >>> loaded_library_paths("no-such-library-here")
    []
    """
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as fh:
            return sorted({ln.split()[-1] for ln in fh if name in ln and "/" in ln})
    except OSError:
        return []
