"""The parley command: dev stack, tokens, rooms."""
