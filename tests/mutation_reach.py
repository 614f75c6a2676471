"""Which test files can reach a mutated file in their own process: a static import graph over
our modules and tests/, so that mutmut's stats pass runs only those (tests/mutation_testing.py).

mutmut links a mutant to the tests during which its function ran in the test process (a test's
own calls, or a live server's thread); a test that only starts another process never counts.
A test file can reach module M when M is in the import closure of the file (with the test
modules it imports) or of the conftest fixtures it names. Every over-approximation errs towards
keeping a file: an import anywhere in a module counts (at the top or inside a function), a
string naming one of our modules counts as an import (RQ jobs: "worker.issue_job"), and so does
a string naming a subpackage of the module's package (Alembic's "migrations", loaded by path);
a module importing by computed name (importlib, __import__, pkgutil) reaches everything.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFTEST = "tests.conftest"
# Calls that import by a name computed at run time.
DYNAMIC = frozenset({"import_module", "__import__", "iter_modules", "walk_packages",
                     "spec_from_file_location", "run_path", "run_module"})
_NOT_OURS = frozenset({".git", ".venv", "mutants", "build", "__pycache__"})


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def our_modules(root: Path = ROOT) -> dict[str, Path]:
    """Our top-level modules (setup.py aside), packages (recursively, tests/ included) and
    Alembic's migrations (loaded by path, no package)."""
    found = {module_name(p, root): p for p in root.glob("*.py") if p.name != "setup.py"}

    def package(directory: Path) -> None:
        if directory.name in _NOT_OURS or not (directory / "__init__.py").exists():
            return
        for path in sorted(directory.iterdir()):
            if path.suffix == ".py":
                found[module_name(path, root)] = path
            elif path.is_dir():
                package(path)

    for directory in sorted(root.iterdir()):
        if directory.is_dir():
            package(directory)
    for path in (root / "issuer" / "migrations" / "versions").glob("*.py"):
        found[module_name(path, root)] = path
    return found


def _prefixes(dotted: str) -> Iterator[str]:
    parts = dotted.split(".")
    for n in range(1, len(parts) + 1):
        yield ".".join(parts[:n])


class Graph:
    """Our modules and what each imports (or names in a string)."""

    def __init__(self, root: Path = ROOT) -> None:
        self.root = root
        self.modules = our_modules(root)
        self._trees: dict[str, ast.Module] = {}
        self._edges: dict[str, frozenset[str] | None] = {}

    def tree(self, name: str) -> ast.Module:
        if name not in self._trees:
            source = self.modules[name].read_text(encoding="utf-8")
            self._trees[name] = ast.parse(source, filename=str(self.modules[name]))
        return self._trees[name]

    def _ours(self, dotted: str) -> set[str]:
        """`dotted` (a module, or an attribute of one) as our modules: it and its packages."""
        return {p for p in _prefixes(dotted) if p in self.modules}

    def _package(self, name: str) -> str:
        return name if self.modules[name].name == "__init__.py" else name.rpartition(".")[0]

    def imports(self, name: str, within: ast.AST | None = None) -> set[str]:
        """Our modules that module `name` (or the node `within` it) imports or names."""
        found: set[str] = set()
        package = self._package(name)
        for node in ast.walk(within or self.tree(name)):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    found |= self._ours(alias.name)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, *([node.module] if node.module else [])])
                found |= self._ours(base)
                for alias in node.names:
                    found |= self._ours(f"{base}.{alias.name}")
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                found |= self._named(node.value.partition(":")[0], package)
        return found - {name}

    def _named(self, text: str, package: str) -> set[str]:
        if not text[:1].isalpha() or not text.replace(".", "").replace("_", "").isalnum():
            return set()
        found = self._ours(text)
        inner = f"{package}.{text}"
        if package and inner in self.modules and self.modules[inner].name == "__init__.py":
            found |= {m for m in self.modules if m == inner or m.startswith(inner + ".")}
        return found

    def dynamic(self, name: str) -> bool:
        """Does module `name` import by a computed name (then it may reach anything)?"""
        for node in ast.walk(self.tree(name)):
            if isinstance(node, ast.Call):
                called = node.func
                callee = called.attr if isinstance(called, ast.Attribute) else (
                    called.id if isinstance(called, ast.Name) else "")
                if callee in DYNAMIC:
                    return True
        return False

    def _edges_of(self, name: str) -> frozenset[str] | None:
        """What module `name` imports; None when it imports by computed name."""
        if name not in self._edges:
            self._edges[name] = None if self.dynamic(name) else frozenset(self.imports(name))
        return self._edges[name]

    def closure(self, names: Iterable[str]) -> frozenset[str]:
        """Every one of our modules that importing `names` runs or may load (they included)."""
        seen: set[str] = set()
        todo = [p for start in names for p in self._ours(start)]
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            edges = self._edges_of(name)
            if edges is None:
                return frozenset(self.modules)
            todo.extend(edges - seen)
        return frozenset(seen)


