"""Chunking, FAISS index helpers and retrieval scores shared by several chapters.

The helpers cover the parts of a retrieval pipeline that are easy to get subtly
wrong: chunks that exceed their size or drop text, cosine search on vectors that
are not unit length, an index queried with vectors from another embedder, and
`-1` ids that FAISS returns when `k` exceeds the number of stored vectors.
Building and filling the index stays in the caller's code, with the FAISS API.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Hashable, Iterable, Sequence
from pathlib import Path

import numpy as np

from llmlab.errors import IndexMismatchError, IndexNotFoundError, InvalidArgumentError

logger = logging.getLogger(__name__)

# Cut points for `chunk_text`, best first: paragraph, line, sentence, clause, word.
DEFAULT_SEPARATORS = ("\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ")

INDEX_FILE = "index.faiss"
META_FILE = "index.json"

# Largest deviation of a row's L2 norm from 1 that `is_normalized` accepts.
# float32 rounding after `l2_normalize` stays below 1e-6.
NORM_TOLERANCE = 1e-4


@dataclasses.dataclass(frozen=True)
class Chunk:
    """A piece of a source text: `source[start:end] == text`."""

    text: str
    start: int
    end: int


# ---------------------------------------------------------------------------
# Chunking


def chunk_text(
    text: str,
    size: int,
    overlap: int,
    separators: Sequence[str] = DEFAULT_SEPARATORS,
) -> list[Chunk]:
    """Split `text` into overlapping character chunks that end at natural boundaries.

    Every chunk has at most `size` characters and equals
    `text[chunk.start:chunk.end]`. Every character of `text` lies in at least one
    chunk, and neighbouring chunks share at least `overlap` characters. A chunk ends
    at the best separator found in the second half of its window (or past
    `overlap`, whichever is later), trying `separators` in order, and at exactly
    `size` characters when no separator occurs there.

    Args:
        text: the source text. An empty text gives no chunks.
        size: maximum chunk length in characters. Pick it so a chunk plus the
            question fits the embedder's input (all-MiniLM-L6-v2 reads 256
            tokens, roughly 1,000 characters of English).
        overlap: minimum number of characters that neighbouring chunks share,
            0 <= overlap < size. Raise it when answers straddle chunk borders.
        separators: cut points, best first; default paragraph, line, sentence,
            clause, word. Pass `[","]` to cut a list at its commas.

    Raises:
        InvalidArgumentError: `size` < 1, `overlap` < 0, `overlap` >= `size`, an
            empty separator, or `text` that is not a string.
    """
    _check_chunk_arguments(text, size, overlap, separators)
    chunks: list[Chunk] = []
    start, previous_end = 0, 0
    # The next chunk may start up to `slack` characters before the point that
    # gives exactly `overlap` shared characters, so that it can begin at a word.
    slack = min(overlap // 2, size - 1 - overlap)
    while start < len(text):
        if len(text) - start <= size:
            end = len(text)
        else:
            end = _chunk_end(text, start, size, overlap, previous_end, separators)
        chunks.append(Chunk(text[start:end], start, end))
        if end == len(text):
            break
        start = _next_start(text, start, end, overlap, slack, separators)
        previous_end = end
    return chunks


def _check_chunk_arguments(text, size, overlap, separators) -> None:
    if not isinstance(text, str):
        raise InvalidArgumentError(
            f"text must be a str, got {type(text).__name__}. Decode bytes first."
        )
    if not isinstance(size, int) or size < 1:
        raise InvalidArgumentError(
            f"size={size!r} is invalid: pass a chunk size of at least 1 character."
        )
    if not isinstance(overlap, int) or overlap < 0 or overlap >= size:
        raise InvalidArgumentError(
            f"overlap={overlap!r} with size={size!r} is invalid: the overlap must "
            f"be an integer with 0 <= overlap < size, for example "
            f"overlap={size // 10}."
        )
    if isinstance(separators, str) or any(not sep for sep in separators):
        raise InvalidArgumentError(
            f"separators={separators!r} is invalid: pass a list of non-empty "
            f"strings, such as [',']."
        )


def _chunk_end(text, start, size, overlap, previous_end, separators) -> int:
    """Pick where the chunk that begins at `start` ends (exclusive)."""
    # The end must leave room for `overlap` and still move past the previous
    # chunk, and a chunk shorter than half of `size` is only accepted at the end.
    highest = start + size
    lowest = max(start + overlap + 1, start + size // 2, previous_end + 1)
    cut = _last_cut(text, lowest, highest, separators)
    return highest if cut is None else cut


def _next_start(text, start, end, overlap, slack, separators) -> int:
    """Pick where the chunk after [start, end) begins."""
    highest = end - overlap
    lowest = max(start + 1, highest - slack)
    cut = _last_cut(text, lowest, highest, separators)
    return highest if cut is None else cut


def _last_cut(text, lowest, highest, separators) -> int | None:
    """Return the last position in [lowest, highest] right after the best separator."""
    for separator in separators:
        position = text.rfind(separator, max(lowest - len(separator), 0), highest)
        if position != -1 and position + len(separator) >= lowest:
            return position + len(separator)
    return None


# ---------------------------------------------------------------------------
# Vectors


def l2_normalize(vectors) -> np.ndarray:
    """Return `vectors` as float32 rows of unit L2 norm, as cosine search needs.

    An inner-product index (`faiss.IndexFlatIP`, HNSW or IVF with
    `METRIC_INNER_PRODUCT`) ranks by dot product. On unit rows the dot product
    is the cosine similarity; on other rows long vectors win regardless of their
    direction. Normalize both the stored vectors and the queries.

    Args:
        vectors: array-like of shape (N, d), or (d,) for one vector, which is
            returned as shape (1, d).

    Raises:
        InvalidArgumentError: an array that is not 1-D or 2-D, values that are
            not finite, or a row of zeros (it has no direction).
    """
    array = _as_float32_rows(vectors, "vectors")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    zero_rows = np.flatnonzero(norms[:, 0] == 0)
    if zero_rows.size:
        raise InvalidArgumentError(
            f"vectors has all-zero rows at indexes {zero_rows[:10].tolist()}: a "
            f"zero vector has no direction. Drop those rows (an empty text can "
            f"embed to zeros) before normalizing."
        )
    return (array / norms).astype(np.float32)


def is_normalized(vectors, tolerance: float = NORM_TOLERANCE) -> bool:
    """Return True when every row of `vectors` has L2 norm 1 within `tolerance`.

    Args:
        vectors: array-like of shape (N, d) or (d,).
        tolerance: largest accepted |norm - 1|; the default 1e-4 accepts float32
            rounding and half-precision embeddings converted to float32.
    """
    array = _as_float32_rows(vectors, "vectors")
    norms = np.linalg.norm(array, axis=1)
    return bool(np.all(np.abs(norms - 1.0) <= tolerance))


def _as_float32_rows(vectors, name: str) -> np.ndarray:
    """Return `vectors` as a C-contiguous float32 array of shape (N, d)."""
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        raise InvalidArgumentError(
            f"{name} has shape {array.shape}: pass a 2-D array of shape (N, d) or "
            f"one vector of shape (d,)."
        )
    if not np.all(np.isfinite(array)):
        raise InvalidArgumentError(
            f"{name} contains NaN or infinite values: check the embedder's output."
        )
    return np.ascontiguousarray(array)


# ---------------------------------------------------------------------------
# Saving and loading an index


def save_index(index, directory: str | Path, embedder: str) -> dict:
    """Write a FAISS index and a JSON sidecar describing it to `directory`.

    The sidecar `index.json` stores the embedder name, the vector dimension, the
    number of stored vectors, the metric and the FAISS index class, so that
    `load_index` and `search` can reject vectors from another embedder with a
    clear message. The index itself goes to `index.faiss`.

    Args:
        index: any FAISS CPU index (`faiss.Index`).
        directory: folder to write into; created when missing, and existing
            files of a previous index there are replaced.
        embedder: name of the model that produced the vectors, for example
            "sentence-transformers/all-MiniLM-L6-v2". Use a name that stays the
            same across machines rather than a local path.

    Returns:
        The metadata that was written, as a dict.
    """
    import faiss

    if not isinstance(embedder, str) or not embedder:
        raise InvalidArgumentError(
            f"embedder={embedder!r} is invalid: pass the embedding model's name "
            f"as a non-empty string."
        )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    meta = {
        "embedder": embedder,
        "dimension": int(index.d),
        "count": int(index.ntotal),
        "metric": _metric_name(index.metric_type),
        "index_type": type(index).__name__,
        "faiss_version": faiss.__version__,
    }
    faiss.write_index(index, str(directory / INDEX_FILE))
    (directory / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    logger.info("saved %s with %d vectors to %s", meta["index_type"], meta["count"],
                directory)
    return meta


def load_index(directory: str | Path, embedder: str | None = None):
    """Read an index written by `save_index` and check it against its sidecar.

    Args:
        directory: the folder passed to `save_index`.
        embedder: name of the model that will embed the queries; default None
            skips the check. Pass it whenever you have it, so that an index
            built with another model is rejected instead of returning
            meaningless neighbours.

    Returns:
        `(index, meta)`: the FAISS index and the sidecar as a dict with keys
        `embedder`, `dimension`, `count`, `metric`, `index_type`, `faiss_version`.

    Raises:
        IndexNotFoundError: `index.faiss` or `index.json` is missing.
        IndexMismatchError: `embedder` differs from the stored one, or the index
            file disagrees with its sidecar.
    """
    import faiss

    directory = Path(directory)
    index_path, meta_path = directory / INDEX_FILE, directory / META_FILE
    for path in (index_path, meta_path):
        if not path.is_file():
            raise IndexNotFoundError(
                f"{path} not found: {directory} does not contain an index written "
                f"by llmlab.retrieval.save_index."
            )
    meta = json.loads(meta_path.read_text())
    if embedder is not None and embedder != meta["embedder"]:
        raise IndexMismatchError(
            f"The index in {directory} was built with embedder "
            f"{meta['embedder']!r}, not {embedder!r}. Embed the queries with "
            f"{meta['embedder']!r}, or rebuild the index with {embedder!r}."
        )
    index = faiss.read_index(str(index_path))
    _check_against_meta(index, meta, directory)
    return index, meta


def _check_against_meta(index, meta: dict, directory: Path) -> None:
    found = {"dimension": int(index.d), "count": int(index.ntotal)}
    for key, value in found.items():
        if value != meta[key]:
            raise IndexMismatchError(
                f"{directory / INDEX_FILE} has {key} {value} but its sidecar "
                f"{META_FILE} says {meta[key]}: the two files come from different "
                f"saves. Save the index again with save_index."
            )


def _metric_name(metric_type: int) -> str:
    import faiss

    names = {faiss.METRIC_INNER_PRODUCT: "inner_product", faiss.METRIC_L2: "l2"}
    return names.get(metric_type, f"faiss_metric_{metric_type}")


# ---------------------------------------------------------------------------
# Search


def search(index, queries, k: int, embedder: str | None = None):
    """Return the `k` nearest stored vectors of each query, without `-1` ids.

    FAISS pads each result row with id -1 when fewer than `k` vectors are found,
    for example when `k` exceeds `index.ntotal`, or when HNSW or IVF with a small
    `nprobe` visits too few vectors. Python indexing with -1 silently returns the
    last chunk, so this function drops those entries: a row can be shorter
    than `k`.

    Args:
        index: a FAISS index.
        queries: array-like of shape (Q, d), or (d,) for one query; converted to
            float32. For cosine search normalize them with `l2_normalize`.
        k: number of neighbours per query, at least 1; values above
            `index.ntotal` are reduced to it.
        embedder: name of the model the index was built with, as stored in the
            `embedder` entry of `load_index`'s metadata. The function uses it
            only in the error message when the dimensions disagree.

    Returns:
        `(scores, ids)`: two lists with one list per query, best first. Scores
        are inner products for an inner-product index and squared L2 distances
        (smaller is closer) for an L2 index.

    Raises:
        InvalidArgumentError: `k` < 1 or queries that are not 1-D or 2-D.
        IndexMismatchError: the query dimension differs from `index.d`.
    """
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise InvalidArgumentError(f"k={k!r} is invalid: pass an integer >= 1.")
    array = _as_float32_rows(queries, "queries")
    _check_dimension(index, array, embedder)
    if index.ntotal == 0:
        logger.warning("search on an empty index: returning no results")
        return [[] for _ in array], [[] for _ in array]
    distances, labels = index.search(array, min(int(k), int(index.ntotal)))
    scores, ids = [], []
    for row_distances, row_labels in zip(distances, labels):
        found = row_labels != -1
        scores.append(row_distances[found].tolist())
        ids.append(row_labels[found].tolist())
    return scores, ids


def _check_dimension(index, queries: np.ndarray, embedder: str | None) -> None:
    if queries.shape[1] == index.d:
        return
    if embedder is None:
        built_with = "an embedder that was not passed (pass embedder=... to name it)"
    else:
        built_with = f"embedder {embedder!r}"
    raise IndexMismatchError(
        f"The queries have dimension {queries.shape[1]} but the index stores "
        f"{index.d}-dimensional vectors built with {built_with}. Embed the queries "
        f"with the same model as the index."
    )


# ---------------------------------------------------------------------------
# Fusion and scores


def reciprocal_rank_fusion(
    rankings: Iterable[Sequence[Hashable]], k: float = 60
) -> list[tuple[Hashable, float]]:
    """Fuse several ranked id lists into one by reciprocal rank fusion.

    Each id scores the sum over rankings of 1 / (k + rank), with rank starting
    at 1 (Cormack, Clarke and Buettcher, SIGIR 2009). An id missing from a
    ranking gets nothing from it, and a repeated id counts only at its first
    position in each ranking.

    Args:
        rankings: ranked id lists, best first, for example one from BM25 and one
            from a vector index.
        k: smoothing constant, default 60 as in Cormack et al. A smaller
            `k` gives the top few ranks more weight relative to the rest.

    Returns:
        `(id, score)` pairs, best first. Ties keep the order in which the ids
        first appear across the rankings.
    """
    if isinstance(k, bool) or not isinstance(k, (int, float)) or k < 0:
        raise InvalidArgumentError(f"k={k!r} is invalid: pass a number >= 0.")
    scores: dict[Hashable, float] = {}
    for ranking in rankings:
        seen = set()
        for rank, item in enumerate(ranking, start=1):
            if item in seen:
                continue
            seen.add(item)
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    order = {item: position for position, item in enumerate(scores)}
    return sorted(scores.items(), key=lambda pair: (-pair[1], order[pair[0]]))


def recall_at_k(retrieved, relevant, k: int) -> float:
    """Mean over queries of the share of relevant ids found in the top `k`.

    Args:
        retrieved: one ranked id list per query, best first.
        relevant: one entry per query: a set (or list) of relevant ids, or a
            single id. With one relevant id per query this is the hit rate.
        k: cut-off rank, at least 1.

    Raises:
        InvalidArgumentError: `k` < 1, lists of different lengths, no queries,
            or a query with no relevant id.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidArgumentError(f"k={k!r} is invalid: pass an integer >= 1.")
    relevant_sets = _relevant_sets(retrieved, relevant)
    total = 0.0
    for ranking, relevant_ids in zip(retrieved, relevant_sets):
        found = relevant_ids.intersection(list(ranking)[:k])
        total += len(found) / len(relevant_ids)
    return total / len(relevant_sets)


