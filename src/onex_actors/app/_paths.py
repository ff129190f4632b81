"""Where a project's ``contracts/`` and ``config/`` are, wherever a command runs from.

A project root is the nearest directory, at or above a starting point, holding both a
``contracts/`` and a ``config/`` directory. Default paths and the relative paths of a
config file resolve from it, so commands work from any sub-directory of a project.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["from_project_root", "project_root"]


def project_root(start: Path | None = None) -> Path | None:
    """Return the project root at or above ``start`` (default: the current directory)."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "contracts").is_dir() and (candidate / "config").is_dir():
            return candidate
    return None


def from_project_root(relative: Path, start: Path | None = None) -> Path:
    """Return ``relative`` under the project root, or as given outside any project."""
    if relative.is_absolute():
        return relative
    root = project_root(start)
    return relative if root is None else root / relative
