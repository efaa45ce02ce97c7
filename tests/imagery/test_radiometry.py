"""Tests of satdelta.imagery.radiometry: IR-MAD, linear normalisation, histogram matching."""

from __future__ import annotations

import numpy as np
import pytest
from satdelta.imagery.errors import BandMismatchError, InvalidParameterError
from satdelta.imagery.radiometry import (
    LinearNormalisation,
    fit_histogram_matching,
    fit_irmad,
    fit_linear_normalisation,
    fit_normalisation,
    orthogonal_regression,
)
from scipy import ndimage


def scene(seed: int = 0, nb: int = 4, size: int = 120) -> np.ndarray:
    """Correlated multispectral texture (bands share structure, as real bands do)."""
    rng = np.random.default_rng(seed)
    common = ndimage.gaussian_filter(rng.normal(size=(size, size)), 3)
    own = [ndimage.gaussian_filter(rng.normal(size=(size, size)), 2) for _ in range(nb)]
    bands = [60 + 25 * b + 300 * common * (1 + 0.3 * b) + 120 * own[b] for b in range(nb)]
    return np.stack(bands).astype(np.float64)


GAINS = np.array([0.8, 1.15, 0.65, 1.3])
OFFSETS = np.array([12.0, -7.0, 30.0, 4.0])


def changed_pair(seed: int = 0, frac_changed: float = 0.1):
    before = scene(seed)
    rng = np.random.default_rng(seed + 100)
    after = GAINS[:, None, None] * before + OFFSETS[:, None, None]
    after = after + rng.normal(0, 1.0, size=after.shape)
    before = before + rng.normal(0, 1.0, size=before.shape)
    n = before.shape[1]
    side = int(round(np.sqrt(frac_changed) * n))
    changed = np.zeros((n, n), bool)
    changed[:side, :side] = True
    after[:, changed] = rng.uniform(0, 400, size=(4, int(changed.sum())))
    return before, after, changed


def test_known_gain_offset_recovered_within_one_percent_despite_changes():
    before, after, changed = changed_pair(frac_changed=0.1)
    norm = fit_linear_normalisation(before, after)
    # after = g * before + o  =>  the fitted map after -> before has gain 1/g, offset -o/g
    np.testing.assert_allclose(norm.gains, 1 / GAINS, rtol=0.01)
    np.testing.assert_allclose(norm.offsets, -OFFSETS / GAINS, atol=0.01 * 400)
    d = norm.to_dict()
    assert d["method"] == "irmad" and len(d["gains"]) == 4
    # P(no change) > 0.95 keeps about 5 % of the unchanged pixels (chi-square lower tail)
    assert 0.02 * (~changed).sum() < d["invariant_pixels"] < 0.2 * (~changed).sum()
    # applying the normalisation makes unchanged pixels agree again
    res = norm.apply(after)[:, ~changed] - before[:, ~changed]
    assert np.abs(res).mean() < 2.0


def test_ordinary_fit_on_all_pixels_is_pulled_by_changes():
    """Control: without invariant-pixel selection the changed 10 % bias the gains."""
    before, after, _ = changed_pair(frac_changed=0.1)
    naive = np.array(
        [orthogonal_regression(after[i].ravel(), before[i].ravel())[0] for i in range(4)]
    )
    assert np.max(np.abs(naive * GAINS - 1)) > 0.03


def test_irmad_separates_changed_pixels_and_is_invariant_to_linear_maps():
    before, after, changed = changed_pair(seed=1)
    fit = fit_irmad(before, after)
    z = fit.chi2(before, after)
    assert np.median(z[changed]) > 20 * np.median(z[~changed])
    p = fit.no_change_probability(before, after)
    # calibrated chi-square: ~95 % of unchanged pixels above 0.05 in theory
    assert (p[~changed] > 0.05).mean() > 0.8 and (p[changed] < 0.01).mean() > 0.9
    assert np.all(np.diff(fit.rho) >= -1e-9)  # ordered by increasing correlation
    # MAD variates do not depend on a linear re-scaling of either date
    mix = np.array([[1.0, 0.2, 0, 0], [0, 1.0, 0.1, 0], [0, 0, 2.0, 0], [0.3, 0, 0, 1.0]])
    after2 = np.einsum("ij,jrc->irc", mix, after) + 5.0
    z2 = fit_irmad(before, after2).chi2(before, after2)
    np.testing.assert_allclose(np.median(z2[~changed]), np.median(z[~changed]), rtol=0.05)