def mean_reciprocal_rank(retrieved, relevant) -> float:
    """Mean over queries of 1 / rank of the first relevant id (0 when none is found).

    Args:
        retrieved: one ranked id list per query, best first.
        relevant: one entry per query: a set (or list) of relevant ids, or a
            single id.
    """
    relevant_sets = _relevant_sets(retrieved, relevant)
    total = 0.0
    for ranking, relevant_ids in zip(retrieved, relevant_sets):
        for rank, item in enumerate(ranking, start=1):
            if item in relevant_ids:
                total += 1.0 / rank
                break
    return total / len(relevant_sets)


def _relevant_sets(retrieved, relevant) -> list[set]:
    """Return `relevant` as one set per query, after checking the lengths."""
    if len(retrieved) != len(relevant):
        raise InvalidArgumentError(
            f"retrieved has {len(retrieved)} queries but relevant has "
            f"{len(relevant)}: pass one entry per query in both."
        )
    if not retrieved:
        raise InvalidArgumentError("retrieved is empty: pass at least one query.")
    sets = []
    for position, entry in enumerate(relevant):
        is_collection = isinstance(entry, (set, frozenset, list, tuple))
        relevant_ids = set(entry) if is_collection else {entry}
        if not relevant_ids:
            raise InvalidArgumentError(
                f"relevant[{position}] is empty: every query needs at least one "
                f"relevant id, or leave that query out."
            )
        sets.append(relevant_ids)
    return sets
