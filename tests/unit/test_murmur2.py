"""``home_partition`` is Kafka's default partitioner, byte for byte (kafka-python's as oracle)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from onex_actors.core import home_partition, murmur2


@given(st.binary(max_size=64), st.integers(1, 64))
def test_the_same_hash_and_partition_as_kafka_python(key: bytes, partitions: int) -> None:
    assert murmur2(key) == kafka_python_murmur2(key)
    assert home_partition(key, partitions) == (kafka_python_murmur2(key) & 0x7FFFFFFF) % partitions


def test_known_values_of_the_java_client() -> None:
    # the values the Java client's own murmur2 test expects (here unsigned)
    assert murmur2(b"21") & 0xFFFFFFFF == (-973932308) & 0xFFFFFFFF
    assert murmur2(b"foobar") & 0xFFFFFFFF == (-790332482) & 0xFFFFFFFF
