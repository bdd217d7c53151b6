"""pytest fixtures: real nats-server, real Valkey, the whole stack."""
