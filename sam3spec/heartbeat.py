"""Progress lines for one long call that reports nothing itself (ExecuTorch's lowering, a parity
check): ``with heartbeat(log, "lowering to xnnpack"):`` logs when it starts, every ``every``
seconds while it runs (with the time elapsed), and when it ends. Standard library only."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def heartbeat(log: Callable[[str], None] | None, what: str, every: float = 30.0) -> Iterator[None]:
    """Log ``what ...`` now, ``what: still running (N s)`` every ``every`` seconds, and
    ``what: done in N s`` at the end (nothing when ``log`` is None)."""
    if log is None:
        yield
        return
    start = time.perf_counter()
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every):
            log(f"{what}: still running ({time.perf_counter() - start:.0f} s)")

    log(f"{what} ...")
    thread = threading.Thread(target=beat, name=f"heartbeat: {what}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
    log(f"{what}: done in {time.perf_counter() - start:.0f} s")
