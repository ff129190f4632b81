"""The application layer: configuration, wiring, and the runtime host."""

from ._bootstrap import build_bus as build_bus
from ._bootstrap import load_routing_table as load_routing_table
from ._bootstrap import open_runtime_host as open_runtime_host
from ._config import BusSettings as BusSettings
from ._config import DatabaseSettings as DatabaseSettings
from ._config import HostConfig as HostConfig
from ._config import HttpSettings as HttpSettings
from ._config import KafkaSettings as KafkaSettings
from ._config import load_config as load_config
from ._databases import demo_seed_sql as demo_seed_sql
from ._host import RuntimeHost as RuntimeHost

__all__ = [
    "BusSettings",
    "DatabaseSettings",
    "HostConfig",
    "HttpSettings",
    "KafkaSettings",
    "RuntimeHost",
    "build_bus",
    "demo_seed_sql",
    "load_config",
    "load_routing_table",
    "open_runtime_host",
]
