"""OpenTelemetry metrics exported in Prometheus text format."""

from __future__ import annotations

from opentelemetry import metrics
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from prometheus_client import REGISTRY, generate_latest

_provider: MeterProvider | None = None


def configure_metrics(service: str, node_id: str) -> None:
    """Install a MeterProvider whose readings /metrics serves."""
    global _provider
    if _provider is not None:
        return
    resource = Resource.create({"service.name": f"parley-{service}", "service.instance.id": node_id})
    _provider = MeterProvider(resource=resource, metric_readers=[PrometheusMetricReader()])
    metrics.set_meter_provider(_provider)


def meter(name: str) -> metrics.Meter:
    return metrics.get_meter(name)


def prometheus_text() -> bytes:
    """The current metrics in Prometheus exposition format."""
    data: bytes = generate_latest(REGISTRY)
    return data
