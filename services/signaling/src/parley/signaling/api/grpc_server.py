"""gRPC API: LiveKit's services and messages via generic handlers, with server reflection."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import descriptor_pool
from google.protobuf.message import Message
from grpc_reflection.v1alpha import reflection

from parley.auth import TokenVerifier, bearer_token
from parley.observability import get_logger
from parley.signaling.api.errors import to_api_error
from parley.signaling.api.registry import ApiMethod, Registry

log = get_logger("parley.signaling.api.grpc")


def _unary(method: ApiMethod, verifier: TokenVerifier) -> grpc.RpcMethodHandler:
    async def call(request: Message, context: grpc.aio.ServicerContext[Any, Any]) -> Message:
        metadata = {k.lower(): v for k, v in context.invocation_metadata() or ()}
        try:
            auth = metadata.get("authorization")
            claims = verifier.verify(bearer_token(auth if isinstance(auth, str) else None))
            return await method.handler(request, claims)
        except Exception as exc:
            error = to_api_error(exc)
            if error.status >= 500:
                log.warning("api call failed", method=method.path, code=error.code, error=error.message)
            await context.abort(error.grpc_status, error.message)
            raise  # unreachable: abort raises

    return grpc.unary_unary_rpc_method_handler(
        call,
        request_deserializer=method.request_type.FromString,
        response_serializer=lambda m: m.SerializeToString(),
    )


class GrpcApi:
    def __init__(self, registry: Registry, verifier: TokenVerifier) -> None:
        self._registry = registry
        self._verifier = verifier
        self._server: grpc.aio.Server | None = None
        self.port = 0

    async def start(self, hosts: list[str], port: int) -> int:
        server = grpc.aio.server()
        names: list[str] = []
        for service, methods in self._registry.services().items():
            handlers = {m.name: _unary(m, self._verifier) for m in methods}
            server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
            names.append(service)
        pool = descriptor_pool.Default()
        described = [n for n in names if _known(pool, n)]
        reflection.enable_server_reflection([*described, reflection.SERVICE_NAME], server)
        bound = port
        for host in hosts:
            bound = server.add_insecure_port(f"{host}:{bound}")
        await server.start()
        self._server = server
        self.port = bound
        log.info("grpc api listening", port=bound, services=names)
        return bound

    async def aclose(self) -> None:
        if self._server is not None:
            await self._server.stop(grace=1.0)
            self._server = None


def _known(pool: descriptor_pool.DescriptorPool, service: str) -> bool:
    try:
        pool.FindServiceByName(service)
        return True
    except KeyError:
        return False
