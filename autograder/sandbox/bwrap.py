"""The sandbox a student's kernel runs in: bubblewrap, an unprivileged uid, cgroup and rlimit limits.

One :class:`Sandbox` per kernel. :meth:`Sandbox.launch` starts

``prlimit`` (address space, file size, core dumps, processes when there is no pids cgroup) → ``setpriv``
(uid/gid 65534, no groups, no new privileges; only when run as root) → ``bwrap`` (new user, pid, network,
ipc, uts and mount namespaces; the system read-only; a private size-limited /tmp and home;
nothing else of the host: not the course, not the gradebook, not the configuration, not other
submissions, not the grader's own files) → the kernel (or the zygote's placeholder).

The cgroups are joined from the grader, not by a shell in the chain (:meth:`Sandbox.start`): the chain's
process is moved into them while bwrap waits for the rest of its options on ``--args``, before it clones
the sandbox, so everything in the sandbox is inside and its cgroup namespace is rooted at its own cgroup.
(bwrap's ``--info-fd`` and ``--json-status-fd`` speak only after that clone.) The rlimits stay with
``prlimit``: this grader's root has no ``CAP_SYS_RESOURCE`` (a container), so it cannot set them on a
process of uid 65534 from outside, and a process may only lower its own. The uid stays with
``setpriv``: subprocess's ``user=``/``group=``/``extra_groups=`` make CPython fork the grader instead of
vfork()ing it, measured 5.2 ms CPU per start against 1.9 ms with the exec of ``setpriv``.

The kernel talks to the grader over one end of a socket pair it inherits (or receives from the zygote):
no file, no listening socket; it has no network at all. When the kernel's bwrap is killed, the pid namespace
goes with it, so every process the submission started is gone; :meth:`Sandbox.close` also kills
whatever is left in its cgroups and removes them.
"""
from __future__ import annotations

import functools
import math
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any
from pathlib import Path

from autograder.errors import SandboxUnavailable
from autograder.limits import Limits

NOBODY = 65534
HOME = "/home/student"
CGROUP_ROOT = Path("/sys/fs/cgroup")
CPU_PERIOD = 100_000  # µs; quota = period: one core per sandbox
SANDBOX_PREFIX = "mlph-sandbox-"
# One BLAS thread per kernel: the workers already run one kernel per core, and oversubscribed
# OpenBLAS threads made parallel grading slower than serial.
SINGLE_THREADED = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
STALE_AFTER = 60.0  # seconds: a sandbox's cgroup holds its kernel within milliseconds of being made
INSTALL_HINT = ("bubblewrap (bwrap) is not installed or does not work here: run `bash scripts/bootstrap.sh` "
                "(it installs the Debian package `bubblewrap`). To grade trusted notebooks without a sandbox, "
                "pass --unsafe-no-sandbox.")
# uid/gid 65534, no groups, no new privileges (as root). Not subprocess's user=/group=/extra_groups=: with them
# CPython forks the grader's process instead of vfork()ing it, measured 5.2 ms CPU against 1.9 ms for this exec.
DROP_PRIVILEGES = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--no-new-privs", "--"]


def is_root() -> bool:
    return os.geteuid() == 0


@functools.cache
def working_bwrap() -> str:
    """:func:`check_bwrap`, once per process: every kernel needs the path, not a new probe."""
    return check_bwrap()


def prepare_sandboxes() -> None:
    """Before a grading run: bwrap works here, and what a killed earlier run left is swept."""
    check_bwrap()
    sweep_stale()


