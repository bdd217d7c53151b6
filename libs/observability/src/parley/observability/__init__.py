"""structlog logging, OpenTelemetry tracing and metrics, Prometheus."""
