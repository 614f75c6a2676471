"""The registry of certificate types: what `register` refuses, and that registering and removing a
type is all it takes for the validator, the renderer and the department set-up to know it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import templates
from issuer.certtypes import (
    cert_type,
    known_types,
    register,
    template_file,
    unregister,
)
from issuer.certtypes.birth import Birth
from issuer.certtypes.death import Death
from issuer.certtypes.property_no_dues import PropertyNoDues
from issuer.errors import ValidationFailed
from issuer.submit import validate
from tests.conftest import sample


class Variant(Death):
    """The death type under another code, prefix, ... (set per test)."""

    code = "death_copy"
    number_prefix = "DC"
    template_version = "death_copy/1"

    def __init__(self, root: Path | None = None) -> None:
        self._root = root

    @property
    def templates_root(self) -> Path:
        return self._root or templates.templates_dir()


@pytest.fixture
def copy_root(tmp_path: Path) -> Path:
    """A templates root of its own with the death template as death_copy/1."""
    root = tmp_path / "templates"
    (root / "death_copy").mkdir(parents=True)
    shipped = templates.templates_dir()
    (root / "death_copy" / "1.typ").write_bytes((shipped / "death" / "1.typ").read_bytes())
    return root


@pytest.fixture
def cleanup() -> Iterator[None]:
    before = known_types()
    yield
    for code in set(known_types()) - set(before):
        unregister(code)
    for code, kind in before.items():
        if cert_type(code) is not kind:
            register(kind, replace=True)


def test_shipped_types_are_registered_and_pass_the_registration_checks() -> None:
    assert sorted(known_types()) == ["birth", "death", "property_no_dues"]
    for kind in (Birth(), Death(), PropertyNoDues()):
        register(kind, replace=True)  # the checks run; the shipped templates exist
    assert sorted(known_types()) == ["birth", "death", "property_no_dues"]


def test_known_types_is_a_copy() -> None:
    types = known_types()
    types.pop("birth")
    assert cert_type("birth") is not None


def test_register_and_unregister_a_type(copy_root: Path, cleanup: None) -> None:
    data = sample("death-1")
    data["type"] = "death_copy"
    with pytest.raises(ValidationFailed):
        validate(data)
    kind = Variant(copy_root)
    register(kind)
    assert cert_type("death_copy") is kind
    assert validate(data)[0] == "death_copy"
    assert unregister("death_copy") is kind
    assert cert_type("death_copy") is None
    with pytest.raises(ValidationFailed):
        validate(data)
    with pytest.raises(KeyError):
        unregister("death_copy")


def test_a_registered_code_is_not_replaced_by_accident(cleanup: None) -> None:
    with pytest.raises(ValueError, match="'birth' is already registered"):
        register(Birth())
    assert cert_type("birth") is not None


@pytest.mark.parametrize(
    ("attribute", "value", "message"),
    [
        ("code", "Death-Copy", "lower-case letters"),
        ("code", "x" * 25, "lower-case letters"),
        ("number_prefix", "d", "capital letters"),
        ("number_prefix", "DCXX", "capital letters"),
        ("number_prefix", "D", "number prefix 'D' is already used by 'death'"),
        ("doc_type", "dtcer", "doc type"),
        ("rts_days", 0, "RTS time limit"),
        ("authority", {"en": "Registrar"}, "English and Marathi"),
        ("template_version", "death/1", "template version must be death_copy/<number>"),
        ("template_version", "death_copy/one", "template version must be death_copy/<number>"),
        ("template_version", "death_copy/2", "does not exist"),
    ],
)
def test_register_refuses_a_malformed_type(
    copy_root: Path, cleanup: None, attribute: str, value: object, message: str
) -> None:
    kind = Variant(copy_root)
    setattr(kind, attribute, value)
    with pytest.raises(ValueError, match=message):
        register(kind)
    assert cert_type(kind.code) is None


def test_template_versions_name_files_under_the_root(tmp_path: Path) -> None:
    assert template_file(tmp_path, "birth/1") == tmp_path / "birth" / "1.typ"
    assert template_file(tmp_path, "property_no_dues/12") == (
        tmp_path / "property_no_dues" / "12.typ")
    for bad in ("birth", "birth/0", "birth/../1", "../birth/1", "birth/1.typ", "Birth/1", "/1"):
        with pytest.raises(ValueError, match="not <type>/<number>"):
            template_file(tmp_path, bad)
