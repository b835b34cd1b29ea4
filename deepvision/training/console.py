"""What the fit helpers need to know about where their progress output goes (no framework import)."""

from __future__ import annotations

from typing import Any


def is_terminal(stream: Any) -> bool:
    """Whether ``stream`` is an interactive terminal (redrawn progress bars make sense there).

    In a log file, a pipe or a CI job every carriage-return redraw of a bar is kept, so the fit
    helpers print one line per epoch there instead.
    """
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
