"""OpenTelemetry traces of a host's envelopes, exported over OTLP/HTTP (the ``tracing`` extra).

``open_tracer`` starts the export process (the SDK's OTLP/HTTP exporter, fed the spans
the host records) and yields an ``OtelTracer``, the runtime's ``Tracer``. Imported only
when ``tracing.enabled`` is set: a host without it loads no OpenTelemetry module.
"""

from ._tracer import OtelTracer as OtelTracer
from ._tracer import open_tracer as open_tracer

__all__ = ["OtelTracer", "open_tracer"]
