"""`medseg serve` through the real nninteractive-client on loopback: latency and load.

latency: RIDER lung CT cropped to 512 x 512 x 100 (slices 116..215, the tumour at 146..187): set_image,
    the first 3D box (the tumour's box: 42 slices encoded), then correction clicks on encoded slices
    (positive on a missed tumour voxel, negative on a wrong one, alternating), one at a time; with --think S,
    each S seconds after the last answer, as a person looks at it (the server encodes ahead meanwhile; --ahead 0
    turns that off).
load: N clients at once on Colin27, each a 3D box on its own AAL structure, then clicks from all clients
    interleaved (each client a thread); latency percentiles over all clicks, errors, server peak memory.

The server runs as its own process (`medseg serve`), so its peak memory (VmHWM) is its own.
Usage: python benchmarks/bench_serve.py [latency|load|all] [--clients 4] [--clicks 20] [--think 0] [--ahead 2]
    [--out latency.json]
Results: benchmarks/results/serve/{latency,load}.json and README.md lines printed to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from nnInteractive.inference.remote import nnInteractiveRemoteInferenceSession
from scipy import ndimage

from medseg.cpu import describe_machine
from medseg.data.loaders import load_labelled
from medseg.files import write_text
from medseg.serve.run import free_port

OUT = Path(__file__).parent / "results" / "serve"


def load_average() -> float:
    return os.getloadavg()[0]


class Served:
    """`medseg serve` in a subprocess on a free loopback port."""

    def __init__(self, sessions: int, ahead: int = 2) -> None:
        self.port = free_port()
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
        self.proc = subprocess.Popen([sys.executable, "-m", "medseg.cli.main", "serve", "--port", str(self.port),
                                      "--max-sessions", str(sessions), "--cache-mib", "2048",
                                      "--ahead", str(ahead)], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.url = f"http://127.0.0.1:{self.port}"
        start = time.monotonic()
        while time.monotonic() - start < 300:
            try:
                if httpx.get(self.url + "/healthz").status_code == 200:
                    self.startup = time.monotonic() - start
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("server did not start")

    def peak_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def half_open_box(gt: np.ndarray) -> list[list[int]]:
    return [[int(i.min()), int(i.max()) + 1] for i in np.nonzero(gt)]


def correction(buf: np.ndarray, gt: np.ndarray, positive: bool) -> list[int] | None:
    """Where a user would click: deepest missed voxel (positive) or deepest wrong one (negative)."""
    region = (gt & (buf == 0)) if positive else ((buf > 0) & ~gt)
    if not region.any():
        return None
    depth = ndimage.distance_transform_edt(region)
    return [int(v) for v in np.unravel_index(int(np.argmax(depth)), depth.shape)]


def server_times(session) -> list[float]:
    """Collects the Server-Timing 'compute' of every answer the session's client gets (seconds)."""
    found: list[float] = []

    def hook(response: httpx.Response) -> None:
        timing = response.headers.get("server-timing", "")
        if timing.startswith("compute;dur="):
            found.append(float(timing.split("=")[1]) / 1000)

    session._http.event_hooks["response"].append(hook)
    return found


def clicks(session, buf, gt, n: int, times: list[float], think: float = 0.0) -> int:
    """n correction clicks, each ``think`` seconds after the last answer (a person looking at it)."""
    errors = 0
    for k in range(n):
        where = correction(buf, gt, positive=k % 2 == 0) or correction(buf, gt, positive=k % 2 == 1)
        if where is None:
            break
        time.sleep(think)
        start = time.perf_counter()
        try:
            session.add_point_interaction(where, include_interaction=k % 2 == 0)
        except Exception as exc:  # counted, reported
            print("click failed:", exc, file=sys.stderr)
            errors += 1
        times.append(time.perf_counter() - start)
    return errors


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def dice(a, b) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


def latency(n_clicks: int, think: float = 0.0, ahead: int = 2) -> dict:
    case = load_labelled("rider_lung", ["seg_manual"])[0]
    image = case.image.array[116:216]
    gt = case.labels[116:216] > 0
    spacing = [float(v) for v in reversed(case.image.geometry.spacing)]
    served = Served(1, ahead)
    try:
        s = nnInteractiveRemoteInferenceSession(served.url, read_timeout=900)
        t0 = time.perf_counter()
        s.set_image(image[None], {"spacing": spacing})
        buf = np.zeros(image.shape, np.uint8)
        s.set_target_buffer(buf)
        t_image = time.perf_counter() - t0
        t0 = time.perf_counter()
        s.add_bbox_interaction(half_open_box(gt), include_interaction=True)
        t_box = time.perf_counter() - t0
        d_box = dice(buf > 0, gt)
        times: list[float] = []
        computed = server_times(s)
        time.sleep(think)
        errors = clicks(s, buf, gt, n_clicks, times, think)
        d_clicks = dice(buf > 0, gt)
        s.close()
        return {"volume": f"RIDER lung CT slices 116..215, {list(image.shape)} (z, y, x), {image.dtype}",
                "think_s": think, "ahead": ahead, "server_startup_s": served.startup, "set_image_s": t_image,
                "first_box3d_s": t_box,
                "box3d_slices": int(gt.any(axis=(1, 2)).sum()), "dice_box3d": d_box, "dice_after_clicks": d_clicks,
                "clicks": len(times), "click_median_s": float(np.median(times)), "click_p90_s": pct(times, 90),
                "click_times_s": times, "click_compute_median_s": float(np.median(computed)),
                "click_overhead_median_s": float(np.median(np.subtract(times, computed))), "errors": errors,
                "server_peak_mib": served.peak_mib(), "machine": describe_machine(),
                "load_average_1min_at_end": load_average()}
    finally:
        served.stop()


