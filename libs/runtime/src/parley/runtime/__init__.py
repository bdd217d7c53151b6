"""Service process runtime: config, logging, bus, health and /metrics, drain on SIGTERM."""

from parley.runtime.health import HealthServer
from parley.runtime.redis_client import DeadlineRetry, redis_client
from parley.runtime.service import Service, ServiceContext, run_service

__all__ = ["DeadlineRetry", "HealthServer", "Service", "ServiceContext", "redis_client", "run_service"]
