"""Tests of satdelta.imagery.spectral: band roles from names, colour cues."""

from __future__ import annotations

import numpy as np
from satdelta.imagery.spectral import builtup_likelihood, find_band, visible_band_indices


def test_band_roles_from_names():
    names = ("B1_blue", "B2_green", "B3_red", "B4_nir", "B5_swir1", "B7_swir2")
    assert [find_band(names, r) for r in ("blue", "green", "red", "nir")] == [0, 1, 2, 3]
    assert find_band(("rededge", "nir"), "red") is None
    assert visible_band_indices(names, 6) is None
    assert visible_band_indices(("red", "green", "blue"), 3) == (0, 1, 2)
    assert visible_band_indices(("b1", "b2", "b3"), 3) == (0, 1, 2)
    assert visible_band_indices(("b1", "b2", "b3", "b4"), 4) is None


def test_builtup_likelihood_orders_surfaces():
    colours = {
        "grey roof": (110, 112, 115),
        "white aircraft": (235, 236, 238),
        "asphalt": (70, 72, 75),
        "lawn": (70, 120, 50),
        "forest": (35, 70, 30),
        "red soil": (160, 110, 80),
        "water": (30, 60, 90),
    }
    m = {
        k: float(builtup_likelihood(*(np.array([float(c)]) for c in v))[0])
        for k, v in colours.items()
    }
    for built in ("grey roof", "white aircraft", "asphalt"):
        assert m[built] > 0.8, m
    for natural in ("lawn", "forest", "red soil", "water"):
        assert m[natural] < 0.1, m