STRUCTURES = ["Amygdala_L", "Amygdala_R", "Caudate_L", "Caudate_R", "Putamen_L", "Putamen_R"]


def load(n_clients: int, n_clicks: int, ahead: int = 2) -> dict:
    case = load_labelled("colin27")[0]
    ids = {name: value for value, name in case.names.items()}
    image = case.image.array
    spacing = [float(v) for v in reversed(case.image.geometry.spacing)]
    served = Served(n_clients, ahead)
    try:
        clients = []
        for k in range(n_clients):
            s = nnInteractiveRemoteInferenceSession(served.url, read_timeout=900)
            s.set_image(image[None], {"spacing": spacing})
            buf = np.zeros(image.shape, np.uint8)
            s.set_target_buffer(buf)
            clients.append((s, buf, case.labels == ids[STRUCTURES[k % len(STRUCTURES)]]))
        box_times: list[float] = []
        for s, _, gt in clients:  # first boxes one after another (they encode)
            t0 = time.perf_counter()
            s.add_bbox_interaction(half_open_box(gt), include_interaction=True)
            box_times.append(time.perf_counter() - t0)
        times: list[float] = []
        errors = [0] * n_clients
        lock = threading.Lock()

        def work(k: int) -> None:
            s, buf, gt = clients[k]
            mine: list[float] = []
            errors[k] = clicks(s, buf, gt, n_clicks, mine)
            with lock:
                times.extend(mine)

        t0 = time.perf_counter()
        threads = [threading.Thread(target=work, args=(k,)) for k in range(n_clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        dices = [dice(buf > 0, gt) for _, buf, gt in clients]
        for s, _, _ in clients:
            s.close()
        return {"volume": f"Colin27 {list(image.shape)} (z, y, x)", "clients": n_clients,
                "structures": STRUCTURES[:n_clients], "box3d_s": box_times, "clicks": len(times),
                "click_p50_s": pct(times, 50), "click_p90_s": pct(times, 90), "click_p99_s": pct(times, 99),
                "click_max_s": max(times) if times else None, "clicks_per_s": len(times) / wall,
                "errors": sum(errors), "dice_after_clicks": dices, "ahead": ahead, "server_peak_mib": served.peak_mib(),
                "machine": describe_machine(), "load_average_1min_at_end": load_average(),
                "python": platform.python_version()}
    finally:
        served.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", nargs="?", default="all", choices=["latency", "load", "all"])
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--clicks", type=int, default=20)
    ap.add_argument("--think", type=float, default=0.0, help="latency: seconds between an answer and the next click "
                    "(a person looking at the result; the server encodes ahead meanwhile)")
    ap.add_argument("--ahead", type=int, default=2, help="the server's --ahead (0: no idle encodes)")
    ap.add_argument("--out", default="latency.json", help="latency: file name in benchmarks/results/serve")
    args = ap.parse_args()
    if args.what in ("latency", "all"):
        r = latency(args.clicks, args.think, args.ahead)
        write_text(OUT / args.out, json.dumps(r, indent=1))
        print(f"latency: set_image {r['set_image_s']:.2f} s, first 3D box ({r['box3d_slices']} slices) "
              f"{r['first_box3d_s']:.1f} s, click median {r['click_median_s'] * 1000:.0f} ms "
              f"(p90 {r['click_p90_s'] * 1000:.0f} ms, {r['clicks']} clicks; on the server "
              f"{r['click_compute_median_s'] * 1000:.0f} ms, HTTP + transfer {r['click_overhead_median_s'] * 1000:.0f} "
              f"ms), Dice {r['dice_box3d']:.3f} -> "
              f"{r['dice_after_clicks']:.3f}, server peak {r['server_peak_mib']:.0f} MiB, errors {r['errors']}")
    if args.what in ("load", "all"):
        r = load(args.clients, args.clicks, args.ahead)
        write_text(OUT / "load.json", json.dumps(r, indent=1))
        print(f"load: {r['clients']} clients, {r['clicks']} clicks, p50 {r['click_p50_s'] * 1000:.0f} ms, "
              f"p90 {r['click_p90_s'] * 1000:.0f} ms, p99 {r['click_p99_s'] * 1000:.0f} ms, "
              f"{r['clicks_per_s']:.1f} clicks/s, errors {r['errors']}, server peak {r['server_peak_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
