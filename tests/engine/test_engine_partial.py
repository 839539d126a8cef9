"""ItemSimilarity.partial_fit against full refits, and the kernels of its incremental path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from engine_reference import dense, random_matrix, similarity_matrix
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsdk.engine import ItemSimilarity, UserItemMatrix, kernels
from recsdk.engine import model as model_module

EXACT_MEASURES = ["cosine", "jaccard", "lift", "conditional", "cooccurrence"]


def _coo(m: UserItemMatrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.repeat(np.arange(m.n_users), np.diff(m.indptr)), m.indices, m.data


def _parts(
    rng: np.random.Generator, m: UserItemMatrix, n_parts: int, *, grow: bool = False
) -> list[UserItemMatrix]:
    """``m``'s entries in ``n_parts`` random batches; with ``grow`` the first batches know
    only some users and items (later ones go beyond the fitted size)."""
    users, items, values = _coo(m)
    which = rng.integers(0, n_parts, size=len(users))
    if grow:  # the highest users and items appear only in the last batch
        late = (users >= m.n_users * 3 // 4) | (items >= m.n_items * 3 // 4)
        which[late] = n_parts - 1
    out = []
    for part in range(n_parts):
        keep = which == part
        shape = {} if grow and part < n_parts - 1 else {"n_users": m.n_users, "n_items": m.n_items}
        out.append(UserItemMatrix.from_coo(users[keep], items[keep], values[keep], **shape))
    return out


def _incremental(parts: list[UserItemMatrix], **kwargs: object) -> ItemSimilarity:
    model = ItemSimilarity(**kwargs).fit(parts[0])  # type: ignore[arg-type]
    for part in parts[1:]:
        model.partial_fit(part)
    return model


def _assert_same_served(inc: ItemSimilarity, full: ItemSimilarity) -> None:
    a, b = inc._state, full._state
    assert a is not None
    assert b is not None
    k = inc.n_neighbors
    np.testing.assert_array_equal(a.neighbors[:, :k], b.neighbors[:, :k])
    np.testing.assert_array_equal(a.scores[:, :k], b.scores[:, :k])


def _assert_cuts_bound_the_rest(model: ItemSimilarity, x: np.ndarray) -> None:
    """Every stored entry has its exact co-occurrence; every candidate left out of an
    item's list ranks at or below the item's cut (what the next update relies on)."""
    state = model._state
    assert state is not None
    s = similarity_matrix(x, model.measure, 1.0 if model.measure == "lift" else model.alpha,
                          model.shrinkage, model.min_support)  # fmt: skip
    cooc = (x.T @ x).astype(np.float32)
    for i in range(s.shape[0]):
        row = state.neighbors[i]
        stored = row[row >= 0]
        np.testing.assert_array_equal(state.cooc[i, : len(stored)], cooc[i, stored])
        left = np.setdiff1d(np.flatnonzero(np.isfinite(s[i])), stored)
        if len(left) == 0:
            continue
        assert state.cut_item[i] >= 0, i
        cut = (state.cut_score[i], state.cut_item[i])
        for j in left:
            assert (s[i, j], -j) <= (cut[0], -cut[1]), (i, j)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n_parts=st.integers(2, 4),
    measure=st.sampled_from(EXACT_MEASURES),
    k=st.integers(1, 6),
    margin=st.integers(0, 4),
    binary=st.booleans(),
    shrinkage=st.sampled_from([0.0, 2.0]),
    min_support=st.sampled_from([0.0, 2.0]),
    grow=st.booleans(),
)
def test_updates_equal_a_full_fit(
    seed: int,
    n_parts: int,
    measure: str,
    k: int,
    margin: int,
    binary: bool,
    shrinkage: float,
    min_support: float,
    grow: bool,
) -> None:
    """Several updates in a row, new users and items, every measure and option."""
    rng = np.random.default_rng(seed)
    m = random_matrix(rng, 50, 30, 0.2, max_value=1 if binary else 3)
    kwargs = {
        "measure": measure, "n_neighbors": k, "margin": margin, "binary": binary,
        "shrinkage": shrinkage, "min_support": min_support, "alpha": 0.5,
    }  # fmt: skip
    inc = _incremental(_parts(rng, m, n_parts, grow=grow), **kwargs)
    full = ItemSimilarity(**kwargs).fit(m)  # type: ignore[arg-type]
    _assert_same_served(inc, full)
    x = dense(m)
    _assert_cuts_bound_the_rest(inc, (x > 0).astype(np.float64) if binary else x)


@pytest.mark.parametrize("share", [0.0, 4.0, 1e9])  # recompute / settle / settle all
@pytest.mark.parametrize("measure", EXACT_MEASURES)
def test_many_small_updates_keep_exact_cuts(
    measure: str, share: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cuts raised by unsettled pairs stay valid bounds through a long run of updates."""
    monkeypatch.setattr(model_module, "_RESOLVE_SHARE", share)
    rng = np.random.default_rng(11)
    m = random_matrix(rng, 120, 40, 0.15)
    inc = _incremental(_parts(rng, m, 12), measure=measure, n_neighbors=3, margin=2)
    full = ItemSimilarity(measure=measure, n_neighbors=3, margin=2).fit(m)  # type: ignore[arg-type]
    _assert_same_served(inc, full)
    _assert_cuts_bound_the_rest(inc, (dense(m) > 0).astype(np.float64))
    assert inc._state is not None
    assert inc._state.stats["updated"] > 0


