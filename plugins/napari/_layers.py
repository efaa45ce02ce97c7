"""The viewer's layers as the Change annotator sees them (napari, no Qt widgets).

Image layers carry a ``role`` (before, after, score, mask) and a ``source`` (file or
URL) in ``metadata["satdelta"]``; these helpers find them, open a typed source as a
layer, and show a run's change score and mask as layers updated in place.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from satdelta.imagery.errors import SatdeltaError
from satdelta.plugins.napari._features import MASK_COLOUR
from satdelta.plugins.napari._frame import MapFrame, layer_affine
from satdelta.plugins.napari._reader import frame_of_layers, raster_layer_data, role_name
from satdelta.plugins.napari._session import display_tolerance

if TYPE_CHECKING:
    import napari
    from satdelta.plugins.napari._detection import ChangeLayers

__all__ = [
    "MASK",
    "SCORE",
    "InputError",
    "discard_prepared",
    "image_layers",
    "prepare_change_layer",
    "resolve_source",
    "role_layer",
    "show_change_maps",
    "source_layer_names",
    "tag_role",
    "viewer_frame",
    "viewer_tolerance",
]

SCORE = "change score"
MASK = "change mask"
#: Opacity of the change mask: light enough to see the image and the outlines through.
MASK_OPACITY = 0.5


class InputError(SatdeltaError, ValueError):
    """The dock's inputs are incomplete."""


def _satdelta(layer: Any) -> dict[str, Any]:
    return (getattr(layer, "metadata", None) or {}).get("satdelta") or {}


def viewer_frame(viewer: napari.Viewer) -> MapFrame | None:
    """The viewer's map frame (from the first satdelta layer)."""
    return frame_of_layers(list(viewer.layers))


def viewer_tolerance(viewer: napari.Viewer) -> float:
    """How much detected outlines may be simplified for display: half a pixel of the
    before raster (or of the first raster with a transform), in map units; 0 if none."""
    layers = [role_layer(viewer, "before"), *image_layers(viewer)]
    for layer in layers:
        transform = _satdelta(layer).get("transform") if layer is not None else None
        if transform:
            return display_tolerance(transform[0])
    return 0.0


def image_layers(viewer: napari.Viewer) -> list[Any]:
    """The viewer's Image layers, bottom first."""
    from napari.layers import Image

    return [ly for ly in viewer.layers if isinstance(ly, Image)]


def role_layer(viewer: napari.Viewer, role: str) -> Any | None:
    """The image layer tagged with ``role`` ("before", "after", ...), if any."""
    for ly in image_layers(viewer):
        if _satdelta(ly).get("role") == role:
            return ly
    return None


def tag_role(viewer: napari.Viewer, layer: Any, role: str) -> None:
    """Tag ``layer`` with ``role``, taking the role from any other layer that had it.

    A layer still named after its file (``m_..._20090818``, ``name [1]``) is renamed by
    role and date (``before 2009-08-18``); a name the analyst gave is kept.
    """
    sd = layer.metadata.setdefault("satdelta", {})
    for other in image_layers(viewer):
        osd = other.metadata.get("satdelta") or {}
        if other is not layer and osd.get("role") == role:
            osd["role"] = None
    sd["role"] = role
    stem = sd.get("stem")
    if stem and (layer.name == stem or layer.name.startswith(f"{stem} [")):
        layer.name = role_name(role, sd.get("acquired"))


def source_layer_names(viewer: napari.Viewer) -> list[str]:
    """Names of the image layers opened from a file or URL (those detection can align)."""
    return [ly.name for ly in image_layers(viewer) if _satdelta(ly).get("source")]


