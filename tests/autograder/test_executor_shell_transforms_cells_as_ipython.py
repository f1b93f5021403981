"""The executor's shell skips IPython's token transformations only where they cannot change a cell."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from IPython.core.inputtransformer2 import TransformerManager

REPO = Path(__file__).resolve().parents[2]
SPECIAL = ["%timeit x", "x = !ls", "a = %env HOME", "a?", "a??", "?a", "\n\n  x = 1\n  y = 2\n", ">>> x = 1\n... y = 2",
           "In [1]: x = 1", "%%bash\necho 1", "/f x", ",f a b", ";f a b", "print('%d' % 1)", "x != 1",
           "if x:\n    !ls\n", "def f():\n    pass\nf?"]


@pytest.fixture(scope="module")
def executor():
    spec = importlib.util.spec_from_file_location("mlph_executor_test", REPO / "autograder" / "sandbox" / "executor.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def shell(executor, tmp_path_factory):
    return executor.make_shell(str(tmp_path_factory.mktemp("ipython")))  # one per process: IPython's singleton


def _sheet_cells() -> list[str]:
    cells = []
    for path in sorted((REPO / "source").glob("*/*.ipynb")) + sorted((REPO / "release").glob("*/*.ipynb")):
        cells += ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    return cells


def test_every_cell_is_transformed_as_ipython_transforms_it(executor, shell):
    ipython = TransformerManager()
    cells = _sheet_cells() + SPECIAL
    assert [shell.input_transformer_manager.transform_cell(c) for c in cells] == [ipython.transform_cell(c) for c in cells]
    skipped = [c for c in cells if not executor._may_transform(c.splitlines(keepends=True))]
    assert len(skipped) > len(cells) // 2  # the point of it: most cells of the sheets skip the tokenizer
    token_cases = [c for c in SPECIAL if c.lstrip()[:1] in "%!?/,;" or c.rstrip().endswith("?") or "!" in c]
    assert not set(token_cases) & set(skipped)  # every cell a token transformation may change is tokenized


def test_magics_and_top_level_await_still_work(shell):
    assert shell.run_cell("import os\nx = %pwd\nasync def f():\n    return 5").success
    assert shell.user_ns["x"] == shell.user_ns["os"].getcwd()
    assert shell.run_cell("y = await f()").success and shell.user_ns["y"] == 5
    assert shell.should_run_async("await f()", transformed_cell="await f()\n")
    assert not shell.should_run_async("f()", transformed_cell="f()\n")
