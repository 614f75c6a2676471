"""Mutation testing of the trust-critical code with mutmut (make mutation, mutation-changed).

Picks the mutants (every mutant of the target files, or only those in functions changed since a
base commit, optionally capped), runs `mutmut run` on them with one worker and SQLite only, and
prints the score per file with every surviving mutant. `mutmut show NAME` (run in the project
root) prints a survivor's diff. Not a test module: run as `python -m tests.mutation_testing`.

mutmut runs the tests that pyproject.toml names (its in-process tests of the targets), and of
those only the files that can reach the mutated files in their own process (a static import
graph: tests/mutation_reach.py; --all-tests runs them all): its stats pass runs each such test
once to learn which functions it calls, then each mutant runs the tests that call its function.

Score = mutants the tests detect (killed or timed out) / mutants run, not counting survivors marked
equivalent by an `# equivalent` comment on the mutated line (the reason is written there). "no
tests" means no test in the selection calls that function at all; it counts as not detected.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import tomllib
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# The trust-critical code: every function of these files, except where a set of function names
# narrows a file to its checks (api.py: who is calling, and which department owns a record).
TARGETS: dict[str, frozenset[str] | None] = {
    **{f"signing/{p.name}": None for p in sorted((ROOT / "signing").glob("*.py"))},
    "issuer/verify.py": None,
    "issuer/tokens.py": None,
    "issuer/issue.py": None,
    "issuer/audit.py": None,
    "issuer/storage.py": None,
    "issuer/recovery.py": None,
    # The lifecycle's decisions: who may act, approve/reject/revoke/amend, gapless numbers.
    "issuer/permissions.py": None,
    "issuer/workflow.py": None,
    "issuer/counters.py": None,
    # A batch's certificates: recorded at once, issued a group at a time, each exactly once.
    "issuer/batch_records.py": None,
    "issuer/issue_group.py": None,
    # The department checks: which record blocks a registration, what a 409 reveals, and the
    # department's own types (in submit).
    "issuer/submit.py": frozenset({"find_active", "_duplicate", "submit"}),
    "api.py": frozenset({"principal", "_owned"}),
}

DETECTED = ("killed", "timeout")
# The verdicts of the last runs, kept in git so a full run (hours) can go on in the next session
# on a new machine: per target file, mutmut's exit code per mutant and the hash of each function.
# A verdict is carried over only while its function's hash is unchanged (mutmut's own rule).
VERDICTS = ROOT / "mutation" / "verdicts"
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@", re.MULTILINE)


def _git(*args: str) -> str | None:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def default_base() -> str | None:
    """The merge base with origin/main when this branch has diverged from it; otherwise (a clean
    clone of main, as CI has) the parent commit. None in a repository with a single commit."""
    if _git("rev-parse", "--verify", "-q", "origin/main"):
        base = _git("merge-base", "HEAD", "origin/main")
        if base and base != _git("rev-parse", "HEAD"):
            return base
    return _git("rev-parse", "--verify", "-q", "HEAD~1")


def changed_lines(base: str, path: str) -> set[int] | None:
    """Lines of `path` (as it is now, committed or not) changed since `base`; None when the file
    is new since `base` (all of it counts as changed)."""
    if _git("cat-file", "-e", f"{base}:{path}") is None:
        return None
    diff = _git("diff", "-U0", base, "--", path) or ""
    lines: set[int] = set()
    for match in _HUNK.finditer(diff):
        start, count = int(match[1]), int(match[2] if match[2] is not None else 1)
        lines.update(range(start, start + max(count, 1)))  # a deletion touches the line after
    return lines


def function_spans(source: str) -> dict[str, tuple[int, int]]:
    """Line spans of the functions mutmut mutates: top-level functions and methods, keyed the
    way mutmut names them (`x_name`, `xǁClassǁname`)."""
    spans: dict[str, tuple[int, int]] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            spans[f"x_{node.name}"] = (node.lineno, node.end_lineno or node.lineno)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    spans[f"xǁ{node.name}ǁ{item.name}"] = (item.lineno, item.end_lineno or 0)
    return spans


def function_of(mutant: str) -> str:
    """`signing.pades.xǁPadesSignerǁsign__mutmut_3` -> `xǁPadesSignerǁsign`."""
    return mutant.partition("__mutmut_")[0].rsplit(".", 1)[1]


def plain_name(mangled: str) -> str:
    return mangled.rsplit("ǁ", 1)[-1] if "ǁ" in mangled else mangled[2:]


def mutants_of(path: str) -> list[str]:
    """Every mutant mutmut generates for `path`, by its full name."""
    from mutmut.mutation.file_mutation import mutate_file_contents
    from mutmut.utils.format_utils import get_mutant_name

    source = (ROOT / path).read_text(encoding="utf-8")
    names = mutate_file_contents(path, source).mutant_names
    wanted = TARGETS.get(path)
    return [
        get_mutant_name(Path(path), name)
        for name in names
        if wanted is None or plain_name(function_of(f"m.{name}")) in wanted
    ]


def select(files: Iterable[str], base: str | None) -> dict[str, list[str]]:
    """The mutants to run per file; with a `base`, only those in functions changed since it."""
    chosen: dict[str, list[str]] = {}
    for path in files:
        names = mutants_of(path)
        if base is not None:
            lines = changed_lines(base, path)
            if lines is not None:
                spans = function_spans((ROOT / path).read_text(encoding="utf-8"))
                touched = {
                    fn for fn, (lo, hi) in spans.items() if any(lo <= n <= hi for n in lines)
                }
                names = [n for n in names if function_of(n) in touched]
        if names:
            chosen[path] = names
    return chosen


def cap(chosen: dict[str, list[str]], limit: int | None, seed: int) -> dict[str, list[str]]:
    """At most `limit` mutants, drawn at random (fixed seed) from all files alike."""
    every = [(path, name) for path, names in chosen.items() for name in names]
    if limit is None or len(every) <= limit:
        return chosen
    kept = set(random.Random(seed).sample(every, limit))
    return {path: [n for n in names if (path, n) in kept] for path, names in chosen.items()
            if any((path, n) in kept for n in names)}


def sample_per_file(chosen: dict[str, list[str]], per_file: int, seed: int) -> dict[str, list[str]]:
    return {
        path: sorted(random.Random(f"{seed}:{path}").sample(names, min(per_file, len(names))))
        for path, names in chosen.items()
    }


def test_pool() -> list[str]:
    """The test files mutmut runs (pyproject.toml: pytest_add_cli_args_test_selection)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pool: list[str] = config["tool"]["mutmut"]["pytest_add_cli_args_test_selection"]
    return pool


