"""napari notifications for the widget (the one place errors reach the analyst)."""

from __future__ import annotations

__all__ = ["notify_error", "notify_info"]


def notify_error(exc: BaseException) -> None:
    """Show an error as one line (messages say what was expected and what to do)."""
    from napari.utils.notifications import show_error
    from satdelta.imagery.errors import one_line

    show_error(one_line(exc))


def notify_info(text: str) -> None:
    """Show an informational notification."""
    from napari.utils.notifications import show_info

    show_info(text)
