"""Tests of the personal-data detectors and redaction in llmlab.pii."""

import pytest

from llmlab import pii
from llmlab import world as world_lib
from llmlab.errors import InvalidArgumentError, LlmlabError

# A Visa test number that passes the Luhn check, and the same digits with the
# last one changed, which fails it.
VALID_CARD = "4539 1488 0343 6467"
INVALID_CARD = "4539 1488 0343 6468"


def found(text, types=None):
    return [(span.type, span.value) for span in pii.find_pii(text, types)]


@pytest.mark.parametrize(
    "text, value",
    [
        ("Write to ann.lee@mail.example.", "ann.lee@mail.example"),
        ("Mail a_b+tag@sub.domain.co.uk today", "a_b+tag@sub.domain.co.uk"),
        ("(ann@post.test)", "ann@post.test"),
    ],
)
def test_email_found(text, value):
    assert found(text) == [("email", value)]


@pytest.mark.parametrize(
    "text, value",
    [
        ("Call +99 332 6618 now.", "+99 332 6618"),
        ("Call +44 20 7946 0958.", "+44 20 7946 0958"),
        ("Ring (555) 123-4567 after six", "(555) 123-4567"),
        ("Ring 555-123-4567 after six", "555-123-4567"),
        ("Ring 020 7946 0958 after six", "020 7946 0958"),
        ("(or +1 (555) 123 4567)", "+1 (555) 123 4567"),
    ],
)
def test_phone_found(text, value):
    assert found(text) == [("phone", value)]


@pytest.mark.parametrize(
    "value", [VALID_CARD, "4539-1488-0343-6467", "4539148803436467", "378282246310005"]
)
def test_luhn_valid_card_found(value):
    assert found(f"Paid with {value}, thanks.") == [("card_number", value)]


def test_non_luhn_sixteen_digits_not_a_card():
    assert not pii.luhn_valid(INVALID_CARD)
    assert found(f"Order {INVALID_CARD} shipped") == []
    assert found("Order 4539148803436468 shipped") == []


def test_digits_inside_longer_run_not_pii():
    # The tail of a long identifier is neither a phone number nor a card.
    assert found("Batch 1000 0000 0000 0008 done") == []
    assert found(f"Serial {VALID_CARD} 12 shipped") == []


def test_card_outside_issuer_digits_ignored():
    # Passes the Luhn check, but starts with 1, outside the issuer digits 2-6.
    assert pii.luhn_valid("1000000000000008")
    assert found("Batch 1000000000000008 done") == []


def test_luhn_check_values():
    assert pii.luhn_valid("79927398713")
    assert not pii.luhn_valid("79927398710")
    assert not pii.luhn_valid("4539 1488 0343 646x")
    assert not pii.luhn_valid("0")


@pytest.mark.parametrize(
    "text, value",
    [
        ("billing address 128 Old Quay, Vestgate.", "128 Old Quay, Vestgate"),
        ("She lives at 12 Harbour Road.", "12 Harbour Road"),
        ("at 7B Church Street, Long Eaton and", "7B Church Street, Long Eaton"),
    ],
)
def test_address_found(text, value):
    assert found(text) == [("address", value)]


@pytest.mark.parametrize(
    "text",
    [
        "10 + 18 = 28\n16 - 16 = 0\n2 x 12 = 24",
        "The contest draws 17295 visitors and was first held in 1980.",
        "It costs 215 crowns. Bring 393 crowns.",
        "Years: 1970 1980 1990 2000 2010",
        "Version 2.13.0 was released on 2024-01-15.",
        "Email me at the office, or phone tomorrow.",
    ],
)
def test_no_pii_in_ordinary_text(text):
    assert found(text) == []


def test_spans_point_into_text():
    text = f"Ann (ann@post.test, +99 332 6618) paid with {VALID_CARD} at 5 Mill Lane."
    spans = pii.find_pii(text)
    assert [s.type for s in spans] == ["email", "phone", "card_number", "address"]
    for span in spans:
        assert text[span.start : span.end] == span.value


def test_redact_typed_placeholders():
    text = f"Ann (ann@post.test, +99 332 6618) paid with {VALID_CARD} at 5 Mill Lane."
    expected = "Ann ([EMAIL], [PHONE]) paid with [CARD_NUMBER] at [ADDRESS]."
    assert pii.redact(text) == expected


def test_redact_only_requested_types():
    text = "Mail ann@post.test or call +99 332 6618."
    assert pii.redact(text, types=["phone"]) == "Mail ann@post.test or call [PHONE]."
    assert pii.redact(text, types="email") == "Mail [EMAIL] or call +99 332 6618."


def test_redact_with_precomputed_spans():
    text = "Mail ann@post.test or call +99 332 6618."
    spans = pii.find_pii(text)
    assert pii.redact(text, spans=spans) == pii.redact(text)
    assert pii.redact(text, spans=spans[:1]) == "Mail [EMAIL] or call +99 332 6618."


def test_redact_keeps_clean_text():
    text = "Kandholm has 2452 inhabitants. It was built in the year 1791."
    assert pii.redact(text) == text


def test_redact_twice_changes_nothing():
    once = pii.redact(f"Call +99 332 6618 or pay with {VALID_CARD}.")
    assert pii.redact(once) == once


def test_placeholder_names():
    assert pii.placeholder("email") == "[EMAIL]"
    assert pii.placeholder("card_number") == "[CARD_NUMBER]"


def test_unknown_type_rejected():
    with pytest.raises(InvalidArgumentError, match="'passport'"):
        pii.find_pii("text", types=["email", "passport"])
    with pytest.raises(LlmlabError, match="choose from"):
        pii.redact("text", types=["name"])


def test_non_string_text_rejected():
    with pytest.raises(InvalidArgumentError, match="NoneType"):
        pii.redact(None)


def test_mismatched_spans_rejected():
    spans = pii.find_pii("Mail ann@post.test now")
    with pytest.raises(InvalidArgumentError, match="does not match"):
        pii.redact("Mail bob@post.test now!", spans=spans)
    overlapping = [spans[0], pii.PiiSpan("email", 6, 10, "nn@p")]
    with pytest.raises(InvalidArgumentError, match="overlap"):
        pii.redact("Mail ann@post.test now", spans=overlapping)


def test_generated_records_found_exactly():
    records = world_lib.build(seed=0).pii_records(n=300)
    for record in records:
        text = record["text"]
        present = [t for t in pii.PII_TYPES if record[t] in text]
        expected = sorted((text.index(record[t]), t, record[t]) for t in present)
        assert expected, text
        spans = pii.find_pii(text)
        assert [(s.start, s.type, s.value) for s in spans] == expected, text
