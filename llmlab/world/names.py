"""Made-up names built from syllables, and the word lists the world draws from."""

from __future__ import annotations

import random

ONSETS = ["b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z",
          "br", "dr", "gr", "kr", "tr", "st", "th", "sh", "ch", "cl", "fl", "pl", "sk"]
VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "ou", "ie", "y"]
CODAS = ["", "", "", "n", "r", "l", "s", "th", "m", "nd", "rk", "st", "x"]

FEMALE_ENDINGS = ["a", "ia", "ine", "elle", "ey", "wen"]
MALE_ENDINGS = ["o", "an", "ek", "us", "ard", "in"]

TOWN_SUFFIXES = ["ford", "vale", "mere", "wick", "haven", "stead", "brook", "holm",
                 "bury", "field", "gate", "moor"]
ORG_SUFFIXES = ["Works", "Company", "Group", "Partners", "Cooperative", "Guild",
                "Brothers", "Holdings", "Trading", "Studios", "Labs", "Mills"]
PRODUCT_PREFIXES = ["Nova", "Swift", "Echo", "Terra", "Lumo", "Vanta", "Orbit", "Kestrel",
                    "Pebble", "Maple", "Cobalt", "Ember", "Juniper", "Quill", "Zephyr"]

JOBS = ["baker", "carpenter", "teacher", "nurse", "farmer", "engineer", "painter",
        "librarian", "fisher", "chemist", "tailor", "potter", "pilot", "lawyer",
        "gardener", "mechanic", "journalist", "architect", "pharmacist", "musician",
        "surveyor", "brewer", "weaver", "doctor", "accountant", "translator",
        "beekeeper", "electrician", "photographer", "astronomer"]
SECTORS = ["shipping", "textiles", "farming", "banking", "printing", "mining", "brewing",
           "software", "furniture", "glassware", "medicine", "tea", "bicycles", "clocks",
           "pottery", "radio", "insurance", "timber", "paper", "cheese"]
PRODUCT_KINDS = ["kettle", "lamp", "bicycle", "radio", "teapot", "chair", "notebook",
                 "camera", "umbrella", "clock", "backpack", "telescope", "stove",
                 "violin", "jacket", "scooter", "blender", "compass", "helmet", "desk",
                 "fountain pen", "sewing machine", "typewriter", "heater", "drone",
                 "microscope", "toaster", "canoe", "keyboard", "lantern"]
EVENT_KINDS = ["fair", "festival", "marathon", "concert", "market", "regatta",
               "exhibition", "parade", "tournament", "carnival", "conference",
               "book fair", "horse race", "chess match", "flower show", "harvest feast",
               "film festival", "boat race", "choir contest", "cheese fair"]
REGIONS = ["the Northern Coast", "the Amber Hills", "the Lake District", "the Red Plains",
           "the Misty Valley", "the Salt Marshes", "the High Moor", "the Pine Coast"]


def syllable(rng: random.Random) -> str:
    return rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS)


def word(rng: random.Random, n_syllables: int) -> str:
    return "".join(syllable(rng) for _ in range(n_syllables)).capitalize()


def person_name(rng: random.Random) -> tuple[str, str]:
    """Return a (full name, gender) pair; gender is "f" or "m"."""
    gender = rng.choice("fm")
    endings = FEMALE_ENDINGS if gender == "f" else MALE_ENDINGS
    given = (syllable(rng) + rng.choice(endings)).capitalize()
    family = word(rng, rng.choice([1, 2, 2]))
    return f"{given} {family}", gender


def town_name(rng: random.Random) -> str:
    return (syllable(rng) + rng.choice(TOWN_SUFFIXES)).capitalize()


def org_name(rng: random.Random) -> str:
    return f"{word(rng, 2)} {rng.choice(ORG_SUFFIXES)}"


def product_name(rng: random.Random) -> str:
    return f"{rng.choice(PRODUCT_PREFIXES)} {word(rng, 1)}"


def event_name(rng: random.Random, kind: str) -> str:
    return f"the {word(rng, 2)} {kind.title()}"
