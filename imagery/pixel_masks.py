"""Which pixels of a read window have data: GDAL's masks, without rasterio's warning.

:func:`valid_pixels` is how :meth:`~satdelta.imagery.scene.Scene.read` and the block
runner's tile cache (:mod:`satdelta.imagery.tile_cache`) learn where every band has data.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Sequence

import numpy as np
from rasterio.enums import ColorInterp, MaskFlags
from rasterio.errors import NodataShadowWarning
from rasterio.io import DatasetReader
from rasterio.windows import Window

__all__ = ["quiet_nodata_shadow", "valid_pixels"]

#: The module whose mask reads :func:`quiet_nodata_shadow` silences (a regular expression):
#: this one, where :func:`valid_pixels` calls ``read_masks``.
_SHADOW_MODULE = re.escape(__name__) + r"\Z"


def quiet_nodata_shadow() -> None:
    """Keep rasterio's NodataShadowWarning out of satdelta's mask reads (the files
    :func:`valid_pixels` sends to ``read_masks``).

    rasterio warns on every mask read of a 4-band file whose alpha band a nodata value
    shadows; GDAL's masks then follow the nodata value, as
    :meth:`~satdelta.imagery.scene.Scene.read` says, and the caller can do nothing about it.
    One filter, for the warnings raised in this module, stays in the process's filters (put
    first here when another filter would decide before it) rather than being set and undone
    around each read with ``warnings.catch_warnings``, which is not thread-safe: a thread leaving
    it restores the filters it found on entering, undoing the filter of another thread's
    read still under way (the warning reached stderr in block runs on the NAIP mosaic). A
    thread leaving such a context can still drop a filter added after it entered, so
    :func:`valid_pixels` avoids the mask read where it can.
    """
    for action, _message, category, module, _line in warnings.filters:
        if not issubclass(NodataShadowWarning, category) or (
            module is not None and not module.match(__name__)
        ):
            continue  # a filter that does not apply to these reads
        if action == "ignore" and module is not None and module.pattern == _SHADOW_MODULE:
            return  # ours, and the first that applies
        break  # another filter would decide first ("always", "error"...): ours goes before
    warnings.filterwarnings("ignore", category=NodataShadowWarning, module=_SHADOW_MODULE)


# at import, before any thread enters warnings.catch_warnings: every filter list such a
# context saves and restores then holds the filter
quiet_nodata_shadow()


def valid_pixels(
    src: DatasetReader, indexes: Sequence[int], window: Window | None, data: np.ndarray
) -> np.ndarray:
    """Where every band of ``indexes`` (1-based) has data in ``window``: GDAL's masks, as
    rasterio's ``read_masks`` gives them; ``data`` holds those bands' pixels, read there.

    When a nodata value shadows the alpha band of a 4-band file, rasterio warns on every
    mask read, and GDAL's masks are then the bands' nodata masks (valid where the value is
    not the nodata value). For 8- and 16-bit integer bands, whose values ``data`` holds
    exactly, those masks are made here from ``data``: no mask read, no warning, no
    warnings filter to keep in place while other threads enter and leave
    ``warnings.catch_warnings``. Other files go to ``read_masks`` (with
    :func:`quiet_nodata_shadow`).
    """
    idx = list(indexes)
    if src.count == 4 and src.colorinterp[3] == ColorInterp.alpha:
        flags = src.mask_flag_enums
        dtypes = [np.dtype(src.dtypes[i - 1]) for i in idx]
        if all(MaskFlags.nodata in flags[i - 1] for i in idx) and all(
            d.kind in "iu" and d.itemsize <= 2 for d in dtypes
        ):
            nodata = [src.nodatavals[i - 1] for i in idx]
            valid = np.ones(data.shape[1:], bool)
            for k, value in enumerate(nodata):
                if value is not None and not math.isnan(value):  # NaN: no integer is nodata
                    valid &= data[k] != value
            return valid
    quiet_nodata_shadow()
    return np.all(src.read_masks(idx, window=window) > 0, axis=0)
