"""Write the rendered world to JSONL files."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

logger = logging.getLogger(__name__)

# Documents in the exported pretraining corpus; training draws from the same
# streams, so a larger number only adds documents at the end of each stream.
EXPORT_PRETRAIN_DOCS = {"train": 40000, "validation": 2000}
EXPORT_INSTRUCTIONS = {"train": 20000, "validation": 1000}


def write_jsonl(path: Path, records) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def instruction_record(record: dict) -> dict:
    """Give every instruction record the same columns, as Arrow needs one schema."""
    followups = [{"prompt": f["prompt"], "answer": f["answer"]}
                 for f in record.get("followups", [])]
    return {"family": record["family"], "prompt": record["prompt"],
            "answer": record["answer"], "followups": followups}


def export(world, out_dir: str | Path) -> dict[str, Path]:
    """Write every data set of `world` under `out_dir` and return the paths by name.

    Args:
        world: a `World` from `llmlab.world.build`.
        out_dir: folder to create or overwrite, e.g. `data/world`.
    """
    out = Path(out_dir)
    files = {
        "entities": (out / "entities.jsonl",
                     [{**dataclasses.asdict(e)} for e in world.entities]),
        "encyclopedia": (out / "encyclopedia.jsonl", world.encyclopedia()),
        "pii": (out / "safety" / "pii.jsonl", world.pii_records()),
        "crawl": (out / "safety" / "crawl.jsonl", world.crawl_pages()),
        "injections": (out / "safety" / "injections.jsonl", world.injection_documents()),
    }
    for split, n_docs in EXPORT_PRETRAIN_DOCS.items():
        docs = ({"text": t} for t in world.pretraining_corpus(split, n_docs))
        files[f"pretrain_{split}"] = (out / "pretrain" / f"{split}.jsonl", docs)
    for split, n in EXPORT_INSTRUCTIONS.items():
        records = [instruction_record(r) for r in world.instructions(split, n)]
        files[f"instructions_{split}"] = (out / "instructions" / f"{split}.jsonl", records)
    for family, records in world.eval_sets().items():
        files[f"eval_{family}"] = (out / "eval" / f"{family}.jsonl", records)

    paths = {}
    for name, (path, records) in files.items():
        count = write_jsonl(path, records)
        logger.info("wrote %d records to %s", count, path)
        paths[name] = path
    return paths
