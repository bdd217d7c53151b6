"""LiveKit-compatible access tokens."""
