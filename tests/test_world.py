"""Tests of the toy world generator and its exported data sets."""

import json
import re

import pytest

from llmlab import pii
from llmlab import world as world_lib


def find_names(names, text):
    """Names that occur in `text` as whole words (so "Ember Plu" misses "Ember Plur")."""
    pattern = r"\b(" + "|".join(re.escape(n) for n in names) + r")\b"
    return set(re.findall(pattern, text))


@pytest.fixture(scope="module")
def world():
    return world_lib.build(seed=0)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, world):
    return world_lib.export(world, tmp_path_factory.mktemp("world"))


def test_same_seed_same_bytes(tmp_path, exported):
    again = world_lib.export(world_lib.build(seed=0), tmp_path)
    assert set(again) == set(exported)
    for name, path in exported.items():
        assert again[name].read_bytes() == path.read_bytes(), name


def test_other_seed_other_world(world):
    other = world_lib.build(seed=1)
    assert [e.name for e in other.entities] != [e.name for e in world.entities]


def test_withheld_names_absent_from_pretraining(world):
    withheld = [e.name for e in world.withheld()]
    assert len(withheld) >= 100
    corpus = "\n".join(world.pretraining_corpus("train", 10000))
    corpus += "\n".join(world.pretraining_corpus("validation", 2000))
    assert find_names(withheld, corpus) == set()
    visible = [e.name for e in world.visible("person")]
    assert len(find_names(visible, corpus)) > 100  # the check does find names


def test_withheld_names_absent_from_instructions(world):
    withheld = [e.name for e in world.withheld()]
    text = json.dumps(world.instructions("train", 5000))
    assert find_names(withheld, text) == set()


def test_context_qa_eval_is_about_withheld(world):
    sets = world.eval_sets()
    withheld = {e.name for e in world.withheld()}
    assert len(sets["context_qa"]) >= 300
    assert {r["entity"] for r in sets["context_qa"]} <= withheld
    for record in sets["context_qa"]:
        assert record["answer"] in record["prompt"], record
    closed = sets["closed_book"]
    assert [r["answer"] for r in closed] == [r["answer"] for r in sets["context_qa"]]
    assert all(r["answer"] not in r["prompt"] for r in closed)


def test_eval_sets_large_enough(world):
    sizes = {family: len(records) for family, records in world.eval_sets().items()}
    assert min(sizes.values()) >= 100, sizes
    for family in ("arith_single", "arith_steps", "arith_direct"):
        assert sizes[family] >= 300, family


def test_cards_pass_luhn(world):
    records = world.pii_records()
    assert len(records) >= 100
    for record in records:
        assert pii.luhn_valid(record["card_number"]), record["card_number"]


def test_luhn_rejects_changed_digit():
    assert pii.luhn_valid("4539 1488 0343 6467")
    assert not pii.luhn_valid("4539 1488 0343 6468")


def test_word_problems_stay_in_range(world):
    for record in world.eval_sets()["arith_steps"]:
        for a, b, c in re.findall(r"(\d+) [-+x] (\d+) = (\d+)", record["answer"]):
            assert 0 <= int(c) <= 99, record["answer"]
        assert record["answer"].endswith(f"The answer is {record['value']}.")


def test_crawl_and_injection_labels(world):
    pages = world.crawl_pages()
    by_id = {p["id"]: p for p in pages}
    labels = {p["label"] for p in pages}
    assert labels == {"clean", "exact_duplicate", "near_duplicate", "low_quality"}
    for page in pages:
        if page["label"] == "exact_duplicate":
            assert page["text"] == by_id[page["duplicate_of"]]["text"]
    docs = world.injection_documents()
    for doc in docs:
        if doc["injected"]:
            assert doc["injection"] in doc["text"]
    assert any(d["injected"] for d in docs)
    assert not all(d["injected"] for d in docs)


def test_load_dataset_reads_export(exported):
    datasets = pytest.importorskip("datasets")
    data = datasets.load_dataset("json", data_files=str(exported["instructions_validation"]),
                                 split="train")
    assert {"family", "prompt", "answer"} <= set(data.column_names)
    assert len(data) == 1000
