"""The one outbox every mail of the course goes through.

:func:`send` turns :class:`Letter` s (plain data: recipient, subject, body) into RFC 5322 messages with the
standard library's :mod:`email` and hands them to a transport: the SMTP relay of ``[mail]`` in mlph.toml
(:mod:`smtplib`, STARTTLS or TLS, login with the password from the environment) or, for a dry run, a
directory that receives one ``.eml`` file per message. Each message's fate is a :class:`Delivery` (sent,
written, or failed with the relay's answer) and a ``mail_log`` row: one refused recipient never stops the
batch, a relay that cannot be reached fails the rest of the batch with its reason.

Text that people other than the sender control (names from the roster, a student's regrade request) is
bounded and made inert: mails are plain text only; headers lose line breaks and control characters; bodies
lose control characters and are cut at a bound. No message may carry the relay's password.
"""
from __future__ import annotations

import os
import re
import smtplib
import ssl
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path
from typing import Protocol

from sqlalchemy import Engine

from gradebook.course.mail_settings import MailSettings
from gradebook.errors import GradebookError
from gradebook.store.db import atomic
from gradebook.store.models import MailLog

HEADER_MAX, BODY_MAX = 150, 20_000
Progress = Callable[[int, int], None]
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


class MailError(GradebookError):
    """The outbox cannot send (no relay configured, a message it refuses to build)."""


class RelayDown(MailError):
    """The relay cannot be reached or refuses the login: every message still to go fails with this reason."""


