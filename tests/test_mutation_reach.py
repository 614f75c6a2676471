"""The choice of test files for a mutation run (tests/mutation_reach.py): on a small project of
its own, each way a test reaches a module in its own process keeps the test file, and a file
with no way is left out; on ours, the in-process tests of the dev OCSP responder are chosen for
it, and tests/conftest.py deselects what PRAMAAN_MUTATION_TESTS leaves out."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import mutation_testing
from tests.mutation_reach import importing_tests, select_tests

ROOT = Path(__file__).resolve().parents[1]
TARGET = "pkg/target.py"

FILES = {
    "pkg/__init__.py": "",
    "pkg/target.py": "def check() -> bool:\n    return True\n",
    "pkg/plain.py": "VALUE = 1\n",
    "pkg/uses.py": "from pkg.target import check\n",
    "pkg/relative.py": "from . import target\n",
    "pkg/late.py": "def run() -> None:\n    from pkg import target\n",
    "pkg/jobs.py": 'JOB = "runner.job"\n',  # run by name, as RQ runs worker.issue_job
    "runner.py": "import pkg.uses\n\ndef job() -> None:\n    pkg.uses.check()\n",
    "app.py": "from pkg.late import run\n",
    "tests/__init__.py": "",
    "tests/conftest.py": (
        "import pytest\n\nfrom pkg.plain import VALUE\n\n\n"
        "def _start() -> None:\n    import app\n\n\n"
        "@pytest.fixture\ndef served() -> None:\n    _start()\n\n\n"
        "@pytest.fixture\ndef outer(served: None) -> None:\n    pass\n\n\n"
        "@pytest.fixture\ndef plain() -> int:\n    return VALUE\n"),
    "tests/helper.py": "def with_server(served: None) -> None:\n    pass\n",
}
TESTS = {
    "tests/test_direct.py": "from pkg.uses import check\n",
    "tests/test_relative.py": "import pkg.relative\n",
    "tests/test_in_a_function.py": "def test_x() -> None:\n    from pkg import late\n",
    "tests/test_by_name.py": "from pkg.jobs import JOB\n",
    "tests/test_fixture.py": "def test_x(served: None) -> None:\n    pass\n",
    "tests/test_fixture_of_fixture.py": "def test_x(outer: None) -> None:\n    pass\n",
    "tests/test_usefixtures.py": (
        "import pytest\n\n\n@pytest.mark.usefixtures('plain, served')\n"
        "def test_x() -> None:\n    pass\n"),
    "tests/test_helper.py": "from tests.helper import with_server\n",
    "tests/test_computed.py": "import importlib\n\nimportlib.import_module('pkg.' + 'x')\n",
    "tests/test_plain.py": "from pkg.plain import VALUE\n\n\ndef test_x(plain: int) -> None:\n"
                           "    assert plain == VALUE\n",
    "tests/test_nothing.py": "import json\n\n\ndef test_x(tmp_path: object) -> None:\n    pass\n",
}
REACHING = [p for p in TESTS if p not in ("tests/test_plain.py", "tests/test_nothing.py")]


def _project(root: Path, files: dict[str, str]) -> None:
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text, encoding="utf-8")


def test_every_way_to_reach_a_module_keeps_the_test_file(tmp_path: Path) -> None:
    _project(tmp_path, {**FILES, **TESTS})
    pool = [*reversed(TESTS), "tests/test_direct.py::test_x", "tests/elsewhere"]
    chosen = select_tests(pool, [TARGET], tmp_path)
    # In the pool's order; what is no test module of ours (a node id, a directory) is kept.
    assert chosen.files == (*reversed(REACHING), "tests/test_direct.py::test_x",
                            "tests/elsewhere")
    # The constant a conftest fixture reads, and anything for a computed import.
    assert select_tests(pool, ["pkg/plain.py"], tmp_path).files == (
        "tests/test_plain.py", "tests/test_computed.py", "tests/test_usefixtures.py",
        "tests/test_direct.py::test_x", "tests/elsewhere")
    assert "runner" in chosen.reach["tests/test_by_name.py"]


def test_a_hook_or_an_autouse_fixture_reaches_for_every_test(tmp_path: Path) -> None:
    _project(tmp_path, {**FILES, **TESTS})
    for added in ("\ndef pytest_configure(config: object) -> None:\n    _start()\n",
                  "\n@pytest.fixture(autouse=True)\ndef always() -> None:\n    _start()\n"):
        _project(tmp_path, {"tests/conftest.py": FILES["tests/conftest.py"] + added})
        assert select_tests(list(TESTS), [TARGET], tmp_path).files == tuple(TESTS)


def test_another_conftest_is_refused(tmp_path: Path) -> None:
    _project(tmp_path, {**FILES, **TESTS, "tests/sub/conftest.py": ""})
    with pytest.raises(ValueError, match=r"conftest files other than tests/conftest\.py"):
        select_tests(list(TESTS), [TARGET], tmp_path)


def test_the_files_importing_a_target_themselves_are_found(tmp_path: Path) -> None:
    _project(tmp_path, {**FILES, **TESTS})
    found = importing_tests(list(TESTS), ["pkg/uses.py", "pkg/plain.py", "pkg/late.py"],
                            tmp_path)
    # Its own imports (at the top or in a function) only: not through a helper or fixture.
    assert found == {"tests/test_direct.py": {"pkg.uses"},
                     "tests/test_in_a_function.py": {"pkg.late"},
                     "tests/test_plain.py": {"pkg.plain"}}


def test_every_test_importing_a_mutated_module_is_run_by_mutmut_or_left_out_saying_why() -> None:
    pool = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_*.py"))
    targets = [t for t in mutation_testing.TARGETS if not t.endswith("__init__.py")]
    listed, left = set(mutation_testing.test_pool()), mutation_testing.left_out()
    importing = importing_tests(pool, targets)
    neither = sorted(set(importing) - listed - set(left))
    assert not neither, (
        f"{neither} import a mutated module: add each to pyproject.toml's mutmut list "
        "(pytest_add_cli_args_test_selection), or to tool.pramaan.mutation_left_out with why")
    assert not listed & set(left), "both run by mutmut and left out"
    assert all(reason.strip() for reason in left.values())
    # Left out only what would otherwise be asked for (no stale entries).
    assert set(left) <= set(importing), sorted(set(left) - set(importing))
    assert listed <= set(pool), sorted(listed - set(pool))


def test_ours_the_dev_ocsp_responder_is_reached_in_process() -> None:
    pool = ["tests/test_audit_head.py", "tests/test_dev_ocsp_in_process.py",
            "tests/test_tsa_probe.py", "tests/test_issue_end_to_end.py"]
    assert select_tests(pool, ["signing/dev_ocsp.py"]).files == (
        "tests/test_dev_ocsp_in_process.py",)
    # The live server's thread: the app and all it imports.
    assert select_tests(pool, ["api.py", "signing/tsa_probe.py"]).files == (
        "tests/test_tsa_probe.py", "tests/test_issue_end_to_end.py")


def test_conftest_deselects_the_files_not_named() -> None:
    env = {**os.environ, "PRAMAAN_MUTATION_TESTS": "tests/test_tsa_probe.py"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "tests/test_tsa_probe.py", "tests/test_mutation_reach.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    collected = [line for line in done.stdout.splitlines() if "::" in line]
    assert collected and all(line.startswith("tests/test_tsa_probe.py::") for line in collected)
    assert f"{len(collected)}/" in done.stdout and " deselected" in done.stdout, done.stdout


SHARED_FIXTURE = '''
import pytest
from tests.fixture_scope import shared

@pytest.fixture(scope=shared("module"))
def built(tmp_path_factory):
    with open({log!r}, "a") as log:
        log.write("built\\n")

def test_one(built):
    pass

def test_two(built):
    pass
'''


@pytest.mark.parametrize(("mutant", "builds"), [("stats", 2), ("", 1), ("some.mutant_1", 1)])
def test_a_shared_fixture_is_built_per_test_only_in_mutmut_s_stats_pass(
        tmp_path: Path, mutant: str, builds: int) -> None:
    # mutmut credits what a fixture calls to the test being set up: built once per module, a
    # mutant of it would be run against the module's first test alone.
    log = tmp_path / "builds.log"
    (tmp_path / "test_shared.py").write_text(SHARED_FIXTURE.format(log=str(log)))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MUTANT_UNDER_TEST": mutant}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--rootdir", str(tmp_path), str(tmp_path / "test_shared.py")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert log.read_text().splitlines() == ["built"] * builds


# Fixtures that must be built once per process whatever mutmut's mapping needs, and why.
ONCE_PER_PROCESS = {
    # SoftHSM reads SOFTHSM2_CONF when the library is first loaded: a second token in the same
    # process would never be seen.
    "test_signing_pkcs11.py:token",
}


def test_every_fixture_built_once_for_many_tests_is_shared_through_fixture_scope() -> None:
    literal = []
    def fixture_name(decorator: ast.Call) -> str:
        return next(f.name for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)
                    and decorator in f.decorator_list)

    for path in sorted((ROOT / "tests").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "pytest.fixture":
                for keyword in node.keywords:
                    if keyword.arg == "scope" and not (
                            isinstance(keyword.value, ast.Constant)
                            and keyword.value.value == "function") and not (
                            isinstance(keyword.value, ast.Call)
                            and ast.unparse(keyword.value.func) == "shared"):
                        literal.append(f"{path.name}:{fixture_name(node)}")
    assert sorted(literal) == sorted(ONCE_PER_PROCESS)
