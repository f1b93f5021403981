"""Reading what a student handed in without trusting it: no links, no special files, bounded everything.

:func:`read_tree` walks a directory the student controls with ``openat``-style calls relative to an open
directory descriptor (``O_NOFOLLOW``, ``O_NONBLOCK``): a symbolic link anywhere (the entry itself, a
directory inside it, a file) is refused, never followed; a FIFO, socket or device is refused without being
opened for reading (a FIFO cannot block us, a device cannot produce gigabytes); sizes are checked on the
open descriptor (``fstat``) and again while reading, so a file that grows after the check is still cut
off. Names must be valid UTF-8 without control characters, ``/``, ``..`` or a leading dot path trick,
and are NFC-normalised. Every bound (files, directories, entries per directory, bytes per file, bytes in all,
name length, depth) is a :class:`TreeLimits` field; no directory is ever listed beyond its bound. A refusal
is an :class:`IntakeRefused` with the reason, never a partial read.
"""
from __future__ import annotations

import os
import stat
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from autograder.errors import AutograderError


EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class IntakeRefused(AutograderError):
    """A hand-in that cannot be accepted; the message says why (shown to the student and the admins)."""


@dataclass(frozen=True)
class TreeLimits:
    max_files: int = 64
    max_file_bytes: int = 20_000_000
    max_total_bytes: int = 40_000_000
    max_name_chars: int = 128
    max_depth: int = 4
    max_dirs: int = 32


_FLAGS_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FLAGS_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0)


