"""Agent workers and jobs."""