def test_binary_item_side_shares_its_ones() -> None:
    """With 0/1 input the item side's values are ones, which later updates share instead of
    copying them."""
    rng = np.random.default_rng(21)
    m = random_matrix(rng, 200, 30, 0.1)
    parts = _parts(rng, m, 6)
    model = ItemSimilarity(measure="cosine", n_neighbors=3, margin=2).fit(parts[0])
    shared = 0
    for part in parts[1:]:
        assert model._state is not None
        assert model._state.item_users is not None
        before = model._state.item_users.matrix.data
        model.partial_fit(part)
        assert model._state.item_users is not None
        after = model._state.item_users.matrix
        assert model._state.stats["updated"] > 0  # the incremental path, not a refit
        assert len(after.data) == len(after.indices)
        np.testing.assert_array_equal(after.data, 1.0)
        shared += np.shares_memory(before, after.data)
    assert shared > 0
    full = ItemSimilarity(measure="cosine", n_neighbors=3, margin=2).fit(m)
    _assert_same_served(model, full)


def test_updates_too_spread_out_refit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows that had and gained many items would take too much memory to spread out:
    partial_fit refits instead, with the same result."""
    rng = np.random.default_rng(13)
    m = random_matrix(rng, 80, 25, 0.3)
    first, second = _parts(rng, m, 2)
    monkeypatch.setattr(model_module, "_MAX_SPREAD_PER_ENTRY", 0)
    inc = ItemSimilarity(measure="cosine", n_neighbors=4).fit(first).partial_fit(second)
    assert inc._state is not None
    assert inc._state.stats == {}  # no incremental update ran
    _assert_same_served(inc, ItemSimilarity(measure="cosine", n_neighbors=4).fit(m))


@pytest.mark.parametrize("binary", [True, False])
def test_repeated_events(binary: bool) -> None:
    """Events on items a user already has: with 0/1 input their rows change nothing."""
    rng = np.random.default_rng(12)
    m = random_matrix(rng, 80, 25, 0.2)
    users, items, values = _coo(m)
    again = rng.random(len(users)) < 0.3
    fresh = random_matrix(rng, 80, 25, 0.02)
    fu, fi, fv = _coo(fresh)
    update = UserItemMatrix.from_coo(
        np.concatenate([users[again], fu]), np.concatenate([items[again], fi]),
        np.concatenate([values[again], fv]), n_users=80, n_items=25,
    )  # fmt: skip
    both = UserItemMatrix.from_coo(
        np.concatenate([users, users[again], fu]), np.concatenate([items, items[again], fi]),
        np.concatenate([values, values[again], fv]), n_users=80, n_items=25,
    )  # fmt: skip
    kwargs = {"measure": "cosine", "n_neighbors": 4, "margin": 2, "binary": binary}
    inc = ItemSimilarity(**kwargs).fit(m).partial_fit(update)  # type: ignore[arg-type]
    _assert_same_served(inc, ItemSimilarity(**kwargs).fit(both))  # type: ignore[arg-type]


def test_real_valued_weights() -> None:
    """Float sums depend on their order: such inputs fall back to a full refit."""
    for seed in range(20):
        rng = np.random.default_rng(seed)
        users, items = np.nonzero(rng.random((60, 25)) < 0.3)
        values = rng.choice(np.array([0.3, 0.7, 1.1, 2.9], dtype=np.float32), len(users))
        m = UserItemMatrix.from_coo(users, items, values, n_users=60, n_items=25)
        kwargs = {"measure": "cosine", "n_neighbors": 4, "margin": 2, "binary": False}
        inc = _incremental(_parts(rng, m, 2), **kwargs)
        _assert_same_served(inc, ItemSimilarity(**kwargs).fit(m))  # type: ignore[arg-type]


def test_fewer_candidates_than_k_and_ties() -> None:
    # Items 0-3 are held by the same users (all tie); item 4 has one partner only.
    users = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 4], dtype=np.int32)
    items = np.array([0, 1, 2, 3, 0, 1, 2, 3, 4, 5, 6, 7, 5], dtype=np.int32)
    m = UserItemMatrix.from_coo(users, items, n_users=6, n_items=9)
    extra = UserItemMatrix.from_coo(
        np.array([5, 5, 5, 2]), np.array([0, 3, 8, 6]), n_users=6, n_items=9
    )
    both = UserItemMatrix.from_coo(
        np.concatenate([users, [5, 5, 5, 2]]), np.concatenate([items, [0, 3, 8, 6]]),
        n_users=6, n_items=9,
    )  # fmt: skip
    for measure in EXACT_MEASURES:
        kwargs = {"measure": measure, "n_neighbors": 6, "margin": 1}
        inc = ItemSimilarity(**kwargs).fit(m).partial_fit(extra)  # type: ignore[arg-type]
        _assert_same_served(inc, ItemSimilarity(**kwargs).fit(both))  # type: ignore[arg-type]


def test_partial_fit_after_load(tmp_path: Path) -> None:
    """A loaded model (memory-mapped, read only) rebuilds what partial_fit keeps."""
    rng = np.random.default_rng(5)
    m = random_matrix(rng, 80, 30, 0.15)
    first, second = _parts(rng, m, 2)
    path = tmp_path / "model.npz"
    ItemSimilarity(measure="cosine", n_neighbors=4, margin=3).fit(first).save(path)
    for mmap in (False, True):
        inc = ItemSimilarity.load(path, mmap=mmap).partial_fit(second)
        _assert_same_served(inc, ItemSimilarity(measure="cosine", n_neighbors=4, margin=3).fit(m))


def _split_by_share(
    rng: np.random.Generator, m: UserItemMatrix, first_share: float
) -> tuple[UserItemMatrix, UserItemMatrix]:
    users, items, values = _coo(m)
    first = rng.random(len(users)) < first_share
    shape = {"n_users": m.n_users, "n_items": m.n_items}
    return (
        UserItemMatrix.from_coo(users[first], items[first], values[first], **shape),
        UserItemMatrix.from_coo(users[~first], items[~first], values[~first], **shape),
    )


@pytest.mark.parametrize("margin", [0, 2])
def test_an_update_dearer_than_a_refit_gives_up(
    margin: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch as large as what the model was fitted on, without a margin to absorb it,
    reorders most lists: the update sees so in its first items and refits instead."""
    monkeypatch.setattr(model_module, "_GIVE_UP_SAMPLE", 8)
    rng = np.random.default_rng(31)
    m = random_matrix(rng, 400, 600, 0.03)
    first, second = _split_by_share(rng, m, 0.8)
    kwargs = {"measure": "cosine", "n_neighbors": 5, "margin": margin}
    inc = ItemSimilarity(**kwargs).fit(first).partial_fit(second)  # type: ignore[arg-type]
    assert inc._state is not None
    assert inc._state.stats == {"gave_up": 1}
    full = ItemSimilarity(**kwargs).fit(m)  # type: ignore[arg-type]
    _assert_same_served(inc, full)
    # The refit leaves a model that later updates take incrementally.
    more = random_matrix(rng, 400, 600, 0.001)
    inc.partial_fit(more)
    assert inc._state is not None
    assert "updated" in inc._state.stats
    union = UserItemMatrix.from_coo(
        *(np.concatenate(pair) for pair in zip(_coo(m), _coo(more), strict=True)),
        n_users=400, n_items=600,
    )  # fmt: skip
    _assert_same_served(inc, ItemSimilarity(**kwargs).fit(union))  # type: ignore[arg-type]


