"""The nnInteractive v2 remote protocol on a FastAPI router (endpoints as in the client's ``_protocol.py``).

JSON bodies for prompts, packed arrays (``medseg.serve.wire``) with an ``X-Meta`` JSON header for
images and masks. A prompt answers with ``X-Meta: {"ran_prediction", "bbox", ...}`` and, when voxels
changed, the changed sub-block of the target buffer as a packed array.
"""

from __future__ import annotations

import json
import time

import numpy as np
from fastapi import APIRouter, Request, Response

from medseg import __version__
from medseg.serve.limits import IMAGE_DTYPES, MASK_DTYPES, MIB
from medseg.serve.target import Refused, Target
from medseg.serve.wire import WireError, pack, unpack

META = "X-Meta"
LEASE = "X-Lease-Token"
OCTET = "application/octet-stream"

CAPABILITIES = {
    # What medseg really does; scribble and lasso are refused (400) rather than approximated.
    "supported_interactions": {"points": True, "bbox2d": True, "bbox3d": True, "scribble": False, "lasso": False},
    "channel_mapping": {},  # medseg has no nnInteractive interaction channels
    "num_interaction_channels": 0,
    "supports_initial_label": True,
    "supports_zero_shot_label_refinement": True,
    "preferred_scribble_thickness": None,
    "interaction_decay": None,
    "patch_size": None,
    "do_autozoom": False,
    "supports_undo": True,
    "inference_session_version": f"medseg-{__version__}",
    "license": "Apache-2.0",
    "server": "medseg",
}


def answer(result: tuple[list[list[int]], np.ndarray] | None, ran: bool) -> Response:
    """A prompt's reply: meta header plus the packed changed block (empty body when nothing changed)."""
    if not ran or result is None:
        meta = {"ran_prediction": bool(ran), "bbox": None}
        return Response(b"", media_type=OCTET, headers={META: json.dumps(meta)})
    bbox, block = result
    meta = {"ran_prediction": True, "bbox": bbox, "dtype": str(block.dtype), "shape": list(block.shape)}
    return Response(pack(block), media_type=OCTET, headers={META: json.dumps(meta)})


def meta_of(request: Request) -> dict:
    raw = request.headers.get(META)
    if raw is None:
        return {}
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise Refused(f"{META} header is not JSON: {exc.msg}") from None
    if not isinstance(meta, dict):
        raise Refused(f"{META} header must be a JSON object")
    return meta


def flag(payload: dict, name: str, default: bool | None = None) -> bool:
    value = payload.get(name, default)
    if not isinstance(value, bool):
        raise Refused(f"'{name}' must be true or false; got {value!r:.40}" if name in payload
                      else f"'{name}' is missing")
    return value


