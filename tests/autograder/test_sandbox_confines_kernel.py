"""The sandbox itself, probed from inside a real sandboxed kernel (bubblewrap, uid, limits, cleanup)."""
from __future__ import annotations

import json
import os
import sys
import time
import subprocess
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

from autograder.cli import main
from autograder.errors import SandboxUnavailable
from autograder.grading.execute import execute_notebook
from autograder.limits import MiB, Limits
from autograder.sandbox.bwrap import check_bwrap

REPO = Path(__file__).resolve().parents[1]
LIMITS = Limits(cell_timeout=10, notebook_timeout=60, interrupt_grace=2, memory_bytes=1024 * MiB,
                max_processes=48, file_bytes=8 * MiB, tmp_bytes=64 * MiB)


def run_cells(*sources: str, sandboxed: bool = True, limits: Limits = LIMITS) -> list[str]:
    """Each cell's text output (stdout, or the error as 'ename: evalue')."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    run = execute_notebook(json.loads(nbformat.writes(nb)), limits, {"helper.py": "X = 42\n"}, sandboxed=sandboxed)
    texts = []
    for cell in run["notebook"].cells:
        out = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        out += "".join(f"{o.ename}: {o.evalue}" for o in cell.outputs if o.output_type == "error")
        texts.append(out.strip())
    return texts


def test_the_kernel_sees_only_the_system_and_its_own_files(tmp_path):
    secret = REPO / "source"
    out = run_cells(
        "import os; print(os.getuid(), os.getgid(), os.getcwd(), sorted(os.listdir('.')))",
        f"print(os.path.exists({str(secret)!r}), os.path.exists({str(REPO / 'nbgrader_config.py')!r}), "
        "os.path.exists('/root'), os.path.exists('/var/lib/postgresql'))",
        "print(sorted(os.listdir('/')))",
        f"print(sorted(os.listdir({str(Path(sys.prefix).parent)!r})))",
        "print(sorted(k for k in os.environ if k.startswith(('MLPH', 'JPY', 'PG', 'SUDO'))))",
        "import helper; print(helper.X)",
        "open('/usr/lib/os-release', 'a')",
    )
    assert out[0] == "65534 65534 /home/student ['helper.py']"
    assert out[1] == "False False False False"
    # the Python environment is bound at its own path, whatever directory the course was cloned into
    venv_top = Path(sys.prefix).parts[1]
    assert set(json.loads(out[2].replace("'", '"'))) <= {"bin", "dev", "etc", "home", "lib", "lib32", "lib64",
                                                        "libx32", "proc", "run", "sbin", "tmp", "usr", venv_top}
    assert out[3] == repr([Path(sys.prefix).name])  # next to the venv: nothing of the course
    assert out[4] == "[]"
    assert out[5] == "42"
    assert "Read-only file system" in out[6] or "Permission denied" in out[6]


def test_no_network_not_even_loopback():
    out = run_cells(
        "import socket\ntry:\n    socket.create_connection(('127.0.0.1', 5432), timeout=2)\n    print('connected')\n"
        "except OSError as e:\n    print(type(e).__name__)",
        "print(sorted(i[1] for i in socket.if_nameindex()))",
    )
    assert out[0] in ("ConnectionRefusedError", "OSError")  # nothing listens in the empty network namespace
    assert out[1] == "['lo']"


def test_memory_file_size_and_tmp_limits():
    out = run_cells(
        "a = bytearray(30 * 2**30)",                                      # 30 GB: refused, kernel survives
        "open('big.bin', 'wb').write(b'x' * (9 * 2**20))",                # over file_bytes
        "import os\nfor i in range(20):\n    open(f'/tmp/f{i}', 'wb').write(b'y' * (7 * 2**20))",  # over tmp_bytes
        "for i in range(20):\n    open(f'/dev/shm/f{i}', 'wb').write(b'y' * (7 * 2**20))",
        "print('alive')",
    )
    assert out[0].startswith("MemoryError")
    assert "File too large" in out[1]
    assert "No space left on device" in out[2] and "No space left on device" in out[3]
    assert out[4] == "alive"


def test_memory_is_capped_for_all_processes_together():
    """Each process stays under the address-space limit; together they exceed the sandbox's memory."""
    out = run_cells(
        "import subprocess, sys\ngrab = 'b = bytearray(400 * 2**20); b[::4096] = bytes(len(b[::4096])) ; "
        "import time; time.sleep(4)'\nkids = [subprocess.Popen([sys.executable, '-c', grab]) for _ in range(4)]\n"
        "print(sorted(k.wait() for k in kids))",
        "print('alive')",
    )
    codes = json.loads(out[0])
    assert -9 in codes  # the out-of-memory killer took at least one of them, inside the sandbox only
    assert out[1] == "alive"


