"""Shared set-up of the real-data tests: the CVPR25 click protocol on a fetched sample case."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import numpy as np
import pytest

from medseg.data import loaders, sample
from medseg.evaluate.protocols import ProtocolConfig, run_case
from medseg.predict.predictor import Predictor


class RememberingPredictor(Predictor):
    """A Predictor whose slice embeddings are kept for the test session, by the slice's bytes: several tests run
    the protocol on the same scan (PyRadiomics lung1 four times), and a slice is encoded once for all of them.
    At most ``KEEP`` embeddings (4 MiB each), the least recently used dropped."""

    KEEP = 256
    lock = threading.Lock()  # read-ahead encodes on worker threads

    def __init__(self, model, store: OrderedDict) -> None:
        super().__init__(model)
        self.store = store

    def embed(self, slice_0_255, lane=False, tag=None):
        key = hashlib.sha1(np.ascontiguousarray(slice_0_255).tobytes() + str(slice_0_255.shape).encode()).hexdigest()
        with self.lock:
            if key in self.store:
                self.store.move_to_end(key)
                return self.store[key]
        emb = super().embed(slice_0_255, lane, tag)
        with self.lock:
            self.store[key] = emb
            while len(self.store) > self.KEEP:
                self.store.popitem(last=False)
        return emb


@pytest.fixture(scope="session")
def embeddings() -> OrderedDict:
    return OrderedDict()


@pytest.fixture
def cvpr25_steps(model, embeddings):
    """(dataset, case, label, clicks, with_box=False, refine=True, protocol="interactive", seed=0) -> the protocol's
    steps (the box's first when with_box), each a dict with "dice", "positive", ...; LiteMedSAM, atlas route off.
    ``protocol="sammed3d"``: SAM-Med3D's uniform clicks from ``seed``."""

    def run(dataset: str, case: str, label: int, clicks: int, with_box: bool = False,
            refine: bool = True, protocol: str = "interactive", seed: int = 0) -> list[dict]:
        sample.fetch(dataset)
        found = loaders.load_labelled(dataset, [case])[0]
        cfg = ProtocolConfig(protocol=protocol, clicks=clicks, with_box=with_box, click_atlas=False, refine=refine)
        return run_case(protocol, RememberingPredictor(model, embeddings), found.image, found.labels, [label], cfg,
                        np.random.default_rng(seed)).rows[0]["steps"]

    return run


@pytest.fixture
def session_on(model, embeddings):
    """(dataset, case) -> (a VolumeSession on the case's scan as the protocol sets it up, atlas route off; the case's
    label map), for tests that place their own clicks."""
    from medseg.predict.volume import VolumeSession

    def make(dataset: str, case: str):
        sample.fetch(dataset)
        found = loaders.load_labelled(dataset, [case])[0]
        session = VolumeSession(RememberingPredictor(model, embeddings), progress=False)
        session.set_volume(found.image, ProtocolConfig("interactive").window)
        session.click_atlas = False
        return session, found.labels

    return make
