"""OpenTelemetry instruments of the webhook service (served on /metrics by the runtime).

Every instrument carries ``endpoint`` (a short hash of the URL, so no secret in a query
string leaks into metrics); the mapping to URLs is logged at start.
"""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry.metrics import CallbackOptions, Observation

from parley.observability import meter

_meter = meter("parley.webhook")

queued = _meter.create_up_down_counter(
    "parley.webhook.queued", unit="{event}", description="Events taken from the stream, not yet settled"
)
delivered = _meter.create_counter(
    "parley.webhook.delivered", unit="{event}", description="Events the endpoint answered with 2xx"
)
retried = _meter.create_counter(
    "parley.webhook.retried", unit="{attempt}", description="Failed attempts that will be retried"
)
expired = _meter.create_counter(
    "parley.webhook.expired",
    unit="{event}",
    description="Events given up after webhook.retention (each one logged)",
)
skipped = _meter.create_counter(
    "parley.webhook.skipped", unit="{event}", description="Internal room events that are not webhooks"
)
latency = _meter.create_histogram(
    "parley.webhook.delivery_latency", unit="s", description="From the event's creation to the 2xx answer"
)

_backlog: dict[tuple[str, int], int] = {}


def set_backlog(endpoint: str, partition: int, pending: int) -> None:
    """Events stored but not yet handed to this consumer (from JetStream's delivery metadata)."""
    _backlog[(endpoint, partition)] = pending


def forget_backlog(endpoint: str, partition: int) -> None:
    _backlog.pop((endpoint, partition), None)


def _observe_backlog(_: CallbackOptions) -> Iterable[Observation]:
    totals: dict[str, int] = {}
    for (endpoint, _partition), pending in list(_backlog.items()):
        totals[endpoint] = totals.get(endpoint, 0) + pending
    return [Observation(value, {"endpoint": endpoint}) for endpoint, value in totals.items()]


_meter.create_observable_gauge(
    "parley.webhook.backlog",
    callbacks=[_observe_backlog],
    unit="{event}",
    description="Events waiting in JetStream for this instance's partitions",
)
