"""Following result, dead-letter and log topics: the embedding API's collector.

Kept here for the tests and benchmarks that import it from ``onex_actors.testing``.
"""

from onex_actors.app import EnvelopeCollector

__all__ = ["EnvelopeCollector"]
