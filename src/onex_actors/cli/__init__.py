"""Command-line entry points (cyclopts): ``onex`` and ``omninode-runtime-host``."""

from ._app import app as app
from ._app import main as main
from ._host import host_app as host_app
from ._host import host_main as host_main

__all__ = ["app", "host_app", "host_main", "main"]