def left_out() -> dict[str, str]:
    """Test files that import a mutated module but are left out of mutmut's list on purpose,
    each with why (pyproject.toml: tool.pramaan.mutation_left_out)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    table: dict[str, str] = config["tool"]["pramaan"]["mutation_left_out"]
    return table


def reaching_tests(targets: Iterable[str]) -> list[str] | None:
    """The test files of the pool that can reach `targets` in the test process, in the pool's
    order; None (all of them) when that cannot be worked out."""
    from tests.mutation_reach import select_tests

    pool = test_pool()
    try:
        kept = list(select_tests(pool, targets).files)
    except (OSError, SyntaxError, ValueError) as exc:
        print(f"mutation: running every test file of the pool ({exc})")
        return None
    print(f"mutation: {len(kept)} of the {len(pool)} test files can reach the mutated files")
    return kept


def mark_no_tests(chosen: dict[str, list[str]]) -> None:
    """Record "no tests" (mutmut's exit code 33) for the mutants of `chosen`, as mutmut would:
    for when no test file can reach their files, without running mutmut at all."""
    from mutmut.mutation.file_mutation import mutate_file_contents
    from mutmut.utils.format_utils import get_mutant_name

    for path, names in chosen.items():
        meta = ROOT / "mutants" / f"{path}.meta"
        if meta.exists():
            data: dict[str, Any] = json.loads(meta.read_text())
        else:  # every mutant of the file, as mutmut lists them (keep_verdicts merges by them)
            mutated = mutate_file_contents(path, (ROOT / path).read_text(encoding="utf-8"))
            data = {"exit_code_by_key": {get_mutant_name(Path(path), n): None
                                         for n in mutated.mutant_names},
                    "hash_by_function_name": mutated.hash_by_function_name,
                    "durations_by_key": {}, "estimated_durations_by_key": {}}
        data["exit_code_by_key"].update(dict.fromkeys(names, 33))
        meta.parent.mkdir(parents=True, exist_ok=True)
        meta.write_text(json.dumps(data))


def run_mutmut(names: Sequence[str], time_limit: float | None,
               tests: Sequence[str] | None = None) -> bool:
    """Run `mutmut run` on `names` with one worker (MUTATION_CHILDREN=N for N: on an otherwise
    idle machine, 2 halves the wall time of the full run), only the test files `tests` of the
    pool when given; False if it was stopped at `time_limit`."""
    env = dict(os.environ)
    if tests is not None:
        env["PRAMAAN_MUTATION_TESTS"] = " ".join(tests)  # read by tests/conftest.py
    children = os.environ.get("MUTATION_CHILDREN", "1")
    env["PRAMAAN_TEST_DATABASES"] = "sqlite"
    # A Redis database of its own: a test run beside it (flushing database 9) must not take
    # the jobs of its clean run away, nor the other way round.
    env.setdefault("PRAMAAN_TEST_REDIS", "redis://127.0.0.1:6379/10")
    log = ROOT / "mutants" / "mutmut-run.log"
    log.parent.mkdir(exist_ok=True)
    mutmut = Path(sys.executable).with_name("mutmut")
    started = time.monotonic()
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(mutmut), "run", "--max-children", children, *names],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            code = process.wait(timeout=time_limit)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            print(f"mutation: stopped at the time limit ({time_limit:.0f} s); "
                  "mutants not reached are reported as not checked")
            return False
    print(f"mutation: mutmut ran {time.monotonic() - started:.0f} s (log: {log})")
    if code != 0:
        print(log.read_text(errors="replace")[-4000:])
        raise SystemExit(f"mutation: mutmut failed with exit code {code}")
    return True


def restore_verdicts(paths: Iterable[str]) -> int:
    """Put the kept verdicts of `paths` into mutants/ where mutmut has none yet, dropping those
    of functions changed since; mutmut merges them by function hash when it regenerates the
    file. Returns how many verdicts were carried over."""
    from mutmut.mutation.file_mutation import mutate_file_contents

    carried = 0
    for path in paths:
        kept, meta = VERDICTS / f"{path}.meta", ROOT / "mutants" / f"{path}.meta"
        if meta.exists() or not kept.exists():
            continue
        saved = json.loads(kept.read_text())
        current = mutate_file_contents(path, (ROOT / path).read_text(encoding="utf-8"))
        hashes = current.hash_by_function_name
        codes = {}
        for name, code in saved["exit_code_by_key"].items():
            function = _function_key(name)
            same = saved["hash_by_function_name"].get(function) == hashes.get(function)
            codes[name] = code if same else None
            carried += code is not None and same
        meta.parent.mkdir(parents=True, exist_ok=True)
        # mutmut's own layout (its loader requires every key), with no durations known yet.
        meta.write_text(json.dumps({"exit_code_by_key": codes,
                                    "hash_by_function_name": saved["hash_by_function_name"],
                                    "durations_by_key": {}, "estimated_durations_by_key": {}}))
    return carried


def keep_verdicts(paths: Iterable[str]) -> None:
    """Merge mutmut's verdicts of `paths` (exit codes and function hashes only) into VERDICTS:
    a new verdict replaces the kept one; a kept one stays where this run had none and its
    function is unchanged (a quick run on a few mutants does not erase a full run)."""
    for path in paths:
        meta = ROOT / "mutants" / f"{path}.meta"
        if not meta.exists():
            continue
        data = json.loads(meta.read_text())
        hashes: dict[str, str] = data["hash_by_function_name"]
        kept = VERDICTS / f"{path}.meta"
        old = json.loads(kept.read_text()) if kept.exists() else {
            "exit_code_by_key": {}, "hash_by_function_name": {}}
        codes = {}
        for name, code in data["exit_code_by_key"].items():
            function = _function_key(name)
            unchanged = old["hash_by_function_name"].get(function) == hashes.get(function)
            codes[name] = code if code is not None or not unchanged else \
                old["exit_code_by_key"].get(name)
        kept.parent.mkdir(parents=True, exist_ok=True)
        kept.write_text(json.dumps({"exit_code_by_key": dict(sorted(codes.items())),
                                    "hash_by_function_name": dict(sorted(hashes.items()))},
                                   indent=0, ensure_ascii=False) + "\n", encoding="utf-8")


def _function_key(mutant: str) -> str:
    from mutmut.utils.format_utils import mangled_name_from_mutant_name

    return mangled_name_from_mutant_name(mutant).rpartition(".")[2]


def marked_code(source: str) -> list[str]:
    """The code of every line marked equivalent: by `# equivalent` on the line itself, or by a
    comment block right above it, of one or more lines, that holds a line `# equivalent: why`."""
    lines = source.splitlines()
    marked = []
    for at, line in enumerate(lines):
        code = line.split("#", 1)[0].strip()
        if not code:
            continue
        above = at
        while above and lines[above - 1].strip().startswith("#"):
            above -= 1
        if "# equivalent" in line or any(
                comment.strip().startswith("# equivalent") for comment in lines[above:at]):
            marked.append(code)
    return marked


def statuses(path: str) -> dict[str, str]:
    """mutmut's verdict per mutant of `path`; a survivor whose mutated line carries an
    `# equivalent` comment (the reason is written there) is "equivalent"."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant
    from mutmut.stats import status_by_exit_code

    meta = ROOT / "mutants" / f"{path}.meta"
    if not meta.exists():
        return {}
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    found = {name: status_by_exit_code[code] for name, code in codes.items()}
    # A line is marked by `# equivalent` on it or in the comment block right above (marked_code).
    marked = marked_code((ROOT / path).read_text(encoding="utf-8"))
    # Before mutmut has written the mutated copy (a new machine resuming from kept verdicts)
    # the diffs come from the mutants made afresh from the source, as mutmut makes them.
    mutated = None
    if not (ROOT / "mutants" / path).exists() and "survived" in found.values():
        from mutmut.mutation.file_mutation import mutate_file_contents

        made = mutate_file_contents(path, (ROOT / path).read_text(encoding="utf-8"))
        mutated = next(v for v in vars(made).values() if isinstance(v, str) and "mutmut" in v)
    for name, status in found.items():
        if status == "survived":
            diff = get_diff_for_mutant(name, source=mutated, path=path).splitlines()
            removed = [line[1:].split("#", 1)[0].strip() for line in diff[2:]
                       if line.startswith("-")]
            # The mutated copy may predate the comment: match the code of the line as well.
            if any("# equivalent" in line for line in diff[2:] if line.startswith("-")) or any(
                    code and code in marked for code in removed):
                found[name] = "equivalent"
    return found


def report(chosen: dict[str, list[str]]) -> dict[str, dict[str, int]]:
    """Print the score per file and every mutant that was not detected; return the counts."""
    table: dict[str, dict[str, int]] = {}
    undetected: list[tuple[str, str]] = []
    print(f"\n{'file':28} {'killed':>7} {'survived':>8} {'no tests':>8} {'equiv':>6} "
          f"{'other':>6} {'unchecked':>9} {'score':>7}")
    totals: Counter[str] = Counter()
    for path, names in chosen.items():
        found = statuses(path)
        counts = Counter(found.get(n, "not checked") for n in names)
        table[path] = dict(counts)
        totals.update(counts)
        undetected += [(found.get(n, ""), n) for n in names
                       if found.get(n) not in (*DETECTED, "not checked", "equivalent", None)]
        print(_row(path, counts))
    print(_row("TOTAL", totals))
    for status, name in sorted(undetected, key=lambda s: s[1]):
        print(f"  {status:9} {name}")
    return table


def _row(label: str, counts: Counter[str]) -> str:
    detected = sum(counts[s] for s in DETECTED)
    unchecked, equivalent = counts["not checked"], counts["equivalent"]
    other = (sum(counts.values()) - detected - counts["survived"] - counts["no tests"]
             - unchecked - equivalent)
    ran = sum(counts.values()) - unchecked - equivalent
    score = f"{100 * detected / ran:6.1f}%" if ran else "     -"
    return (f"{label:28} {detected:7} {counts['survived']:8} {counts['no tests']:8} "
            f"{equivalent:6} {other:6} {unchecked:9} {score:>7}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("files", nargs="*", help="target files (default: all targets)")
    parser.add_argument("--changed", action="store_true",
                        help="only functions changed since --base (default: the merge base "
                             "with origin/main, else HEAD~1), uncommitted changes included")
    parser.add_argument("--base", default=os.environ.get("MUTATION_BASE") or None)
    parser.add_argument("--max", type=int, default=None, help="cap the number of mutants")
    parser.add_argument("--sample-per-file", type=int, default=None,
                        help="a fixed random sample of this many mutants per file")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--names-file", type=Path, default=None,
                        help='JSON {"file": [mutant names]}: only these (e.g. an earlier sample)')
    parser.add_argument("--time-limit", type=float, default=None, help="seconds for mutmut")
    parser.add_argument("--report-only", action="store_true",
                        help="print the score of the last run of these mutants without running")
    parser.add_argument("--dry-run", action="store_true", help="list the mutants, run nothing")
    parser.add_argument("--unchecked-only", action="store_true",
                        help="run only mutants without a result yet (resume a stopped run; "
                             "verdicts kept in mutation/verdicts/ count, while their function "
                             "is unchanged)")
    parser.add_argument("--survivors-only", action="store_true",
                        help="run only mutants that survived (or had no test) last time: "
                             "after new tests, the score after")
    parser.add_argument("--all-tests", action="store_true",
                        help="run every test file of the pool, not only those that can reach "
                             "the mutated files")
    parser.add_argument("--fail-under", type=float, default=0.0,
                        help="exit 1 when the score (percent) is below this")
    args = parser.parse_args(argv)
    os.chdir(ROOT)  # mutmut reads its configuration from pyproject.toml in the current directory

    unknown = [f for f in args.files if f not in TARGETS]
    if unknown:
        parser.error(f"not mutation targets: {unknown}; targets: {sorted(TARGETS)}")
    files = args.files or list(TARGETS)
    base = None
    if args.changed:
        base = args.base or default_base()
        if base is None:
            print("mutation: no base commit to compare with; nothing to do")
            return 0
        print(f"mutation: functions changed since {base[:12]} (uncommitted changes included)")
    chosen = select(files, base)
    if args.sample_per_file:
        chosen = sample_per_file(chosen, args.sample_per_file, args.seed)
    if args.names_file:
        wanted = json.loads(args.names_file.read_text())
        chosen = {path: [n for n in names if n in set(wanted.get(path, names))]
                  for path, names in chosen.items()}
    total = sum(len(n) for n in chosen.values())
    chosen = cap(chosen, args.max, args.seed)
    names = [n for ns in chosen.values() for n in ns]
    if not names:
        print("mutation: no target function changed; nothing to mutate")
        return 0
    if len(names) < total:
        print(f"mutation: capped at {len(names)} of {total} mutants (random sample, seed "
              f"{args.seed}); `make mutation` runs them all")
    else:
        print(f"mutation: {len(names)} mutants in {len(chosen)} file(s)")
    if args.dry_run:
        for path, picked in chosen.items():
            functions = sorted({plain_name(function_of(n)) for n in picked})
            print(f"  {path}: {len(picked)} in {', '.join(functions)}")
        if not args.all_tests:
            for test in reaching_tests(chosen) or []:
                print(f"  runs {test}")
        return 0
    if args.unchecked_only or args.survivors_only or args.report_only:
        print(f"mutation: {restore_verdicts(chosen)} verdicts carried over from "
              f"{VERDICTS.relative_to(ROOT)}")
    if args.unchecked_only:
        done = {n for path in chosen for n, s in statuses(path).items() if s != "not checked"}
        names = [n for n in names if n not in done]
    if args.survivors_only:
        alive = {n for path in chosen for n, s in statuses(path).items()
                 if s in ("survived", "no tests")}
        names = [n for n in names if n in alive]
    if not args.report_only and names:
        print(f"mutation: running {len(names)}")
        running = {p: [n for n in ns if n in set(names)] for p, ns in chosen.items()}
        tests = None if args.all_tests else reaching_tests(p for p, ns in running.items() if ns)
        try:
            if tests == []:
                print("mutation: no test file can reach them: no tests, without running mutmut")
                mark_no_tests(running)
            else:
                run_mutmut(names, args.time_limit, tests)
        finally:
            keep_verdicts(chosen)
    table = report(chosen)
    counts: Counter[str] = Counter()
    for row in table.values():
        counts.update(row)
    ran = sum(counts.values()) - counts["not checked"] - counts["equivalent"]
    score = 100 * sum(counts[s] for s in DETECTED) / ran if ran else 100.0
    summary = {"score": round(score, 2), "files": table}
    (ROOT / "mutants").mkdir(exist_ok=True)  # --report-only before any run on this machine
    (ROOT / "mutants" / "score.json").write_text(json.dumps(summary, indent=2))
    if score < args.fail_under:
        print(f"mutation: score {score:.1f}% is below {args.fail_under}%")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