class Conftest:
    """tests/conftest.py by name: its fixtures and what each can reach through the names its
    body uses (the conftest's imports, functions, classes and constants, and the fixtures it asks
    for); its pytest hooks, which run for every test."""

    def __init__(self, graph: Graph, name: str = CONFTEST) -> None:
        self.graph = graph
        self.name = name
        self.top: dict[str, ast.AST] = {}
        for node in graph.tree(name).body:
            for bound in _bound(node):
                self.top[bound] = node
        # Its fixtures, and names it imports from a test helper (fixtures defined there).
        self.fixtures = frozenset(
            n for n, node in self.top.items() if _is_fixture(node) or (
                isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tests.")))
        self.autouse = frozenset(n for n in self.fixtures if _is_fixture(self.top[n])
                                 and "autouse=True" in ast.unparse(self.top[n]))

    def reach(self, start: Iterable[str]) -> frozenset[str]:
        """The modules that the conftest names `start` (fixtures, hooks) can reach."""
        seen: set[str] = set()
        modules: set[str] = set()
        todo = list(start)
        while todo:
            name = todo.pop()
            node = self.top.get(name)
            if name in seen or node is None:
                continue
            seen.add(name)
            if isinstance(node, ast.Import | ast.ImportFrom):
                kept = [a for a in node.names if (a.asname or a.name).split(".")[0] == name]
                node = ast.Import(names=kept) if isinstance(node, ast.Import) else \
                    ast.ImportFrom(module=node.module, names=kept, level=node.level)
            else:
                todo.extend(_names(node) - seen)
            modules |= self.graph.imports(self.name, within=node)
        return self.graph.closure(modules)

    @property
    def hooks(self) -> frozenset[str]:
        return frozenset(n for n in self.top if n.startswith("pytest_"))


def _bound(node: ast.stmt) -> list[str]:
    """The module-level names a statement binds."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    if isinstance(node, ast.Import | ast.ImportFrom):
        return [(a.asname or a.name).split(".")[0] for a in node.names]
    targets = node.targets if isinstance(node, ast.Assign) else (
        [node.target] if isinstance(node, ast.AnnAssign | ast.AugAssign) else [])
    return [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]


def _is_fixture(node: ast.AST) -> bool:
    return isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and any(
        "fixture" in ast.unparse(d) for d in node.decorator_list)


def _names(node: ast.AST) -> set[str]:
    """Identifiers, argument names and strings (fixtures asked for by name: usefixtures,
    getfixturevalue; several in one string, comma-separated) used in `node`."""
    found: set[str] = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Name):
            found.add(child.id)
        elif isinstance(child, ast.arg):
            found.add(child.arg)
        elif isinstance(child, ast.alias):
            found.add((child.asname or child.name).split(".")[0])
        elif isinstance(child, ast.Constant) and isinstance(child.value, str):
            found.update(part.strip() for part in child.value.split(","))
    return found


def _conftests(root: Path) -> Iterator[Path]:
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = [d for d in subdirectories if d not in _NOT_OURS]
        if "conftest.py" in files:
            yield Path(directory) / "conftest.py"


@dataclass(frozen=True)
class Selection:
    files: tuple[str, ...]  # the test files of the pool kept, in the pool's order
    reach: dict[str, frozenset[str]]  # per test file of the pool: the modules it can reach


def select_tests(pool: Sequence[str], targets: Iterable[str], root: Path = ROOT) -> Selection:
    """The entries of `pool` (test files like tests/test_x.py, in the order pytest runs them)
    that can reach one of `targets` (files like signing/pades.py) in the test process. An entry
    that is no module of tests/ (a directory, a test's node id) is kept."""
    graph = Graph(root)
    others = sorted(set(_conftests(root)) - {root / "tests" / "conftest.py"})
    if others:  # their fixtures and hooks are not looked at
        raise ValueError(f"conftest files other than tests/conftest.py: {others}")
    conftest = Conftest(graph)
    wanted = {module_name(root / t, root) for t in targets}
    everything = frozenset(graph.modules)
    always = conftest.reach(conftest.hooks | conftest.autouse)
    reach: dict[str, frozenset[str]] = {}
    for path in pool:
        name = module_name(root / path, root) if path.endswith(".py") else ""
        if not name.startswith("tests.") or name not in graph.modules:
            reach[path] = everything
            continue
        modules = graph.closure([name])
        used: set[str] = set()
        for test_module in sorted(m for m in modules if m.startswith("tests.")):
            if test_module != CONFTEST:  # all of it is in `modules` already when imported
                used |= _names(graph.tree(test_module)) & conftest.fixtures
        reach[path] = modules | conftest.reach(used) | always
    return Selection(tuple(p for p in pool if reach[p] & wanted), reach)


def importing_tests(pool: Sequence[str], targets: Iterable[str],
                    root: Path = ROOT) -> dict[str, frozenset[str]]:
    """The test files of `pool` that import one of `targets` themselves (anywhere in the file,
    or name it in a string), each with the target modules it imports: the files that look like
    tests of a mutated module, which mutmut's list should name or which should be left out on
    purpose (tests/test_mutation_reach.py checks that one or the other holds)."""
    graph = Graph(root)
    wanted = {module_name(root / t, root) for t in targets}
    found: dict[str, frozenset[str]] = {}
    for path in pool:
        name = module_name(root / path, root)
        if name in graph.modules:
            imported = frozenset(graph.imports(name) & wanted)
            if imported:
                found[path] = imported
    return found
