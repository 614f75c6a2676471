"""The scope of fixtures built once for many tests, as mutmut's test mapping needs it."""

import os
from collections.abc import Callable
from typing import Literal

Scope = Literal["class", "module", "package", "session"]


def shared(scope: Scope) -> Callable[[str, object], str]:
    """`scope`, except in mutmut's stats pass (MUTANT_UNDER_TEST=stats), where it is "function".

    mutmut credits a mutated function to the test during whose setup or call it ran, and later
    runs a mutant only against the tests credited with its function. A fixture built once would
    credit everything it calls to the first test that asked for it, so a mutant there was run
    against that one test alone (devpki's profile was only ever checked on the CA certificate).
    Built per test in the stats pass, every test that uses it is credited; the mutant runs still
    build it once per `scope` (in a process where the mutant is already switched on)."""

    def pick(fixture_name: str, config: object) -> str:
        return "function" if os.environ.get("MUTANT_UNDER_TEST") == "stats" else scope

    return pick
