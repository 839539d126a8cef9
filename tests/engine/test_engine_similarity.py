"""ItemSimilarity against the dense references: every measure, ties, empty rows, K > candidates."""

from __future__ import annotations

import numpy as np
import pytest
from engine_reference import dense, random_matrix, similarity_matrix, top_lists
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsdk.engine import ItemSimilarity, UserItemMatrix, kernels
from recsdk.engine.model import MEASURES

EXACT_MEASURES = ["cosine", "jaccard", "lift", "conditional", "cooccurrence"]


def _fit(m: UserItemMatrix, **kwargs: object) -> ItemSimilarity:
    return ItemSimilarity(**kwargs).fit(m)  # type: ignore[arg-type]


def _check_exact(model: ItemSimilarity, x: np.ndarray, k: int) -> None:
    s = similarity_matrix(x, model.measure, model.alpha, model.shrinkage, model.min_support)
    idx, val, cut_s, cut_i = top_lists(s, k + model.margin)
    state = model._state
    assert state is not None
    np.testing.assert_array_equal(state.neighbors, idx)
    np.testing.assert_array_equal(state.scores, val)
    np.testing.assert_array_equal(state.cut_item, cut_i)
    np.testing.assert_array_equal(state.cut_score, cut_s)


@pytest.mark.parametrize("measure", EXACT_MEASURES)
@pytest.mark.parametrize("binary", [True, False])
def test_measures_match_reference(measure: str, binary: bool) -> None:
    rng = np.random.default_rng(1)
    m = random_matrix(rng, 40, 25, 0.15, max_value=3)
    model = _fit(m, measure=measure, n_neighbors=5, binary=binary, alpha=0.5)
    x = dense(m)
    if binary:
        x = (x > 0).astype(np.float64)
    _check_exact(model, x, 5)


@pytest.mark.parametrize(("shrinkage", "min_support"), [(0.0, 2.0), (3.0, 0.0), (1.5, 2.0)])
def test_shrinkage_and_support(shrinkage: float, min_support: float) -> None:
    rng = np.random.default_rng(2)
    m = random_matrix(rng, 50, 20, 0.2)
    model = _fit(m, measure="cosine", n_neighbors=4, shrinkage=shrinkage, min_support=min_support)
    _check_exact(model, dense(m), 4)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n_users=st.integers(0, 20),
    n_items=st.integers(1, 12),
    density=st.floats(0.0, 0.6),
    k=st.integers(1, 14),
    margin=st.integers(0, 3),
    measure=st.sampled_from(EXACT_MEASURES),
    max_value=st.sampled_from([1, 3]),
)
def test_random_matrices(
    seed: int,
    n_users: int,
    n_items: int,
    density: float,
    k: int,
    margin: int,
    measure: str,
    max_value: int,
) -> None:
    """Empty rows and columns, single-user items, ties, K larger than the candidates."""
    rng = np.random.default_rng(seed)
    m = random_matrix(rng, n_users, n_items, density, max_value=max_value)
    model = _fit(m, measure=measure, n_neighbors=k, margin=margin, binary=max_value == 1)
    _check_exact(model, dense(m), k)


@pytest.mark.parametrize("measure", ["cosine", "jaccard", "lift"])
@pytest.mark.parametrize(("k", "max_value"), [(1, 1), (3, 3)])
@pytest.mark.parametrize(
    ("n_users", "n_items", "density"),
    [(300, 100, 0.5), (400, 1500, 0.02)],
    ids=["scanning-every-item", "scanning-touched-items"],
)
def test_lists_long_enough_for_sampled_floors(
    measure: str, k: int, max_value: int, n_users: int, n_items: int, density: float
) -> None:
    """Lists many times longer than what is kept: the kernel sets most candidates aside by
    sampled score floors (a sample of the list, or one in eight of it), with many ties."""
    rng = np.random.default_rng(k)
    m = random_matrix(rng, n_users, n_items, density, max_value=max_value)
    model = _fit(m, measure=measure, n_neighbors=k, margin=0, binary=max_value == 1)
    _check_exact(model, dense(m), k)