def test_a_small_batch_does_not_give_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same model and sample with a small batch and a margin: the update stays."""
    monkeypatch.setattr(model_module, "_GIVE_UP_SAMPLE", 8)
    rng = np.random.default_rng(32)
    m = random_matrix(rng, 400, 600, 0.03)
    first, second = _split_by_share(rng, m, 0.995)
    kwargs = {"measure": "cosine", "n_neighbors": 5, "margin": 10}
    inc = ItemSimilarity(**kwargs).fit(first).partial_fit(second)  # type: ignore[arg-type]
    assert inc._state is not None
    assert inc._state.stats["updated"] > 0
    _assert_same_served(inc, ItemSimilarity(**kwargs).fit(m))  # type: ignore[arg-type]


def test_partial_fit_does_not_change_served_views() -> None:
    rng = np.random.default_rng(6)
    m = random_matrix(rng, 60, 20, 0.2)
    first, second = _parts(rng, m, 2)
    model = ItemSimilarity(measure="cosine", n_neighbors=4).fit(first)
    before = [model.neighbors(i)[0].copy() for i in range(20)]
    views = [model.neighbors(i)[0] for i in range(20)]
    model.partial_fit(second)
    for old, view in zip(before, views, strict=True):
        np.testing.assert_array_equal(old, view)


def test_negative_alpha_falls_back() -> None:
    """With alpha < 0 a growing item raises others' scores: no incremental shortcut."""
    rng = np.random.default_rng(7)
    m = random_matrix(rng, 60, 20, 0.2)
    kwargs = {"measure": "conditional", "alpha": -0.5, "n_neighbors": 4}
    inc = _incremental(_parts(rng, m, 3), **kwargs)
    _assert_same_served(inc, ItemSimilarity(**kwargs).fit(m))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- kernels


