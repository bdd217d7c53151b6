"""Internal wire types (generated from proto/) and LiveKit type re-exports."""
