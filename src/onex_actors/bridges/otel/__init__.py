"""OpenTelemetry traces of a host's envelopes, exported over OTLP/HTTP (the ``tracing`` extra).

``open_tracer`` builds the SDK's tracer provider (a parent-based ratio sampler, a batch
span processor and the OTLP/HTTP exporter) and yields an ``OtelTracer``, the runtime's
``Tracer``. Imported only when ``tracing.enabled`` is set: a host without it loads no
OpenTelemetry module.
"""

from ._tracer import OtelTracer as OtelTracer
from ._tracer import open_tracer as open_tracer

__all__ = ["OtelTracer", "open_tracer"]
