"""Slow work off the GUI thread: a plain thread, its result delivered by a queued signal."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, ClassVar

from PySide6.QtCore import QObject, Qt, Signal

log = logging.getLogger(__name__)


class Task(QObject):
    """One background call; ``done`` or ``failed`` is emitted on the GUI thread."""

    done = Signal(object)
    failed = Signal(object)

    _running: ClassVar[set[Task]] = set()  # keeps tasks alive until they have reported

    def __init__(self, work: Callable[[], Any], name: str) -> None:
        super().__init__()
        self._work = work
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Task:
        Task._running.add(self)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            result = self._work()
        except Exception as exc:  # reported to the window, which says what to do
            log.debug("Background task %s failed", self._thread.name, exc_info=True)
            self.failed.emit(exc)
        else:
            self.done.emit(result)


def run_async(
    work: Callable[[], Any],
    on_done: Callable[[Any], None],
    on_failed: Callable[[Exception], None],
    name: str = "gui-task",
) -> Task:
    """Run ``work`` on a thread; its result or exception comes back on the GUI thread."""
    task = Task(work, name)
    for signal, handler in ((task.done, on_done), (task.failed, on_failed)):
        signal.connect(handler, Qt.ConnectionType.QueuedConnection)
        # Released only after the handler ran: a deleted sender's queued signals are dropped.
        signal.connect(lambda _: Task._running.discard(task), Qt.ConnectionType.QueuedConnection)
    return task.start()
