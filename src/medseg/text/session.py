"""``VolumeSession.add_text``: a named structure as a new object of an interactive session.

The route gives a prior mask; the promptable model refines it slice by slice on the session's cached
embeddings (``medseg.text.prompting``); the result is an ordinary object: later clicks correct it and
``undo`` removes it. Its name is kept on the object (``ObjectState.name``).
"""

from __future__ import annotations

from typing import Any

DEFAULT_REFINE = "atlas"  # measured: see docs/text.md and benchmarks/results/text


def session_router(session: Any, router: Any = None) -> Any:
    from medseg.text.routes import Router

    if router is None:
        router = session.text_router or Router()
        session.text_router = router
    return router


def check_texts(session: Any, texts: list[str], router: Any = None) -> None:
    """Resolve every text against the session's volume before any work (no registration, no model).

    Raises:
        MedsegError: the first text that resolves to nothing or to several structures, or no route serves the scan.
    """
    router = session_router(session, router)
    for text in texts:
        router.resolve(session.image, text)


def add_text(session: Any, text: str, router: Any = None, refine: str | None = None) -> int:
    """Segment the structure ``text`` names on the session's volume; returns its label.

    Args:
        session: a VolumeSession with a volume set.
        text: e.g. ``"left hippocampus"``, ``"basal ganglia right"``, ``"brain"``.
        router: a ``medseg.text.routes.Router`` (default: the session's own, made on first use).
        refine: ``"atlas"``, ``"intensity"``, ``"box"`` or ``"box+mask"`` (``medseg.text.prompting``); default
            the session's ``text_refine`` if set, else the route's ``refine_for(resolved)`` (the atlas route: the warped
            label moved by the scan's intensities, but the model for "brain"), else :data:`DEFAULT_REFINE`.

    Raises:
        MedsegError: the text resolves to nothing / several structures, no route serves the scan, or the
            registration failed; nothing is added then.
    """
    from medseg.text.prompting import refine_slices

    router = session_router(session, router)
    image = session.image
    route, resolved = router.resolve(image, text)
    prior = route.prior(image, resolved)
    suggested = route.refine_for(resolved) if hasattr(route, "refine_for") else DEFAULT_REFINE
    slices = refine_slices(session._decode, prior, refine or session.text_refine or suggested,
                           image=image.array)
    label = session.add_slices("text", slices, name=resolved.name)
    session.messages.append(f"text {text!r}: {resolved.name} ({resolved.how}) via {route.describe()}")
    return label
