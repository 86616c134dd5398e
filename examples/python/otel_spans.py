"""Send OpenTelemetry GenAI spans to aispend's OTLP endpoint (`/v1/traces`).

An application instrumented with OpenTelemetry (by hand, as here, or by an
instrumentation library that follows the GenAI semantic conventions) only needs its
OTLP/HTTP trace exporter pointed at aispend. Each span carrying `gen_ai.usage.*`
becomes a usage event; the `service.name` becomes the event's endpoint.

    AISPEND_URL=http://127.0.0.1:8080 AISPEND_TOKEN=<an INGEST token bound to a project> \
        python otel_spans.py
"""

import os
import sys

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult


class CheckedExporter(OTLPSpanExporter):
    """The OTLP/HTTP exporter, remembering whether aispend refused a batch."""

    refused = False

    def export(self, spans):
        result = super().export(spans)
        if result is not SpanExportResult.SUCCESS:
            CheckedExporter.refused = True
        return result


aispend_url = os.environ.get("AISPEND_URL", "http://127.0.0.1:8080").rstrip("/")
exporter = CheckedExporter(
    endpoint=aispend_url + "/v1/traces",
    headers={"Authorization": "Bearer " + os.environ["AISPEND_TOKEN"]},
)
provider = TracerProvider(resource=Resource.create({"service.name": "support-bot"}))
provider.add_span_processor(BatchSpanProcessor(exporter))
tracer = provider.get_tracer("aispend-example")

# One request of the application: a plain span (aispend skips it) around two model calls.
with tracer.start_as_current_span("handle-ticket"):
    with tracer.start_as_current_span("chat gpt-4o") as span:
        span.set_attributes(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.response.model": "gpt-4o-2024-08-06",
                # Per the conventions the input count includes the cached part.
                "gen_ai.usage.input_tokens": 1200,
                "gen_ai.usage.cache_read.input_tokens": 800,
                "gen_ai.usage.output_tokens": 150,
            }
        )
    with tracer.start_as_current_span("chat claude-haiku-4-5") as span:
        span.set_attributes(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "anthropic",
                "gen_ai.request.model": "claude-haiku-4-5",
                "gen_ai.usage.input_tokens": 3000,
                "gen_ai.usage.cache_creation.input_tokens": 2000,
                "gen_ai.usage.output_tokens": 220,
                "user.id": "customer-42",
            }
        )

# Export now (an application exports in the background and flushes at exit).
flushed = provider.force_flush(timeout_millis=10_000)
provider.shutdown()
if not flushed or CheckedExporter.refused:
    sys.exit(f"aispend at {aispend_url} did not take the spans (the exporter's message is above)")
print(
    f"sent 3 spans (2 GenAI calls: openai gpt-4o-2024-08-06, anthropic claude-haiku-4-5) to {aispend_url}/v1/traces"
)