@pytest.mark.parametrize("measure", ["bm25", "tfidf"])
@pytest.mark.parametrize("binary", [True, False])
def test_weighted_cosines(measure: str, binary: bool) -> None:
    """bm25/tfidf: cosine over re-weighted data (float sums: compare with a tolerance). With
    0/1 input every user's row holds one weight: the kernel's one-product-per-row path."""
    from recsdk.engine import matrix

    rng = np.random.default_rng(3)
    m = random_matrix(rng, 60, 30, 0.2, max_value=2)
    model = _fit(m, measure=measure, n_neighbors=6, binary=binary)
    if binary:
        m = m.with_data(np.ones(m.nnz, dtype=np.float32))
    weighted = matrix.bm25_weight(m) if measure == "bm25" else matrix.tfidf_weight(m)
    s = similarity_matrix(dense(weighted), "cosine", 0.0, 0.0, 0.0)
    state = model._state
    assert state is not None
    for i in range(30):
        got = state.neighbors[i][state.neighbors[i] >= 0]
        expected = np.sort(s[i][np.isfinite(s[i])])[::-1][: len(got)]
        np.testing.assert_allclose(state.scores[i][: len(got)], expected, rtol=1e-5)
        np.testing.assert_allclose(s[i, got], expected, rtol=1e-5)


def test_bm25_and_tfidf_weights_follow_their_formulas() -> None:
    from recsdk.engine import matrix

    rng = np.random.default_rng(11)
    m = random_matrix(rng, 50, 20, 0.2, max_value=4)  # some users have no items
    x = dense(m)
    lengths = (x > 0).sum(axis=1).astype(np.float64)
    idf = np.maximum(np.log(20 / (1.0 + lengths)) + 1.0, 1e-3)
    norm = 1.2 * (1.0 - 0.75 + 0.75 * lengths / lengths[lengths > 0].mean())
    bm25 = np.zeros_like(x)
    tfidf = np.zeros_like(x)
    for u, i in zip(*np.nonzero(x), strict=True):
        bm25[u, i] = np.float32(idf[u] * x[u, i] * 2.2 / (x[u, i] + norm[u]))
        tfidf[u, i] = np.float32(np.float64(np.sqrt(np.float32(x[u, i]))) * idf[u])
    np.testing.assert_array_equal(dense(matrix.bm25_weight(m)), bm25)
    np.testing.assert_array_equal(dense(matrix.tfidf_weight(m)), tfidf)


def test_one_product_per_row_equals_one_per_entry() -> None:
    """The kernel's path for rows of one value gives the general path's lists, bit for bit."""
    from recsdk.engine import matrix

    rng = np.random.default_rng(12)
    m = random_matrix(rng, 120, 40, 0.15)
    m = matrix.bm25_weight(m.with_data(np.ones(m.nnz, dtype=np.float32)))
    assert kernels._rows_constant(m.indptr, m.data)
    assert not kernels._rows_constant(m.indptr, np.arange(m.nnz, dtype=np.float32))
    mt = m.transpose()
    diag = np.bincount(m.indices, weights=m.data.astype(np.float64) ** 2, minlength=40)
    labels = np.arange(40, dtype=np.int32)
    work = kernels._column_counts(m.indptr, m.indices, 40, 2)[1]
    args = (m.indptr, m.indices, m.data, mt.indptr, mt.indices, mt.data, diag, work, labels)
    rest = (labels, np.arange(40, dtype=np.int64), 6, kernels._COSINE, 0.0, 0.0, 0.0, False)
    runs = [kernels._topk_items(*args, *rest, constant, True, 0, 4) for constant in (False, True)]
    for general, per_row in zip(*runs, strict=True):
        np.testing.assert_array_equal(general, per_row)


