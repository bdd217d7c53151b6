"""Structured logs, OpenTelemetry tracing and metrics with a Prometheus endpoint."""

from parley.observability.log import bind_context, configure_logging, get_logger, log_fields
from parley.observability.metrics import configure_metrics, meter, prometheus_text
from parley.observability.tasks import TaskSet, cancel_and_wait, wait_event
from parley.observability.tracing import configure_tracing, tracer

__all__ = [
    "TaskSet",
    "bind_context",
    "cancel_and_wait",
    "configure_logging",
    "configure_metrics",
    "configure_tracing",
    "get_logger",
    "log_fields",
    "meter",
    "prometheus_text",
    "tracer",
    "wait_event",
]
