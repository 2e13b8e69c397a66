"""Embedding throughput, FAISS index speed and recall, and end-to-end RAG latency.

Part 1 builds at least `--num-passages` distinct passages from `llmlab.world`
(pretraining documents of several world seeds, cut with
`llmlab.retrieval.chunk_text`), embeds them with the bundled MiniLM embedder and
prints the throughput in passages per second. The float32 embeddings are cached
under `--cache-dir`, so a rerun with the same passages skips the embedding.

Part 2 builds `IndexFlatIP`, `IndexHNSWFlat` and `IndexIVFFlat` on those
embeddings and prints the build time, the latency of one query at a time (p50
and p95, one search thread) and recall@10 against exact search, for several
`efSearch` and `nprobe` values. Queries are sentences from the validation split
of world seed 0, which never occur in the passages.

Part 3 adds the encyclopedia of world seed 0 to the HNSW index and answers
closed-book questions about its withheld entities with the bundled chat model:
embed the question, search, build the prompt, generate greedily. It prints the
latency of each step and the exact match of the generated replies.

The last line states whether HNSW reaches recall@10 >= 0.95 at no more than a
third of the flat index's p50 latency on the full passage set.

NOTE: part 3 is sensitive to `--threads`. On a 2-core CPU with other load, one
question took about 500 ms to embed and 1 s to generate with 2 threads, against
16 ms and 30 ms with `--threads 1`. The cause is not isolated; torch and the
faiss-cpu wheel each bring their own OpenMP runtime, which may compete.

Run: .venv/bin/python benchmarks/bench_rag.py            (100,000 passages)
     .venv/bin/python benchmarks/bench_rag.py --quick    (5,000 passages)
"""

from __future__ import annotations

import argparse
import hashlib
import math
import re
import statistics
import time
from pathlib import Path

import faiss
import numpy as np
import torch

import llmlab
import llmlab.world
from llmlab.metrics import exact_match
from llmlab.retrieval import chunk_text, l2_normalize, recall_at_k, search

EMBEDDER_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_CACHE = Path.home() / ".cache" / "llmlab" / "bench_rag"
# Pretraining documents drawn per world seed before moving to the next seed.
DOCS_PER_SEED = 20_000
RECALL_TARGET = 0.95
LATENCY_SHARE_TARGET = 1 / 3


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-passages", type=int, default=100_000,
                        help="passages to embed and index (default 100000)")
    parser.add_argument("--num-queries", type=int, default=300,
                        help="held-out query sentences (default 300)")
    parser.add_argument("--num-questions", type=int, default=20,
                        help="questions for the end-to-end RAG run (default 20)")

    parser.add_argument("--chunk-size", type=int, default=128,
                        help="maximum passage length in characters (default 128)")
    parser.add_argument("--chunk-overlap", type=int, default=16,
                        help="characters shared by neighbouring passages (default 16)")
    parser.add_argument("--batch-size", type=int, default=128,
                        help="sentences per embedder forward pass (default 128)")

    parser.add_argument("--hnsw-m", type=int, default=32,
                        help="HNSW neighbours per node, M (default 32)")
    parser.add_argument("--ef-construction", type=int, default=40,
                        help="HNSW efConstruction (default 40)")
    parser.add_argument("--ef-search", type=int, nargs="+",
                        default=[16, 32, 64, 128, 256],
                        help="HNSW efSearch values to measure "
                             "(default 16 32 64 128 256)")
    parser.add_argument("--nprobe", type=int, nargs="+", default=[1, 4, 16, 32],
                        help="IVF nprobe values to measure (default 1 4 16 32)")

    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="torch and FAISS threads for embedding and index builds "
                             "(default: torch's default, one per core); 1 is faster "
                             "when other processes keep the cores busy")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE,
                        help=f"folder for cached embeddings (default {DEFAULT_CACHE})")
    parser.add_argument("--quick", action="store_true",
                        help="small run: 5000 passages, 50 queries, 5 questions")
    args = parser.parse_args(argv)

    if args.quick:
        args.num_passages, args.num_queries, args.num_questions = 5_000, 50, 5
    torch.set_num_threads(args.threads)
    return args


# ---------------------------------------------------------------------------
# Part 1: passages and embeddings