def test_never_the_item_itself_and_ties_by_index() -> None:
    # Items 1, 2, 3 are bought by exactly the same users as item 0: all tie with 0.
    users = np.repeat(np.arange(4), 4)
    items = np.tile(np.arange(4), 4)
    m = UserItemMatrix.from_coo(users, items, n_users=4, n_items=4)
    model = _fit(m, measure="cosine", n_neighbors=2)
    assert model.neighbors(0)[0].tolist() == [1, 2]
    assert model.neighbors(3)[0].tolist() == [0, 1]
    for i in range(4):
        assert i not in model.neighbors(i)[0]


@pytest.mark.parametrize("chunks", [1, 2, 7, 200])
def test_transpose_whatever_the_chunking(chunks: int) -> None:
    m = random_matrix(np.random.default_rng(chunks), 60, 30, 0.2, max_value=5)
    same = np.arange(30, dtype=np.int32)
    indptr, indices, data = kernels._transpose(m.indptr, m.indices, m.data, same, chunks, True)
    t = UserItemMatrix(indptr, indices, data, 30, 60)
    np.testing.assert_array_equal(dense(t), dense(m).T)
    for row in range(30):
        assert np.all(np.diff(t.row(row)[0]) > 0)
    positions = kernels._transpose(m.indptr, m.indices, m.data, same, chunks, False)
    np.testing.assert_array_equal(positions[0], indptr)
    np.testing.assert_array_equal(positions[1], indices)
    assert len(positions[2]) == 0
    # From counts at hand (in new labels): the same transpose.
    new_label = np.random.default_rng(chunks).permutation(30).astype(np.int32)
    by_range = kernels._column_counts(m.indptr, m.indices, 30, chunks)[2]
    relabelled = np.empty_like(by_range)
    relabelled[:, new_label] = by_range
    counted = m.transpose(new_label, chunk_counts=relabelled)
    recounted = m.transpose(new_label)
    for name in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(counted, name), getattr(recounted, name))


@pytest.mark.parametrize("n_users", [0, 1, 40, 300])
def test_relabeled_and_transposed_under_new_labels(n_users: int) -> None:
    rng = np.random.default_rng(n_users)
    m = random_matrix(rng, n_users, 120, 0.3, max_value=4)
    new_label = rng.permutation(120).astype(np.int32)
    r = m.relabeled(new_label)
    np.testing.assert_array_equal(dense(r)[:, new_label], dense(m))
    for user in range(n_users):
        assert np.all(np.diff(r.row(user)[0]) > 0)
    np.testing.assert_array_equal(dense(m.transpose(new_label)), dense(r).T)
    # All one value: both sides share the values instead of copying them.
    ones = m.with_data(np.ones(m.nnz, dtype=np.float32))
    t = ones.transpose(new_label, uniform=True)
    r = ones.relabeled(new_label, t, constant_rows=True)
    assert t.data is ones.data
    assert r.data is ones.data
    np.testing.assert_array_equal(dense(r)[:, new_label], dense(m) > 0)
    np.testing.assert_array_equal(dense(t), dense(r).T)
    # One value a row: the relabelled rows share them.
    per_row = m.with_data(np.repeat(np.arange(n_users, dtype=np.float32) + 1, m.row_lengths()))
    r = per_row.relabeled(new_label, constant_rows=True)
    assert r.data is per_row.data
    np.testing.assert_array_equal(dense(r)[:, new_label], dense(per_row))


@pytest.mark.parametrize(("chunks", "rows_per_block"), [(1, 1), (2, 7), (3, 50), (8, 1000)])
def test_rows_from_transpose_block_by_block(chunks: int, rows_per_block: int) -> None:
    m = random_matrix(np.random.default_rng(chunks), 90, 40, 0.3, max_value=5)
    t = m.transpose()
    for with_values in (True, False):
        indices, data = kernels._rows_from_transpose(
            t.indptr, t.indices, t.data, m.indptr, chunks, rows_per_block, with_values
        )
        np.testing.assert_array_equal(indices, m.indices)
        np.testing.assert_array_equal(data, m.data if with_values else [])


