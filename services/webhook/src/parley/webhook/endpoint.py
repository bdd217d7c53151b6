"""One receiving URL: its stable id, its HTTP client and one signed POST."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp

from parley.webhook import wire
from parley.webhook.errors import DeliveryFailed


def endpoint_id(url: str) -> str:
    """Stable short id of a URL: names its durable consumers and labels its metrics."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


@dataclass(slots=True)
class Endpoint:
    url: str
    api_key: str
    api_secret: str
    request_timeout: float
    max_connections: int
    id: str = ""
    _session: aiohttp.ClientSession | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.id = endpoint_id(self.url)

    @property
    def display(self) -> str:
        """Scheme, host and path: never the query string, which may hold a secret."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}{parts.path}"

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.max_connections),
                timeout=aiohttp.ClientTimeout(total=self.request_timeout),
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def post(self, event: wire.EncodedEvent) -> int:
        """POST once; return the status on 2xx, raise DeliveryFailed otherwise.

        Every non-2xx answer is retried (not only 5xx/429 as LiveKit does): a 401 or 404 is
        usually a receiver being deployed or reconfigured, and nothing may be dropped while
        an endpoint recovers.
        """
        headers = wire.headers(event.body, self.api_key, self.api_secret)
        try:
            async with self._client().post(self.url, data=event.body, headers=headers) as resp:
                await resp.read()
                if 200 <= resp.status < 300:
                    return resp.status
                raise DeliveryFailed(f"HTTP {resp.status}", resp.status)
        except DeliveryFailed:
            raise
        except TimeoutError as exc:
            raise DeliveryFailed(f"no answer within {self.request_timeout}s") from exc
        except aiohttp.ClientError as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