def clean_header(text: str, limit: int = HEADER_MAX) -> str:
    """One line: no line breaks or control characters (nothing can add a header), at most ``limit`` characters."""
    flat = " ".join(_CONTROL.sub(" ", str(text)).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def clean_body(text: str, limit: int = BODY_MAX) -> str:
    """Plain text: line breaks normalised, control and direction-override characters dropped, cut at ``limit``."""
    body = _CONTROL.sub("", str(text).replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    "))
    return body if len(body) <= limit else body[:limit] + "\n[… shortened]"


@dataclass(frozen=True)
class Letter:
    """One message to one person, as plain data."""
    recipient: str  # roster or staff id
    name: str
    address: str
    subject: str
    body: str
    kind: str  # password-link | graded | regrade | announcement | test
    key: str = ""  # what it is about, e.g. "sheet04/notebook" (with kind: the record that says it was sent)


@dataclass(frozen=True)
class Delivery:
    recipient: str
    address: str
    status: str  # sent | written | failed
    error: str = ""


@dataclass
class SendReport:
    deliveries: list[Delivery] = field(default_factory=list)

    @property
    def done(self) -> list[Delivery]:
        return [d for d in self.deliveries if d.status != "failed"]

    @property
    def failed(self) -> list[Delivery]:
        return [d for d in self.deliveries if d.status == "failed"]

    def lines(self) -> list[str]:
        """A summary, then every failure with its recipient and reason."""
        verb = "written" if any(d.status == "written" for d in self.deliveries) else "sent"
        head = f"{len(self.done)} message(s) {verb}, {len(self.failed)} failed"
        return [head] + [f"  failed: {d.recipient} <{d.address}>: {d.error}" for d in self.failed]


class Transport(Protocol):
    status: str

    def deliver(self, message: EmailMessage, letter: Letter, n: int) -> None: ...

    def close(self) -> None: ...


class DirectoryTransport:
    """A dry run: each message as ``NNNN-kind-recipient.eml`` (readable by the owner only: links are secrets)."""
    status = "written"

    def __init__(self, directory: Path):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def deliver(self, message: EmailMessage, letter: Letter, n: int) -> None:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", letter.recipient)[:64]
        target = self.directory / f"{n:04d}-{letter.kind}-{safe}.eml"
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".mail-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(message.as_bytes(policy=policy.SMTP))
        os.replace(tmp, target)

    def close(self) -> None:
        pass


class SmtpTransport:
    """The relay of ``[mail]``: one connection for the batch (opened again once if the relay drops it)."""
    status = "sent"

    def __init__(self, settings: MailSettings):
        if not settings.host:
            raise MailError("no mail relay configured: set [mail] host and from in mlph.toml "
                            "(see docs/deployment.md), or write the messages to files with --dry-run DIR")
        if settings.user and not settings.password():
            raise MailError(f"[mail] user is {settings.user!r} but the environment variable "
                            f"{settings.password_env} (its password) is empty")
        self.settings = settings
        self.smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        context = ssl.create_default_context(cafile=s.cafile or None)
        try:
            smtp = (smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout_s, context=context) if s.ssl
                    else smtplib.SMTP(s.host, s.port, timeout=s.timeout_s))
            if s.starttls:
                smtp.starttls(context=context)
            if s.user:
                smtp.login(s.user, s.password())
        except (OSError, smtplib.SMTPException) as exc:
            raise RelayDown(f"the mail relay {s.host}:{s.port} cannot be used: {_reason(exc)}") from exc
        return smtp

    def deliver(self, message: EmailMessage, letter: Letter, n: int) -> None:
        for attempt in (1, 2):
            self.smtp = self.smtp or self._connect()
            try:
                self.smtp.send_message(message)
                return
            except smtplib.SMTPServerDisconnected:
                self.smtp = None
                if attempt == 2:
                    raise RelayDown(f"the mail relay {self.settings.host} closes the connection") from None

    def close(self) -> None:
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except (OSError, smtplib.SMTPException):
                pass
            self.smtp = None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "; ".join(f"{code} {msg.decode(errors='replace') if isinstance(msg, bytes) else msg}"
                         for code, msg in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        err = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return clean_header(f"{exc.smtp_code} {err}", 300)
    return clean_header(str(exc) or type(exc).__name__, 300)


def compose(settings: MailSettings, letter: Letter) -> EmailMessage:
    """The message of ``letter``: plain text, UTF-8, with From, To, Subject, Date, Message-ID and, for mail
    that a program wrote, ``Auto-Submitted: auto-generated`` (RFC 3834: no auto-replies to it)."""
    name, addr = parseaddr(letter.address)
    if not addr or addr != letter.address.strip() or "@" not in addr or _CONTROL.search(letter.address):
        raise MailError(f"{letter.address!r} is not a mail address")
    sender = settings.sender or "MLPH grading <mlph@localhost>"
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = sender
    try:
        local, _, domain = addr.rpartition("@")
        message["To"] = Address(display_name=clean_header(letter.name, 80), username=local, domain=domain)
    except (ValueError, IndexError) as exc:
        raise MailError(f"{letter.address!r} is not a mail address ({exc})") from exc
    if settings.reply_to:
        message["Reply-To"] = settings.reply_to
    message["Subject"] = clean_header(letter.subject)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=parseaddr(sender)[1].rpartition("@")[2] or "localhost")
    if letter.kind != "announcement":
        message["Auto-Submitted"] = "auto-generated"
    message.set_content(clean_body(letter.body), charset="utf-8")
    return message


class _Record:
    """The ``mail_log`` rows of a batch, written every ``every`` messages or ``seconds`` (and at the end): one
    transaction per message would cost more than composing and sending it; a crash loses at most that many."""

    def __init__(self, engine: Engine, author: str, every: int = 25, seconds: float = 2.0):
        self.engine, self.author, self.every, self.seconds = engine, author[:128], every, seconds
        self.rows: list[MailLog] = []
        self.last = time.monotonic()

    def add(self, letter: Letter, delivery: Delivery) -> None:
        self.rows.append(MailLog(at=datetime.now(timezone.utc), kind=letter.kind, key=letter.key[:255],
                                 recipient=letter.recipient[:128], address=letter.address[:255],
                                 subject=clean_header(letter.subject, 255), status=delivery.status,
                                 error=delivery.error or None, author=self.author))
        if len(self.rows) >= self.every or time.monotonic() - self.last > self.seconds:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            with atomic(self.engine) as session:
                session.add_all(self.rows)
            self.rows = []
        self.last = time.monotonic()


def send(engine: Engine, settings: MailSettings, letters: Iterable[Letter], author: str,
         dry_run: Path | None = None, progress: Progress | None = None,
         sleep: Callable[[float], None] = time.sleep) -> SendReport:
    """Send every letter (or, with ``dry_run``, write it there); each one's fate recorded in ``mail_log``.
    ``progress(done, total)`` after each message; ``[mail] per_minute`` paces the relay."""
    todo = list(letters)
    transport: Transport = DirectoryTransport(dry_run) if dry_run is not None else SmtpTransport(settings)
    secret = settings.password()
    report, down, record = SendReport(), "", _Record(engine, author)
    try:
        for n, letter in enumerate(todo, 1):
            delivery = _deliver_one(transport, settings, letter, n, secret, down)
            if delivery.status == "failed" and delivery.error.startswith("the mail relay"):
                down = delivery.error
            report.deliveries.append(delivery)
            record.add(letter, delivery)
            if progress is not None:
                progress(n, len(todo))
            if settings.per_minute and dry_run is None and n < len(todo) and not down:
                sleep(60.0 / settings.per_minute)
    finally:
        transport.close()
        record.flush()
    return report


def _deliver_one(transport: Transport, settings: MailSettings, letter: Letter, n: int, secret: str,
                 down: str) -> Delivery:
    def failed(reason: str) -> Delivery:
        return Delivery(letter.recipient, letter.address, "failed", reason)

    if down:
        return failed(down)
    if not letter.address.strip():
        return failed("no e-mail address on the roster")
    try:
        message = compose(settings, letter)
        if secret and secret in message.get_content():
            return failed("refused: the message contains the relay's password")
        transport.deliver(message, letter, n)
    except RelayDown as exc:
        return failed(str(exc))
    except MailError as exc:
        return failed(str(exc))
    except (smtplib.SMTPException, OSError) as exc:
        return failed(_reason(exc))
    return Delivery(letter.recipient, letter.address, transport.status)