@pytest.mark.parametrize("seed", range(5))
def test_changed_rows_and_their_transpose(seed: int) -> None:
    rng = np.random.default_rng(seed)
    old = random_matrix(rng, 40, 15, 0.25, max_value=3)
    add = random_matrix(rng, 40, 15, 0.1, max_value=2)
    merged = kernels._merge_csr(
        old.indptr, old.indices, old.data, old.data, add.indptr, add.indices, add.data,
        add.data, False,
    )  # fmt: skip
    new = dense(UserItemMatrix(merged[0], merged[1], merged[2], 40, 15))
    np.testing.assert_array_equal(new, dense(old) + dense(add))
    users = np.flatnonzero(np.diff(add.indptr) > 0).astype(np.int32)
    indptr, indices, new_values, old_values = merged[4:]
    rows = UserItemMatrix(indptr, indices, new_values, len(users), 15)
    np.testing.assert_array_equal(dense(rows), new[users])
    np.testing.assert_array_equal(dense(rows.with_data(old_values)), dense(old)[users])
    fits, t_indptr, t_rows, t_old, t_new, e_indptr, e_items, e_change, change = (
        kernels._split_changes(indptr, indices, old_values, new_values, 15, 10**9, 1 + seed % 3)
    )
    assert fits
    before, after_rows = dense(old)[users], new[users]
    moved = (after_rows != before).astype(np.float32)  # where a row's value changed
    t = dense(UserItemMatrix(t_indptr, t_rows, t_new, 15, len(users)))
    np.testing.assert_array_equal(t, (after_rows * moved).T)
    t = dense(UserItemMatrix(t_indptr, t_rows, t_old, 15, len(users)))
    np.testing.assert_array_equal(t, (before * moved).T)
    for i in range(15):  # rows in order
        assert np.all(np.diff(t_rows[t_indptr[i] : t_indptr[i + 1]]) > 0)
    # Where an item's value stayed, its co-occurrences change by value * (new - old) of the
    # row's changed entries: summed per item pair, X_same^T (X_new - X_old).
    same = after_rows * (1 - moved)
    spread = np.zeros((15, 15))
    for i in range(15):
        for p in range(e_indptr[i], e_indptr[i + 1]):
            spread[i, e_items[p]] += e_change[p]
    np.testing.assert_array_equal(spread, same.T @ (after_rows - before))
    if e_indptr[-1] > 0:  # one entry fewer allowed: nothing comes back
        fits, *arrays = kernels._split_changes(
            indptr, indices, old_values, new_values, 15, e_indptr[-1] - 1, 2
        )
        assert not fits
        assert all(len(a) == 0 for a in arrays)
    xt = old.transpose()
    item_users = kernels._merge_item_users(
        xt.indptr[:-1], xt.indptr[1:], xt.indices, xt.data, t_indptr, t_rows, t_old, t_new,
        users, True,
    )  # fmt: skip
    t_items, t_users, t_values = item_users
    np.testing.assert_array_equal(dense(UserItemMatrix(t_items, t_users, t_values, 15, 40)), new.T)
    positions_only = kernels._merge_item_users(
        xt.indptr[:-1], xt.indptr[1:], xt.indices, xt.data, t_indptr, t_rows, t_old, t_new,
        users, False,
    )  # fmt: skip
    np.testing.assert_array_equal(positions_only[0], t_items)
    np.testing.assert_array_equal(positions_only[1], t_users)
    assert len(positions_only[2]) == 0
    after = UserItemMatrix(merged[0], merged[1], merged[2], 40, 15)
    np.testing.assert_array_equal(
        kernels._column_counts(old.indptr, old.indices, 15, 2)[1] + change,
        kernels._column_counts(after.indptr, after.indices, 15, 3)[1],
    )


