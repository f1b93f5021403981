"""Benchmark: the outbox sending an announcement to N students (default 500) through a real SMTP server
(aiosmtpd on 127.0.0.1, in this process's event-loop thread), against the physical limit measured in the
same run: the same N prebuilt messages handed by plain ``smtplib`` over one connection to the same server
(no roster read, no composing, no record); composing the N messages with the standard library's
``email`` (which the outbox does too) is timed on its own. Also the dry run (N .eml files). Prints wall times, messages
per second and the ratios; every message must arrive.

    .venv/bin/python benchmarks/mail.py [-n 500]
"""
from __future__ import annotations

import argparse
import dataclasses
import smtplib
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# keep this directory (its gradebook.py) off the import path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from aiosmtpd.controller import Controller  # noqa: E402


class Counter:
    def __init__(self) -> None:
        self.n = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.n += 1
        return "250 OK"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _course(root: Path, n: int) -> Any:
    from gradebook.course.config import load_config
    from gradebook.store import nbgrader_tables as nt
    from gradebook.store.db import atomic, open_gradebook

    root.mkdir(parents=True)
    (root / "mlph.toml").write_text('[course]\nname = "bench"\ntimezone = "Europe/Berlin"\ndata_dir = "data"\n')
    cfg = load_config(root)
    engine = open_gradebook(cfg.db_url)
    with atomic(engine) as session:
        session.execute(nt.student.insert(), [{"id": f"s{i:05d}", "first_name": f"Ä{i}", "last_name": f"Last, {i}",
                                              "email": f"s{i:05d}@uni.de"} for i in range(n)])
    return cfg, engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=500)
    n = parser.parse_args().n
    from gradebook.course.mail_settings import MailSettings
    from gradebook.mail.notify import Outbox, announce
    from gradebook.mail.outbox import Letter, compose

    body = "The tutorial moves to room 1.07.\n" * 20
    with tempfile.TemporaryDirectory(prefix="mlph-mail-bench-") as tmp:
        cfg, engine = _course(Path(tmp) / "course", n)
        handler, port = Counter(), _port()
        controller = Controller(handler, hostname="127.0.0.1", port=port)
        controller.start()
        try:
            settings = MailSettings(host="127.0.0.1", port=port, starttls=False, sender="Bench <bench@uni.de>")
            cfg = dataclasses.replace(cfg, mail=settings)
            t0 = time.perf_counter()
            messages = [compose(settings, Letter(f"s{i:05d}", f"Ä{i} Last", f"s{i:05d}@uni.de", "Room", body,
                                                 "announcement")) for i in range(n)]
            composing = time.perf_counter() - t0
            t0 = time.perf_counter()
            with smtplib.SMTP("127.0.0.1", port) as smtp:
                for m in messages:
                    smtp.send_message(m)
            limit = time.perf_counter() - t0
            t0 = time.perf_counter()
            report = announce(Outbox(cfg, engine, "bench"), "Room", body, tutors=False)
            outbox = time.perf_counter() - t0
            t0 = time.perf_counter()
            dry = announce(Outbox(cfg, engine, "bench", dry_run=Path(tmp) / "eml"), "Room", body, tutors=False)
            dry_s = time.perf_counter() - t0
        finally:
            controller.stop()
    assert handler.n == 2 * n and not report.failed and not dry.failed, (handler.n, report.lines())
    print(f"{n} messages to 127.0.0.1 (aiosmtpd), one connection")
    print(f"  limit (smtplib, prebuilt messages): {limit:7.2f} s  {n / limit:7.0f} msg/s")
    print(f"  composing them (stdlib email):      {composing:7.2f} s")
    print(f"  mlph mail announce (outbox):        {outbox:7.2f} s  {n / outbox:7.0f} msg/s   x{outbox / limit:.2f} the limit")
    print(f"  dry run (.eml files):               {dry_s:7.2f} s  {n / dry_s:7.0f} msg/s")
    print(f"  the outbox's own cost (outbox - composing - limit): {outbox - composing - limit:.2f} s "
          f"({(outbox - composing - limit) / n * 1000:.1f} ms a message: roster, record, checks)")


if __name__ == "__main__":
    sys.exit(main())
