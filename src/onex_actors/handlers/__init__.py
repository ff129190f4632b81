"""Handlers: the adapters of the ``Handler`` port, one module per family."""

from ._allowlist import HostAllowlist as HostAllowlist
from ._db import DbHandler as DbHandler
from ._db import json_safe as json_safe
from ._http import HttpHandler as HttpHandler
from ._local import LocalHandler as LocalHandler

__all__ = ["DbHandler", "HostAllowlist", "HttpHandler", "LocalHandler", "json_safe"]
