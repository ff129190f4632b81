"""Handlers: the adapters of the ``Handler`` port, one module per family."""

from ._allowlist import HostAllowlist as HostAllowlist
from ._http import HttpHandler as HttpHandler
from ._local import LocalHandler as LocalHandler

__all__ = ["HostAllowlist", "HttpHandler", "LocalHandler"]
