"""Handlers: the adapters of the ``Handler`` port, one module per family."""

from ._allowlist import HostAllowlist as HostAllowlist
from ._compute import ComputeHandler as ComputeHandler
from ._compute import PayloadFunction as PayloadFunction
from ._db import DbHandler as DbHandler
from ._db import json_safe as json_safe
from ._embedding import EmbeddingHandler as EmbeddingHandler
from ._http import HttpHandler as HttpHandler
from ._http_clients import HttpClients as HttpClients
from ._llm import LlmHandler as LlmHandler
from ._llm import render_messages as render_messages
from ._local import LocalHandler as LocalHandler
from ._model_api import LocalServer as LocalServer
from ._model_api import ModelApi as ModelApi
from ._model_api import ModelEndpoint as ModelEndpoint
from ._recorded import RecordedHandler as RecordedHandler
from ._vector import VectorHandler as VectorHandler
from ._vector import VectorStore as VectorStore
from ._vector import point_id as point_id

__all__ = [
    "ComputeHandler",
    "DbHandler",
    "EmbeddingHandler",
    "HostAllowlist",
    "HttpClients",
    "HttpHandler",
    "LlmHandler",
    "LocalHandler",
    "LocalServer",
    "ModelApi",
    "ModelEndpoint",
    "PayloadFunction",
    "RecordedHandler",
    "VectorHandler",
    "VectorStore",
    "json_safe",
    "point_id",
    "render_messages",
]
