"""Authoritative rooms, participants and tracks in Redis."""
