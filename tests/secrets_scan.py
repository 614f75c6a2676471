"""`make secrets-scan`: detect-secrets (Yelp's scanner, from PyPI) over every tracked file as it
is now and over every version of every file in the git history, against the allowlist kept
beside this file (tests/secrets_allowlist.json: every entry says why it is not a secret).

    python -m tests.secrets_scan [--repo DIR] [--allowlist FILE] [--no-history]

Prints each finding the allowlist does not cover (file, line, kind, the commit-independent blob
id for history; never the secret itself) and exits 1 if there is any, 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

ALLOWLIST = Path(__file__).with_name("secrets_allowlist.json")


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    kind: str
    hashed: str  # detect-secrets' SHA-1 of the secret: names it without showing it
    where: str  # "work tree" or the blob id of a version in the history

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.kind} ({self.where}, hashed {self.hashed})"


@dataclass(frozen=True)
class Allowlist:
    excluded: dict[str, str]  # path regex -> why nothing under it can be a secret
    allowed: list[dict[str, str]]  # path, type, hashed_secret ("*": any of that type), reason

    @classmethod
    def load(cls, path: Path) -> Allowlist:
        data = json.loads(path.read_text(encoding="utf-8"))
        for entry in data["allowed"]:
            if not entry.get("reason"):
                raise SystemExit(f"{path}: an entry without a reason: {entry}")
        return cls(data["excluded_paths"], data["allowed"])

    def skips(self, path: str) -> bool:
        return any(re.search(pattern, path) for pattern in self.excluded)

    def covers(self, finding: Finding) -> bool:
        return any(entry["path"] == finding.path and entry["type"] == finding.kind
                   and entry["hashed_secret"] in ("*", finding.hashed)
                   for entry in self.allowed)


def _git(repo: Path, *args: str, data: bytes | None = None) -> bytes:
    return subprocess.run(["git", "-C", str(repo), *args], input=data, check=True,
                          capture_output=True).stdout


def history_blobs(repo: Path) -> dict[str, str]:
    """Every file version ever committed (on any ref): blob id -> a path it had."""
    objects = _git(repo, "rev-list", "--all", "--objects").decode().splitlines()
    named = {line.split(" ", 1)[0]: line.split(" ", 1)[1]
             for line in objects if " " in line}
    if not named:
        return {}
    kinds = _git(repo, "cat-file", "--batch-check=%(objectname) %(objecttype)",
                 data="\n".join(named).encode() + b"\n").decode().splitlines()
    return {sha: named[sha] for sha, kind in (k.split() for k in kinds) if kind == "blob"}


def _scan(root: Path, files: list[str], jobs: int) -> list[tuple[str, int, str, str]]:
    from detect_secrets.core.secrets_collection import SecretsCollection
    from detect_secrets.settings import default_settings

    found = []
    with default_settings():
        collection = SecretsCollection(root=str(root))
        if jobs > 1 and threading.active_count() == 1:
            collection.scan_files(*files, num_processors=jobs)
        else:
            # detect_secrets' pool forks: a fork of a process with threads can inherit a held
            # lock and hang for ever, and not every thread is Python's (a test run that has
            # rendered has the typst compiler's): serial unless the command asks (--jobs).
            for name in files:
                collection.scan_file(name)
        for filename, secret in collection:
            found.append((filename, secret.line_number or 0, secret.type, secret.secret_hash))
    return found


def scan(repo: Path, allowlist: Allowlist, history: bool = True,
         jobs: int = 1) -> list[Finding]:
    """The findings the allowlist does not cover; `jobs` processes scan at once."""
    tracked = [p for p in _git(repo, "ls-files", "-z").decode().split("\0")
               if p and not allowlist.skips(p) and (repo / p).is_file()]
    findings = [Finding(path, line, kind, hashed, "work tree")
                for path, line, kind, hashed in _scan(repo, tracked, jobs)]
    if history:
        with tempfile.TemporaryDirectory(prefix="secrets-scan-") as tmp:
            root = Path(tmp)
            where: dict[str, tuple[str, str]] = {}
            for sha, path in history_blobs(repo).items():
                if allowlist.skips(path):
                    continue
                # Each version under its blob id, keeping the file's name (scanners look at it).
                copy = Path(sha) / path
                (root / copy).parent.mkdir(parents=True, exist_ok=True)
                (root / copy).write_bytes(_git(repo, "cat-file", "blob", sha))
                where[str(copy)] = (path, sha)
            for name, line, kind, hashed in _scan(root, sorted(where), jobs):
                path, sha = where[name]
                findings.append(Finding(path, line, kind, hashed, f"blob {sha[:12]}"))
    return [f for f in findings if not allowlist.covers(f)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path.cwd())
    parser.add_argument("--allowlist", type=Path, default=ALLOWLIST)
    parser.add_argument("--no-history", action="store_true")
    parser.add_argument("--jobs", type=int, default=1,
                        help="processes that scan at once (0: one per core)")
    args = parser.parse_args(argv)
    jobs = args.jobs or os.cpu_count() or 1
    left = scan(args.repo, Allowlist.load(args.allowlist), not args.no_history, jobs)
    unique = sorted({(f.path, f.kind, f.hashed): f for f in left}.values(), key=str)
    for finding in unique:
        print(finding)
    where = "tracked files" + ("" if args.no_history else " and their git history")
    print(f"secrets scan of the {where}: {len(unique)} finding(s) not in the allowlist")
    return 1 if unique else 0


if __name__ == "__main__":
    sys.exit(main())
