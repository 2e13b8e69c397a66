"""Chunking, normalization, index files, search and scores in llmlab.retrieval."""

import json
import random

import faiss
import numpy as np
import pytest

from llmlab.errors import (
    IndexMismatchError,
    IndexNotFoundError,
    InvalidArgumentError,
    LlmlabError,
)
from llmlab.retrieval import (
    Chunk,
    chunk_text,
    is_normalized,
    l2_normalize,
    load_index,
    mean_reciprocal_rank,
    recall_at_k,
    reciprocal_rank_fusion,
    save_index,
    search,
)

EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"


def assert_chunk_contract(text, chunks, size, overlap):
    """Check the guarantees of chunk_text on one input."""
    for chunk in chunks:
        assert len(chunk.text) <= size, chunk
        assert text[chunk.start:chunk.end] == chunk.text, chunk
    covered = np.zeros(len(text), dtype=bool)
    for chunk in chunks:
        covered[chunk.start:chunk.end] = True
    assert covered.all(), f"characters {np.flatnonzero(~covered)[:5]} in no chunk"
    for left, right in zip(chunks, chunks[1:]):
        assert right.start > left.start, (left, right)
        assert right.end > left.end, (left, right)
        assert left.end - right.start >= overlap, (left, right)


def random_text(rng: random.Random) -> str:
    pieces = ["word", "a", "longerword", ".", ",", " ", " ", " ", "\n", "\n\n",
              "x" * rng.randint(1, 40), "Sentence ends here. ", "é", "?"]
    return "".join(rng.choice(pieces) for _ in range(rng.randint(0, 300)))


# ---------------------------------------------------------------------------
# chunk_text


def test_chunk_comma_list_size_two_overlap_one():
    text = "123,456"
    chunks = chunk_text(text, size=2, overlap=1, separators=[","])
    assert_chunk_contract(text, chunks, size=2, overlap=1)
    # Size 2 with overlap 1 can only advance one character per chunk.
    assert [c.text for c in chunks] == ["12", "23", "3,", ",4", "45", "56"]


def test_chunk_heading_then_300_words():
    rng = random.Random(0)
    vocabulary = ["harbour", "the", "river", "Velmora.", "trade,", "of", "market"]
    words = [rng.choice(vocabulary) for _ in range(300)]
    text = "Intro\n" + " ".join(words)
    assert len(text) > 1000
    chunks = chunk_text(text, size=1000, overlap=100)
    assert len(chunks) >= 2
    assert_chunk_contract(text, chunks, size=1000, overlap=100)
    # The first chunk is not cut right after the short heading.
    assert len(chunks[0].text) > 500


def test_chunk_keeps_every_word_whole_somewhere():
    rng = random.Random(1)
    text = "Intro\n" + " ".join(
        "".join(rng.choice("abcdefgh") for _ in range(rng.randint(1, 9)))
        for _ in range(300)
    )
    chunks = chunk_text(text, size=1000, overlap=100)
    position = 0
    for word in text.split():
        start = text.index(word, position)
        end = start + len(word)
        assert any(c.start <= start and end <= c.end for c in chunks), word
        position = end


def test_chunk_random_texts_and_sizes():
    rng = random.Random(2)
    for _ in range(500):
        text = random_text(rng)
        size = rng.randint(1, 120)
        overlap = rng.randint(0, size - 1)
        chunks = chunk_text(text, size, overlap)
        assert_chunk_contract(text, chunks, size, overlap)


def test_chunk_prefers_paragraph_boundary():
    text = "First paragraph is here.\n\nSecond one follows after it. And more."
    chunks = chunk_text(text, size=40, overlap=0)
    assert chunks[0].text == "First paragraph is here.\n\n"


def test_chunk_cuts_mid_word_without_separator():
    text = "x" * 25
    chunks = chunk_text(text, size=10, overlap=3)
    assert_chunk_contract(text, chunks, size=10, overlap=3)
    assert [len(c.text) for c in chunks] == [10, 10, 10, 4]