def router(server) -> APIRouter:
    """Routes on ``server`` (``medseg.serve.app.Server``: leases, limits, body readers, threadpool)."""
    r = APIRouter()
    lim = server.limits

    @r.get("/healthz")
    async def healthz() -> dict:
        return {"ok": True}

    @r.get("/capabilities", dependencies=[server.auth])
    async def capabilities() -> dict:
        return CAPABILITIES

    @r.post("/claim", dependencies=[server.auth])
    async def claim() -> dict:
        lease = await server.run(server.leases.claim)
        return {"lease_token": lease.token, "idle_timeout_seconds": lim.idle_seconds,
                "liveness_timeout_seconds": lim.liveness_seconds, "max_sessions": lim.max_sessions}

    @r.post("/release", dependencies=[server.auth])
    async def release(request: Request) -> dict:
        server.leases.release(request.headers.get(LEASE))
        return {"released": True}

    @r.post("/heartbeat", dependencies=[server.auth])
    async def heartbeat(request: Request) -> dict:
        lease = server.leases.get(request.headers.get(LEASE))
        return {"remaining_seconds": server.leases.remaining(lease)}

    @r.get("/lease_status", dependencies=[server.auth])
    async def lease_status(request: Request) -> dict:
        lease = server.leases.get(request.headers.get(LEASE), touch=False)
        return {"remaining_seconds": server.leases.remaining(lease), "idle_timeout_seconds": lim.idle_seconds}

    async def locked(request: Request, fn):
        """fn(target) on a worker thread under the lease's lock; marks the lease active."""
        lease = server.leases.get(request.headers.get(LEASE), active=True)

        def call():
            with lease.lock:
                start = time.perf_counter()
                result = fn(lease.state)
            if isinstance(result, Response):  # what the prompt cost on the server, for clients and benchmarks
                result.headers["Server-Timing"] = f"compute;dur={(time.perf_counter() - start) * 1000:.1f}"
            return result

        return await server.run(call)

    @r.post("/set_image", dependencies=[server.auth])
    async def set_image(request: Request) -> dict:
        server.leases.get(request.headers.get(LEASE))  # 410 before reading a large body
        meta = meta_of(request)
        body = await server.body(request)
        image = await server.run(lambda: unpack(body, "image", IMAGE_DTYPES, (4,), lim.max_voxels,
                                                int(lim.max_array_mib * MIB)))
        props = meta.get("image_properties") or {}
        shape = await locked(request, lambda t: t.set_image(image, props))
        return {"original_image_shape": shape}

    @r.post("/set_target_buffer", dependencies=[server.auth])
    async def set_target_buffer(request: Request) -> dict:
        payload = await server.json(request)
        shape, dtype = payload.get("shape"), payload.get("dtype")
        if not isinstance(shape, list) or len(shape) != 3 or not all(
                isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
            raise Refused(f"shape must be 3 positive integers (z, y, x); got {shape!r:.80}")
        try:
            dt = np.dtype(dtype) if isinstance(dtype, str) else None
        except TypeError:
            dt = None
        if dt is None or dt not in MASK_DTYPES:
            raise Refused(f"target buffer dtype {dtype!r:.40} is not accepted; use one of "
                          f"{', '.join(sorted(map(str, MASK_DTYPES)))}")
        voxels = shape[0] * shape[1] * shape[2]
        if voxels > lim.max_voxels or voxels * dt.itemsize > lim.max_array_mib * MIB:
            raise WireError(f"target buffer {shape} of {dt} exceeds the server limits", 413)
        await locked(request, lambda t: t.set_buffer(shape, dt))
        return {}

    @r.post("/set_do_autozoom", dependencies=[server.auth])
    async def set_do_autozoom(request: Request) -> dict:
        payload = await server.json(request)
        flag(payload, "do_autozoom")  # accepted; medseg segments slices at full resolution, no zoom
        await locked(request, lambda t: None)
        return {}

    @r.post("/reset_interactions", dependencies=[server.auth])
    async def reset_interactions(request: Request) -> dict:
        await locked(request, lambda t: t.reset())
        return {}

    def prompt(fn):
        def run(t: Target, run_prediction: bool):
            fn(t)
            return answer(t.sync(), True) if run_prediction else answer(None, False)
        return run

    @r.post("/add_bbox_interaction", dependencies=[server.auth])
    async def add_bbox(request: Request) -> Response:
        p = await server.json(request)
        positive, run = flag(p, "include_interaction"), flag(p, "run_prediction", True)
        return await locked(request, lambda t: prompt(lambda t: t.add_box(p.get("bbox_coords"), positive))(t, run))

    @r.post("/add_point_interaction", dependencies=[server.auth])
    async def add_point(request: Request) -> Response:
        p = await server.json(request)
        positive, run = flag(p, "include_interaction"), flag(p, "run_prediction", True)
        return await locked(request,
                            lambda t: prompt(lambda t: t.add_point(p.get("coordinates"), positive))(t, run))

    async def unsupported(request: Request, kind: str) -> Response:
        server.leases.get(request.headers.get(LEASE))
        raise Refused(f"{kind} interactions are not supported by medseg (see /capabilities); "
                      "use points, boxes or an initial segmentation")

    @r.post("/add_scribble_interaction", dependencies=[server.auth])
    async def add_scribble(request: Request) -> Response:
        return await unsupported(request, "scribble")

    @r.post("/add_lasso_interaction", dependencies=[server.auth])
    async def add_lasso(request: Request) -> Response:
        return await unsupported(request, "lasso")

    @r.post("/add_initial_seg_interaction", dependencies=[server.auth])
    async def add_initial_seg(request: Request) -> Response:
        server.leases.get(request.headers.get(LEASE))
        meta = meta_of(request)
        run = flag(meta, "run_prediction", False)
        body = await server.body(request)
        seg = await server.run(lambda: unpack(body, "initial segmentation", MASK_DTYPES, (3,), lim.max_voxels,
                                              int(lim.max_array_mib * MIB)))

        def do(t: Target) -> Response:
            t.add_initial_seg(seg)
            # the client wrote initial_seg into its buffer itself; nothing changed beyond that
            return answer(None, run)

        return await locked(request, do)

    @r.post("/undo", dependencies=[server.auth])
    async def undo(request: Request) -> Response:
        def do(t: Target) -> Response:
            return answer(t.sync(), True) if t.undo() else answer(None, False)
        return await locked(request, do)

    @r.post("/predict", dependencies=[server.auth])
    async def predict(request: Request) -> Response:
        await server.json(request)
        def do(t: Target) -> Response:
            if not t.pending:
                return answer(None, False)
            t._ready()
            return answer(t.sync(), True)
        return await locked(request, do)

    return r
