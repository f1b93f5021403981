"""Kernels forked from the zygote get exactly the sandbox an ordinary (exec'd) sandboxed kernel gets."""
from __future__ import annotations

import ast
import os
import re
import time

import pytest

from autograder.sandbox import kernels, zygote
from autograder.sandbox.zygote import ZygoteUnavailable
from test_sandbox_confines_kernel import run_cells

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the zygote is used only by a grader running as root")

PROBES = (
    "import os; print(os.getuid(), os.getgid(), os.getgroups(), os.getcwd())",
    "print([l.strip() for l in open('/proc/self/status') if l.startswith(('Cap', 'NoNewPrivs', 'Seccomp'))])",
    "print([l for l in open('/proc/self/limits') if l.startswith(('Max address', 'Max file size', 'Max core', "
    "'Max processes'))])",
    "print(open('/proc/self/cgroup').read())",
    "print(sorted(os.environ.items()))",
    "print(sorted(l.split()[4] for l in open('/proc/self/mountinfo')))",
    "import subprocess; print(subprocess.run(['unshare', '-U', 'true'], capture_output=True).returncode != 0)",
    "print(sorted(open(f'/proc/{p}/comm').read().strip() for p in os.listdir('/proc') if p.isdigit()))",
    "print(os.getppid())",
)


def _probe(monkeypatch: pytest.MonkeyPatch, use_zygote: bool) -> list[str]:
    monkeypatch.setenv("MLPH_KERNEL_ZYGOTE", "1" if use_zygote else "0")
    return run_cells(*PROBES)


def test_a_forked_kernel_has_the_same_sandbox_as_an_execd_one(monkeypatch):
    execd, forked = _probe(monkeypatch, False), _probe(monkeypatch, True)
    assert execd[-1] == "1" and forked[-1] == "0"  # exec'd: a child of bwrap's init; forked: its parent is outside
    assert forked[0] == execd[0] == "65534 65534 [] /home/student"
    assert "CapEff:\\t0000000000000000" in forked[1] and "NoNewPrivs:\\t1" in forked[1]
    for probe, a, b in zip(PROBES[:-2], execd, forked):
        same = re.compile(r"mlph-sandbox-k[0-9a-f]+")  # each sandbox's own sockets directory
        assert same.sub("SANDBOX", a) == same.sub("SANDBOX", b), probe  # capabilities, rlimits, cgroups, environment, mounts, no user namespaces
    assert forked[6] == "True"
    # inside the pid namespace: bwrap's init, the placeholder and the kernel (and the probe's own ps) only
    assert set(ast.literal_eval(forked[7])) <= {"bwrap", "cat", "python", "python3"}


def test_forked_kernels_do_not_share_random_state(monkeypatch):
    monkeypatch.setenv("MLPH_KERNEL_ZYGOTE", "1")
    draw = "import numpy, random; print(numpy.random.randint(2**62), random.getrandbits(62))"
    first, second = (run_cells(draw, "import os; print(os.getppid())") for _ in range(2))
    assert first[1] == second[1] == "0"
    a, b = first[0].split(), second[0].split()
    assert a[0] != b[0] and a[1] != b[1]


def test_without_the_zygote_a_kernel_starts_the_ordinary_way(monkeypatch):
    """A zygote that cannot help (here: no placeholder found; also a dead or threaded zygote) costs time,
    never a submission; and a zygote that died is replaced for the next kernel."""
    monkeypatch.setenv("MLPH_KERNEL_ZYGOTE", "1")

    def no_holder(pid: int, timeout: float = 10.0) -> int:
        raise ZygoteUnavailable("test: no placeholder")

    with monkeypatch.context() as m:
        m.setattr(kernels, "find_holder", no_holder)
        assert run_cells("import os; print(os.getppid(), os.getuid())") == ["1 65534"]
    run_cells("pass")
    z = zygote.zygote()
    z.proc.kill()
    z.proc.wait()
    assert run_cells("import os; print(os.getppid(), os.getuid())") == ["0 65534"]
    assert zygote.zygote() is not z


