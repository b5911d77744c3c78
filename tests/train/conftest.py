"""Markers of the training tests."""

from __future__ import annotations


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "distributed: starts 2 training processes (torchrun, gloo); "
                                       "deselect with -m 'not distributed'")
