"""Service process runtime: config, logging, health, metrics, drain on SIGTERM."""
