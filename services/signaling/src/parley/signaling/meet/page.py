"""GET / and GET /static/{name}: the bundled meet page, or a notice when it was not built.

GET / answers 200 in both cases (load balancers and LiveKit tools treat GET / as a health check, as
LiveKit's server answers it); the missing bundle itself answers 503.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC_DIR = Path(__file__).parent / "static"
INDEX = "index.html"
BUNDLE = "meet.js"
NOT_BUILT = "meet page not built: run make dev (or in web/: npm ci && npm run build)"

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".map": "application/json",
    ".txt": "text/plain; charset=utf-8",
}

_NOTICE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Parley</title></head>
<body style="font-family: system-ui, sans-serif; margin: 3rem;">
<h1>Parley</h1><p>{NOT_BUILT}</p></body></html>
"""


class MeetPage:
    def __init__(self, static_dir: Path) -> None:
        self._dir = static_dir

    @property
    def built(self) -> bool:
        return (self._dir / INDEX).is_file() and (self._dir / BUNDLE).is_file()

    async def index(self, _: web.Request) -> web.StreamResponse:
        if not self.built:
            return web.Response(text=_NOTICE, content_type="text/html", headers={"Cache-Control": "no-store"})
        return self._file(self._dir / INDEX)

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        suffix = Path(name).suffix
        if name.startswith(".") or suffix not in _CONTENT_TYPES:
            raise web.HTTPNotFound()
        path = self._dir / name
        if not path.is_file():
            if not self.built:
                raise web.HTTPServiceUnavailable(text=NOT_BUILT)
            raise web.HTTPNotFound()
        return self._file(path)

    @staticmethod
    def _file(path: Path) -> web.FileResponse:
        # no-cache: browsers revalidate (ETag/Last-Modified), so a rebuilt bundle is picked up at once.
        return web.FileResponse(
            path,
            headers={"Content-Type": _CONTENT_TYPES[path.suffix], "Cache-Control": "no-cache"},
        )
