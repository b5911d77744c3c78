"""The browser page's JSON API (``medseg view SCAN``): one scan, named objects, prompts in world mm.

The page (static/index.html, NiiVue) sends positions in NiiVue's world millimetres (RAS); they are
turned into voxel indices here with the scan's own geometry (ITK's LPS), so the page never needs to
know the voxel order. The label map goes back as raw (z, y, x) uint8 bytes, on the scan's grid.
Save answers with a file (NIfTI / NRRD / MHA with the scan's exact geometry, or a DICOM SEG that
references the source series for DICOM input); no route opens a path the page names.
"""

from __future__ import annotations

import importlib.util
import tempfile
import threading
from pathlib import Path

import numpy as np
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from medseg.errors import MedsegError
from medseg.io.image import Image
from medseg.predict.planes import near_isotropic
from medseg.serve import niivue
from medseg.serve.idle import COMPUTE

STATIC = Path(__file__).parent / "static"
PAGES = {"/": ("index.html", "text/html"), "/viewer.js": ("viewer.js", "text/javascript"),
         "/viewer.css": ("viewer.css", "text/css")}
FORMATS = {"nii.gz": ".nii.gz", "nrrd": ".nrrd", "mha": ".mha", "dcm": ".dcm"}
TEXT_MISSING = "text prompts are not available in this medseg (no text module installed)"
TEXT_NO_RAPIDFUZZ = "text prompts need rapidfuzz: pip install 'medseg[text]'"


def text_problem() -> str | None:
    """Why text prompts cannot run here (one line), or None when ``medseg.text`` and its extra import."""
    if importlib.util.find_spec("medseg.text") is None:
        return TEXT_MISSING
    if importlib.util.find_spec("rapidfuzz") is None:
        return TEXT_NO_RAPIDFUZZ
    return None


def _finite3(values: object, name: str) -> np.ndarray:
    if not isinstance(values, list) or len(values) < 3 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values[:3]):
        raise MedsegError(f"{name} must be 3 numbers (world mm); got {values!r:.60}")
    out = np.asarray(values[:3], float)
    if not np.isfinite(out).all():
        raise MedsegError(f"{name} {values!r:.60} is not inside the image")
    return out


