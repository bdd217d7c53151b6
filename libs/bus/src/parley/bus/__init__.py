"""The one place that knows NATS: subjects, pub/sub, RPC, JetStream."""