def test_histogram_matching_inverts_a_monotonic_transform():
    before = scene(2, nb=3)
    after = np.sqrt(np.maximum(before, 0)) * 10 + 3
    hm = fit_histogram_matching(before, after)
    out = hm.apply(after)
    err = np.abs(out - before)
    assert np.median(err) < 0.01 * np.ptp(before)
    g, o = hm.gains_offsets()
    assert g.shape == (3,) and np.all(g > 0)


def test_valid_mask_excludes_garbage_from_the_fit():
    before, after, _ = changed_pair(seed=3, frac_changed=0.01)
    valid = np.ones(before.shape[1:], bool)
    valid[:, :30] = False
    after[:, :, :30] = 0.0  # no-data fill in the after image
    norm = fit_linear_normalisation(before, after, valid=valid)
    np.testing.assert_allclose(norm.gains, 1 / GAINS, rtol=0.01)


def test_fit_normalisation_dispatch():
    before, after, _ = changed_pair(seed=4, frac_changed=0.01)
    assert fit_normalisation(before, after, method="none") is None
    assert fit_normalisation(before, after, method="histogram").to_dict()["method"] == "histogram"
    assert isinstance(fit_normalisation(before, after, method="irmad"), LinearNormalisation)
    with pytest.raises(InvalidParameterError, match="normalise must be one of"):
        fit_normalisation(before, after, method="minmax")  # type: ignore[arg-type]


def test_bad_input_messages():
    with pytest.raises(BandMismatchError, match="same \\(band, row, col\\) shape"):
        fit_irmad(np.zeros((3, 10, 10)), np.zeros((4, 10, 10)))
    with pytest.raises(BandMismatchError, match="\\(band, row, col\\) arrays"):
        fit_irmad(np.zeros((10, 10)), np.zeros((10, 10)))
    with pytest.raises(InvalidParameterError, match="needs at least"):
        fit_irmad(np.ones((4, 3, 3)), np.ones((4, 3, 3)))
    with pytest.raises(InvalidParameterError, match="no_change_probability must be in"):
        fit_linear_normalisation(np.ones((2, 9, 9)), np.ones((2, 9, 9)), no_change_probability=1.5)
    norm = LinearNormalisation(np.ones(3), np.zeros(3))
    with pytest.raises(BandMismatchError, match="fitted for 3 bands, got 2"):
        norm.apply(np.zeros((2, 4, 4)))
    with pytest.raises(InvalidParameterError, match="finite"):
        LinearNormalisation(np.array([np.nan]), np.zeros(1))


@pytest.mark.parametrize("shape", [(2048, 2048), (1500, 4000), (300, 9000), (5000, 700)])
def test_fit_windows_are_a_bounded_spread_patch_set(shape):
    from satdelta.imagery.radiometry import MAX_FIT_PATCH_PIXELS, fit_windows

    wins = fit_windows(shape)
    cover = np.zeros(shape, np.uint8)
    for r, c in wins:
        assert 0 <= r.start < r.stop <= shape[0] and 0 <= c.start < c.stop <= shape[1]
        cover[r, c] += 1
    assert cover.max() == 1  # no overlap
    assert 0.5 * MAX_FIT_PATCH_PIXELS <= cover.sum() <= MAX_FIT_PATCH_PIXELS
    # spread: every quarter of the longer side holds some of the sample
    axis = int(shape[1] >= shape[0])
    per_line = cover.sum(axis=1 - axis)
    for q in np.array_split(per_line, 4):
        assert q.sum() > 0.1 * cover.sum()
    assert fit_windows((100, 80)) == [(slice(0, 100), slice(0, 80))]


def test_fit_windows_find_the_data_of_a_mostly_empty_scene():
    from satdelta.imagery.radiometry import fit_windows

    rows, cols = 3000, 3000
    yy, xx = np.mgrid[:rows, :cols]
    # a thin diagonal strip of data (a rotated footprint's edge), 6 % of the scene
    strip = np.abs(yy - xx) < 90
    for valid in (strip, (yy < 200) & (xx > 2500)):  # a strip; a corner block
        wins = fit_windows((rows, cols), valid=valid)
        got = sum(int(valid[w].sum()) for w in wins)
        blind = sum(int(valid[w].sum()) for w in fit_windows((rows, cols)))
        assert got >= 0.5 * min(valid.sum(), sum(valid[w].size for w in wins)), got
        assert got > blind
    # a scene full of data keeps the plain grid
    full = np.ones((2048, 2048), bool)
    assert fit_windows((2048, 2048), valid=full) == fit_windows((2048, 2048))
