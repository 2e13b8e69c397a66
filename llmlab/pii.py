"""Find and redact personal data in text: emails, phone numbers, cards, addresses.

The detectors are regular expressions with a validation step where one exists
(the Luhn checksum for card numbers). They are tuned for English-style text and
for the formats below, and they miss what they do not describe. Names, dates of
birth, national ID numbers and addresses without a street number are not
detected. Neither is a number inside a longer run of digit groups, so the tail
of a serial number is not taken for a phone number.

- `email`: `local@domain.tld`; a full stop after the address is not part of it.
- `phone`: international numbers written with a leading `+` and 7 to 15 digits
  (`+44 20 7946 0958`), and national numbers in the 3-3-4 layout
  (`(555) 123-4567`, `555-123-4567`) or with a leading trunk 0
  (`020 7946 0958`).
- `card_number`: 13 to 19 digits, optionally grouped with spaces or hyphens,
  that start with 2-6 (the first digits of Mastercard, American Express, Visa,
  Discover, JCB and UnionPay numbers) and pass the Luhn check. NOTE: airline
  (UATP) card numbers start with 1 and are not detected.
- `address`: a house number, up to three capitalised words and a street type
  (`12 Harbour Road`), optionally followed by a comma and a town of up to three
  capitalised words.

Usage:

    spans = find_pii(text)            # list of PiiSpan, sorted by position
    clean = redact(text)              # "Call [PHONE] about the order."
    clean = redact(text, types=["email"])
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from llmlab.errors import InvalidArgumentError

PII_TYPES = ("email", "phone", "card_number", "address")

_STREET_TYPES = (
    "Street|St|Road|Rd|Lane|Ln|Avenue|Ave|Row|Quay|Way|Drive|Dr|Court|Ct|Place"
    "|Pl|Square|Sq|Terrace|Close|Crescent|Boulevard|Blvd|Gardens|Hill|Walk"
    "|Parade|Mews"
)
_PATTERNS = {
    "email": re.compile(
        r"(?<![\w.%+-])[A-Za-z0-9](?:[\w.%+-]*[\w%+-])?"
        r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}(?![\w-])"
    ),
    "phone": re.compile(
        # Each form must not sit inside a longer run of digit groups.
        r"(?<!\d[ .-])(?:"
        # international: +CC then groups, e.g. +44 20 7946 0958, +1 (555) 123 4567
        r"(?<![\w+])\+\d{1,3}(?:[ .-]?(?:\(\d{2,4}\)|\d{2,4})){2,5}"
        # national 3-3-4: (555) 123-4567, 555-123-4567, 555.123.4567
        r"|(?<![\w+(])(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}"
        # national with trunk 0: 020 7946 0958, 01632 960001
        r"|(?<![\w+])0\d{2,4}[ .-]\d{3,4}[ .-]?\d{3,4}"
        r")(?![ .-]?\d)"
    ),
    "card_number": re.compile(
        r"(?<![\w-])(?<!\d )[2-6](?:[ -]?\d){12,18}(?![\w-])(?! \d)"
    ),
    "address": re.compile(
        r"(?<![\w-])\d{1,5}[A-Za-z]? (?:[A-Z][a-z]+ ){0,3}"
        rf"(?:{_STREET_TYPES})\b"
        r"(?:, [A-Z][a-z]+(?: [A-Z][a-z]+){0,2})?"
    ),
}
# A lower number wins when two detectors claim overlapping text of equal length.
_PRIORITY = {"card_number": 0, "email": 1, "phone": 2, "address": 3}
_DIGIT_COUNT = {"phone": (7, 15), "card_number": (13, 19)}


@dataclass(frozen=True)
class PiiSpan:
    """One piece of personal data found in a text.

    `start` and `end` are character offsets with `text[start:end] == value`.
    """

    type: str
    start: int
    end: int
    value: str

    @property
    def placeholder(self) -> str:
        return placeholder(self.type)


def placeholder(pii_type: str) -> str:
    """Return the typed placeholder that replaces `pii_type`, e.g. "[EMAIL]"."""
    _check_types([pii_type])
    return f"[{pii_type.upper()}]"


def luhn_valid(number: str) -> bool:
    """Check the Luhn checksum of a card number.

    Args:
        number: the digits, with or without spaces or hyphens between them.

    Returns:
        True when `number` has at least two digits, nothing but digits and
        separators, and its checksum is 0 modulo 10.
    """
    digits = re.sub(r"[ -]", "", number)
    if len(digits) < 2 or not digits.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2 == 1:  # every second digit from the right is doubled
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def find_pii(text: str, types: Iterable[str] | None = None) -> list[PiiSpan]:
    """Find the personal data in `text`.

    Args:
        text: the text to scan.
        types: the kinds of data to look for, a subset of `PII_TYPES`
            (default None: all of them). Pass fewer to keep, say, addresses
            that a task needs.

    Returns:
        Non-overlapping spans sorted by position. Where detectors overlap, the
        longer match wins; on equal length, card numbers win over emails, emails
        over phone numbers and phone numbers over addresses.
    """
    _check_text(text)
    wanted = PII_TYPES if types is None else _check_types(types)
    candidates = [
        PiiSpan(pii_type, match.start(), match.end(), match.group())
        for pii_type in wanted
        for match in _PATTERNS[pii_type].finditer(text)
        if _is_valid(pii_type, match.group())
    ]
    candidates.sort(key=lambda s: (s.start - s.end, _PRIORITY[s.type], s.start))
    kept: list[PiiSpan] = []
    for span in candidates:
        if all(span.end <= other.start or span.start >= other.end for other in kept):
            kept.append(span)
    return sorted(kept, key=lambda s: s.start)


def redact(
    text: str,
    types: Iterable[str] | None = None,
    spans: list[PiiSpan] | None = None,
) -> str:
    """Replace each piece of personal data in `text` with its typed placeholder.

    Args:
        text: the text to redact.
        types: the kinds of data to redact (default None: all of `PII_TYPES`).
            Ignored when `spans` is given.
        spans: spans from an earlier `find_pii(text)` call, to avoid scanning
            twice (default None: scan `text` now).

    Returns:
        The text with, e.g., "ann@mail.test" replaced by "[EMAIL]".
    """
    if spans is None:
        spans = find_pii(text, types)
    else:
        _check_text(text)
        _check_spans(text, spans)
    pieces, cursor = [], 0
    for span in sorted(spans, key=lambda s: s.start):
        pieces += [text[cursor : span.start], span.placeholder]
        cursor = span.end
    pieces.append(text[cursor:])
    return "".join(pieces)


def _is_valid(pii_type: str, value: str) -> bool:
    if pii_type in _DIGIT_COUNT:
        low, high = _DIGIT_COUNT[pii_type]
        if not low <= sum(c.isdigit() for c in value) <= high:
            return False
    if pii_type == "card_number":
        return luhn_valid(value)
    return True


def _check_text(text) -> None:
    if not isinstance(text, str):
        raise InvalidArgumentError(
            f"text must be a str, got {type(text).__name__} ({text!r:.60}); "
            "convert it or skip missing values before redacting"
        )


def _check_types(types: Iterable[str]) -> tuple[str, ...]:
    if isinstance(types, str):
        types = [types]
    types = tuple(types)
    unknown = [t for t in types if t not in PII_TYPES]
    if unknown:
        raise InvalidArgumentError(
            f"unknown PII type(s) {unknown}; choose from {list(PII_TYPES)}"
        )
    return types


def _check_spans(text: str, spans: list[PiiSpan]) -> None:
    ordered = sorted(spans, key=lambda s: s.start)
    for span in ordered:
        if text[span.start : span.end] != span.value:
            raise InvalidArgumentError(
                f"span {span} does not match the text at [{span.start}:{span.end}] "
                f"({text[span.start : span.end]!r}); pass spans from find_pii(text) "
                "of this same text"
            )
    for first, second in zip(ordered, ordered[1:]):
        if second.start < first.end:
            raise InvalidArgumentError(
                f"spans {first} and {second} overlap; pass non-overlapping spans, "
                "as find_pii returns them"
            )