def build_passages(count: int, size: int, overlap: int) -> list[str]:
    """Return `count` distinct passages cut from pretraining documents."""
    passages, seen = [], set()
    seed = 0
    while len(passages) < count:
        world = llmlab.world.build(seed)
        for document in world.pretraining_corpus("train", n_docs=DOCS_PER_SEED):
            for chunk in chunk_text(document, size, overlap):
                text = chunk.text.strip()
                if text and text not in seen:
                    seen.add(text)
                    passages.append(text)
            if len(passages) >= count:
                break
        seed += 1
    return passages[:count]


def build_queries(count: int, exclude: set[str]) -> list[str]:
    """Return `count` distinct sentences of the validation split not in `exclude`."""
    world = llmlab.world.build(0)
    queries, seen = [], set(exclude)
    for document in world.pretraining_corpus("validation", n_docs=5 * count):
        for sentence in re.split(r"(?<=[.?!])\s+", document):
            sentence = sentence.strip()
            if len(sentence.split()) >= 4 and sentence not in seen:
                seen.add(sentence)
                queries.append(sentence)
        if len(queries) >= count:
            break
    return queries[:count]


def load_embedder():
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(llmlab.model_id("embedder"), device="cpu")


def embed(embedder, texts: list[str], batch_size: int, label: str) -> np.ndarray:
    """Embed `texts` as unit-length float32 rows, printing progress every 8,192."""
    parts, step = [], 8192
    start = time.perf_counter()
    for first in range(0, len(texts), step):
        part = embedder.encode(texts[first:first + step], batch_size=batch_size,
                               convert_to_numpy=True, show_progress_bar=False)
        parts.append(part.astype(np.float32))
        done = first + len(part)
        if len(texts) > step:
            rate = done / (time.perf_counter() - start)
            print(f"  {label}: {done:,}/{len(texts):,} embedded, {rate:.0f}/s",
                  flush=True)
    return l2_normalize(np.concatenate(parts))


def cached_embeddings(embedder, texts, args, label) -> tuple[np.ndarray, float | None]:
    """Return embeddings of `texts` and the seconds spent, None when cached."""
    digest = hashlib.sha256(EMBEDDER_NAME.encode())
    for text in texts:
        digest.update(text.encode() + b"\0")
    path = args.cache_dir / f"{label}-{len(texts)}-{digest.hexdigest()[:16]}.npy"
    if path.is_file():
        print(f"  {label}: loaded {len(texts):,} cached embeddings from {path}")
        return np.load(path), None
    start = time.perf_counter()
    vectors = embed(embedder, texts, args.batch_size, label)
    seconds = time.perf_counter() - start
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp.npy")
    np.save(temporary, vectors)
    temporary.rename(path)
    return vectors, seconds


def measure_throughput(embedder, texts: list[str], batch_size: int) -> float:
    """Return passages per second for embedding `texts` once, after a warm-up."""
    embedder.encode(texts[:batch_size], batch_size=batch_size,
                    show_progress_bar=False)
    start = time.perf_counter()
    embedder.encode(texts, batch_size=batch_size, show_progress_bar=False)
    return len(texts) / (time.perf_counter() - start)


