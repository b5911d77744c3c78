"""The FastAPI application: leases, limits, authentication and error answers around the routers.

Every refusal is a 4xx with ``{"detail": message}``: 400 bad request, 401 wrong or missing API key,
410 unknown or expired lease, 413 too large, 503 server full. A bug still answers (500, logged) and
the server keeps running.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from medseg.errors import MedsegError
from medseg.serve.cache import Store
from medseg.serve.idle import COMPUTE
from medseg.serve.leases import Full, Gone, Leases
from medseg.serve.limits import MIB, Limits
from medseg.serve.target import ServedSession, Target
from medseg.serve.wire import WireError

log = logging.getLogger("medseg.serve")


class Server:
    """What the routes share.

    Args:
        predictor: a loaded ``medseg.predict.predictor.Predictor``; its engine is shared by all sessions.
        limits: sizes, sessions and time-outs.
        api_key: required as ``Authorization: Bearer KEY`` on every route but /healthz when given.
        planes: every session's ``VolumeSession.planes`` (1, or 3: new objects along all three axes on
            near-isotropic volumes, about 3x the time).
        refine: every session's ``VolumeSession.refine`` (new 3D objects' borders drawn again by the scan's edges,
            ``medseg.predict.refine``; False keeps the model's).
        correction_net: False: every session's ``VolumeSession.correction_net`` is None (refused negative clicks
            answered by the rules' fallback, not medseg's 3D correction network).
    """

    def __init__(self, predictor: Any, limits: Limits, api_key: str | None = None, planes: int = 1,
                 refine: bool = True, correction_net: bool = True) -> None:
        if planes not in (1, 3):
            raise MedsegError(f"planes must be 1 or 3, not {planes!r}")
        self.predictor = predictor
        self.planes = planes
        self.refine = refine
        self.correction_net = correction_net
        self.limits = limits
        self.api_key = api_key
        self.store = Store(limits.cache_mib)
        self.leases = Leases(self.new_target, limits.max_sessions, limits.idle_seconds, limits.liveness_seconds,
                             drop=lambda target: COMPUTE.idle.want(target.session, []))
        self.auth = Depends(self._check_key)

    def new_session(self) -> ServedSession:
        session = ServedSession(self.predictor.twin(), self.store, self.limits.ahead)
        session.planes = self.planes
        session.refine = self.refine
        if not self.correction_net:
            session.correction_net = None
        return session

    def new_target(self) -> Target:
        return Target(self.new_session())

    def _check_key(self, request: Request) -> None:
        if self.api_key is None:
            return
        given = request.headers.get("authorization", "")
        if not given.startswith("Bearer ") or not hmac.compare_digest(given[7:].encode(), self.api_key.encode()):
            raise HTTPException(401, "missing or wrong API key; send 'Authorization: Bearer KEY'")

    async def run(self, fn: Callable[[], Any]) -> Any:
        return await run_in_threadpool(fn)

    async def body(self, request: Request) -> bytes:
        """The request body, refused (413) as soon as it passes the limit, before it is all read."""
        limit = int(self.limits.max_body_mib * MIB)
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise WireError(f"Content-Length {declared!r:.30} is not a number")
            if int(declared) > limit:
                raise WireError(f"request body of {int(declared) / MIB:.0f} MiB exceeds the limit of "
                                f"{self.limits.max_body_mib:g} MiB", 413)
        parts, size = [], 0
        async for part in request.stream():
            size += len(part)
            if size > limit:
                raise WireError(f"request body exceeds the limit of {self.limits.max_body_mib:g} MiB", 413)
            parts.append(part)
        return b"".join(parts)

    async def json(self, request: Request) -> dict:
        body = await self.body(request)
        if len(body) > 1 * MIB:
            raise WireError("JSON body larger than 1 MiB", 413)
        try:
            payload = json.loads(body or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise MedsegError(f"body is not JSON: {getattr(exc, 'msg', exc)}") from None
        if not isinstance(payload, dict):
            raise MedsegError("body must be a JSON object")
        return payload


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status, headers=headers)


def make_app(server: Server, viewer: Any = None, sweep_seconds: float = 5.0) -> FastAPI:
    """The app: the nnInteractive protocol routes, plus the browser page's routes when ``viewer`` is given."""
    from medseg.serve.protocol import router

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        async def reap() -> None:
            while True:
                await asyncio.sleep(sweep_seconds)
                server.leases.sweep()

        task = asyncio.create_task(reap())
        try:
            yield
        finally:
            task.cancel()

    app = FastAPI(title="medseg serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.server = server
    app.state.viewer = viewer
    app.include_router(router(server))
    if viewer is not None:
        app.include_router(viewer.router())

    @app.exception_handler(MedsegError)
    async def refused(_req: Request, exc: MedsegError) -> JSONResponse:
        return _error(400, str(exc))

    @app.exception_handler(WireError)
    async def wire(_req: Request, exc: WireError) -> JSONResponse:
        return _error(exc.status, str(exc))

    @app.exception_handler(Gone)
    async def gone(_req: Request, exc: Gone) -> JSONResponse:
        return _error(410, str(exc))

    @app.exception_handler(Full)
    async def full(_req: Request, exc: Full) -> JSONResponse:
        return _error(503, str(exc), {"Retry-After": "10"})

    @app.exception_handler(Exception)
    async def bug(_req: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return _error(500, f"internal error ({type(exc).__name__}); the server keeps running")

    return app
