"""Service process runtime: config, logging, bus, health and /metrics, drain on SIGTERM."""

from parley.runtime.health import HealthServer
from parley.runtime.service import Service, ServiceContext, run_service

__all__ = ["HealthServer", "Service", "ServiceContext", "run_service"]
