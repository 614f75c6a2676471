"""The Base64 cache of pulled PDFs (digilocker/pdf_cache.py): reads each PDF once, never holds
more than its budget, drops the least recently used first, and never caches a failed read."""

from __future__ import annotations

import base64
import threading

import pytest

from digilocker.pdf_cache import PdfCache


class Reader:
    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.reads: list[str] = []

    def __call__(self, sha256: str) -> bytes:
        self.reads.append(sha256)
        if sha256 not in self.files:
            raise OSError(f"{sha256}: not stored")
        return self.files[sha256]


def b64len(size: int) -> int:
    return len(base64.b64encode(b"x" * size))


def test_a_pdf_is_read_once_and_its_base64_reused() -> None:
    reader = Reader({"a": b"%PDF-a" * 100})
    cache = PdfCache()
    first = cache.base64("a", reader)
    assert first == base64.b64encode(b"%PDF-a" * 100).decode()
    assert cache.base64("a", reader) == first
    assert reader.reads == ["a"]


def test_the_least_recently_used_goes_first_when_over_budget() -> None:
    reader = Reader({k: k.encode() * 300 for k in "abc"})
    cache = PdfCache(budget=2 * b64len(300))
    cache.base64("a", reader)
    cache.base64("b", reader)
    cache.base64("a", reader)  # a is now the most recently used
    cache.base64("c", reader)  # over budget: b goes
    assert len(cache) == 2
    reader.reads.clear()
    cache.base64("a", reader)
    cache.base64("c", reader)
    assert reader.reads == []
    cache.base64("b", reader)
    assert reader.reads == ["b"]


def test_never_holds_more_than_its_budget() -> None:
    sizes = {f"k{i}": b"p" * (100 + 37 * i) for i in range(40)}
    cache = PdfCache(budget=5000)
    for key in sizes:
        cache.base64(key, Reader(sizes))
        assert cache._held <= 5000
        assert cache._held == sum(len(v) for v in cache._entries.values())


def test_an_entry_larger_than_the_budget_is_served_but_not_held() -> None:
    reader = Reader({"big": b"z" * 4000, "small": b"s" * 10})
    cache = PdfCache(budget=1000)
    cache.base64("small", reader)
    assert cache.base64("big", reader) == base64.b64encode(b"z" * 4000).decode()
    cache.base64("big", reader)
    cache.base64("small", reader)  # still held: the big one did not push it out
    assert reader.reads == ["small", "big", "big"] and len(cache) == 1


def test_a_budget_of_zero_caches_nothing() -> None:
    reader = Reader({"a": b"a"})
    cache = PdfCache(budget=0)
    cache.base64("a", reader)
    cache.base64("a", reader)
    assert reader.reads == ["a", "a"] and len(cache) == 0


def test_a_failed_read_is_raised_and_not_cached() -> None:
    reader = Reader({})
    cache = PdfCache()
    for _ in range(2):
        with pytest.raises(OSError):
            cache.base64("gone", reader)
    assert reader.reads == ["gone", "gone"] and len(cache) == 0


def test_threads_share_one_consistent_cache() -> None:
    files = {f"k{i}": bytes([i]) * (200 + i) for i in range(20)}
    cache = PdfCache(budget=10 * b64len(220))
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for n in range(400):
                key = f"k{(n + offset) % 20}"
                assert cache.base64(key, Reader(files)) == base64.b64encode(files[key]).decode()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert cache._held == sum(len(v) for v in cache._entries.values()) <= cache.budget
