"""``satdelta view`` without a display: one line saying what to do, exit 1 (not Qt's SIGABRT)."""

from __future__ import annotations

import os

import pytest

from tests.probe.conftest import assert_one_line_error, satdelta


@pytest.mark.parametrize(
    ("display", "needle"), [(None, "neither DISPLAY nor WAYLAND_DISPLAY"), (":97", ":97")]
)
def test_view_without_display_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, display: str | None, needle: str
) -> None:
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    if display is not None:
        monkeypatch.setenv("DISPLAY", display)
    res = satdelta("view", env=dict(os.environ))
    assert_one_line_error(res, needle, "xvfb-run")
