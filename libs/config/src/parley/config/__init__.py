"""Typed, layered configuration (defaults < YAML < env < CLI)."""