def resolve_source(viewer: napari.Viewer, text: str, role: str) -> tuple[str, Any]:
    """(file or URL, layer) for what the analyst typed or picked as ``role``.

    A layer name or a layer's source gives that layer; anything else is opened as a
    raster and added as a new layer.

    Raises
    ------
    InputError
        Nothing given, or a layer that was not opened from a file.
    satdelta.imagery.errors.SceneReadError
        The file or URL cannot be read.
    """
    text = text.strip()
    if not text:
        raise InputError(
            f"no {role} image chosen; pick a layer, browse to a file or paste an https:// URL."
        )
    for ly in image_layers(viewer):
        if ly.name == text:
            src = _satdelta(ly).get("source")
            if not src:
                raise InputError(
                    f"layer {text!r} was not opened from a file, so it cannot be aligned; "
                    "open the raster with File > Open (satdelta reader) or give its path."
                )
            return src, ly
    for ly in image_layers(viewer):
        if _satdelta(ly).get("source") == text:
            return text, ly
    data = raster_layer_data(text, frame=viewer_frame(viewer), role=role)
    from napari.layers import Layer

    return text, viewer.add_layer(Layer.create(*data))


def show_change_maps(
    viewer: napari.Viewer, result: ChangeLayers, *, only: tuple[str, ...] = (MASK, SCORE)
) -> None:
    """Show (or update in place) the score and mask layers of ``result``.

    ``only`` names the layers to show now: adding a layer to napari costs a few tenths
    of a second on the main thread, so the dock adds one per event-loop turn.
    """
    from satdelta.plugins.napari._block_detection import ChangeFiles

    files = result.maps if isinstance(result.maps, ChangeFiles) else None
    shape = files.shape if files is not None else result.maps.score.shape
    frame = viewer_frame(viewer) or MapFrame.from_transform(result.transform, result.crs)
    affine = layer_affine(frame, result.transform, result.crs, shape=shape)
    meta = {
        "frame": frame.to_dict(),
        "crs": result.crs.to_wkt() if result.crs is not None else None,
        "transform": list(tuple(result.transform)[:6]),
    }
    if files is not None:  # a block run: lazy levels of its COGs, never the whole raster
        _show_change_files(viewer, files, affine, {**meta, "run_folder": files.folder}, only)
        return
    if SCORE in only:
        _show_score(viewer, result.maps.score, affine, meta)
    if MASK in only:
        _replace_image(
            viewer,
            MASK,
            _as_uint8(result.maps.changed),
            affine=affine,
            **_mask_style(),
            visible=True,  # a layer prepared empty is hidden
            metadata={"satdelta": {**meta, "role": "mask"}},
        )


def _show_change_files(
    viewer: napari.Viewer, files: Any, affine: Any, meta: dict[str, Any], only: tuple[str, ...]
) -> None:
    from satdelta.plugins.napari._block_detection import change_file_levels

    score, mask, (lo, hi) = change_file_levels(files)
    if SCORE in only:
        _replace_image(
            viewer, SCORE, score, multiscale=True, affine=affine, colormap="magma",
            contrast_limits=[lo, hi], visible=False,
            metadata={"satdelta": {**meta, "role": "score"}},
        )  # fmt: skip
    if MASK in only:
        _replace_image(
            viewer, MASK, mask, multiscale=True, affine=affine, **_mask_style(), visible=True,
            metadata={"satdelta": {**meta, "role": "mask"}},
        )  # fmt: skip


