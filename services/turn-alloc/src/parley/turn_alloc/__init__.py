"""TURN credentials for coturn."""
