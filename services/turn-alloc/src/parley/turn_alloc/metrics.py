"""OpenTelemetry instruments of turn-alloc (served on /metrics by the runtime)."""

from __future__ import annotations

from parley.observability import meter

_meter = meter("parley.turn_alloc")

issued = _meter.create_counter(
    "parley.turn.credentials_issued", unit="{credential}", description="TURN credentials handed out"
)
refused = _meter.create_counter(
    "parley.turn.quota_refused", unit="{request}", description="IceServers refused: participant over quota"
)
health_changes = _meter.create_counter(
    "parley.turn.health_changes",
    unit="{change}",
    description="TURN servers turning unhealthy (healthy=false) or healthy again (healthy=true)",
)
