"""The `World`: entities, withheld set and the renderers that draw on them."""

from __future__ import annotations

import random
from collections.abc import Iterator

from llmlab.world import arithmetic, entities, names, prose, render, safety, tasks
from llmlab.world.entities import Entity, NameBook

# Number of entities of each kind, and the share of people, organisations,
# products and events whose facts are withheld from every training stage.
COUNTS = {"town": 40, "org": 120, "person": 320, "product": 100, "event": 60}
WITHHELD_SHARE = 0.2

# Share of pretraining documents per kind of text.
PRETRAIN_MIX = {"world": 0.40, "reading": 0.35, "drill": 0.15, "word_problem": 0.10}

# Share of instruction examples per family in the fine-tuning mixture.
SFT_MIX = {"context_qa": 0.40, "closed_book": 0.05, "summarise": 0.06, "extract": 0.06,
           "classify": 0.04, "rewrite": 0.05, "arith_single": 0.10, "arith_steps": 0.16,
           "arith_direct": 0.08}

# Facts that an entity's name gives away ("the Velmora Fair" is a fair), left
# out of the question sets so a closed-book answer cannot read them off the name.
NAME_REVEALS = {("event", "kind")}

# Held-out examples per family in the evaluation sets.
EVAL_SIZES = {"summarise": 150, "extract": 150, "classify": 150, "rewrite": 150,
              "arith_single": 400, "arith_problems": 400}


class World:
    """The entities of one seed, split into visible and withheld."""

    def __init__(self, seed: int, entity_list: list[Entity]):
        self.seed = seed
        self.entities = entity_list
        self.by_name = {e.name: e for e in entity_list}

    def visible(self, kind: str | None = None) -> list[Entity]:
        return [e for e in self.entities if not e.withheld and kind in (None, e.kind)]

    def withheld(self, kind: str | None = None) -> list[Entity]:
        return [e for e in self.entities if e.withheld and kind in (None, e.kind)]

    def _rng(self, purpose: str) -> random.Random:
        return random.Random(f"{self.seed}:{purpose}")

    def _fresh_book(self, purpose: str) -> NameBook:
        taken = {e.name for e in self.entities} | {e.name.lower() for e in self.entities}
        return NameBook(self._rng(f"{purpose}:names"), taken, memory=64)

    def encyclopedia(self) -> list[dict]:
        """Render one article per entity, withheld entities included."""
        return [{"id": i, "title": e.name, "kind": e.kind, "withheld": e.withheld,
                 "text": render.encyclopedia_doc(e, self.seed)}
                for i, e in enumerate(self.entities)]

    def pretraining_corpus(self, split: str = "train", n_docs: int = 20000) -> Iterator[str]:
        """Yield `n_docs` documents; `split` ("train" or "validation") picks the stream.

        Only visible entities appear. The reading passages are about freshly
        invented entities, so answering their questions means copying from the
        passage.
        """
        rng = self._rng(f"pretrain:{split}")
        book = self._fresh_book(f"pretrain:{split}")
        kinds, weights = zip(*PRETRAIN_MIX.items())
        for _ in range(n_docs):
            kind = rng.choices(kinds, weights)[0]
            if kind == "world":
                yield prose.world_document(rng, self)
            elif kind == "reading":
                yield tasks.reading_passage(rng, book)
            elif kind == "drill":
                yield arithmetic.arithmetic_drill(rng, rng.randrange(8, 25))
            else:
                yield tasks.word_problem_text(rng)

    def instructions(self, split: str = "train", n: int = 20000,
                     followups: bool = True) -> list[dict]:
        """Instruction examples drawn from `SFT_MIX`, about fresh entities.

        With `followups` (default), some examples carry further turns in
        `followups`; see `tasks.family_example`.
        """
        rng = self._rng(f"sft:{split}")
        book = self._fresh_book(f"sft:{split}")
        families, weights = zip(*SFT_MIX.items())
        visible = self.visible()
        return [tasks.family_example(rng, rng.choices(families, weights)[0], book, visible,
                                     followups)
                for _ in range(n)]

    def eval_sets(self) -> dict[str, list[dict]]:
        """Gold-answer sets per family, none of them seen in training."""
        rng = self._rng("eval")
        book = self._fresh_book("eval")
        sets = {"context_qa": [], "closed_book": []}
        for entity in self.withheld():
            doc = render.encyclopedia_doc(entity, self.seed)
            for field in entity.facts:
                if (entity.kind, field) in NAME_REVEALS:
                    continue
                sets["context_qa"].append(tasks.context_qa(rng, entity, field=field, doc=doc))
                sets["closed_book"].append(tasks.closed_book(rng, entity, field=field))
        for family in ("summarise", "extract", "classify", "rewrite", "arith_single"):
            sets[family] = [tasks.family_example(rng, family, book, [])
                            for _ in range(EVAL_SIZES[family])]
        problems = [arithmetic.word_problem(rng, names.person_name(rng)[0],
                                            names.person_name(rng)[0])
                    for _ in range(EVAL_SIZES["arith_problems"])]
        sets["arith_steps"] = [tasks.problem_example(p, worked=True) for p in problems]
        sets["arith_direct"] = [tasks.problem_example(p, worked=False) for p in problems]
        sets["closed_book_control"] = [tasks.closed_book(rng, e)
                                       for e in rng.sample(self.visible(), 200)]
        return sets

    def pii_records(self, n: int = 500) -> list[dict]:
        rng = self._rng("pii")
        towns = [e.name for e in self.visible("town")]
        records = [safety.pii_record(rng, towns) for _ in range(n)]
        return [{**r, "text": safety.pii_text(rng, r)} for r in records]

    def crawl_pages(self, n: int = 600) -> list[dict]:
        return safety.crawl_pages(self._rng("crawl"), self, n)

    def injection_documents(self, n: int = 200) -> list[dict]:
        return safety.injection_documents(self._rng("injections"), self, n)