class Viewer:
    """One scan on one ServedSession, with object names.

    Args:
        server: the ``medseg.serve.app.Server`` (its model, engine and embedding cache are shared).
        scan: the scan, a 3D ``Image`` read by the command line (``medseg view SCAN``).
    """

    def __init__(self, server, scan: Image) -> None:
        if not scan.is_volume:
            raise MedsegError("medseg view needs a 3D scan (a volume file or a DICOM series folder)")
        self.server = server
        self.scan = scan
        self.session = server.new_session()
        with COMPUTE:
            self.session.set_volume(scan)
        self.names: dict[int, str] = {}
        self.lock = threading.Lock()
        self._nifti: bytes | None = None
        g = scan.geometry
        self._to_world = np.asarray(g.direction, float).reshape(3, 3) @ np.diag(g.spacing)
        self._origin = np.asarray(g.origin, float)
        self.warming = self._warm_atlas()

    def _warm_atlas(self) -> threading.Thread | None:
        """On a scan the atlas route may serve (a 3D volume, not CT), register the atlas in the background from the
        start, so that neither the first click on a brain structure nor the first name waits for it (5-20 s on 2
        cores); it holds no compute lock, and a prompt that needs it meanwhile waits for this registration rather
        than making its own. Returns the thread, or None when there is nothing to warm."""
        if text_problem() is not None:
            return None
        from medseg.text import pointed
        from medseg.text.session import session_router

        if not pointed.might_serve(self.scan):
            return None
        try:
            router = session_router(self.session)
        except MedsegError:  # the atlases are not fetched: text prompts say so when asked
            return None
        # not a daemon: a registration still inside ITK's C++ code when the interpreter shuts down aborted the process
        # ("FATAL: exception not rethrown", exit 134); the interpreter waits for it instead (medseg view says so)
        thread = threading.Thread(target=pointed.warm, args=(router, self.scan), name="medseg-atlas")
        thread.start()
        return thread

    @property
    def is_dicom(self) -> bool:
        return self.scan.path is not None and Path(self.scan.path).is_dir()

    def voxel(self, mm_ras: np.ndarray) -> tuple[int, int, int]:
        """World RAS mm -> (x, y, z) voxel index; MedsegError outside the scan."""
        lps = mm_ras * np.array([-1.0, -1.0, 1.0])
        x, y, z = np.rint(np.linalg.solve(self._to_world, lps - self._origin)).astype(int)
        depth, h, w = self.session.shape
        if not (0 <= x < w and 0 <= y < h and 0 <= z < depth):
            raise MedsegError(f"({x}, {y}, {z}) lies outside the scan ({w} x {h} x {depth} voxels)")
        return int(x), int(y), int(z)

    def world(self, zyx: np.ndarray) -> list[float]:
        """(z, y, x) voxel position -> world RAS mm (the inverse of :meth:`voxel`)."""
        lps = self._origin + self._to_world @ np.asarray(zyx, float)[::-1]
        return (lps * np.array([-1.0, -1.0, 1.0])).tolist()

    def objects(self) -> list[dict]:
        return [{"label": o.label, "name": self.names.get(o.label) or o.name or f"object {o.label}",
                 "voxels": int(sum(int(m.sum()) for m in o.masks.values()))} for o in self.session.state.objects]

    # ----- actions (under the viewer's lock and the compute lock) ------------------------------------
    def point(self, p: dict) -> int:
        x, y, z = self.voxel(_finite3(p.get("mm"), "mm"))
        positive, new = p.get("positive", True), p.get("new", False)
        obj = p.get("object")
        if not isinstance(positive, bool) or not isinstance(new, bool):
            raise MedsegError("'positive' and 'new' must be true or false")
        if obj is not None and (not isinstance(obj, int) or isinstance(obj, bool)):
            raise MedsegError(f"'object' must be a label number; got {obj!r:.30}")
        return self.session.add_point(x, y, z, positive=positive, obj=obj, new_object=new)

    def box(self, p: dict) -> int:
        (xa, ya, za), (xb, yb, zb) = (self.voxel(_finite3(p.get(k), k)) for k in ("a", "b"))
        x0, x1, y0, y1, z0, z1 = min(xa, xb), max(xa, xb), min(ya, yb), max(ya, yb), min(za, zb), max(za, zb)
        if p.get("three_d"):
            return self.session.add_box3d(x0, y0, z0, x1, y1, z1)
        if z0 != z1:
            raise MedsegError("draw 2D boxes on the axial view (or use the 3D box tool)")
        if x1 - x0 < 2 or y1 - y0 < 2:
            raise MedsegError("the box is too small; drag further")
        return self.session.add_box(z0, (x0, y0, x1, y1))

    def set_planes(self, p: dict) -> None:
        """New objects along one axis or three (``VolumeSession.planes``); three need near-isotropic voxels."""
        value = p.get("planes")
        if value not in (1, 3) or isinstance(value, bool):
            raise MedsegError(f"'planes' must be 1 or 3, not {value!r:.20}")
        if value == 3 and not near_isotropic(self.scan.geometry.spacing):
            spacing = " x ".join(f"{v:g}" for v in self.scan.geometry.spacing)
            raise MedsegError(f"three axes need near-isotropic voxels; this scan's are {spacing} mm")
        self.session.planes = value

    def text(self, p: dict) -> int:
        """A named structure as a new object (``VolumeSession.add_text``); the first name on a scan registers
        the atlas (about a minute), later ones reuse it."""
        problem = text_problem()
        if problem:
            raise MedsegError(problem)
        text = p.get("text")
        if not isinstance(text, str) or not text.strip():
            raise MedsegError("'text' must name a structure, e.g. \"left hippocampus\"")
        label = self.session.add_text(text.strip())  # the registration is cached by prepare_text
        self.names[label] = next(o.name for o in self.session.state.objects if o.label == label)
        return label

    def prepare_text(self, p: dict) -> None:
        """The slow part of a text prompt, which needs no model: the route's registration (cached per scan),
        run before the compute lock is taken so that other sessions' prompts are not held up by it."""
        from medseg.text.session import session_router

        text = p.get("text")
        if text_problem() or not isinstance(text, str) or not text.strip():
            return  # text() gives the message
        route, resolved = session_router(self.session).resolve(self.session.image, text.strip())
        route.prior(self.session.image, resolved)

    def structures(self) -> dict:
        """The names a text prompt can ask for on this scan (no registration): ``{"names", "groups", "routes"}``."""
        problem = text_problem()
        if problem:
            raise MedsegError(problem)
        from medseg.text.routes import Router

        if self.session.text_router is None:
            self.session.text_router = Router()
        found = self.session.text_router.structures(self.scan)
        return {"routes": [route for route, _, _ in found], "names": sorted({n for _, ns, _ in found for n in ns}),
                "groups": sorted({g for _, _, gs in found for g in gs})}

    def forget_gone(self) -> None:
        """Drop the names of objects no longer there (undone, reset), so a new object does not inherit one."""
        live = {o.label for o in self.session.state.objects}
        for label in [k for k in self.names if k not in live]:
            del self.names[label]

    def save(self, fmt: str) -> tuple[bytes, str]:
        if fmt not in FORMATS:
            raise MedsegError(f"format {fmt!r:.20} is not offered; use one of {', '.join(FORMATS)}")
        labels = self.session.mask
        stem = Path(self.scan.path).name.split(".")[0] if self.scan.path else "scan"
        name = f"{stem}_labels{FORMATS[fmt]}"
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / name
            if fmt == "dcm":
                if not self.is_dicom:
                    raise MedsegError("DICOM SEG needs a DICOM series as input; save as NIfTI, NRRD or MHA")
                from medseg.io.dicom_seg import write_dicom_seg

                write_dicom_seg(labels, self.scan.path, target, {o["label"]: o["name"] for o in self.objects()},
                                {"model": "litemedsam"}, geometry=self.scan.geometry)
            else:
                from medseg.io.write import write_mask

                write_mask(labels, self.scan.geometry, target)
            return target.read_bytes(), name

    def scan_nifti(self) -> bytes:
        """The scan as NIfTI for NiiVue (built once)."""
        if self._nifti is None:
            import SimpleITK as sitk

            from medseg.files import write_file

            img = sitk.GetImageFromArray(np.ascontiguousarray(self.scan.array))
            g = self.scan.geometry
            img.SetSpacing(g.spacing)
            img.SetOrigin(g.origin)
            img.SetDirection(g.direction)
            with tempfile.TemporaryDirectory() as tmp:
                path = write_file(Path(tmp) / "scan.nii.gz", lambda t: sitk.WriteImage(img, str(t), True))
                self._nifti = path.read_bytes()
        return self._nifti

    def labels_nifti(self) -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            from medseg.io.write import write_mask

            path = write_mask(self.session.mask, self.scan.geometry, Path(tmp) / "labels.nii.gz")
            return path.read_bytes()

    # ----- routes -----------------------------------------------------------------------------------
    def router(self) -> APIRouter:
        r = APIRouter()
        self_server, run = self.server, self.server.run

        for route, (file, media) in PAGES.items():
            def page(file: str = file, media: str = media) -> Response:
                return Response((STATIC / file).read_bytes(), media_type=media,
                                headers={"Cache-Control": "no-store"})
            r.add_api_route(route, page, methods=["GET"], include_in_schema=False)

        @r.get("/niivue.js", include_in_schema=False)
        def niivue_module() -> Response:
            data = niivue.load()
            if data is None:
                return JSONResponse({"detail": niivue.MISSING}, status_code=404)
            return Response(data, media_type="text/javascript")

        @r.get("/api/info")
        def info() -> dict:
            g = self.scan.geometry
            return {"name": Path(self.scan.path).name if self.scan.path else "scan", "shape": list(self.session.shape),
                    "spacing": list(g.spacing), "dicom": self.is_dicom, "objects": self.objects(),
                    "planes": self.session.planes, "three_axes": near_isotropic(g.spacing),
                    "niivue": niivue.load() is not None, "niivue_missing": niivue.MISSING,
                    "text": text_problem() is None, "text_message": text_problem() or "",
                    "formats": [f for f in FORMATS if f != "dcm" or self.is_dicom]}

        @r.get("/api/scan.nii.gz")
        async def scan() -> Response:
            return Response(await run(self.scan_nifti), media_type="application/octet-stream")

        @r.get("/api/labels.nii.gz")
        async def labels_file() -> Response:
            return Response(await run(self.labels_nifti), media_type="application/octet-stream")

        @r.get("/api/labels")
        async def labels() -> Response:
            data = await run(lambda: self.session.mask.tobytes())
            return Response(data, media_type="application/octet-stream")

        async def act(request: Request, fn, centre: bool = False, prepare=None) -> dict:
            payload = await self_server.json(request)

            def call():
                with self.lock:
                    if prepare is not None:  # model-free work, outside the compute lock
                        prepare(payload)
                    return compute()

            def compute():
                with COMPUTE:
                    try:
                        label = fn(payload)
                    finally:
                        self.forget_gone()
                    COMPUTE.idle.want(self.session, self.session.slices_ahead())  # encoded while idle
                    out = {"label": label, "objects": self.objects(), "messages": self.session.messages[-3:]}
                    if centre:  # where the page moves its crosshair: the new object's centre of mass
                        out["centre_mm"] = self.world(np.argwhere(self.session.mask == label).mean(0))
                return out
            return await run(call)

        @r.post("/api/point")
        async def point(request: Request) -> dict:
            return await act(request, self.point)

        @r.post("/api/box")
        async def box(request: Request) -> dict:
            return await act(request, self.box)

        @r.post("/api/undo")
        async def undo(request: Request) -> dict:
            return await act(request, lambda p: int(self.session.undo()))

        @r.post("/api/reset")
        async def reset(request: Request) -> dict:
            return await act(request, lambda p: self.session.reset())

        @r.post("/api/name")
        async def name(request: Request) -> dict:
            def rename(p: dict) -> int:
                label, text = p.get("label"), p.get("name")
                if not isinstance(label, int) or not isinstance(text, str) or not 0 < len(text.strip()) <= 64:
                    raise MedsegError("'label' must be an object's number and 'name' 1..64 characters")
                self.session.object_mask(label)  # MedsegError for an unknown label
                self.names[label] = text.strip()
                return label
            return await act(request, rename)

        @r.post("/api/planes")
        async def planes(request: Request) -> dict:
            payload = await self_server.json(request)

            def set_planes() -> dict:
                with self.lock:
                    self.set_planes(payload)
                    return {"planes": self.session.planes}
            return await run(set_planes)

        @r.post("/api/text")
        async def text(request: Request) -> dict:
            return await act(request, self.text, centre=True, prepare=self.prepare_text)

        @r.get("/api/structures")
        async def structures() -> dict:
            def listing():
                with self.lock:
                    return self.structures()
            return await run(listing)

        @r.get("/api/save")
        async def save(format: str = "nii.gz") -> Response:  # noqa: A002 - the query parameter's name
            def build():
                with self.lock:
                    return self.save(format)
            data, filename = await run(build)
            return Response(data, media_type="application/octet-stream",
                            headers={"Content-Disposition": f'attachment; filename="{filename}"'})
        return r
