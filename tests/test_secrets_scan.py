"""The secrets scan (`make secrets-scan`, tests/secrets_scan.py) catches what it is for, in a
throwaway git repository: an AWS access key in a tracked file, a private key that was committed
and deleted again (only the history has it), and lets through what the allowlist explains."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.secrets_scan import ALLOWLIST, Allowlist, main, scan

# Built at run time, so that this file itself holds no key for the scan to find.
FAKE_AWS_KEY = "AK" + "IA" + "QX7R2M4TZP9WLN3B"


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q")
    git(path, "config", "user.email", "test@example.in")
    git(path, "config", "user.name", "Test")
    (path / "README.md").write_text("# nothing secret here\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "clean")
    return path


@pytest.fixture
def allowlist(tmp_path: Path) -> Path:
    path = tmp_path / "allow.json"
    path.write_text(json.dumps({"excluded_paths": {}, "allowed": []}))
    return path


def private_key_pem() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption())


def test_a_clean_repository_passes(repo: Path, allowlist: Path) -> None:
    assert main(["--repo", str(repo), "--allowlist", str(allowlist)]) == 0


def test_the_command_scans_with_a_process_per_core_and_finds_the_same(
        repo: Path, allowlist: Path) -> None:
    # As `make secrets-scan` runs it (--jobs 0), in a process of its own: its pool forks, which
    # the test process (with the typst compiler's threads) must not. Two files: one scans alone.
    (repo / "settings.py").write_text(f'AWS_ACCESS_KEY_ID = "{FAKE_AWS_KEY}"\n')
    git(repo, "add", "settings.py")
    done = subprocess.run(
        [sys.executable, "-m", "tests.secrets_scan", "--repo", str(repo), "--allowlist",
         str(allowlist), "--jobs", "0"], cwd=ALLOWLIST.parents[1], capture_output=True,
        text=True, check=False, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "settings.py:1" in done.stdout and "AWS Access Key" in done.stdout, done.stdout
    assert "1 finding(s)" in done.stdout


def test_an_aws_key_in_a_tracked_file_fails_the_scan(
        repo: Path, allowlist: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "settings.py").write_text(f'AWS_ACCESS_KEY_ID = "{FAKE_AWS_KEY}"\n')
    git(repo, "add", "settings.py")  # tracked, not even committed yet
    assert main(["--repo", str(repo), "--allowlist", str(allowlist), "--no-history"]) == 1
    printed = capsys.readouterr().out
    assert "settings.py:1: AWS Access Key" in printed
    assert FAKE_AWS_KEY not in printed  # named by its hash, never shown


def test_a_private_key_deleted_again_is_still_found_in_the_history(
        repo: Path, allowlist: Path) -> None:
    (repo / "keys").mkdir()
    (repo / "keys" / "seal.key").write_bytes(private_key_pem())
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "oops")
    git(repo, "rm", "-q", "keys/seal.key")
    git(repo, "commit", "-q", "-m", "remove the key")
    assert main(["--repo", str(repo), "--allowlist", str(allowlist), "--no-history"]) == 0
    found = scan(repo, Allowlist.load(allowlist))
    assert [(f.path, f.kind) for f in found] == [("keys/seal.key", "Private Key")]
    assert found[0].where.startswith("blob ")
    assert main(["--repo", str(repo), "--allowlist", str(allowlist)]) == 1


def test_the_allowlist_lets_through_only_what_it_names_and_explains(
        repo: Path, allowlist: Path) -> None:
    (repo / "fixture.py").write_text(f'KEY = "{FAKE_AWS_KEY}"\n')
    git(repo, "add", "fixture.py")
    [finding] = scan(repo, Allowlist.load(allowlist), history=False)
    entry = {"path": "fixture.py", "type": "AWS Access Key", "hashed_secret": finding.hashed,
             "reason": "a test fixture"}
    allowlist.write_text(json.dumps({"excluded_paths": {}, "allowed": [entry]}))
    assert main(["--repo", str(repo), "--allowlist", str(allowlist), "--no-history"]) == 0
    (repo / "other.py").write_text(f'KEY = "{FAKE_AWS_KEY}"\n')  # the same key elsewhere
    git(repo, "add", "other.py")
    assert main(["--repo", str(repo), "--allowlist", str(allowlist), "--no-history"]) == 1
    allowlist.write_text(json.dumps({"excluded_paths": {}, "allowed": [
        {**entry, "reason": ""}]}))
    with pytest.raises(SystemExit, match="without a reason"):
        Allowlist.load(allowlist)


def test_the_repository_s_allowlist_gives_a_reason_for_everything() -> None:
    loaded = Allowlist.load(ALLOWLIST)
    assert all(reason for reason in loaded.excluded.values())
    assert all(entry["reason"] for entry in loaded.allowed)
