"""The application layer: configuration, wiring, and the runtime host."""

from ._bootstrap import ensure_local_broker as ensure_local_broker
from ._bootstrap import group_protocol_for as group_protocol_for
from ._bootstrap import load_routing_table as load_routing_table
from ._bootstrap import open_bus as open_bus
from ._bootstrap import open_runtime_host as open_runtime_host
from ._config import BusSettings as BusSettings
from ._config import DatabaseSettings as DatabaseSettings
from ._config import DeliverySettings as DeliverySettings
from ._config import HostConfig as HostConfig
from ._config import HttpSettings as HttpSettings
from ._config import KafkaSettings as KafkaSettings
from ._config import load_config as load_config
from ._databases import demo_seed_sql as demo_seed_sql
from ._embedded import EmbeddedHost as EmbeddedHost
from ._embedded import EnvelopeCollector as EnvelopeCollector
from ._embedded import open_embedded_host as open_embedded_host
from ._gc import raise_gc_threshold as raise_gc_threshold
from ._host import RuntimeHost as RuntimeHost
from ._kafka_clients import check_kafka_security as check_kafka_security
from ._kafka_clients import kafka_client_config as kafka_client_config
from ._kafka_clients import librdkafka_config as librdkafka_config
from ._paths import from_project_root as from_project_root
from ._paths import project_root as project_root
from ._pure_handlers import import_function as import_function

__all__ = [
    "BusSettings",
    "DatabaseSettings",
    "DeliverySettings",
    "EmbeddedHost",
    "EnvelopeCollector",
    "HostConfig",
    "HttpSettings",
    "KafkaSettings",
    "RuntimeHost",
    "check_kafka_security",
    "demo_seed_sql",
    "ensure_local_broker",
    "from_project_root",
    "group_protocol_for",
    "import_function",
    "kafka_client_config",
    "librdkafka_config",
    "load_config",
    "load_routing_table",
    "open_bus",
    "open_embedded_host",
    "open_runtime_host",
    "project_root",
    "raise_gc_threshold",
]
