"""Which route turns a name into a mask for this scan, chosen from what the scan and the installed models allow.

A route has ``kind``, ``describe()``, ``accepts(image) -> reason or None``, a ``vocabulary`` (its names) and
``prior(image, resolved) -> (z, y, x) bool``. Today there is one kind:

- ``atlas`` (``medseg.text.atlas_route``): brain MR; an MNI-space template + atlas registered to the scan.

A second kind plugs in the same way: a trained automatic model (``load_automatic(path)`` with
``.class_names`` and ``.segment(image)``) is a route whose vocabulary is built from its class names
(``Vocabulary([dict(enumerate(class_names, 1))])``), whose ``accepts`` checks the modality it was trained on
and whose ``prior`` is ``segment(image) == class``. Routes are tried in order; the first that accepts the
scan and knows the name serves it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from medseg.errors import MedsegError
from medseg.io.image import Image
from medseg.text.vocabulary import Resolved


class Router:
    """The routes medseg can use, in order of preference.

    Args:
        routes: route objects (see the module docstring); default: the atlas route with its default pack.
    """

    def __init__(self, routes: Sequence[Any] | None = None) -> None:
        if routes is None:
            from medseg.text.atlas_route import AtlasRoute

            routes = [AtlasRoute()]
        self.routes = list(routes)

    def usable(self, image: Image) -> tuple[list[Any], list[str]]:
        """(routes that accept the scan, reasons of those that do not)."""
        ok, reasons = [], []
        for route in self.routes:
            reason = route.accepts(image)
            if reason is None:
                ok.append(route)
            else:
                reasons.append(reason)
        return ok, reasons

    def resolve(self, image: Image, text: str) -> tuple[Any, Resolved]:
        """(route, what the text names) for this scan.

        Raises:
            MedsegError: no route serves this scan (says why), or the text resolves in none of them (the
                first route's message: closest names or choices).
        """
        if not isinstance(text, str) or not text.strip():
            raise MedsegError("empty text prompt: name a structure, e.g. --text 'left hippocampus'")
        routes, reasons = self.usable(image)
        if not routes:
            raise MedsegError(f"text prompt {text!r}: no text route serves this scan: {'; '.join(reasons)}")
        first_error = None
        for route in routes:
            try:
                return route, route.vocabulary.resolve(text)
            except MedsegError as exc:
                first_error = first_error or exc
        raise first_error

    def structures(self, image: Image) -> list[tuple[str, list[str], list[str]]]:
        """(route description, structure names, group names) for each route that accepts the scan."""
        routes, reasons = self.usable(image)
        if not routes:
            raise MedsegError(f"no text route serves this scan: {'; '.join(reasons)}")
        return [(r.describe(), r.vocabulary.names(), r.vocabulary.groups()) for r in routes]
