"""Objects found whole by their change, and dark or textured objects that are not shadows."""

from __future__ import annotations

import numpy as np
import pytest
from satdelta.imagery.object_change import detect_objects
from satdelta.imagery.objects import ObjectOptions

from tests.imagery.test_objects import PX, scene


def blue_airliner(img: np.ndarray, r: int, c: int) -> None:
    """A dark fuselage (60 x 8 px) with thin bright wings (50 x 3 px) and a bright tail
    (6 x 20 px), nose up, centre (r, c): only the tail is a compact bright object on its own."""
    img[:, r - 30 : r + 30, c - 4 : c + 4] = 92.0
    img[:, r - 2 : r + 1, c - 25 : c + 25] = 220.0
    img[:, r + 24 : r + 30, c - 10 : c + 10] = 220.0


def test_an_aircraft_found_by_its_tail_is_reported_whole():
    before, after = scene(29), scene(30)
    blue_airliner(before, 150, 150)
    found = detect_objects(before, after, PX)
    (gone,) = [o for o in found.objects if o.change == "disappeared"]
    assert gone.size_class == "aircraft-sized"
    assert gone.found.bbox == pytest.approx((120, 125, 180, 175), abs=3)
    # without growing over the change only the tail is found, a vehicle-sized box
    (tail,) = detect_objects(before, after, PX, ObjectOptions(change_grow_z=0)).objects
    assert tail.size_class == "vehicle" and tail.found.bbox[0] >= 170


def formation(img: np.ndarray, r0: int, c0: int, side: int, *, people: bool) -> None:
    """A block 2.5 noise sigmas darker than the pavement: people on a 2 px lattice (a
    formation) or smooth (a cast shadow)."""
    block = np.full((side, side), 102.5, np.float32)
    if people:
        block[::2, ::2] = 90.0
        block[1::2, 1::2] = 115.0
    img[:, r0 : r0 + side, c0 : c0 + side] = block


def test_a_formation_appears_and_an_equally_dark_smooth_block_is_a_shadow():
    before, after = scene(23), scene(24)
    formation(after, 60, 60, 44, people=True)
    formation(after, 180, 180, 44, people=False)
    found = detect_objects(before, after, PX)
    arrived = [o for o in found.objects if o.change == "appeared"]
    assert [(o.size_class, o.found.polarity) for o in arrived] == [("aircraft-sized", "dark")]
    assert arrived[0].found.bbox == pytest.approx((60, 60, 104, 104), abs=3)


def test_a_fragment_is_not_grown_into_a_shape_no_object_has():
    # a bright 8 m x 8 m box that leaves, beside a 1.5 m wide, 90 m long dark strip (a moved
    # cable trench shadow, say) that also differs between the dates: grown over the strip it
    # would be far too thin for its length, so it stays as found
    before, after = scene(31, 400), scene(32, 400)
    before[:, 190:206, 190:206] = 220.0
    before[:, 197:200, 206:386] = 80.0
    after[:, 195:202, 200:386] = 110.0  # plain pavement there on the after date
    (gone,) = [o for o in detect_objects(before, after, PX).objects if o.change == "disappeared"]
    assert gone.size_class == "vehicle"
    assert gone.found.bbox == pytest.approx((190, 190, 206, 206), abs=2)
