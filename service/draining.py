"""Leave a load balancer's rotation before closing: on SIGTERM a worker answers /ready with
503 for `DRAIN_SECONDS` while it goes on serving, so the balancer's health check takes it
out first; only then does uvicorn's own graceful shutdown start (stop accepting, finish
what is in flight). Without this, connections the balancer opens while the instance shuts
down are closed unanswered, and HAProxy passes that on as a dropped client connection."""

import logging
import signal
import threading
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)
DRAINING = threading.Event()


def install(seconds: float) -> None:
    """Put the drain in front of the SIGTERM handler uvicorn installed in this process."""
    DRAINING.clear()
    if seconds <= 0:
        return
    shutdown: Any = signal.getsignal(signal.SIGTERM)

    def drain_then_shut_down(signum: int, frame: FrameType | None) -> None:
        if DRAINING.is_set():  # a second SIGTERM: no more waiting
            shutdown(signum, frame)
            return
        DRAINING.set()
        log.info("SIGTERM: answering /ready with 503 for %g s before shutting down", seconds)
        timer = threading.Timer(seconds, shutdown, (signum, frame))
        timer.daemon = True
        timer.start()

    if callable(shutdown):
        signal.signal(signal.SIGTERM, drain_then_shut_down)