def test_a_killed_graders_leftovers_are_swept(monkeypatch):
    from autograder.sandbox import bwrap as sandbox

    box = sandbox.Sandbox(LIMITS, "true")  # made, never run: as if the grader died at once
    assert box.root.is_dir() and box.cgroups.dirs
    monkeypatch.setattr(sandbox, "STALE_AFTER", 0.0)
    assert sandbox.sweep_stale() >= 1
    assert not box.root.exists() and not any(d.exists() for d in box.cgroups.dirs)


def test_every_process_is_gone_afterwards_and_fork_bombs_are_contained():
    marker = "987654.321"
    out = run_cells(
        f"import subprocess, os\nsubprocess.Popen(['setsid', 'sh', '-c', 'sleep {marker} & sleep {marker}'])\n"
        f"os.system('nohup sleep {marker} >/dev/null 2>&1 &'); print('started')",
        "import os, time, signal\nkids = []\nfor _ in range(200):\n    try:\n        pid = os.fork()\n"
        "    except OSError:\n        break\n    if pid == 0:\n        time.sleep(30)\n        os._exit(0)\n"
        "    kids.append(pid)\nfor pid in kids:\n    os.kill(pid, signal.SIGKILL)\n    os.waitpid(pid, 0)\n"
        "print(len(kids))",
        "print(len([p for p in os.listdir('/proc') if p.isdigit()]))",
    )
    assert out[0] == "started"
    assert 10 < int(out[1]) < LIMITS.max_processes  # the pids limit stopped the forks, not the loop
    assert int(out[2]) < LIMITS.max_processes       # the kernel sees only its own sandbox's processes
    left = subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True, text=True)
    assert left.stdout == ""


def test_the_unsafe_mode_runs_as_the_grader():
    out = run_cells("import os; print(os.getuid())", sandboxed=False)
    assert out[0] == str(os.getuid())


def test_a_missing_bwrap_stops_autograde_with_advice(course_factory, monkeypatch):
    cfg = course_factory()
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(SandboxUnavailable, match="bubblewrap"):
        check_bwrap()
    result = CliRunner().invoke(main, ["autograde", "tiny01"], env={"MLPH_ROOT": str(cfg.root), "PATH": "/nonexistent"})
    assert result.exit_code == 2
    assert "bubblewrap (bwrap) is not installed" in result.output and "--unsafe-no-sandbox" in result.output


NON_ROOT_RUN = """
import json, sys
sys.path.insert(0, {repo!r})
import nbformat
from autograder.grading.execute import execute_notebook
from autograder.limits import Limits
cells = ["import os; print(os.getuid(), os.getcwd(), os.path.exists({secret!r}))",
         "import os\\nn = 0\\ntry:\\n    while True:\\n        if os.fork() == 0:\\n            import time\\n"
         "            time.sleep(30)\\n            os._exit(0)\\n        n += 1\\nexcept OSError as e:\\n    print('forks', n)"]
nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
run = execute_notebook(json.loads(nbformat.writes(nb)), Limits(max_processes=40, cell_timeout=10))
print(json.dumps([o.get("text", "") for c in run["notebook"].cells for o in c.outputs]))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
def test_a_grader_that_is_not_root_still_sandboxes():
    """Run as uid 65534 (no cgroups, no setpriv): the kernel keeps that uid, sees no course files, and the
    process rlimit (the user's tasks + max_processes) stops a fork bomb."""
    script = NON_ROOT_RUN.format(repo=str(REPO), secret=str(REPO / "source"))
    done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", script],
                          capture_output=True, text=True, cwd="/tmp", env={"HOME": "/tmp", "PATH": os.environ["PATH"]},
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out[0].strip() == "65534 /home/student False"
    assert out[1].startswith("forks ") and 0 < int(out[1].split()[1]) < 40



def _tree(pid: int) -> list[int]:
    """``pid`` and every process under it."""
    found, todo = [], [pid]
    while todo:
        found.append(todo.pop())
        todo += [int(c) for c in Path(f"/proc/{found[-1]}/task/{found[-1]}/children").read_text().split()]
    return found


@pytest.mark.skipif(os.geteuid() != 0, reason="cgroups and the change of uid need a grader running as root")
@pytest.mark.parametrize("use_zygote", ["0", "1"])
def test_bwrap_and_every_process_under_it_are_confined(monkeypatch, use_zygote):
    """bwrap itself, its init in the sandbox and the command (the exec'd kernel, or the zygote's placeholder):
    uid/gid 65534 without groups, no new privileges, the configured rlimits, inside the sandbox's cgroups."""
    from autograder.sandbox.kernels import Kernel

    monkeypatch.setenv("MLPH_KERNEL_ZYGOTE", use_zygote)
    kernel = Kernel(LIMITS, sandboxed=True)
    try:
        kernel.prepare({}, ())
        assert kernel.proc is not None and kernel.sandbox is not None
        tree = _tree(kernel.proc.pid)
        assert len(tree) == 3 and set(tree) <= kernel.sandbox.cgroups.pids_inside()
        for pid in tree:
            status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
            assert status["Uid"].split() == status["Gid"].split() == ["65534"] * 4, pid
            assert status["Groups"].strip() == "" and status["NoNewPrivs"].strip() == "1", pid
            limits = Path(f"/proc/{pid}/limits").read_text()
            for name, value in (("Max address space", LIMITS.memory_bytes), ("Max file size", LIMITS.file_bytes),
                                ("Max core file size", 0)):
                assert f"{name}" in limits and limits.split(name)[1].split()[:2] == [str(value)] * 2, (pid, name)
    finally:
        kernel.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="cgroups need a grader running as root")