def test_the_zygote_holds_nothing_of_the_grader(monkeypatch):
    monkeypatch.setenv("MLPH_KERNEL_ZYGOTE", "1")
    monkeypatch.setenv("PGPASSWORD", "secret")
    zygote.close_zygote()
    run_cells("pass")
    pid = zygote.zygote().proc.pid
    env = dict(item.split("=", 1) for item in open(f"/proc/{pid}/environ").read().split("\0") if item)
    assert "PGPASSWORD" not in env and not any(k.startswith("MLPH") for k in env)
    assert os.readlink(f"/proc/{pid}/cwd") == "/"
    fds = {fd: os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    assert sorted(fds) == ["0", "1", "2", "3"]  # its socket (stdin, stdout), /dev/null, and:
    assert fds["3"] == os.readlink(f"/proc/{pid}/ns/pid")  # its own pid namespace, to return to after each fork


def test_the_zygote_refuses_a_placeholder_whose_pid_was_reused(tmp_path):
    """The placeholder's pid is checked with its start time before and after its namespaces are opened:
    a pid reused by another process (another student's sandbox) is never entered."""
    z = zygote.zygote()
    log = tmp_path / "kernel.log"
    log.touch()
    with pytest.raises(ZygoteUnavailable, match="placeholder .* is gone"):
        z.ask({"op": "spawn", "holder": os.getpid(), "holder_start": zygote.start_time(os.getpid()) + 1,
               "log": str(log), "cgroups": [], "rlimits": {}, "uid": 65534, "gid": 65534, "argv": [],
               "env": {}, "cwd": "/"})
    assert z.alive()


def test_the_zygote_forks_into_the_sandbox_and_returns_to_its_own_pid_namespace(monkeypatch):
    """The kernel is born in its sandbox's pid namespace (one fork); the zygote's next child would be born in
    the zygote's own namespace again, never in the last sandbox's."""
    monkeypatch.setenv("MLPH_KERNEL_ZYGOTE", "1")
    inside = run_cells("import os; print(os.getpid(), os.getppid(), os.readlink('/proc/self/ns/pid'))")[0].split()
    pid = zygote.zygote().proc.pid
    assert int(inside[0]) < 10 and inside[1] == "0"  # a low pid of the sandbox's namespace; its parent outside
    assert inside[2] != os.readlink(f"/proc/{pid}/ns/pid")
    assert os.readlink(f"/proc/{pid}/ns/pid_for_children") == os.readlink(f"/proc/{pid}/ns/pid")


def test_a_zygote_shared_by_workers_forks_the_same_sandbox_and_admits_only_root(monkeypatch):
    """The grader's one zygote for all its workers: a worker reaches it over a socket in a root-only directory,
    its kernels get what a worker's own zygote's kernels get (the probes, and no descriptor of the zygote's
    sockets), and a process of another uid that reaches the socket is not answered."""
    import subprocess
    import sys

    from autograder.sandbox.kernels import start_shared_zygote

    monkeypatch.setenv("MLPH_KERNEL_ZYGOTE", "1")
    fds = "import os; print(sorted(int(f) for f in os.listdir('/proc/self/fd')))"
    zygote.close_zygote()
    own = run_cells(*PROBES[:-1], fds)
    shared = start_shared_zygote(("numpy",))
    assert shared is not None and shared.path is not None
    try:
        assert oct(os.stat(os.path.dirname(shared.path)).st_mode & 0o777) == "0o700"
        zygote.close_zygote()
        zygote.share_zygote(shared.path)
        via_shared = run_cells(*PROBES[:-1], fds)
        assert zygote.zygote().proc is None  # the worker's zygote is the shared one's connection
        same = re.compile(r"mlph-sandbox-k[0-9a-f]+")
        for probe, a, b in zip((*PROBES[:-2], fds), own[:-2] + own[-1:], via_shared[:-2] + via_shared[-1:]):
            assert same.sub("SANDBOX", a) == same.sub("SANDBOX", b), probe
        # another uid that could reach the socket (here: the directory opened for the test) gets no answer
        os.chmod(os.path.dirname(shared.path), 0o755)
        os.chmod(shared.path, 0o777)
        stranger = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c",
             "import socket, sys; s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.connect(sys.argv[1]); "
             "s.settimeout(5)\n"
             "try:\n    s.send(b'{\"op\": \"preload\", \"modules\": []}')\n    d = s.recv(100)\n"
             "    print(repr(d) if d else 'closed')\nexcept (ConnectionResetError, BrokenPipeError):\n"
             "    print('closed')",
             shared.path], capture_output=True, text=True, timeout=30)
        assert stranger.stdout.strip() == "closed", stranger.stderr  # closed unanswered
        assert shared.alive() and zygote.zygote().ask({"op": "preload", "modules": []})["ok"]
    finally:
        zygote.share_zygote(None)
        zygote.close_zygote()
        shared.close()
    assert not os.path.exists(os.path.dirname(shared.path))


def test_a_killed_graders_shared_zygote_directory_is_swept_and_a_live_one_kept():
    """A grader killed with SIGKILL cannot remove its shared zygote's directory; the next grader removes it once
    it is stale and nothing listens there, never the directory of a zygote that still serves (another grader's)."""
    from autograder.sandbox.kernels import start_shared_zygote

    live, dead = start_shared_zygote(), start_shared_zygote()
    assert live is not None and dead is not None and live.path and dead.path
    try:
        assert dead.proc is not None
        dead.proc.kill()  # as when its grader is kill -9'd: the directory stays
        dead.proc.wait()
        assert os.path.exists(dead.path)
        zygote.sweep_stale_zygotes()
        assert os.path.exists(dead.path)  # not stale yet: it may be a grader's that is starting
        zygote.sweep_stale_zygotes(now=time.time() + zygote.STALE_AFTER + 1)
        assert not os.path.exists(os.path.dirname(dead.path))
        assert os.path.exists(live.path) and live.alive()
    finally:
        live.close()
        dead.close()
