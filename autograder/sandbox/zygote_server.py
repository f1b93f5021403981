"""The kernel zygote: a Python with IPython's shell (and the sheet's imports) loaded, forking kernels into sandboxes.

Run as a script by :mod:`autograder.sandbox.zygote` (``python zygote_server.py``), as root, one per worker,
with a cleared environment; it imports nothing of the grader or the gradebook, never reads a
submission and never runs student code, so a fork of it holds nothing a student must not see.
It reads one JSON request per message on its socket (stdin and stdout are the same ``SOCK_SEQPACKET``
socket; a spawn request carries the kernel's end of its socket to the grader as ``SCM_RIGHTS``) and
answers one JSON message. Before any request it makes the executor's IPython shell
(:mod:`autograder.sandbox.executor`, loaded by path: it imports nothing of the grader either) and runs a few
cells in it, so that every kernel forked from here starts warm.

``{"op": "preload", "modules": [...]}`` imports trusted modules (the source notebook's imports, installed
in the grader's environment; one that fails to import is skipped and named in the answer).

``{"op": "spawn", ...}`` forks a kernel into the sandbox whose placeholder process is ``holder``
(a ``cat`` that bubblewrap started with every namespace, mount, cgroup and limit set up):

1. the zygote enters the holder's pid namespace for its children only (``setns``: its own processes stay
   where they are), forks the kernel, which is so born inside it, and returns to its own pid namespace
   for its children at once (checked; one fork per kernel, not an intermediate child that forks again);
2. the kernel (still root on the host) starts a new session, sends its output to the
   kernel's log, joins the sandbox's cgroups, sets the rlimits, drops supplementary groups, joins
   the holder's cgroup, ipc, uts, network and mount namespaces, then its user namespace, and says so
   to the zygote (or why it could not);
3. the kernel chroots into the holder's root, becomes uid/gid ``uid``/``gid``, drops every
   capability (bounding, ambient, permitted, effective; checked), sets no-new-privileges, takes the sandbox's environment, closes every inherited
   descriptor but its socket (as fd 3), reseeds numpy's global generator, and serves cells
   (:func:`autograder.sandbox.executor.serve`).

The answer is ``{"pid": <host pid of the kernel>}`` or ``{"error": "..."}``. The zygote forks only
while it is single-threaded (a fork of a threaded process may inherit a held lock); otherwise it
answers an error and the grader starts that kernel the ordinary way.
"""
from __future__ import annotations

import ctypes
import gc
import importlib
import importlib.util
import json
import os
import resource
import select
import shutil
import signal
import socket
import struct
import sys
import tempfile
import traceback
from typing import Any

NAMESPACES = {"cgroup": 0x02000000, "ipc": 0x08000000, "uts": 0x04000000, "net": 0x40000000, "mnt": 0x00020000}
CLONE_NEWPID = 0x20000000
CLONE_NEWUSER = 0x10000000
PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 4, 24, 38, 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
CAPABILITY_VERSION_3 = 0x20080522
LIBC = ctypes.CDLL(None, use_errno=True)
KERNEL_FD = 3
MAX_REQUEST = 1 << 20
# numpy's submodules loaded on first use, loaded once in the zygote instead of in every kernel: numpy.ma is loaded by
# np.unique, np.setdiff1d, np.isin and their kin (about 10 ms of every kernel that calls one, sheet03's folds)
LAZY_NUMPY = ("numpy.random", "numpy.linalg", "numpy.fft", "numpy.polynomial", "numpy.ma", "numpy.exceptions",
              "numpy.dtypes")
EXECUTOR: Any = None  # the executor module, loaded by path in serve()
SHELL: Any = None  # its shell, made once before the first fork
HOME_PID_NS: int | None = None  # the zygote's own pid namespace (a descriptor), for its children between spawns


class CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _setns(fd: int, kind: int, what: str) -> None:
    _check(LIBC.setns(fd, kind), f"setns {what}")


def _prctl(option: int, value: int) -> None:
    _check(LIBC.prctl(option, value, 0, 0, 0), f"prctl {option}")


