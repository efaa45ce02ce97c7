"""The dock's viewer key bindings are given back when it closes (no window, no Qt)."""

from __future__ import annotations

import pytest
from satdelta.plugins.napari._keys import ViewerKeys


def test_release_restores_the_bindings_the_viewer_had_before() -> None:
    from napari.components import ViewerModel

    viewer = ViewerModel()

    def users_j(_viewer) -> None:  # noqa: ANN001
        pass

    def users_k_later(_viewer) -> None:  # noqa: ANN001
        pass

    viewer.bind_key("j", users_j)
    keys = ViewerKeys(viewer)
    ours = {k: (lambda _v, k=k: k) for k in "jkq"}
    for key, func in ours.items():
        keys.bind(key, func)
    assert list(viewer.keymap.values()) == [ours["j"], ours["k"], ours["q"]]
    with pytest.raises(ValueError, match="bound twice"):
        keys.bind("j", users_j)
    viewer.bind_key("k", users_k_later, overwrite=True)  # the analyst rebinds K meanwhile
    keys.release()
    assert {str(k): f for k, f in viewer.keymap.items()} == {"J": users_j, "K": users_k_later}
    keys.release()  # twice: nothing more happens
    assert len(viewer.keymap) == 2