@pytest.mark.parametrize("n_items", [0, 1, 63, 64, 65, 640, 1000, 64 * 97 + 5])
@pytest.mark.parametrize("n_chunks", [1, 2, 3, 8])
def test_dealt_blocks_take_every_item_once(n_items: int, n_chunks: int) -> None:
    dealt = [kernels._dealt_blocks(c, n_chunks, n_items) for c in range(n_chunks)]
    np.testing.assert_array_equal(np.sort(np.concatenate(dealt)), np.arange(n_items))
    for items in dealt:  # whole blocks of 64 neighbouring items, each in order
        inside = items[1:] % 64 != 0
        np.testing.assert_array_equal(items[1:][inside], items[:-1][inside] + 1)
        assert len(items) == 0 or items[0] % 64 == 0


@pytest.mark.parametrize("n_chunks", [1, 2, 3, 4, 32])
def test_dealt_blocks_sample_the_whole_catalog(n_chunks: int) -> None:
    """A chunk's first tenth of blocks (at least 32) lies all over the catalog, not at its
    start: what partial_fit's decision to give up samples."""
    n_items = 200_000
    n_blocks = (n_items + 63) // 64
    for c in range(n_chunks):
        blocks = kernels._dealt_blocks(c, n_chunks, n_items)[::64] // 64
        first = blocks[: max(32, len(blocks) // 10)]
        assert 0.3 * n_blocks < first.mean() < 0.7 * n_blocks, (c, first.mean())


@pytest.mark.parametrize("with_extra", [True, False])
def test_merge_csr_sums(with_extra: bool) -> None:
    rng = np.random.default_rng(8)
    a = random_matrix(rng, 30, 20, 0.3, max_value=4)
    b = random_matrix(rng, 35, 20, 0.1, max_value=4)
    out = kernels._merge_csr(
        a.indptr, a.indices, a.data, a.data * 2, b.indptr, b.indices, b.data, b.data * 2,
        with_extra,
    )  # fmt: skip
    expected = np.zeros((35, 20))
    expected[:30] = dense(a)
    expected += dense(b)
    np.testing.assert_array_equal(dense(UserItemMatrix(out[0], out[1], out[2], 35, 20)), expected)
    if with_extra:
        np.testing.assert_array_equal(
            dense(UserItemMatrix(out[0], out[1], out[3], 35, 20)), 2 * expected
        )
    else:
        assert len(out[3]) == 0


@pytest.mark.parametrize("binary", [True, False])
def test_exact_cooccurrence_both_ways(binary: bool) -> None:
    """Few users against many (binary searches) and the bit set give the same sums."""
    rng = np.random.default_rng(9)
    x = dense(random_matrix(rng, 300, 12, 0.3, max_value=1 if binary else 3))
    x[:297, 0] = 0  # item 0: three users, looked up in the others' lists
    x[297:, 0] = 1
    rows, cols = np.nonzero(x)
    m = UserItemMatrix.from_coo(rows, cols, x[rows, cols], n_users=300, n_items=12)
    xt = m.transpose()
    users = np.zeros((300 + 63) // 64, dtype=np.uint64)
    users_of = np.full(1, -1, dtype=np.int64)
    cooc = x.T @ x
    for i in range(12):
        for j in range(12):
            got = kernels._cooc_exact(i, j, xt.indptr, xt.indices, xt.data, binary, users, users_of)
            assert got == cooc[i, j], (i, j)
        if users_of[0] == i:
            kernels._set_users(users, xt.indptr, xt.indices, i, False)
            users_of[0] = -1
    assert not users.any()


def test_select_rows_and_prune() -> None:
    rng = np.random.default_rng(10)
    m = random_matrix(rng, 30, 10, 0.3, max_value=3)
    rows = np.array([4, -1, 29, 30, 4, 0])
    picked = dense(m.select_rows(rows))
    expected = np.zeros((6, 10))
    for t, r in enumerate(rows):
        if 0 <= r < 30:
            expected[t] = dense(m)[r]
    np.testing.assert_array_equal(picked, expected)
    keep = m.data > 1
    np.testing.assert_array_equal(dense(m.prune(keep)), np.where(dense(m) > 1, dense(m), 0))