def drop_capabilities() -> None:
    """Every capability gone: bounding, ambient, permitted, effective, inheritable (checked).

    Changing uid does not do it here: the kernel holds its capabilities in the sandbox's user
    namespace, whose root is not the uid it came from, so the kernel's "root to non-root" rule
    never fires (measured: uid 65534 with every capability, before this function existed)."""
    for cap in range(64):
        if LIBC.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() != 22:  # EINVAL: no such cap
            _check(-1, f"dropping capability {cap} from the bounding set")
    _check(LIBC.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clearing ambient capabilities")
    header, data = CapHeader(CAPABILITY_VERSION_3, 0), (CapData * 2)()
    _check(LIBC.capset(ctypes.byref(header), data), "capset")
    with open("/proc/self/status") as f:
        caps = {k: int(v, 16) for k, v in (line.split(":") for line in f if line.startswith("Cap"))}
    if any(caps.values()):
        raise OSError(f"capabilities left after dropping them: {caps}")


def start_time(pid: int) -> int:
    """When the process started (clock ticks since boot): a pid with the same start time is the same process."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


def _same_process(pid: int, started: int) -> None:
    if start_time(pid) != started:
        raise OSError(f"the sandbox's placeholder {pid} is gone")


def enter_sandbox(req: dict[str, Any]) -> None:
    """Step 2 (see the module doc): the kernel, born in the holder's pid namespace, joins the rest of the
    sandbox of ``req['holder']``."""
    os.setsid()
    log = os.open(req["log"], os.O_WRONLY | os.O_APPEND)
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    for group in req["cgroups"]:
        with open(os.path.join(group, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))
    for name, value in req["rlimits"].items():
        resource.setrlimit(getattr(resource, name), (value, value))
    os.setgroups([])
    holder = int(req["holder"])
    _same_process(holder, req["holder_start"])
    fds = {name: os.open(f"/proc/{holder}/ns/{name}", os.O_RDONLY) for name in (*NAMESPACES, "user")}
    root = os.open(f"/proc/{holder}/root", os.O_RDONLY | os.O_DIRECTORY)
    _same_process(holder, req["holder_start"])  # still alive, so the pid was not reused under our opens
    for name, kind in NAMESPACES.items():
        _setns(fds[name], kind, name)
    _setns(fds["user"], CLONE_NEWUSER, "user")
    os.fchdir(root)
    os.chroot(".")
    for fd in (*fds.values(), root, null, log):
        os.close(fd)


def become_kernel(req: dict[str, Any], channel: int) -> None:
    """Step 3: inside the sandbox, drop every privilege and run the kernel (does not return)."""
    gid, uid = int(req["gid"]), int(req["uid"])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    drop_capabilities()
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    _prctl(PR_SET_DUMPABLE, 1)  # as an exec'd kernel: its own /proc entries belong to it
    if os.getuid() != uid or os.geteuid() != uid:
        raise OSError("could not drop to the sandbox's uid")
    os.chdir(req["cwd"])
    os.environ.clear()
    os.environ.update(req["env"], PWD=req["cwd"])  # bwrap's --chdir sets PWD for an exec'd kernel
    if channel != KERNEL_FD:
        os.dup2(channel, KERNEL_FD)
    os.closerange(KERNEL_FD + 1, 65536)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL)
    if "numpy" in sys.modules:  # a fork shares the zygote's generator state: every kernel gets its own
        sys.modules["numpy"].random.seed()
    EXECUTOR.serve(KERNEL_FD, SHELL)


def _fork_into(holder: int, started: int) -> int:
    """Step 1: fork with the child born in the pid namespace of ``holder`` (checked to be the same process
    after its namespace was opened: a reused pid is never entered); 0 in the child. A zygote that cannot
    return to its own pid namespace exits (the grader starts another): it never forks into a stale one."""
    assert HOME_PID_NS is not None
    target = os.open(f"/proc/{holder}/ns/pid", os.O_RDONLY)
    child = -1
    try:
        _same_process(holder, started)
        _setns(target, CLONE_NEWPID, "pid")
        child = os.fork()
    finally:
        if child == 0:
            os.close(target)
            os.close(HOME_PID_NS)
        else:
            os.close(target)
            try:
                _setns(HOME_PID_NS, CLONE_NEWPID, "pid (back home)")
            except OSError:
                os._exit(1)
    return child


def spawn(req: dict[str, Any], fds: list[int]) -> dict[str, Any]:
    threads = len(os.listdir("/proc/self/task"))
    if threads != 1:
        return {"error": f"the zygote runs {threads} threads; it forks only while single-threaded"}
    holder, started = int(req["holder"]), req["holder_start"]
    _same_process(holder, started)  # early (checked again around the opens)
    if len(fds) != 1:
        return {"error": "a spawn request carries exactly one socket"}
    report_r, report_w = os.pipe()
    try:
        kernel = _fork_into(holder, started)
    except BaseException:
        os.close(report_r)
        os.close(report_w)
        raise
    if kernel == 0:
        os.close(report_r)
        try:
            enter_sandbox(req)
            os.write(report_w, b"ok")
        except BaseException as exc:  # reported to the grader: the kernel falls back to an ordinary start
            os.write(report_w, json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode())
            os._exit(1)
        try:
            os.close(report_w)
            become_kernel(req, fds[0])
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    os.close(report_w)
    data = b""
    while chunk := os.read(report_r, 4096):
        data += chunk
    os.close(report_r)
    if data == b"ok":
        return {"pid": kernel}
    return json.loads(data) if data else {"error": "the forked kernel died before it entered the sandbox"}


def load_executor() -> None:
    """The executor (by path, next to this file) and its shell, warmed up; IPython's directory is a scratch one."""
    global EXECUTOR, SHELL
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "executor.py")
    spec = importlib.util.spec_from_file_location("mlph_executor", path)
    assert spec is not None and spec.loader is not None
    EXECUTOR = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(EXECUTOR)
    scratch = tempfile.mkdtemp(prefix="mlph-zygote-ipython-")
    try:
        SHELL = EXECUTOR.make_shell(scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def preload(modules: list[str]) -> dict[str, Any]:
    failed = []
    for module in modules:  # one that cannot load here is left to the kernel's own preload
        try:
            importlib.import_module(module)
        except Exception:
            failed.append(module)
    if "numpy" in sys.modules:  # what numpy loads lazily (numpy.random: every kernel reseeds it) loaded here, once
        for module in LAZY_NUMPY:
            try:
                importlib.import_module(module)
            except Exception:
                pass
        EXECUTOR.warm_up(SHELL, EXECUTOR.NUMPY_WARM_UP)
    settle_heap()
    return {"ok": True, "failed": failed}


def settle_heap() -> None:
    """Everything loaded so far out of the garbage collector's sight (``gc.freeze``): a forked kernel's
    collections then never walk (and so never copy, page by page) the zygote's modules, which it shares
    copy-on-write. Measured: 0.014 CPU-seconds less per kernel on sheet01 (one in six of its cells' work)."""
    gc.collect()
    gc.freeze()


def answer(sock: socket.socket) -> bool:
    """Read one request from ``sock`` and answer it; False when the other side has gone."""
    try:
        data, fds, _, _ = socket.recv_fds(sock, MAX_REQUEST, 1)
    except OSError:
        return False
    if not data:
        return False
    try:
        req = json.loads(data)
        reply = preload(req["modules"]) if req["op"] == "preload" else spawn(req, fds)
    except Exception as exc:
        reply = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        for fd in fds:
            os.close(fd)
    try:
        sock.sendall(json.dumps(reply).encode())
    except OSError:
        return False
    return True


def _admit(listener: socket.socket) -> socket.socket | None:
    """A worker's connection to a shared zygote, if it comes from this zygote's own user (root)."""
    try:
        conn, _ = listener.accept()
    except OSError:
        return None
    _pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    if uid != os.geteuid():
        conn.close()
        return None
    return conn


def serve(listen_fd: int | None = None) -> None:
    """Answer requests on stdin (the grader that started the zygote: when it is gone, even kill -9'd, the zygote
    exits) and, when ``listen_fd`` is given (a zygote shared by a grader's workers), on every connection
    accepted there, one request at a time."""
    global HOME_PID_NS
    HOME_PID_NS = os.open("/proc/self/ns/pid", os.O_RDONLY)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # kernels are the zygote's children: reaped as they exit
    load_executor()
    settle_heap()
    owner = socket.socket(fileno=0)
    owner.sendall(json.dumps({"ready": True}).encode())
    listener = socket.socket(fileno=listen_fd) if listen_fd is not None else None
    conns: dict[int, socket.socket] = {owner.fileno(): owner}
    poller = select.poll()
    poller.register(owner, select.POLLIN)
    if listener is not None:
        poller.register(listener, select.POLLIN)
    while True:
        for fd, _event in poller.poll():
            if listener is not None and fd == listener.fileno():
                conn = _admit(listener)
                if conn is not None:
                    conns[conn.fileno()] = conn
                    poller.register(conn, select.POLLIN)
            elif not answer(conns[fd]):
                if fd == owner.fileno():
                    return
                poller.unregister(fd)
                conns.pop(fd).close()


if __name__ == "__main__":
    sys.path.pop(0)  # this file's directory: nothing of the grader is importable from a kernel
    serve(int(sys.argv[2]) if sys.argv[1:2] == ["--listen"] else None)