def test_chunk_short_and_empty_text():
    assert chunk_text("", size=10, overlap=2) == []
    assert chunk_text("short", size=10, overlap=2) == [Chunk("short", 0, 5)]


@pytest.mark.parametrize(
    ("size", "overlap", "named"),
    [(0, 0, "size=0"), (10, 10, "overlap=10"), (10, 12, "overlap=12"),
     (10, -1, "overlap=-1"), (2.5, 0, "size=2.5")],
)
def test_chunk_rejects_bad_sizes(size, overlap, named):
    with pytest.raises(InvalidArgumentError, match=named):
        chunk_text("some text", size=size, overlap=overlap)


def test_chunk_rejects_bad_separators():
    with pytest.raises(InvalidArgumentError, match="separators"):
        chunk_text("a,b", size=2, overlap=0, separators=",")
    with pytest.raises(InvalidArgumentError, match="separators"):
        chunk_text("a,b", size=2, overlap=0, separators=[""])


def test_chunk_rejects_bytes():
    with pytest.raises(InvalidArgumentError, match="bytes"):
        chunk_text(b"abc", size=2, overlap=0)


# ---------------------------------------------------------------------------
# l2_normalize and cosine search


def test_cosine_search_needs_normalized_vectors():
    stored = np.array([[0.1, 0.0], [0.5, 0.5]], dtype=np.float32)
    query = np.array([1.0, 0.0], dtype=np.float32)

    raw = faiss.IndexFlatIP(2)
    raw.add(stored)
    _, raw_ids = search(raw, query, k=2)
    assert raw_ids == [[1, 0]]  # the long vector wins on raw inner products

    index = faiss.IndexFlatIP(2)
    index.add(l2_normalize(stored))
    scores, ids = search(index, l2_normalize(query), k=2)
    assert ids == [[0, 1]]
    assert scores[0][0] == pytest.approx(1.0, abs=1e-6)
    assert scores[0][1] == pytest.approx(2**-0.5, abs=1e-6)


def test_l2_normalize_shapes_and_dtype():
    rows = l2_normalize([[3.0, 4.0], [0.0, 2.0]])
    assert rows.dtype == np.float32
    np.testing.assert_allclose(rows, [[0.6, 0.8], [0.0, 1.0]], rtol=1e-6)
    assert l2_normalize(np.array([3.0, 4.0])).shape == (1, 2)
    assert is_normalized(rows)
    assert not is_normalized([[3.0, 4.0]])


def test_l2_normalize_rejects_zero_rows_and_nan():
    with pytest.raises(InvalidArgumentError, match=r"\[1\]"):
        l2_normalize([[1.0, 0.0], [0.0, 0.0]])
    with pytest.raises(InvalidArgumentError, match="NaN"):
        l2_normalize([[np.nan, 1.0]])
    with pytest.raises(InvalidArgumentError, match=r"\(2, 2, 2\)"):
        l2_normalize(np.ones((2, 2, 2)))


# ---------------------------------------------------------------------------
# save_index and load_index


def random_unit_vectors(count, dimension, seed=0):
    rng = np.random.default_rng(seed)
    return l2_normalize(rng.standard_normal((count, dimension)))


def test_save_load_round_trip(tmp_path):
    vectors = random_unit_vectors(50, 384)
    index = faiss.IndexFlatIP(384)
    index.add(vectors)
    save_index(index, tmp_path / "idx", embedder=EMBEDDER)

    loaded, meta = load_index(tmp_path / "idx", embedder=EMBEDDER)
    assert meta["embedder"] == EMBEDDER
    assert meta["dimension"] == 384
    assert meta["count"] == 50
    assert meta["metric"] == "inner_product"
    assert meta["index_type"] == "IndexFlatIP"
    expected = search(index, vectors[:5], k=3)
    assert search(loaded, vectors[:5], k=3) == expected


