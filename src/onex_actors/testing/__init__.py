"""Test harness: open a whole runtime host inside a test's nursery and drive it."""

from ._collector import EnvelopeCollector as EnvelopeCollector
from ._harness import HostHarness as HostHarness
from ._harness import open_test_host as open_test_host

__all__ = ["EnvelopeCollector", "HostHarness", "open_test_host"]