def test_the_sandbox_joins_its_cgroups_before_bwrap_makes_its_cgroup_namespace(monkeypatch):
    """Seen from inside, every cgroup is the root of the kernel's cgroup namespace: the host's hierarchy (and
    the names of other sandboxes' cgroups) stays hidden. A sandbox joined after bwrap cloned would see /mlph/k…."""
    monkeypatch.setenv("MLPH_KERNEL_ZYGOTE", "0")
    lines = run_cells("print(open('/proc/self/cgroup').read())")[0].splitlines()
    assert lines and all(line.endswith(":/") for line in lines), lines


def test_a_sandbox_that_cannot_join_its_cgroups_runs_nothing(monkeypatch, tmp_path):
    from autograder.sandbox import bwrap as sandbox

    box = sandbox.Sandbox(LIMITS, check_bwrap())
    out = tmp_path / "out"

    def refuse(pid: int) -> None:
        raise PermissionError("test: refused")

    try:
        monkeypatch.setattr(box.cgroups, "join", refuse)
        with open(out, "wb") as f, pytest.raises(SandboxUnavailable, match="cgroups"):
            box.start(["echo", "ran"], stdout=f, cwd=str(box.root), start_new_session=True)
        monkeypatch.undo()
        monkeypatch.setattr(sandbox, "_system_binds", lambda: [])  # as if the grader died before sending them
        with open(out, "wb") as f:
            assert box.start(["echo", "ran"], stdout=f, cwd=str(box.root), start_new_session=True).wait() != 0
        monkeypatch.undo()
        with open(out, "ab") as f:  # and with them it runs
            assert box.start(["echo", "ran"], stdout=f, cwd=str(box.root), start_new_session=True).wait() == 0
        assert out.read_text() == "ran\n"
    finally:
        box.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="cgroups need a grader running as root")
@pytest.mark.parametrize("use_zygote", ["0", "1"])
def test_a_kernel_whose_sandbox_cannot_join_its_cgroups_crashes_and_leaves_nothing(monkeypatch, use_zygote):
    import tempfile

    from autograder.sandbox import bwrap as sandbox

    def refuse(self: sandbox.Cgroups, pid: int) -> None:
        raise PermissionError("test: refused")

    monkeypatch.setenv("MLPH_KERNEL_ZYGOTE", use_zygote)
    leftovers = lambda: set(Path(tempfile.gettempdir()).glob(f"{sandbox.SANDBOX_PREFIX}*"))  # noqa: E731
    before = leftovers()
    monkeypatch.setattr(sandbox.Cgroups, "join", refuse)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('ran')")])
    run = execute_notebook(json.loads(nbformat.writes(nb)), LIMITS, {}, sandboxed=True)
    assert run["status"] == "crashed" and "cgroups" in run["reason"], run["reason"]
    assert not any(o for cell in run["notebook"].cells for o in cell.outputs)
    assert leftovers() <= before