def test_load_rejects_other_embedder(tmp_path):
    index = faiss.IndexFlatL2(8)
    index.add(random_unit_vectors(4, 8))
    save_index(index, tmp_path, embedder=EMBEDDER)
    with pytest.raises(IndexMismatchError) as error:
        load_index(tmp_path, embedder="BAAI/bge-base-en-v1.5")
    assert EMBEDDER in str(error.value)
    assert "BAAI/bge-base-en-v1.5" in str(error.value)
    assert isinstance(error.value, LlmlabError)


def test_load_without_embedder_skips_check(tmp_path):
    index = faiss.IndexFlatL2(8)
    save_index(index, tmp_path, embedder=EMBEDDER)
    loaded, meta = load_index(tmp_path)
    assert loaded.ntotal == 0
    assert meta["metric"] == "l2"


def test_load_missing_files(tmp_path):
    with pytest.raises(IndexNotFoundError, match="index.faiss"):
        load_index(tmp_path)
    with pytest.raises(FileNotFoundError):
        load_index(tmp_path / "absent")


def test_load_detects_stale_sidecar(tmp_path):
    index = faiss.IndexFlatIP(8)
    index.add(random_unit_vectors(4, 8))
    save_index(index, tmp_path, embedder=EMBEDDER)
    meta = json.loads((tmp_path / "index.json").read_text())
    meta["count"] = 99
    (tmp_path / "index.json").write_text(json.dumps(meta))
    with pytest.raises(IndexMismatchError, match="99"):
        load_index(tmp_path)


def test_save_rejects_empty_embedder(tmp_path):
    with pytest.raises(InvalidArgumentError, match="embedder"):
        save_index(faiss.IndexFlatIP(4), tmp_path, embedder="")


# ---------------------------------------------------------------------------
# search


def test_search_wrong_dimension_names_both_and_embedder():
    index = faiss.IndexFlatIP(384)
    index.add(random_unit_vectors(3, 384))
    queries = random_unit_vectors(2, 512)
    with pytest.raises(IndexMismatchError) as error:
        search(index, queries, k=2, embedder=EMBEDDER)
    message = str(error.value)
    assert "512" in message
    assert "384" in message
    assert EMBEDDER in message


def test_search_wrong_dimension_without_embedder():
    index = faiss.IndexFlatIP(4)
    with pytest.raises(IndexMismatchError, match="embedder=") as error:
        search(index, np.ones(5, dtype=np.float32), k=1)
    assert "5" in str(error.value)


def build_ivf(vectors):
    quantizer = faiss.IndexFlatIP(vectors.shape[1])
    index = faiss.IndexIVFFlat(
        quantizer, vectors.shape[1], 2, faiss.METRIC_INNER_PRODUCT
    )
    index.train(vectors)
    return index


def build_hnsw(vectors):
    return faiss.IndexHNSWFlat(vectors.shape[1], 8, faiss.METRIC_INNER_PRODUCT)


def build_flat(vectors):
    return faiss.IndexFlatIP(vectors.shape[1])


@pytest.mark.parametrize("build", [build_flat, build_hnsw, build_ivf])
def test_search_k_above_count_returns_no_minus_one(build):
    stored = random_unit_vectors(3, 16)
    index = build(random_unit_vectors(64, 16, seed=1))
    index.add(stored)
    if isinstance(index, faiss.IndexIVFFlat):
        index.nprobe = 2
    scores, ids = search(index, stored, k=6)
    for row_scores, row_ids in zip(scores, ids):
        assert len(row_ids) <= 3
        assert -1 not in row_ids
        assert len(row_scores) == len(row_ids)
    assert [row[0] for row in ids] == [0, 1, 2]


def test_search_drops_ivf_padding_ids():
    # With nprobe=1, only the vectors in the query's own cell are visited,
    # so FAISS pads the row with -1 even though k < ntotal.
    vectors = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    index = build_ivf(vectors)
    index.add(vectors)
    index.nprobe = 1
    _, raw_ids = index.search(vectors[:1], 2)
    assert -1 in raw_ids[0]
    _, ids = search(index, vectors[:1], k=2)
    assert ids == [[0]]


