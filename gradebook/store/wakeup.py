"""Waking the graders when a transaction queued work for them, instead of a polling interval.

:func:`request_wakeup` is called inside the transaction that queues a job; the wake-up is sent when that
transaction commits (never for one rolled back). :class:`Waiter` is what a grader blocks on.

- PostgreSQL: ``NOTIFY mlph_grading`` in the transaction (PostgreSQL delivers it at commit, to every
  listener on every machine); the waiter ``LISTEN``\\ s on its own connection.
- SQLite (one machine): every waiter binds a datagram socket in Linux's abstract namespace and leaves a
  marker file named after it in ``<gradebook.db>.wake/``; after commit the writer sends one byte to each
  (a marker whose socket is gone, left by a killed process, is removed).

A wake-up is a hint: the grader looks at the queue after one, and also now and then without one.
"""
from __future__ import annotations

import errno
import hashlib
import math
import os
import secrets
import select
import socket
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session

CHANNEL = "mlph_grading"


def _wake_dir(db_path: str) -> Path:
    return Path(db_path + ".wake")


def _abstract(db_path: str, name: str) -> bytes:
    key = hashlib.sha256(os.path.realpath(db_path).encode()).hexdigest()[:16]
    return f"\0mlph-wake-{key}-{name}".encode()


def _sqlite_path(engine: Engine) -> str | None:
    return engine.url.database if engine.dialect.name == "sqlite" and engine.url.database else None


def send_wakeups(db_path: str) -> None:
    """One byte to every waiter of the SQLite gradebook at ``db_path`` (never blocks, never raises)."""
    directory = _wake_dir(db_path)
    try:
        names = os.listdir(directory)
    except OSError:
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        for name in names:
            try:
                sock.sendto(b"!", _abstract(db_path, name))
            except ConnectionRefusedError:  # its waiter is gone (killed): forget it
                try:
                    (directory / name).unlink()
                except OSError:
                    pass
            except OSError as exc:  # EAGAIN: its buffer is full, it has wake-ups enough
                if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS):
                    continue


def request_wakeup(session: Session) -> None:
    """Wake the graders when ``session``'s transaction commits."""
    engine = session.get_bind()
    if engine.dialect.name == "postgresql":
        session.execute(text(f"NOTIFY {CHANNEL}"))
        return
    path = _sqlite_path(engine)  # type: ignore[arg-type]
    if path is None or session.info.get("mlph_wake"):
        return
    session.info["mlph_wake"] = True

    def after_commit(_session: Session) -> None:
        send_wakeups(path)

    event.listen(session, "after_commit", after_commit, once=True)


class Waiter:
    """What a grader blocks on: :meth:`wait` returns True at a wake-up (or :meth:`poke` from this process),
    False after ``timeout`` seconds."""

    def __init__(self, engine: Engine) -> None:
        self._local_r, self._local_w = socket.socketpair()
        self._local_r.setblocking(False)
        self._pg: Any = None
        self._sock: socket.socket | None = None
        self._marker: Path | None = None
        if engine.dialect.name == "postgresql":
            import psycopg

            url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
            self._pg = psycopg.connect(url, autocommit=True)
            self._pg.execute(f"LISTEN {CHANNEL}")
        elif (path := _sqlite_path(engine)) is not None:
            name = f"{os.getpid()}-{secrets.token_hex(6)}"
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.bind(_abstract(path, name))
            self._sock.setblocking(False)
            directory = _wake_dir(path)
            directory.mkdir(exist_ok=True)
            self._marker = directory / name
            self._marker.touch()

    def poke(self) -> None:
        try:
            self._local_w.send(b"!")
        except OSError:
            pass

    def _sources(self) -> list[Any]:
        found: list[Any] = [self._local_r]
        if self._sock is not None:
            found.append(self._sock)
        if self._pg is not None:
            found.append(self._pg.fileno())
        return found

    def wait(self, timeout: float) -> bool:
        poller = select.poll()  # not select(2): a web server may hold more than 1024 descriptors
        for source in self._sources():
            poller.register(source, select.POLLIN)
        ready = {fd for fd, _event in poller.poll(max(0, math.ceil(timeout * 1000)))}
        woke = bool(ready)
        for sock in (self._local_r, self._sock):
            while sock is not None:
                try:
                    sock.recv(64)
                except OSError:
                    break
        if self._pg is not None and self._pg.fileno() in ready:
            for _ in self._pg.notifies(timeout=0):
                pass
        return woke

    def close(self) -> None:
        for sock in (self._local_r, self._local_w, self._sock):
            if sock is not None:
                sock.close()
        if self._marker is not None:
            self._marker.unlink(missing_ok=True)
        if self._pg is not None:
            self._pg.close()

    def __enter__(self) -> Waiter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