def check_bwrap() -> str:
    """The path of a working bwrap, or :class:`SandboxUnavailable` with what to do."""
    path = shutil.which("bwrap")
    if path is None:
        raise SandboxUnavailable(INSTALL_HINT)
    probe = subprocess.run([path, "--unshare-all", "--ro-bind", "/", "/", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        raise SandboxUnavailable(f"{INSTALL_HINT}\nbwrap said: {probe.stderr.strip()[:300]}")
    if is_root():
        reach = subprocess.run([*DROP_PRIVILEGES, "test", "-x", sys.executable], capture_output=True)
        if reach.returncode != 0:
            raise SandboxUnavailable(f"the sandbox's uid {NOBODY} cannot reach {sys.executable}: a directory above it "
                                     "is closed to others; `bash scripts/bootstrap.sh` opens them for traversal "
                                     "(chmod o+x, no listing)")
    return path


def _cgroup_parents() -> dict[str, Path]:
    """Writable cgroup directories for cpu, memory and pids (v2 unified or v1 per controller); may be empty."""
    if not is_root():
        return {}
    if (CGROUP_ROOT / "cgroup.controllers").is_file():  # cgroup v2
        base = CGROUP_ROOT / "mlph"
        try:
            base.mkdir(exist_ok=True)
            for d in (CGROUP_ROOT, base):
                (d / "cgroup.subtree_control").write_text("+cpu +memory +pids")
        except OSError:
            return {}
        return {"v2": base}
    found = {}
    for ctl in ("cpu", "memory", "pids"):
        base = CGROUP_ROOT / ctl / "mlph"
        try:
            base.mkdir(exist_ok=True)
        except OSError:
            continue
        found[ctl] = base
    return found


class Cgroups:
    """The sandbox's own cgroups: one CPU at most, memory (tmpfs counts as memory), number of tasks."""

    def __init__(self, limits: Limits, name: str) -> None:
        self.dirs: list[Path] = []
        self.pids = False  # a pids controller holds the process limit (else prlimit's RLIMIT_NPROC does)
        for kind, parent in _cgroup_parents().items():
            d = parent / name
            d.mkdir()
            self.dirs.append(d)
            if kind in ("v2", "memory"):
                limit = "memory.max" if kind == "v2" else "memory.limit_in_bytes"
                (d / limit).write_text(str(limits.memory_bytes))
                swap = d / ("memory.swap.max" if kind == "v2" else "memory.memsw.limit_in_bytes")
                if swap.exists():  # no escape into swap (v1: memory + swap, at least the memory limit)
                    swap.write_text("0" if kind == "v2" else str(limits.memory_bytes))
            if kind in ("v2", "cpu"):  # a fork bomb spins on one core, never on the whole machine
                if kind == "v2":
                    (d / "cpu.max").write_text(f"{CPU_PERIOD} {CPU_PERIOD}")
                else:
                    (d / "cpu.cfs_period_us").write_text(str(CPU_PERIOD))
                    (d / "cpu.cfs_quota_us").write_text(str(CPU_PERIOD))
            if kind in ("v2", "pids"):
                (d / "pids.max").write_text(str(limits.max_processes))
                self.pids = True

    def join(self, pid: int) -> None:
        """Move the process ``pid`` into every cgroup of the sandbox (OSError if it cannot be)."""
        for d in self.dirs:
            (d / "cgroup.procs").write_text(str(pid))

    def pids_inside(self) -> set[int]:
        found: set[int] = set()
        for d in self.dirs:
            try:
                found |= {int(p) for p in (d / "cgroup.procs").read_text().split()}
            except OSError:
                continue
        return found

    def kill_all(self, wait: float = 5.0) -> None:
        """Kill every process inside and wait (up to ``wait`` s) until they are gone."""
        deadline = time.monotonic() + wait
        while (pids := self.pids_inside()) and time.monotonic() < deadline:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)

    def close(self) -> None:
        """Kill everything still inside, then remove the cgroups."""
        self.kill_all()
        for d in self.dirs:
            deadline = time.monotonic() + 5.0  # a killed process leaves its cgroup once its parent reaped it
            while True:
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        break  # left for sweep_stale
                    time.sleep(0.02)


def sweep_stale() -> int:
    """Remove what sandboxes of a killed grader (``kill -9``) left: cgroups without processes and their
    directories, older than a minute (so never those of a concurrent run). The number removed."""
    removed = 0
    now = time.time()
    for parent in _cgroup_parents().values():
        for d in parent.glob("k*"):
            try:
                if (d / "cgroup.procs").read_text().strip() or now - d.stat().st_mtime < STALE_AFTER:
                    continue
                d.rmdir()
            except OSError:
                continue
            removed += 1
            shutil.rmtree(Path(tempfile.gettempdir()) / f"{SANDBOX_PREFIX}{d.name}", ignore_errors=True)
    return removed


def _tasks_of(uid: int) -> int:
    """Tasks (threads included) the uid runs now: the grader's own user shares RLIMIT_NPROC with them."""
    count = 0
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and proc.stat().st_uid == uid:
                count += len(os.listdir(proc / "task"))
        except OSError:
            continue
    return count


def _system_binds() -> list[str]:
    args: list[str] = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    for etc in ("/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives"):
        if os.path.exists(etc):
            args += ["--ro-bind", etc, etc]
    return args


def _python_binds() -> list[str]:
    """The Python environment, read-only at its own path (after the tmpfs mounts: a venv may live in /tmp)."""
    args: list[str] = []
    for prefix in sorted({sys.prefix, sys.base_prefix}):
        if not prefix.startswith("/usr/"):
            args += ["--ro-bind", prefix, prefix]
    return args


class Sandbox:
    """Directories, cgroups and the command line for one sandboxed kernel (created by the worker)."""

    def __init__(self, limits: Limits, bwrap: str) -> None:
        self.limits = limits
        self.bwrap = bwrap
        # The sandbox's bwrap runs as the kernel's uid and starts in this directory: traversable (0711, not
        # listable); it holds only the kernel's log, root's.
        name = f"k{uuid.uuid4().hex[:12]}"
        self.root = Path(tempfile.gettempdir()) / f"{SANDBOX_PREFIX}{name}"
        self.root.mkdir(mode=0o700)
        if is_root():
            self.root.chmod(0o711)
        self.cgroups = Cgroups(limits, name)

    @property
    def workdir(self) -> str:
        return HOME

    def prlimits(self) -> list[str]:
        flags = {"RLIMIT_AS": "--as", "RLIMIT_FSIZE": "--fsize", "RLIMIT_CORE": "--core", "RLIMIT_NPROC": "--nproc"}
        return ["prlimit", *(f"{flags[name]}={value}" for name, value in self.rlimits().items()), "--"]

    def rlimits(self) -> dict[str, int]:
        """Per-process limits, by :mod:`resource` name (the same for an exec'd and a zygote-forked kernel)."""
        lim = self.limits
        found = {"RLIMIT_AS": lim.memory_bytes, "RLIMIT_FSIZE": lim.file_bytes, "RLIMIT_CORE": 0}
        if not self.cgroups.pids:  # RLIMIT_NPROC counts every task of the uid, not only the sandbox's
            base = 0 if is_root() else _tasks_of(os.getuid())
            found["RLIMIT_NPROC"] = base + lim.max_processes
        return found

    def env(self) -> dict[str, str]:
        """The kernel's whole environment (nothing of the grader's)."""
        return {"HOME": HOME, "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "LANG": "C.UTF-8",
                "TMPDIR": "/tmp", "MPLBACKEND": "Agg", "MPLCONFIGDIR": "/tmp/matplotlib", "IPYTHONDIR": "/tmp/ipython",
                "JUPYTER_RUNTIME_DIR": "/tmp/jupyter", "PYTHONDONTWRITEBYTECODE": "1", **SINGLE_THREADED}

    def command(self, cmd: list[str], args_fd: int) -> list[str]:
        """The command line running ``cmd`` in the sandbox: ``prlimit`` → ``setpriv`` (as root) → ``bwrap``, which
        reads the rest of its options (the system's mounts) from ``args_fd`` before it clones anything."""
        lim = self.limits
        tmpfs = [arg for path in ("/dev/shm", "/tmp", HOME) for arg in ("--size", str(lim.tmp_bytes), "--tmpfs", path)]
        bwrap = [self.bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
                 "--new-session", "--hostname", "sandbox", "--args", str(args_fd), "--proc", "/proc", "--dev", "/dev",
                 *tmpfs, *_python_binds(), "--chdir", HOME,
                 "--clearenv"]
        for key, value in self.env().items():
            bwrap += ["--setenv", key, value]
        return [*self.prlimits(), *(DROP_PRIVILEGES if is_root() else []), *bwrap, "--", *cmd]

    def start(self, cmd: list[str], pass_fds: tuple[int, ...] = (), **popen: Any) -> subprocess.Popen[bytes]:
        """Run ``cmd`` in the sandbox (``popen``: further :class:`subprocess.Popen` arguments): start the chain,
        move it into the sandbox's cgroups, then send bwrap the rest of its options. bwrap reads them (its
        ``--args``) before it clones the sandbox, so the sandbox's cgroup namespace is rooted at its own cgroup and
        everything in it is inside. Without the system's mounts nothing can run in it: a grader that dies
        before it sends them leaves a sandbox that exits at once."""
        args_r, args_w = os.pipe()
        try:
            proc = subprocess.Popen(self.command(cmd, args_r), pass_fds=(*pass_fds, args_r), **popen)
        except BaseException:
            os.close(args_w)
            raise
        finally:
            os.close(args_r)
        try:
            self.cgroups.join(proc.pid)  # the same pid from prlimit to bwrap; nothing has forked yet
            os.write(args_w, "".join(f"{arg}\0" for arg in _system_binds()).encode())
        except BaseException as exc:
            proc.kill()  # before the pipe closes: an empty --args would let bwrap go on (it has not forked yet)
            proc.wait()
            if isinstance(exc, OSError):
                raise SandboxUnavailable(f"could not put the sandbox into its cgroups: {exc}") from None
            raise
        finally:
            os.close(args_w)
        return proc

    def close(self) -> None:
        self.cgroups.close()
        shutil.rmtree(self.root, ignore_errors=True)


def readable(sources: list[Any], timeout: float | None) -> set[int]:
    """The file descriptors among ``sources`` (numbers, objects with ``fileno()``, or None) that are readable or hung
    up within ``timeout`` seconds (None: wait for ever). poll(2), not select(2): a grader process that holds
    more than 1024 descriptors (a web server with many connections) must still wait on its kernels."""
    poller = select.poll()
    for source in sources:
        if source is None:  # e.g. a kernel's process handle after it was closed
            continue
        poller.register(source if isinstance(source, int) else source.fileno(), select.POLLIN)
    wait_ms = None if timeout is None else max(0, math.ceil(timeout * 1000))
    return {fd for fd, _event in poller.poll(wait_ms)}