def test_search_empty_index_returns_empty_rows():
    index = faiss.IndexFlatIP(4)
    scores, ids = search(index, np.ones((2, 4), dtype=np.float32), k=3)
    assert scores == [[], []]
    assert ids == [[], []]


@pytest.mark.parametrize("k", [0, -2, 1.5, True])
def test_search_rejects_bad_k(k):
    index = faiss.IndexFlatIP(4)
    with pytest.raises(InvalidArgumentError, match=f"k={k!r}"):
        search(index, np.ones(4, dtype=np.float32), k=k)


def test_search_accepts_float64_queries():
    index = faiss.IndexFlatL2(2)
    index.add(np.array([[0.0, 0.0], [3.0, 4.0]], dtype=np.float32))
    scores, ids = search(index, np.array([[3.0, 4.0]]), k=2)
    assert ids == [[1, 0]]
    assert scores[0] == pytest.approx([0.0, 25.0])


# ---------------------------------------------------------------------------
# reciprocal_rank_fusion


def test_rrf_hand_worked_example():
    # k = 60.  a: 1/61 + 1/63,  b: 1/62 + 1/61,  c: 1/63,  d: 1/62.
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["b", "d", "a"]], k=60)
    assert [item for item, _ in fused] == ["b", "a", "d", "c"]
    scores = dict(fused)
    assert scores["a"] == pytest.approx(1 / 61 + 1 / 63)
    assert scores["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert scores["c"] == pytest.approx(1 / 63)
    assert scores["d"] == pytest.approx(1 / 62)


def test_rrf_ties_keep_first_appearance_and_ignore_repeats():
    fused = reciprocal_rank_fusion([["x", "y"], ["y", "x", "y"]], k=0)
    assert fused == [("x", 1.5), ("y", 1.5)]


def test_rrf_rejects_negative_k():
    with pytest.raises(InvalidArgumentError, match="k=-1"):
        reciprocal_rank_fusion([["a"]], k=-1)


# ---------------------------------------------------------------------------
# recall_at_k and mean_reciprocal_rank


def test_recall_at_k_hand_worked_example():
    retrieved = [[1, 2, 3, 4], [5, 6, 7, 8]]
    relevant = [{2, 4}, {9}]
    # Query 1: top 3 finds 2 of {2, 4} -> 0.5; top 4 finds both -> 1.0.
    # Query 2: 9 is never retrieved -> 0.0.
    assert recall_at_k(retrieved, relevant, k=3) == pytest.approx(0.25)
    assert recall_at_k(retrieved, relevant, k=4) == pytest.approx(0.5)


def test_recall_at_k_single_ids_is_hit_rate():
    assert recall_at_k([[3, 1], [2, 0], [4, 5]], [1, 0, 9], k=1) == 0.0
    assert recall_at_k([[3, 1], [2, 0], [4, 5]], [1, 0, 9], k=2) == pytest.approx(2 / 3)


def test_mrr_hand_worked_example():
    retrieved = [["a", "b", "c"], ["d", "e", "f"], ["g", "h"]]
    relevant = [{"c"}, "d", {"z"}]
    # Reciprocal ranks 1/3, 1, 0.
    assert mean_reciprocal_rank(retrieved, relevant) == pytest.approx(4 / 9)


def test_scores_reject_bad_input():
    with pytest.raises(InvalidArgumentError, match="2 queries"):
        recall_at_k([[1], [2]], [{1}], k=1)
    with pytest.raises(InvalidArgumentError, match=r"relevant\[0\]"):
        mean_reciprocal_rank([[1]], [set()])
    with pytest.raises(InvalidArgumentError, match="k=0"):
        recall_at_k([[1]], [{1}], k=0)
    with pytest.raises(InvalidArgumentError, match="empty"):
        mean_reciprocal_rank([], [])
