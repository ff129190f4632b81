"""The in-process bus: the whole runtime with no broker, for embedding and fast tests."""

from ._bus import InProcessBus as InProcessBus
from ._bus import InProcessConsumer as InProcessConsumer

__all__ = ["InProcessBus", "InProcessConsumer"]
