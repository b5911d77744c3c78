"""Start the server: check the host and key, load the model once, run uvicorn (or a background thread)."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from medseg.errors import MedsegError
from medseg.serve.limits import Limits

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def check_host(host: str, api_key: str | None) -> None:
    """Refuse a non-loopback host without an API key, and an empty key."""
    if api_key is not None and len(api_key) < 8:
        raise MedsegError("--api-key must be at least 8 characters")
    if host not in LOCAL_HOSTS and not api_key:
        raise MedsegError(f"--host {host} lets other machines reach the server; give --api-key KEY too "
                          "(or keep the default --host 127.0.0.1)")


def check_port(host: str, port: int) -> None:
    """Refuse a port another program holds, with one line rather than uvicorn's traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise MedsegError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --port") from None


def build(limits: Limits, api_key: str | None = None, model: str | None = None, engine: str = "auto",
          viewer_scan: Any = None, predictor: Any = None, planes: int = 1, refine: bool = True,
          correction_net: bool = True):
    """(app, server): the FastAPI app with the model loaded (and the viewer's scan, if given); ``planes``,
    ``refine`` and ``correction_net`` set every session's (``Server``)."""
    from medseg.serve.app import Server, make_app

    if predictor is None:
        from medseg.predict.predictor import load_predictor
        from medseg.registry import CLICK_MODEL

        # clicks are the server's main work: the click model (its card may hand boxes to another decoder), on numpy
        # arrays (no torch tensors and torch resizing around each decode: the RIDER corrections of
        # benchmarks/bench_serve.py through the client, median 189-193 -> 163-171 ms; server peak 1256-1329 ->
        # 1011-1035 MiB)
        predictor = load_predictor(model or CLICK_MODEL, engine=engine)
    # A correction's band (medseg.predict.correct.depth_from_border) imports scipy.ndimage on first use, 0.15-0.33 s
    # the first correction through the client waited for (py-spy; RIDER after a 3D box: 324-534 ms against about
    # 190 ms warm). A server pays it at start.
    import scipy.ndimage  # noqa: F401

    server = Server(predictor, limits, api_key, planes, refine, correction_net)
    viewer = None
    if viewer_scan is not None:
        from medseg.serve.viewer import Viewer

        viewer = Viewer(server, viewer_scan)
    return make_app(server, viewer), server


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Background:
    """uvicorn serving ``app`` on a thread (tests, benchmarks, ``medseg view``); ``stop()`` ends it."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int | None = None) -> None:
        import uvicorn

        self.host, self.port = host, port or free_port(host)
        self._server = uvicorn.Server(uvicorn.Config(app, host=self.host, port=self.port, log_level="warning",
                                                     lifespan="on"))
        self._server.install_signal_handlers = lambda: None
        self._thread = threading.Thread(target=self._server.run, name="medseg-serve", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> Background:
        self._thread.start()
        end = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > end:
                raise MedsegError(f"the server did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def serve(host: str, port: int, limits: Limits, api_key: str | None = None, model: str | None = None,
          engine: str = "auto", planes: int = 1, refine: bool = True, correction_net: bool = True) -> None:
    """Run until interrupted."""
    import uvicorn

    check_host(host, api_key)
    check_port(host, port)
    app, _ = build(limits, api_key, model, engine, planes=planes, refine=refine, correction_net=correction_net)
    uvicorn.run(app, host=host, port=port, log_level="info")