@pytest.mark.parametrize("chunks", [1, 3, 500])
def test_item_counts_work_and_squares(chunks: int) -> None:
    """Counts and work in any chunking; squares bit for bit as np.bincount sums them."""
    rng = np.random.default_rng(chunks)
    m = random_matrix(rng, 80, 30, 0.25, max_value=5)
    m = m.with_data(m.data * rng.random(m.nnz).astype(np.float32))  # sums that round
    counts, work, by_range = kernels._column_counts(m.indptr, m.indices, 30, chunks)
    np.testing.assert_array_equal(counts, np.bincount(m.indices, minlength=30))
    assert by_range.shape == (chunks, 30)  # (rows split as _transpose splits them)
    for c in range(chunks):
        rows = slice(80 * c // chunks, 80 * (c + 1) // chunks)
        values = m.indices[m.indptr[rows.start] : m.indptr[rows.stop]]
        np.testing.assert_array_equal(by_range[c], np.bincount(values, minlength=30))
    lengths = np.diff(m.indptr)
    np.testing.assert_array_equal(work, np.bincount(m.indices, np.repeat(lengths, lengths), 30))
    t = m.transpose()
    weights = m.data.astype(np.float64) ** 2
    expected = np.bincount(m.indices, weights, minlength=30)
    np.testing.assert_array_equal(kernels._row_squares(t.indptr, t.data), expected)
    empty = kernels._column_counts(np.zeros(3, dtype=np.int64), m.indices[:0], 4, chunks)
    np.testing.assert_array_equal(empty[0], np.zeros(4))
    np.testing.assert_array_equal(empty[1], np.zeros(4))


def test_deterministic_whatever_the_chunking() -> None:
    # (With heads: their lists gather every chunk's offers.)
    rng = np.random.default_rng(4)
    m = random_matrix(rng, 80, 40, 0.1)
    mt = m.transpose()
    diag = np.bincount(m.indices, weights=m.data.astype(np.float64) ** 2, minlength=40)
    labels = np.arange(40, dtype=np.int32)
    runs = [
        kernels._topk_items(
            m.indptr,
            m.indices,
            m.data,
            mt.indptr,
            mt.indices,
            mt.data,
            diag,
            kernels._column_counts(m.indptr, m.indices, 40, 2)[1],
            labels,
            labels,
            np.arange(40, dtype=np.int64),
            5,
            kernels._COSINE,
            0.0,
            0.0,
            0.0,
            True,
            False,
            True,
            6,
            chunks,
        )
        for chunks in (1, 3, 16)
    ]
    for other in runs[1:]:
        for a, b in zip(runs[0], other, strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("values", ["binary", "one per row", "any", "ties"])
@pytest.mark.parametrize(
    ("measure", "shrink", "support"),
    [
        (kernels._COSINE, 0.0, 0.0),
        (kernels._JACCARD, 0.0, 0.0),
        (kernels._LIFT, 0.0, 2.0),
        (kernels._COOCCURRENCE, 1.5, 0.0),
    ],
)
def test_heads_gather_the_lists_they_would_accumulate(
    values: str, measure: int, shrink: float, support: float
) -> None:
    """Lists gathered from the other items' offers (and the heads' block) equal the lists
    accumulated over the heads' own users, bit for bit, whatever the number of heads."""
    from recsdk.engine import matrix

    rng = np.random.default_rng(13)
    m = random_matrix(rng, 150, 30, 0.2, max_value=4)
    if values == "ties":  # items 10-29 have the same users: their scores tie everywhere
        x = dense(m) > 0
        x[:, 10:] = x[:, [10]]
        users, items = np.nonzero(x)
        m = UserItemMatrix.from_coo(users, items, n_users=150, n_items=30)
    if values != "any":
        m = m.with_data(np.ones(m.nnz, dtype=np.float32))
    if values == "one per row":
        m = matrix.bm25_weight(m)
    mt = m.transpose()
    diag = np.bincount(m.indices, weights=m.data.astype(np.float64) ** 2, minlength=30)
    work = kernels._column_counts(m.indptr, m.indices, 30, 2)[1]
    every = np.arange(30, dtype=np.int32)
    # Ties are broken by the caller's labels, which need not follow the internal order.
    labels = rng.permutation(30).astype(np.int32)
    args = (m.indptr, m.indices, m.data, mt.indptr, mt.indices, mt.data, diag, work, labels)
    rest = (every, np.arange(30, dtype=np.int64), 6, measure, 0.5, shrink, support)
    flags = (values in ("binary", "ties"), values == "one per row", True)
    runs = [
        kernels._topk_items(*args, *rest, *flags, n_heads, n_chunks)
        for n_heads, n_chunks in [(0, 2), (1, 2), (7, 1), (7, 3), (30, 2)]
    ]
    for other in runs[1:]:
        for a, b in zip(runs[0], other, strict=True):
            np.testing.assert_array_equal(a, b)


def test_heads_only_where_the_whole_catalog_is_fitted_in_order() -> None:
    n_items = 100_000
    bar = kernels._HEAD_WORK_PER_ITEM * n_items
    work = np.full(n_items, bar, dtype=np.int64)
    work[100:] = bar - 1  # below the bar from item 100 on
    every = np.arange(n_items, dtype=np.int32)
    assert kernels._count_heads(work, every, n_items) == 100
    assert kernels._count_heads(np.full(n_items, bar), every, n_items) == kernels._MOST_HEADS
    small = 10 * kernels._ITEMS_PER_HEAD  # a small catalog gets fewer heads
    assert kernels._count_heads(np.full(small, small), every[:small], small) == 10
    assert kernels._count_heads(work, every[:-1], n_items) == 0  # not every item
    shuffled = every.copy()
    shuffled[[3, 4]] = shuffled[[4, 3]]
    assert kernels._count_heads(work, shuffled, n_items) == 3  # heads must be in order
    assert kernels._count_heads(work[:0], every[:0], 0) == 0


@pytest.mark.parametrize("n_chunks", [1, 2, 5, 16])
def test_chunks_are_dealt_by_work(n_chunks: int) -> None:
    rng = np.random.default_rng(9)
    n_items = 1000
    # Popularity order: heaviest first, a few items far heavier than the rest.
    work = np.sort(rng.zipf(1.3, n_items).astype(np.int64) * 50)[::-1].copy()
    todo = np.concatenate([np.arange(0, n_items, 2), np.arange(1, n_items, 2)]).astype(np.int32)
    indptr, dealt = kernels._deal_by_work(work, todo, n_items, n_chunks)

    assert len(indptr) == n_chunks + 1
    assert indptr[0] == 0
    assert indptr[-1] == len(todo)
    assert sorted(dealt.tolist()) == list(range(len(todo)))  # every item, once
    cost = work[todo] + np.minimum(work[todo], n_items)
    loads = []
    for c in range(n_chunks):
        mine = dealt[indptr[c] : indptr[c + 1]]
        assert np.all(np.diff(mine) > 0)  # in todo's order within a chunk
        loads.append(cost[mine].sum())
    # Greedy to the least loaded: no chunk exceeds the mean by more than one item's cost.
    assert max(loads) <= sum(loads) / n_chunks + cost.max()

    nothing = kernels._deal_by_work(work, todo[:0], n_items, n_chunks)
    assert nothing[0].tolist() == [0] * (n_chunks + 1)
    assert len(nothing[1]) == 0


def test_every_measure_is_accepted() -> None:
    rng = np.random.default_rng(5)
    m = random_matrix(rng, 30, 10, 0.3)
    for measure in MEASURES:
        model = _fit(m, measure=measure, n_neighbors=3)
        items, _ = model.similar_items(0, k=3)
        assert 0 not in items.tolist()
    with pytest.raises(ValueError, match="measure"):
        ItemSimilarity(measure="nope")  # type: ignore[arg-type]


def test_csr_building_sums_duplicates() -> None:
    users = np.array([2, 0, 2, 0, 1, 2], dtype=np.int32)
    items = np.array([1, 3, 1, 0, 2, 0], dtype=np.int32)
    vals = np.array([1, 2, 3, 4, 5, 6], dtype=np.float32)
    m = UserItemMatrix.from_coo(users, items, vals, n_users=4, n_items=5)
    assert m.indptr.tolist() == [0, 2, 3, 5, 5]
    assert m.indices.tolist() == [0, 3, 2, 0, 1]
    assert m.data.tolist() == [4, 2, 5, 6, 4]
    t = m.transpose()
    np.testing.assert_array_equal(dense(t), dense(m).T)


@given(
    values=st.lists(st.sampled_from([-np.inf, 0.0, 0.25, 0.5, 1.0]), min_size=1, max_size=60),
    data=st.data(),
)
@settings(max_examples=200, deadline=None)
def test_kth_largest_with_many_equal_values(values: list[float], data: st.DataObject) -> None:
    """The sampled floor's selection: numpy's answer, however many values are equal."""
    k = data.draw(st.integers(1, len(values)))
    array = np.array([*values, 9.0], dtype=np.float64)  # a value past n stays untouched
    expected = np.sort(array[:-1])[::-1][k - 1]
    assert kernels._kth_largest(array, len(values), k) == expected
    assert sorted(array[:-1]) == sorted(values)
    assert array[-1] == 9.0


@given(
    scores=st.lists(st.sampled_from([0.1, 0.2, 0.25, 0.5, 1.0]), min_size=2, max_size=300),
    data=st.data(),
)
@settings(max_examples=200, deadline=None)
def test_narrowing_keeps_the_best(scores: list[float], data: st.DataObject) -> None:
    """The narrowing before the quickselect keeps the k best whole (ties by item), however
    many scores are equal, or leaves the candidates as they were."""
    n = len(scores)
    k = data.draw(st.integers(1, n - 1))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    best_s = np.array(scores, dtype=np.float64)
    best_j = rng.permutation(10 * n)[:n].astype(np.int32)
    best_a = rng.random(n).astype(np.float32)
    before = list(zip(best_s.tolist(), best_j.tolist(), best_a.tolist(), strict=True))
    sample = np.empty(kernels._NARROW_SAMPLE, dtype=np.float64)
    left = kernels._narrow(best_s, best_j, best_a, n, k, sample)
    after = list(zip(best_s.tolist(), best_j.tolist(), best_a.tolist(), strict=True))
    assert k <= left <= n
    if left == n:
        assert after == before
    assert set(after[:left]) <= set(before)  # entries stay whole
    best = sorted(before, key=lambda entry: (-entry[0], entry[1]))[:k]
    assert set(best) <= set(after[:left])


def test_narrowing_with_a_floor_set_too_high() -> None:
    """A sample holding only the best candidates sets a floor with fewer than k above it:
    then nothing is narrowed."""
    n, k = 200, 60
    sampled = (np.arange(kernels._NARROW_SAMPLE) * n) // kernels._NARROW_SAMPLE
    best_s = np.full(n, 0.1)
    best_s[sampled] = np.linspace(1.0, 2.0, len(sampled))
    best_j = np.arange(n, dtype=np.int32)
    best_a = np.ones(n, dtype=np.float32)
    sample = np.empty(kernels._NARROW_SAMPLE, dtype=np.float64)
    original = best_s.copy()
    assert kernels._narrow(best_s, best_j, best_a, n, k, sample) == n
    np.testing.assert_array_equal(best_s, original)
    np.testing.assert_array_equal(best_j, np.arange(n))
