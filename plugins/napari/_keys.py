"""Viewer key bindings that a dock takes back when it closes (no Qt).

:class:`ViewerKeys` binds keys on a viewer and remembers what each key was bound to
before, so :meth:`ViewerKeys.release` can put the analyst's own bindings back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["ViewerKeys"]


class ViewerKeys:
    """Key bindings on one viewer, all released together.

    Parameters
    ----------
    viewer : napari.Viewer or napari.components.ViewerModel
        Anything with napari's ``bind_key`` and ``keymap``.

    Examples
    --------
    >>> from napari.components import ViewerModel
    >>> viewer = ViewerModel()
    >>> def mine(v): ...
    >>> _ = viewer.bind_key("j", mine)
    >>> keys = ViewerKeys(viewer)
    >>> keys.bind("j", lambda v: None)
    >>> keys.bind("k", lambda v: None)
    >>> keys.release()
    >>> [f.__name__ for f in viewer.keymap.values()]
    ['mine']
    """

    def __init__(self, viewer: Any) -> None:
        self._viewer = viewer
        self._bound: dict[str, tuple[Callable[..., Any], Callable[..., Any] | None]] = {}

    def bind(self, key: str, func: Callable[..., Any]) -> None:
        """Bind ``func`` to ``key`` on the viewer, over whatever the key did before."""
        if key in self._bound:
            raise ValueError(f"key {key!r} is bound twice by the same dock; bind each key once.")
        previous = self._viewer.bind_key(key, func, overwrite=True)
        self._bound[key] = (func, previous)

    def release(self) -> None:
        """Unbind every key bound here and restore what it was bound to before.

        A key bound to something else since (the analyst rebound it) keeps that binding.
        Releasing twice does nothing more.
        """
        for key, (func, previous) in reversed(self._bound.items()):
            current = self._viewer.bind_key(key, None)  # unbinds; returns what was bound
            keep = previous if current is func else current
            if keep is not None:
                self._viewer.bind_key(key, keep)
        self._bound.clear()