def prepare_change_layer(viewer: napari.Viewer, name: str, *, multiscale: bool = False) -> None:
    """Add the score or mask layer empty (one pixel) and hidden, if it is not there yet.

    ``multiscale`` (a pair run block by block, shown from its COGs' levels) makes it a
    multiscale layer, so that the levels are set in place too; an empty layer of the other
    kind is made anew.

    Adding an image layer costs napari a tenth of a second or more on the main thread
    (its controls, its visual, a redraw of the layer list): done while a run computes,
    :func:`show_change_maps` later only sets the data.  :func:`discard_prepared` removes
    layers that stayed empty (the run failed or was cancelled).
    """
    layer = viewer.layers[name] if name in viewer.layers else None
    if layer is not None:
        if layer.multiscale == multiscale or not _satdelta(layer).get("prepared"):
            return  # it shows a run's maps: updated, or replaced, when the new ones come
        viewer.layers.remove(name)  # an empty one of the other kind
    style = _mask_style() if name == MASK else {"colormap": "magma", "contrast_limits": [0, 1]}
    role = "mask" if name == MASK else "score"
    # the before image's first pixel: the scene's extent stays as it is (a change of extent
    # makes napari slice and upload every image layer again)
    before = role_layer(viewer, "before")
    placed = {"affine": before.affine} if before is not None and before.ndim == 2 else {}
    empty = np.zeros((2, 2), dtype=np.uint8 if name == MASK else np.float32)
    viewer.add_image(
        [empty, empty[:1, :1]] if multiscale else empty[:1, :1],
        multiscale=multiscale,
        name=name,
        visible=False,
        metadata={"satdelta": {"role": role, "prepared": True}},
        **placed,
        **style,
    )


def discard_prepared(viewer: napari.Viewer) -> None:
    """Remove the layers :func:`prepare_change_layer` added that never received data."""
    for layer in [ly for ly in image_layers(viewer) if _satdelta(ly).get("prepared")]:
        viewer.layers.remove(layer)


def _show_score(
    viewer: napari.Viewer, score: np.ndarray, affine: Any, meta: dict[str, Any]
) -> None:
    # explicit contrast limits, so napari does not estimate them; nanmin/nanmax scan the
    # score without copying its finite part
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN score
        lo, hi = float(np.nanmin(score)), float(np.nanmax(score))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = 0.0, 1.0
    _replace_image(
        viewer,
        SCORE,
        score,
        affine=affine,
        colormap="magma",
        contrast_limits=[lo, hi if hi > lo else lo + 1.0],
        visible=False,
        metadata={"satdelta": {**meta, "role": "score"}},
    )


def _mask_style() -> dict[str, Any]:
    return {
        "colormap": _mask_colormap(),
        "contrast_limits": [0, 1],
        "blending": "translucent",  # additive blending turned candidate outlines yellow-green
        "opacity": MASK_OPACITY,
    }


def _mask_colormap() -> Any:
    """Unchanged pixels transparent, changed ones in :data:`MASK_COLOUR`."""
    from napari.utils.colormaps import Colormap

    return Colormap([[0.0, 0.0, 0.0, 0.0], [*MASK_COLOUR, 1.0]], name="satdelta mask")


def _replace_image(viewer: napari.Viewer, name: str, data: np.ndarray, **kwargs: Any) -> Any:
    """Add the layer ``name``, or on a re-run update the existing one in place.

    Updating keeps the layer's vispy node and controls; the result looks the same as a
    new layer made with ``kwargs``.
    """
    from napari.layers import Image

    layer = viewer.layers[name] if name in viewer.layers else None
    multiscale = bool(kwargs.get("multiscale"))
    if (
        isinstance(layer, Image)
        and layer.multiscale == multiscale
        and layer.ndim == (data[0] if multiscale else data).ndim
    ):
        layer.data = data
        if "contrast_limits" in kwargs:  # a new layer's range is its given limits
            layer.contrast_limits_range = kwargs["contrast_limits"]
        for key, value in kwargs.items():
            if key != "multiscale":
                setattr(layer, key, value)
        return layer
    if layer is not None:  # single-scale to multiscale or back: a new layer in its place
        index = viewer.layers.index(layer)
        viewer.layers.remove(name)
        new = Image(data, name=name, **kwargs)
        viewer.layers.insert(index, new)
        return new
    return viewer.add_image(data, name=name, **kwargs)


def _as_uint8(mask: np.ndarray) -> np.ndarray:
    """A bool mask as 0/1 bytes, without a copy when it is already bool.

    Examples
    --------
    >>> _as_uint8(np.array([True, False])).tolist()
    [1, 0]
    """
    mask = np.asarray(mask)
    return mask.view(np.uint8) if mask.dtype == np.bool_ else mask.astype(np.uint8)
