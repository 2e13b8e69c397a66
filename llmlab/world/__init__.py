"""A seeded toy world and everything the book renders from it.

`build(seed)` draws the world: 40 towns, 320 people, 120 organisations, 100
products and 60 events with made-up names, dates and numbers. A fifth of the
people, organisations, products and events are withheld: their facts appear
only in the encyclopedia and in evaluation sets, never in training text.

`export(world, out_dir)` writes JSONL files that
`datasets.load_dataset("json", data_files=...)` reads:

- `entities.jsonl`: every entity, its facts and whether it is withheld;
- `encyclopedia.jsonl`: one article per entity, for retrieval;
- `pretrain/{train,validation}.jsonl`: articles, stories, dialogues, how-to
  texts, reading passages with questions, arithmetic drills, word problems;
- `instructions/{train,validation}.jsonl`: prompt/answer pairs of the
  instruction families, some with follow-up turns;
- `eval/<family>.jsonl`: held-out sets with gold answers, including
  `context_qa` and `closed_book` over the withheld facts;
- `safety/pii.jsonl`, `safety/crawl.jsonl`, `safety/injections.jsonl`: fake
  personal data, labelled noisy crawl pages and documents with injections.

The same seed always gives the same bytes.
"""

from __future__ import annotations

from llmlab.world.entities import FIELD_TYPES, Entity
from llmlab.world.export import export
from llmlab.world.model import World, build

__all__ = ["FIELD_TYPES", "Entity", "World", "build", "export"]