def build(seed: int = 0) -> World:
    """Draw the world for `seed`; the same seed always gives the same world.

    Args:
        seed: any integer. Change it to get a different world with the same
            structure (default 0, the world the shipped models were trained on).
    """
    rng = random.Random(f"world:{seed}")
    book = NameBook(rng)
    towns = [entities.make_town(book, rng) for _ in range(COUNTS["town"])]

    # Withheld entities may point at anything; visible ones only at visible ones,
    # so no withheld name appears in text about the visible world.
    people = []
    for _ in range(COUNTS["person"]):
        name, gender = book.unique(names.person_name)
        people.append(Entity("person", name, {}, gender))
    _mark_withheld(rng, people)
    orgs = []
    for _ in range(COUNTS["org"]):
        orgs.append(entities.make_org(book, rng, towns, [p for p in people if not p.withheld]))
    _mark_withheld(rng, orgs)
    visible_orgs = [o for o in orgs if not o.withheld]
    for org in orgs:
        if org.withheld:
            org.facts["founder"] = rng.choice(people).name
    for person in people:
        employers = orgs if person.withheld else visible_orgs
        person.facts = {"town": rng.choice(towns).name, "job": rng.choice(names.JOBS),
                        "born": rng.randrange(1940, 2006),
                        "employer": rng.choice(employers).name}
    products = [entities.make_product(book, rng, visible_orgs)
                for _ in range(COUNTS["product"])]
    events = [entities.make_event(book, rng, towns) for _ in range(COUNTS["event"])]
    for kind_list in (products, events):
        _mark_withheld(rng, kind_list)
    for product in products:
        if product.withheld:
            product.facts["maker"] = rng.choice(orgs).name
    return World(seed, towns + people + orgs + products + events)


def _mark_withheld(rng: random.Random, entity_list: list[Entity]) -> None:
    for entity in rng.sample(entity_list, round(len(entity_list) * WITHHELD_SHARE)):
        entity.withheld = True