def clean_name(raw: str | bytes, limit: int = 128) -> str:
    """One path component as a safe name, or :class:`IntakeRefused` saying what is wrong with it."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise IntakeRefused("a file name is not valid UTF-8") from None
    try:
        raw.encode("utf-8")  # names read from disk carry undecodable bytes as lone surrogates
    except UnicodeEncodeError:
        raise IntakeRefused("a file name is not valid UTF-8") from None
    name = unicodedata.normalize("NFC", raw)
    shown = name.encode("unicode_escape").decode("ascii")[:60]
    if not name or name in (".", ".."):
        raise IntakeRefused(f"the file name {shown!r} is not allowed")
    if "/" in name or "\\" in name or "\0" in name:
        raise IntakeRefused(f"the file name {shown!r} contains a path separator")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in name):
        raise IntakeRefused(f"the file name {shown!r} contains control characters")
    if len(name) > limit:
        raise IntakeRefused(f"a file name is longer than {limit} characters")
    return name


def clean_path(raw: str, limits: TreeLimits = TreeLimits()) -> str:
    """A relative path (``a/b.ipynb``) whose every component is :func:`clean_name`; no absolute paths, no ``..``."""
    if raw.startswith(("/", "\\")) or (len(raw) > 1 and raw[1] == ":"):
        raise IntakeRefused(f"the path {raw[:60]!r} is absolute")
    parts = [p for p in raw.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts:
        raise IntakeRefused("an empty path")
    if len(parts) > limits.max_depth:
        raise IntakeRefused(f"the path {raw[:60]!r} is nested deeper than {limits.max_depth} levels")
    return "/".join(clean_name(p, limits.max_name_chars) for p in parts)


def _read_fd(fd: int, name: str, limit: int) -> bytes:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise IntakeRefused(f"{name} is not a regular file")
    if info.st_nlink != 1:  # a hard link to a file the student could not read (protected_hardlinks off)
        raise IntakeRefused(f"{name} is a hard link (links are not accepted)")
    if info.st_size > limit:
        raise IntakeRefused(f"{name} is larger than {limit // 1_000_000} MB")
    chunks, total = [], 0
    while chunk := os.read(fd, min(1 << 20, limit + 1 - total)):
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            raise IntakeRefused(f"{name} is larger than {limit // 1_000_000} MB")
    return b"".join(chunks)


class _Walk:
    def __init__(self, limits: TreeLimits) -> None:
        self.limits = limits
        self.files: dict[str, bytes] = {}
        self.total = 0
        self.dirs = 0
        self.ctime_ns = 0  # the latest inode change seen (directories and files), taken as each is left

    def listing(self, dir_fd: int, prefix: str) -> list[str]:
        """The names in a directory, refused past the bound (never listed whole: a million empty entries
        cost as much as the bound)."""
        bound = self.limits.max_files + self.limits.max_dirs
        names = []
        with os.scandir(dir_fd) as it:
            for entry in it:
                names.append(entry.name)
                if len(names) > bound:
                    raise IntakeRefused(f"the hand-in has more than {self.limits.max_files} files and "
                                        f"{self.limits.max_dirs} directories ({prefix or 'its top folder'} alone)")
        return sorted(names)

    def directory(self, dir_fd: int, prefix: str, depth: int) -> None:
        if depth > self.limits.max_depth:
            raise IntakeRefused(f"{prefix or 'the hand-in'} is nested deeper than {self.limits.max_depth} levels")
        for raw in self.listing(dir_fd, prefix):
            name = clean_name(raw, self.limits.max_name_chars)
            rel = f"{prefix}{name}"
            info = os.stat(raw, dir_fd=dir_fd, follow_symlinks=False)
            if stat.S_ISLNK(info.st_mode):
                raise IntakeRefused(f"{rel} is a symbolic link (links are not accepted)")
            if stat.S_ISDIR(info.st_mode):
                self.dirs += 1
                if self.dirs > self.limits.max_dirs:
                    raise IntakeRefused(f"the hand-in has more than {self.limits.max_dirs} directories")
                sub = os.open(raw, _FLAGS_DIR, dir_fd=dir_fd)
                try:
                    self.directory(sub, rel + "/", depth + 1)
                finally:
                    os.close(sub)
            elif stat.S_ISREG(info.st_mode):
                self.file(dir_fd, raw, rel)
            else:
                raise IntakeRefused(f"{rel} is not a regular file (a device, pipe or socket)")
        self.ctime_ns = max(self.ctime_ns, os.fstat(dir_fd).st_ctime_ns)  # after its entries: a removal shows here

    def file(self, dir_fd: int, raw_name: str, rel: str) -> None:
        if len(self.files) >= self.limits.max_files:
            raise IntakeRefused(f"the hand-in has more than {self.limits.max_files} files")
        try:
            fd = os.open(raw_name, _FLAGS_FILE, dir_fd=dir_fd)
        except OSError as exc:  # ELOOP: replaced by a link since the stat
            raise IntakeRefused(f"{rel} cannot be opened safely ({exc.strerror})") from None
        try:
            data = _read_fd(fd, rel, min(self.limits.max_file_bytes, self.limits.max_total_bytes - self.total))
            self.ctime_ns = max(self.ctime_ns, os.fstat(fd).st_ctime_ns)  # after the read: any write before it shows
        finally:
            os.close(fd)
        self.total += len(data)
        self.files[rel] = data


@dataclass(frozen=True)
class Snapshot:
    """A hand-in read into memory: its files, the latest inode change (seconds since the epoch) of every file and
    directory of it taken after each was read, and the owner of its top directory."""

    files: dict[str, bytes]
    ctime_ns: int
    uid: int

    @property
    def changed_at(self) -> datetime:
        """``ctime_ns`` as a UTC time, rounded up to the microsecond (never earlier than the change)."""
        return EPOCH + timedelta(microseconds=-(-self.ctime_ns // 1000))


def read_snapshot(path: Path, limits: TreeLimits = TreeLimits()) -> Snapshot:
    """Every regular file under the directory ``path`` (itself not a link), read through one descriptor; or
    IntakeRefused.

    ``ctime_ns`` is never earlier than the last change of any byte read: each file's change time is taken from
    its open descriptor after it has been read, each directory's after its entries (a file removed or renamed
    away afterwards changes its directory), the top directory's last. (A write through a shared memory map
    may reach a file's change time up to the kernel's dirty-page writeback interval late.)"""
    try:
        fd = os.open(path, _FLAGS_DIR)
    except OSError as exc:
        raise IntakeRefused(f"the hand-in is not a directory one can open safely ({exc.strerror})") from None
    try:
        walk = _Walk(limits)
        walk.directory(fd, "", 0)
        return Snapshot(walk.files, walk.ctime_ns, os.fstat(fd).st_uid)
    finally:
        os.close(fd)


def read_tree(path: Path, limits: TreeLimits = TreeLimits()) -> dict[str, bytes]:
    """Every regular file under the directory ``path`` (itself not a link) → its bytes; or IntakeRefused."""
    return read_snapshot(path, limits).files


def tree_ctime(path: Path, limits: TreeLimits = TreeLimits()) -> float:
    """The latest inode change time of ``path`` and everything under it (links not followed, bounded like a
    read: at most ``max_files + max_dirs`` entries per directory, ``max_dirs`` directories).

    A student can make it later (touching a file), never earlier: the kernel sets ctime to the current
    time on every change, so it is the server's time of the hand-in's last change."""
    latest = os.lstat(path).st_ctime
    seen = 0
    stack = [(Path(path), 0)]
    while stack:
        directory, depth = stack.pop()
        with os.scandir(directory) as it:
            for entry in it:
                seen += 1
                if seen > limits.max_files + limits.max_dirs or depth > limits.max_depth:
                    return latest
                info = entry.stat(follow_symlinks=False)
                latest = max(latest, info.st_ctime)
                if stat.S_ISDIR(info.st_mode):
                    stack.append((directory / entry.name, depth + 1))
    return latest
