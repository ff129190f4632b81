"""Handlers: the adapters of the ``Handler`` port, one module per family."""

from ._allowlist import HostAllowlist as HostAllowlist
from ._db import DbHandler as DbHandler
from ._db import json_safe as json_safe
from ._http import HttpHandler as HttpHandler
from ._local import LocalHandler as LocalHandler
from ._recorded import RecordedHandler as RecordedHandler

__all__ = [
    "DbHandler",
    "HostAllowlist",
    "HttpHandler",
    "LocalHandler",
    "RecordedHandler",
    "json_safe",
]
