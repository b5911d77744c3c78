"""The affine stage's one-thread setting (``register.one_thread``) is restored whatever runs beside it.

Two registrations at once, the second starting while the first held SimpleITK's global thread count at 1: without the
lock the second saved that 1 and, finishing last, restored it, so every SimpleITK filter after ran on one thread.
Synthetic (no scan): the registrations are stood in for by two threads holding the setting in overlapping windows.
"""

from __future__ import annotations

import threading
import time

import SimpleITK as sitk

from medseg.text import register as reg


def test_overlapping_holders_leave_the_global_thread_count_as_it_was():
    before = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(2)
    seen = []
    try:
        def hold(delay: float, held: float) -> None:
            time.sleep(delay)
            with reg.one_thread():
                seen.append(sitk.ProcessObject.GetGlobalDefaultNumberOfThreads())
                time.sleep(held)

        # the second starts while the first holds the setting and would finish after it
        workers = [threading.Thread(target=hold, args=(0.0, 0.2)), threading.Thread(target=hold, args=(0.1, 0.3))]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert seen == [1, 1]
        assert sitk.ProcessObject.GetGlobalDefaultNumberOfThreads() == 2
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(before)
