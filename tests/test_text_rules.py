"""Printed text must be visible, in its field's script, with sane character clusters; request
JSON may not repeat a key. Through the public validator (issuer.submit.validate) and parser."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from issuer.certtypes.birth import MAX_REGISTRATION
from issuer.errors import ValidationFailed
from issuer.fields import MAX_MARKS, MAX_WORD, Checker, DuplicateKey, parse_json
from issuer.submit import validate
from tests.conftest import ROOT, SAMPLES, sample

SHARED_SAMPLES = ROOT.parent / "shared" / "data" / "samples"


def codes(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as refused:
        validate(data)
    return {e.field: e.code for e in refused.value.errors}


def with_name(en: str | None = None, mr: str | None = None) -> dict[str, Any]:
    data = sample("birth-1")
    if en is not None:
        data["child"]["name"]["en"] = en
    if mr is not None:
        data["child"]["name"]["mr"] = mr
    return data


ZWJ, ZWNJ = "\u200d", "\u200c"


@pytest.mark.parametrize(
    ("en", "mr", "field", "code"),
    [
        # Prints as nothing: joiners, blanks and marks without any letter.
        (ZWJ * 3, None, "child.name.en", "no_letters"),
        (None, ZWJ + ZWNJ + ZWJ, "child.name.mr", "no_letters"),
        (None, f"{ZWJ} \u0901 \u093f", "child.name.mr", "no_letters"),
        ("\u0301\u0301", None, "child.name.en", "no_letters"),
        ("- . -", None, "child.name.en", "no_letters"),
        (None, "१२३", "child.name.mr", "no_letters"),
        # The wrong script with one letter of the right one, either way round.
        (None, "Aarav Kulkarni आ", "child.name.mr", "not_devanagari"),
        ("आरव कुलकर्णी a", None, "child.name.en", "not_latin"),
        ("Aarav\u093f", None, "child.name.en", "not_latin"),  # a Devanagari vowel sign
        ("Aarav १२", None, "child.name.en", "not_latin"),  # Devanagari digits
        ("Aa" + ZWJ + "rav", None, "child.name.en", "not_latin"),
        (None, "आरव\u0301", "child.name.mr", "not_devanagari"),  # a Latin accent
        ("Aarav µ", None, "child.name.en", "not_latin"),  # a letter of neither script
        # Clusters: one limit for both scripts.
        (None, "क" + "\u0901" * 39, "child.name.mr", "too_many_marks"),
        (None, "क" + "\u093c\u093f\u0902\u0951\u0901", "child.name.mr", "too_many_marks"),
        (None, "क्" + ZWJ * 4, "child.name.mr", "too_many_marks"),
        ("Aax" + "\u0323\u0301\u0300\u0302\u0303", None, "child.name.en", "too_many_marks"),
        (None, "\u093fआरव", "child.name.mr", "stray_mark"),
        (None, "आरव " + ZWJ + "क", "child.name.mr", "stray_mark"),
        ("Aarav \u0301x", None, "child.name.en", "stray_mark"),
    ],
)
def test_invisible_wrong_script_and_stacked_text_is_refused(
    en: str | None, mr: str | None, field: str, code: str
) -> None:
    assert codes(with_name(en, mr)).get(field) == code


def test_every_bilingual_field_checks_its_script_including_remarks() -> None:
    data = sample("birth-1")
    data["remarks"] = {"en": "विहित मुदतीत", "mr": "Registered in time"}
    data["ward_office"]["mr"] = "Kothrud क"
    data["permanent_address"]["en"] = "फ्लॅट 12"
    assert codes(data) == {"remarks.en": "not_latin", "remarks.mr": "not_devanagari",
                           "ward_office.mr": "not_devanagari",
                           "permanent_address.en": "not_latin"}


@pytest.mark.parametrize(
    "mr",
    [
        "क्ष्म्य र्त्स्न्य",  # long conjuncts: one virama per letter
        "ज़्",  # nukta + virama (NFC keeps the nukta separate)
        "क़िं कॉँ दुःख",  # nukta + vowel sign + anusvara, vowel sign + candrabindu, visarga
        "क़िं॑",  # nukta + vowel sign + anusvara + Vedic accent: the limit, four
        "र्\u200dय क्\u200dष",  # eyelash ra, explicit half form (virama + ZWJ)
        "ज्ञानेश्वरी श्रद्धा त्र्यंबक",
        "फ्लॅट १२, ऑगस्ट हॉस्पिटल, पुणे ४११०३८",  # Devanagari digits and punctuation
        "श्री. अंँ ॐ",
    ],
)
def test_real_marathi_is_accepted(mr: str) -> None:
    kind, clean = validate(with_name(mr=mr))
    assert kind == "birth" and clean["child"]["name"]["mr"]


@pytest.mark.parametrize(
    "en",
    [
        "Nguyễn Thị Ánh",
        "Jean-Luc O'Brien",
        "Ṇaṭarāja Ḍhuṇḍirāja",  # IAST: precomposed in Latin Extended Additional
        "Jose\u0301 Ranx\u0323",  # NFC composes the first; the second has no precomposed form
        "Aax" + "\u0323\u0301\u0300\u0302",  # four Latin marks: the same limit as Devanagari
        "Ward 12, Pune 411038",
    ],
)
def test_latin_with_combining_marks_is_accepted(en: str) -> None:
    validate(with_name(en=en))


def test_latin_combining_marks_and_devanagari_signs_share_one_limit() -> None:
    for base, mark, field in (("Aax", "\u0301", "en"), ("आरव", "\u0901", "mr")):
        ok = base + mark * MAX_MARKS
        too_many = base + mark * (MAX_MARKS + 1)
        validate(with_name(**{field: ok}))
        assert codes(with_name(**{field: too_many})) == {f"child.name.{field}": "too_many_marks"}


def test_registration_number_limit_is_the_printable_word_limit() -> None:
    assert MAX_REGISTRATION == MAX_WORD
    data = sample("birth-1")
    data["registration_number"] = "B-" + "7" * (MAX_REGISTRATION - 2)
    validate(data)
    for length in (MAX_REGISTRATION + 1, 64):
        data["registration_number"] = "B" * length
        assert codes(data) == {"registration_number": "too_long"}


def all_samples() -> list[Path]:
    paths = sorted(SAMPLES.glob("*.json"))
    if SHARED_SAMPLES.is_dir():
        paths += sorted(SHARED_SAMPLES.glob("*.json"))
    return paths


def bilingual_values(node: Any) -> list[dict[str, str]]:
    if isinstance(node, dict):
        found = [node] if set(node) == {"en", "mr"} else []
        return found + [b for child in node.values() for b in bilingual_values(child)]
    if isinstance(node, list):
        return [b for child in node for b in bilingual_values(child)]
    return []


@pytest.mark.parametrize("path", all_samples(), ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_shipped_samples_pass_the_text_rules(path: Path) -> None:
    data = parse_json(path.read_bytes())
    if data["type"] == "birth":
        assert validate(data)[0] == "birth"
    pairs = bilingual_values(data)
    assert pairs
    check = Checker(data)
    for i, pair in enumerate(pairs):
        check.bilingual({"v": pair}, "v", f"v{i}", allow_empty=True)
    assert check.errors == []


@pytest.mark.parametrize(
    "text",
    [
        '{"type": "birth", "type": "death"}',
        '{"child": {"name": {"en": "A", "mr": "आ", "en": "B"}}}',
        '[{"a": 1}, {"b": {"c": [{"d": 1, "d": 1}]}}]',
    ],
)
def test_duplicate_keys_are_refused_at_every_level(text: str) -> None:
    with pytest.raises(DuplicateKey, match="duplicate key"):
        parse_json(text)
    json.loads(text)  # the standard parser would have taken the last value silently


def test_long_keys_are_cut_in_reports() -> None:
    data = sample("birth-1")
    data["k" * 10_000] = 1
    (field,) = codes(data)
    assert len(field) < 100 and field.endswith("…")
    with pytest.raises(DuplicateKey) as twice:
        parse_json(json.dumps({"k" * 10_000: 1})[:-1] + ', "' + "k" * 10_000 + '": 2}')
    assert len(str(twice.value)) < 100