def bench_embeddings(args):
    print(f"Part 1: embeddings ({EMBEDDER_NAME}, CPU, "
          f"torch threads: {torch.get_num_threads()})")
    start = time.perf_counter()
    passages = build_passages(args.num_passages, args.chunk_size, args.chunk_overlap)
    queries = build_queries(args.num_queries, set(passages))
    lengths = [len(p) for p in passages]
    print(f"  {len(passages):,} passages (mean {statistics.mean(lengths):.0f} chars, "
          f"max {max(lengths)}), {len(queries)} queries, built in "
          f"{time.perf_counter() - start:.1f} s")
    embedder = load_embedder()
    vectors, seconds = cached_embeddings(embedder, passages, args, "passages")
    query_vectors, _ = cached_embeddings(embedder, queries, args, "queries")
    if seconds is not None:
        print(f"  throughput, full embedding run: {seconds:.1f} s, "
              f"{len(passages) / seconds:.1f} passages/s")
    else:
        sample = passages[:: max(1, len(passages) // 1000)][:1000]
        rate = measure_throughput(embedder, sample, args.batch_size)
        print(f"  throughput on a {len(sample)}-passage sample: {rate:.1f} passages/s")
    return passages, vectors, queries, query_vectors, embedder


# ---------------------------------------------------------------------------
# Part 2: indexes


def latencies_ms(index, queries: np.ndarray, k: int = 10) -> tuple[float, float]:
    """Return p50 and p95 latency in ms of searching one query at a time."""
    index.search(queries[:5], k)
    times = []
    for row in range(len(queries)):
        start = time.perf_counter()
        index.search(queries[row:row + 1], k)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return times[len(times) // 2], times[min(len(times) - 1, int(0.95 * len(times)))]


def recall_vs_exact(index, queries, exact_ids, k: int = 10) -> float:
    _, ids = search(index, queries, k)
    return recall_at_k(ids, [set(row[:k]) for row in exact_ids], k)


def timed_build(make_index, vectors: np.ndarray, train: bool = False):
    faiss.omp_set_num_threads(torch.get_num_threads())
    start = time.perf_counter()
    index = make_index()
    if train:
        index.train(vectors)
    index.add(vectors)
    seconds = time.perf_counter() - start
    faiss.omp_set_num_threads(1)
    return index, seconds


def print_row(name, params, build_s, recall, p50, p95, flat_p50):
    print(f"{name:<10}{params:<26}{build_s:>9.2f}{recall:>10.3f}"
          f"{p50:>9.3f}{p95:>9.3f}{p50 / flat_p50:>10.3f}")


def bench_indexes(args, vectors: np.ndarray, queries: np.ndarray):
    count, dimension = vectors.shape
    print(f"\nPart 2: FAISS {faiss.__version__} on {count:,} x {dimension} float32, "
          f"{len(queries)} queries, k=10; build threads: {torch.get_num_threads()}, "
          f"search threads: 1, latency of one query at a time")
    print(f"{'index':<10}{'parameters':<26}{'build s':>9}{'recall@10':>10}"
          f"{'p50 ms':>9}{'p95 ms':>9}{'p50/flat':>10}")

    flat, build_s = timed_build(lambda: faiss.IndexFlatIP(dimension), vectors)
    _, exact_ids = search(flat, queries, 10)
    flat_p50, flat_p95 = latencies_ms(flat, queries)
    print_row("Flat", "exact", build_s, 1.0, flat_p50, flat_p95, flat_p50)

    hnsw_rows, hnsw = bench_hnsw(args, vectors, queries, exact_ids, flat_p50)
    bench_ivf(args, vectors, queries, exact_ids, flat_p50)
    return hnsw, hnsw_rows, flat_p50


def bench_hnsw(args, vectors, queries, exact_ids, flat_p50):
    def make_index():
        index = faiss.IndexHNSWFlat(vectors.shape[1], args.hnsw_m,
                                    faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = args.ef_construction
        return index

    hnsw, build_s = timed_build(make_index, vectors)
    rows = []
    for ef_search in args.ef_search:
        hnsw.hnsw.efSearch = ef_search
        recall = recall_vs_exact(hnsw, queries, exact_ids)
        p50, p95 = latencies_ms(hnsw, queries)
        params = f"M={args.hnsw_m} efC={args.ef_construction} efS={ef_search}"
        print_row("HNSW", params, build_s, recall, p50, p95, flat_p50)
        rows.append((ef_search, recall, p50))
    return rows, hnsw


def bench_ivf(args, vectors, queries, exact_ids, flat_p50):
    dimension = vectors.shape[1]
    nlist = max(1, int(math.sqrt(len(vectors))))

    def make_index():
        quantizer = faiss.IndexFlatIP(dimension)
        return faiss.IndexIVFFlat(quantizer, dimension, nlist,
                                  faiss.METRIC_INNER_PRODUCT)

    ivf, build_s = timed_build(make_index, vectors, train=True)
    for nprobe in args.nprobe:
        ivf.nprobe = nprobe
        recall = recall_vs_exact(ivf, queries, exact_ids)
        p50, p95 = latencies_ms(ivf, queries)
        print_row("IVFFlat", f"nlist={nlist} nprobe={nprobe}", build_s, recall,
                  p50, p95, flat_p50)


# ---------------------------------------------------------------------------
# Part 3: end-to-end RAG


def rag_prompt(question: str, contexts: list[str]) -> str:
    """Build the context-QA prompt the bundled chat model was trained on."""
    text = "\n\n".join(contexts)
    instruction = "Answer the question using the text."
    return f"{instruction}\n\nText: {text}\n\nQuestion: {question}"


def add_encyclopedia(index, embedder, args) -> dict[int, str]:
    """Add the chunked encyclopedia of world seed 0 to `index`; return id -> text."""
    texts = []
    for article in llmlab.world.build(0).encyclopedia():
        texts += [c.text for c in chunk_text(article["text"], args.chunk_size,
                                             args.chunk_overlap)]
    first_id = index.ntotal
    index.add(embed(embedder, texts, args.batch_size, "encyclopedia"))
    return {first_id + i: text for i, text in enumerate(texts)}


def bench_rag(args, passages, index, embedder, k: int = 2):
    extra = add_encyclopedia(index, embedder, args)
    questions = llmlab.world.build(0).eval_sets()["closed_book"][:args.num_questions]
    tokenizer = llmlab.load_tokenizer("chat")
    model = llmlab.load_model("chat").eval()
    print(f"\nPart 3: end-to-end RAG, {len(questions)} closed-book questions about "
          f"withheld entities, index of {index.ntotal:,} vectors "
          f"(HNSW efSearch={index.hnsw.efSearch}), top {k} passages, chat model "
          f"greedy, at most 16 new tokens")
    steps = {"embed": [], "search": [], "prompt": [], "generate": [], "total": []}
    matches = []
    for item in questions:
        question = item["prompt"].removeprefix("Question: ")
        timings, answer = answer_question(question, passages, extra, index, embedder,
                                          tokenizer, model, k)
        for name, seconds in timings.items():
            steps[name].append(seconds * 1000)
        matches.append(exact_match(answer, item["answer"]))
    print(f"{'step':<10}{'p50 ms':>9}{'p95 ms':>9}{'mean ms':>9}")
    for name, values in steps.items():
        values.sort()
        p95 = values[min(len(values) - 1, int(0.95 * len(values)))]
        print(f"{name:<10}{values[len(values) // 2]:>9.1f}{p95:>9.1f}"
              f"{statistics.mean(values):>9.1f}")
    print(f"exact match of RAG answers: {statistics.mean(matches):.3f} "
          f"({int(sum(matches))}/{len(matches)})")


def answer_question(question, passages, extra, index, embedder, tokenizer, model, k):
    timings = {}
    start = time.perf_counter()
    query = l2_normalize(embedder.encode([question], show_progress_bar=False))
    timings["embed"] = time.perf_counter() - start

    mark = time.perf_counter()
    _, ids = search(index, query, k)
    timings["search"] = time.perf_counter() - mark

    mark = time.perf_counter()
    contexts = [extra[i] if i in extra else passages[i] for i in ids[0]]
    messages = [{"role": "user", "content": rag_prompt(question, contexts)}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                           return_tensors="pt", return_dict=True)
    timings["prompt"] = time.perf_counter() - mark

    mark = time.perf_counter()
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=16, do_sample=False)
    timings["generate"] = time.perf_counter() - mark
    timings["total"] = time.perf_counter() - start
    new_tokens = output[0, inputs["input_ids"].shape[1]:]
    return timings, tokenizer.decode(new_tokens, skip_special_tokens=True).strip()


# ---------------------------------------------------------------------------


def print_target(count: int, hnsw_rows, flat_p50: float, args) -> None:
    """Print whether HNSW met the recall and latency target, and with which efSearch."""
    passing = [row for row in hnsw_rows if row[1] >= RECALL_TARGET]
    best = min(passing, key=lambda row: row[2]) if passing else max(
        hnsw_rows, key=lambda row: row[1])
    ef_search, recall, p50 = best
    met = (count >= 100_000 and recall >= RECALL_TARGET
           and p50 <= flat_p50 * LATENCY_SHARE_TARGET)
    print(f"\ntarget: on >= 100,000 embeddings HNSW recall@10 >= {RECALL_TARGET} at "
          f"<= 1/3 of flat p50 latency: {'met' if met else 'NOT met'} "
          f"({count:,} embeddings, M={args.hnsw_m}, efConstruction="
          f"{args.ef_construction}, efSearch={ef_search}: recall@10 {recall:.3f}, "
          f"p50 {p50:.3f} ms = {p50 / flat_p50:.3f} x flat {flat_p50:.3f} ms)")


def main(argv=None) -> None:
    args = parse_args(argv)
    passages, vectors, _, query_vectors, embedder = bench_embeddings(args)
    hnsw, hnsw_rows, flat_p50 = bench_indexes(args, vectors, query_vectors)
    hnsw.hnsw.efSearch = max(args.ef_search)
    bench_rag(args, passages, hnsw, embedder)
    print_target(len(vectors), hnsw_rows, flat_p50, args)


if __name__ == "__main__":
    main()
