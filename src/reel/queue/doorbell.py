"""A doorbell for the embedded queue: a task queued by one process wakes the idle workers of
this machine at once, instead of at their next poll.

Each waiting worker holds a named pipe (FIFO) in one directory; ringing writes a byte to
every pipe there. It only shortens waits: a worker that misses a ring (the directory is not
shared, the pipe is full, the platform has no FIFOs) still finds the task at its next poll.
A pipe nobody reads any more (its worker was killed) is removed by the next ring.
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import select
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

log = logging.getLogger("reel.queue")

_SUFFIX = ".wake"


class Listener:
    """One worker's end of the doorbell."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self._read = read_fd
        # The listener's own writer keeps the pipe open, so the reader never sees end-of-file
        # (which would make every wait return at once) when a ringer closes its end.
        self._write = write_fd

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds; ``True`` when the bell rang (rings are drained)."""
        readable, _, _ = select.select([self._read], [], [], timeout)
        if not readable:
            return False
        with suppress(BlockingIOError):
            while os.read(self._read, 4096):
                pass
        return True

    def interrupt(self) -> None:
        """End the current (or the next) wait now, e.g. to stop; safe in a signal handler."""
        with suppress(BlockingIOError):
            os.write(self._write, b"!")


class Doorbell:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @staticmethod
    def available() -> bool:
        return hasattr(os, "mkfifo")

    def ring(self) -> None:
        """Wake every worker waiting on this machine (best effort, never raises)."""
        try:
            names = os.listdir(self.directory)
        except OSError:
            return
        for name in names:
            if name.endswith(_SUFFIX):
                self._ring_one(self.directory / name)

    def _ring_one(self, path: Path) -> None:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # a pipe nobody reads: its worker is gone
                with suppress(OSError):
                    path.unlink()
            return
        try:
            os.write(fd, b"!")
        except OSError:
            pass  # full: that worker has unread rings and wakes anyway
        finally:
            os.close(fd)

    @contextmanager
    def listening(self) -> Iterator[Listener | None]:
        """This process's pipe while the block runs; ``None`` where it cannot have one."""
        if not self.available():
            yield None
            return
        path = self.directory / f"{os.getpid()}-{secrets.token_hex(4)}{_SUFFIX}"
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.mkfifo(path, 0o600)
            read_fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as exc:
            log.warning("no doorbell (%s); idle workers only poll", exc)
            yield None
            return
        write_fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        try:
            yield Listener(read_fd, write_fd)
        finally:
            with suppress(OSError):
                path.unlink()
            os.close(write_fd)
            os.close(read_fd)
