"""Print the import names of every workspace member (for mypy -p)."""

from __future__ import annotations

import tomllib
from pathlib import Path

root = Path(__file__).resolve().parents[1]
names = []
for pyproject in sorted(
    p for top in ("libs", "services", "apps") for p in root.glob(f"{top}/*/pyproject.toml")
):
    data = tomllib.loads(pyproject.read_text())
    names.append(data["tool"]["uv"]["build-backend"]["module-name"])
print(" ".join(names))
