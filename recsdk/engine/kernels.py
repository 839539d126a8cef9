"""Every numba kernel of the engine, and nothing else.

One file on purpose: numba's on-disk cache (``cache=True``) is invalidated by the source
file of the cached function alone, so a kernel cached against a helper from another file
would keep running the old helper after that file changed.

The functions here are private: :mod:`recsdk.engine.matrix` and :mod:`recsdk.engine.model`
validate inputs, shape the arrays and call them. Nothing here changes numba's global
configuration.

Compiler flags live in :func:`_jit` only.

Ranking convention everywhere: a candidate ``(score, item)`` is better than another when its
score is higher, or the scores are equal and its item index is lower. Every item is computed
by one thread in a fixed order, so results do not depend on the number of threads.
"""

from __future__ import annotations

import sys
from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic


def _jit(*, parallel: bool = False, inline: bool = False) -> Any:
    """The one place where the compiler flags are set."""
    return njit(
        cache=True,
        nogil=True,
        fastmath=False,
        error_model="numpy",
        parallel=parallel,
        inline="always" if inline else "never",
    )


def _prefetch_codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
    array_type = signature.args[0]
    array = context.make_array(array_type)(context, builder, args[0])
    index = context.cast(builder, args[1], signature.args[1], types.intp)
    zero = context.get_constant(types.intp, 0)
    indices = [index] + [zero] * (array_type.ndim - 1)  # a 2-d array: the row's start
    pointer = cgutils.get_item_pointer(  # type: ignore[no-untyped-call]
        context, builder, array_type, array, indices, wraparound=False
    )
    i8_pointer = builder.bitcast(pointer, ir.IntType(8).as_pointer())
    i32 = ir.IntType(32)
    signature_ir = ir.FunctionType(ir.VoidType(), [i8_pointer.type, i32, i32, i32])
    prefetch = cgutils.get_or_insert_function(  # type: ignore[no-untyped-call]
        builder.module, signature_ir, "llvm.prefetch.p0i8"
    )
    # Arguments: read (0), keep in all cache levels (3), data cache (1).
    builder.call(prefetch, [i8_pointer, i32(0), i32(3), i32(1)])
    return context.get_dummy_value()


if numba.config.DISABLE_JIT:  # type: ignore[attr-defined]

    def _prefetch(array: Any, index: Any) -> None:
        """A hint to the CPU; nothing to do in plain Python."""

else:

    @intrinsic
    def _prefetch(typingctx: Any, array: Any, index: Any) -> Any:
        """Ask the CPU to start loading ``array[index]`` (a 2-d array: the start of row
        ``index``) into cache (no bounds check).

        The kernels walk rows of a sparse matrix in an order the hardware prefetcher cannot
        guess; asking for the rows a few steps ahead hides most of the memory latency.
        """
        return types.void(array, index), _prefetch_codegen


def _madvise_codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
    byte_pointer = ir.IntType(8).as_pointer()
    size = context.get_value_type(types.uintp)
    i32 = ir.IntType(32)
    madvise = cgutils.get_or_insert_function(  # type: ignore[no-untyped-call]
        builder.module, ir.FunctionType(i32, [byte_pointer, size, i32]), "madvise"
    )
    start = context.cast(builder, args[0], signature.args[0], types.uintp)
    length = context.cast(builder, args[1], signature.args[1], types.uintp)
    advice = context.cast(builder, args[2], signature.args[2], types.int32)
    builder.call(madvise, [builder.inttoptr(start, byte_pointer), length, advice])
    return context.get_dummy_value()


# Linux's transparent huge pages (2 MiB): madvise(MADV_HUGEPAGE) on a range asks for them.
_HUGE_PAGE = 1 << 21
_MADV_HUGEPAGE = 14

if numba.config.DISABLE_JIT or not sys.platform.startswith("linux"):  # type: ignore[attr-defined]

    @_jit(inline=True)
    def _madvise(start, length, advice):  # type: ignore[no-untyped-def]
        """Only the compiled kernels on Linux advise the kernel."""

else:

    @intrinsic
    def _madvise(typingctx: Any, start: Any, length: Any, advice: Any) -> Any:
        """libc's ``madvise`` on the address range ``[start, start + length)``.

        An external symbol, not a ctypes pointer: numba can cache the kernels that call it.
        """
        return types.void(start, length, advice), _madvise_codegen


@_jit(inline=True)
def _allocate(shape, dtype):  # type: ignore[no-untyped-def]
    """``np.empty`` for the kernels' large arrays, backed by huge pages where Linux offers
    them (numpy asks for them, numba's allocator does not): a fresh array then takes a
    page fault per 2 MiB instead of per 4 KiB, and its random writes miss the TLB less."""
    out = np.empty(shape, dtype=dtype)
    address = out.ctypes.data
    start = (address + _HUGE_PAGE - 1) // _HUGE_PAGE * _HUGE_PAGE
    end = (address + out.nbytes) // _HUGE_PAGE * _HUGE_PAGE
    if end > start:
        _madvise(start, end - start, _MADV_HUGEPAGE)
    return out


@_jit(inline=True)
def _index(value):  # type: ignore[no-untyped-def]
    """``value`` as an unsigned index: numba then skips the negative-index wraparound it
    adds to every signed look-up, about a tenth of the fit's hottest loops. Keep such
    indices out of arithmetic with signed values (numba would mix them in float64)."""
    return np.uintp(value)


# Measure codes shared with recsdk.engine.model.
_COOCCURRENCE = 0
_COSINE = 1
_JACCARD = 2
_LIFT = 3

# The fit's selection: a sample of this many candidates per kept one sets a score floor
# for lists this many times longer than the sample; a shorter list samples one in this
# many of its candidates, if that makes at least twice what is kept.
_SAMPLE_PER_KEPT = 8
_FLOOR_MIN_SAMPLES = 16
_SHORT_LIST_SHARE = 8

# The accumulation prefetches the row offsets of the user this many entries on, and the
# first entries of the row of the user this many entries on (int32: 16 to a cache line).
_PREFETCH_OFFSETS_AHEAD = 24
_PREFETCH_ROWS_AHEAD = 12
_PREFETCH_ROW_ENTRIES = 48
_ENTRIES_PER_LINE = 16
# The collection prefetches the factor and label of the candidate this many entries on.
_COLLECT_AHEAD = 16
# More candidates than this many per kept one are first narrowed to about twice as many as
# are kept, by a floor from a sample of this size (:func:`_narrow`).
_NARROW_FROM = 3
_NARROW_SAMPLE = 48
# An item whose users' rows hold more entries than this many per catalog item accumulates
# without listing what it touches, then scans the whole catalog. A scan reads and writes
# several arrays the catalog long, so it pays off only for items that touch the catalog
# many times over (medians of eight kernels on 2 threads; 1M users x 200k items: half an
# entry per item 1.51 s, 8 1.46 s, 16 1.39 s, 32 1.48 s; 50k users x 2k items: half 31 ms,
# 16 29 ms, never 34 ms).
_DENSE_WORK_PER_ITEM = 16
# The most popular items whose accumulation holds at least this many entries per catalog
# item, at most this many of them, are "heads": their lists are gathered from the other
# items' accumulations (co-occurrence is symmetric), each of which offers its head
# candidates to a small heap per head, instead of being accumulated over their many users.
# An offer costs each other item a look at every head, about what a head's accumulation
# costs per catalog item (kernels in turns, medians of ten on 2 threads, against none: at
# 1M users x 200k items a bar of 4, 2 and 1 took 0.95x, 0.93x and 0.90x, the last with the
# 256 heads of the cap; at 200k users x 50k items 2 and 1 took 0.99x and 0.97x). Every
# head also costs a fixed share (its row of the heads' block, its final selection), so a
# smaller catalog gets fewer: one per this many items (fits at 100k users x 20k items and
# 20k x 5k: 78 and 19 heads 0.96x, 0.97x the time of none, 256 heads 1.02x, 1.11x; the
# 200k x 50k kernel with 195 heads 0.93x the time with 256).
_HEAD_WORK_PER_ITEM = 1
_MOST_HEADS = 256
_ITEMS_PER_HEAD = 256


# --------------------------------------------------------------------------- sparse building


@_jit(parallel=True)
def _coo_to_csr(rows, cols, vals, n_rows):  # type: ignore[no-untyped-def]
    """CSR of a COO triplet list: columns sorted in each row, duplicates summed."""
    n = rows.shape[0]
    counts = np.zeros(n_rows + 1, dtype=np.int64)
    for e in range(n):
        counts[rows[e] + 1] += 1
    starts = np.cumsum(counts)
    fill = starts[:-1].copy()
    indices = np.empty(n, dtype=np.int32)
    data = np.empty(n, dtype=np.float32)
    for e in range(n):
        r = rows[e]
        p = fill[r]
        indices[p] = cols[e]
        data[p] = vals[e]
        fill[r] = p + 1
    unique = np.zeros(n_rows + 1, dtype=np.int64)
    for r in prange(n_rows):
        unique[r + 1] = _sort_merge_segment(indices, data, starts[r], starts[r + 1])
    indptr = np.cumsum(unique)
    out_indices = _allocate(indptr[n_rows], np.int32)
    out_data = _allocate(indptr[n_rows], np.float32)
    for r in prange(n_rows):
        src = starts[r]
        dst = indptr[r]
        for t in range(indptr[r + 1] - dst):
            out_indices[dst + t] = indices[src + t]
            out_data[dst + t] = data[src + t]
    return indptr, out_indices, out_data


@_jit()
def _sort_merge_segment(indices, data, lo, hi):  # type: ignore[no-untyped-def]
    """Sort ``indices[lo:hi]`` (with ``data``) and sum duplicates into the front; return count."""
    if hi - lo <= 1:
        return hi - lo
    order = np.argsort(indices[lo:hi], kind="mergesort")
    seg_i = indices[lo:hi][order]
    seg_d = data[lo:hi][order]
    out = 0
    indices[lo] = seg_i[0]
    data[lo] = seg_d[0]
    for t in range(1, hi - lo):
        if seg_i[t] == indices[lo + out]:
            data[lo + out] += seg_d[t]
        else:
            out += 1
            indices[lo + out] = seg_i[t]
            data[lo + out] = seg_d[t]
    return out + 1


@_jit(inline=True)
def _row_range(n_rows, chunk, n_chunks):  # type: ignore[no-untyped-def]
    """Rows ``[first, stop)`` of range ``chunk`` when ``n_rows`` rows are split into
    ``n_chunks`` ranges: the one split of the kernels that count by ranges, so that one
    kernel's counts fit another's ranges (:func:`_column_counts`, :func:`_transpose_counted`)."""
    return n_rows * chunk // n_chunks, n_rows * (chunk + 1) // n_chunks


@_jit(parallel=True)
def _transpose(indptr, indices, data, new_row, n_chunks, with_values):  # type: ignore[no-untyped-def]
    """CSR of the transpose (rows become columns, column ``j`` becomes row ``new_row[j]``),
    column indices sorted; without ``with_values`` its values are left out (empty).

    Rows are split into ``n_chunks`` ranges; each range counts its columns, so that every
    range knows where its entries go and all ranges fill the output at once, in row order.
    """
    n_rows = indptr.shape[0] - 1
    counts = np.zeros((n_chunks, new_row.shape[0]), dtype=np.int64)
    for c in prange(n_chunks):
        first, stop = _row_range(n_rows, c, n_chunks)
        for p in range(indptr[first], indptr[stop]):
            counts[c, new_row[indices[p]]] += 1
    return _transpose_counted(indptr, indices, data, new_row, counts, with_values)


@_jit(parallel=True)
def _transpose_counted(indptr, indices, data, new_row, counts, with_values):  # type: ignore[no-untyped-def]
    """:func:`_transpose` with each range's column counts at hand (``counts[c, new_row[j]]``:
    column ``j``'s values in the rows of :func:`_row_range` ``c``, as :func:`_column_counts`
    counts them); ``counts`` is used up (it becomes write cursors).
    """
    n_chunks = counts.shape[0]
    n_rows = indptr.shape[0] - 1
    nnz = indices.shape[0]
    t_indptr = _column_slots(counts)
    t_indices = _allocate(nnz, np.int32)
    t_data = _allocate(nnz if with_values else 0, np.float32)
    for c in prange(n_chunks):
        fill = counts[c]
        first, stop = _row_range(n_rows, c, n_chunks)
        for r in range(first, stop):
            for p in range(indptr[r], indptr[r + 1]):
                col = new_row[indices[p]]
                q = fill[col]
                t_indices[q] = r
                if with_values:
                    t_data[q] = data[p]
                fill[col] = q + 1
    return t_indptr, t_indices, t_data


@_jit()
def _column_slots(counts):  # type: ignore[no-untyped-def]
    """Offsets of a transpose's rows from the column counts of each range of source rows
    (``counts[c, col]``), which become in place where range ``c`` writes next in ``col``."""
    n_chunks, n_cols = counts.shape
    t_indptr = np.zeros(n_cols + 1, dtype=np.int64)
    for col in range(n_cols):
        total = t_indptr[col]
        for c in range(n_chunks):
            here = counts[c, col]
            counts[c, col] = total
            total += here
        t_indptr[col + 1] = total
    return t_indptr


@_jit(parallel=True)
def _rows_from_transpose(  # type: ignore[no-untyped-def]
    t_indptr, t_indices, t_data, indptr, n_chunks, rows_per_block, with_values
):
    """The rows (offsets ``indptr``) of the matrix whose transpose is ``t_*``, columns sorted
    (without ``with_values``: only the columns, the values empty).

    Rows are filled ``rows_per_block`` at a time, each block from every column in column
    order: the writes stay within one block's part of the output instead of scattering over
    all of it. Each chunk of blocks keeps, per column, where the next block's entries start.
    """
    n_cols = t_indptr.shape[0] - 1
    n_rows = indptr.shape[0] - 1
    indices = _allocate(t_indices.shape[0], np.int32)
    data = _allocate(t_indices.shape[0] if with_values else 0, np.float32)
    n_blocks = max(n_chunks, (n_rows + rows_per_block - 1) // rows_per_block)
    for chunk in prange(n_chunks):
        first_block = chunk * n_blocks // n_chunks
        first_row = first_block * n_rows // n_blocks
        cursor = np.empty(n_cols, dtype=np.int64)
        for c in range(n_cols):
            cursor[c] = _lower_bound(t_indices, t_indptr[c], t_indptr[c + 1], first_row)
        fill = np.empty(n_rows // n_blocks + 1, dtype=np.int64)
        for b in range(first_block, (chunk + 1) * n_blocks // n_chunks):
            lo = b * n_rows // n_blocks
            hi = (b + 1) * n_rows // n_blocks
            fill[: hi - lo] = indptr[lo:hi]
            for c in range(n_cols):
                p = cursor[c]
                end = t_indptr[c + 1]
                while p < end and t_indices[p] < hi:
                    slot = t_indices[p] - lo
                    q = fill[slot]
                    indices[q] = c
                    if with_values:
                        data[q] = t_data[p]
                    fill[slot] = q + 1
                    p += 1
                cursor[c] = p
    return indices, data


# --------------------------------------------------------------------------- ranking helpers


@_jit(inline=True)
def _better(score_a, item_a, score_b, item_b):  # type: ignore[no-untyped-def]
    """True when ``(score_a, item_a)`` ranks before ``(score_b, item_b)`` (computed without
    branches: callers may add it to a count)."""
    return (score_a > score_b) | ((score_a == score_b) & (item_a < item_b))


@_jit()
def _heap_push(heap_s, heap_i, heap_a, size, capacity, score, item, payload):  # type: ignore[no-untyped-def]
    """Offer a candidate to a bounded heap whose root is the worst kept; return the new size.

    ``heap_a`` carries a payload (the co-occurrence value) along with each entry.
    """
    if size < capacity:
        pos = size
        size += 1
        while pos > 0:
            parent = (pos - 1) // 2
            if _better(heap_s[parent], heap_i[parent], score, item):
                heap_s[pos] = heap_s[parent]
                heap_i[pos] = heap_i[parent]
                heap_a[pos] = heap_a[parent]
                pos = parent
            else:
                break
        heap_s[pos] = score
        heap_i[pos] = item
        heap_a[pos] = payload
        return size
    if not _better(score, item, heap_s[0], heap_i[0]):
        return size
    pos = 0
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        right = child + 1
        if right < size and _better(heap_s[child], heap_i[child], heap_s[right], heap_i[right]):
            child = right
        if _better(score, item, heap_s[child], heap_i[child]):
            heap_s[pos] = heap_s[child]
            heap_i[pos] = heap_i[child]
            heap_a[pos] = heap_a[child]
            pos = child
        else:
            break
    heap_s[pos] = score
    heap_i[pos] = item
    heap_a[pos] = payload
    return size


@_jit()
def _heap_sorted(heap_s, heap_i, size):  # type: ignore[no-untyped-def]
    """Positions of the heap entries, best first."""
    order = np.empty(size, dtype=np.int64)
    for t in range(size):
        order[t] = t
    # Insertion sort: heaps are small (k + 1 entries).
    for t in range(1, size):
        cur = order[t]
        pos = t
        while pos > 0 and _better(
            heap_s[cur], heap_i[cur], heap_s[order[pos - 1]], heap_i[order[pos - 1]]
        ):
            order[pos] = order[pos - 1]
            pos -= 1
        order[pos] = cur
    return order


# --------------------------------------------------------------------------- similarity


@_jit(inline=True)
def _similarity(acc, d_i, d_j, f_i, g_j, measure, shrink, min_support):  # type: ignore[no-untyped-def]
    """Similarity of items i and j from their co-occurrence ``acc``.

    ``d`` are the items' self-products (the diagonal of ``X^T X``); ``f_i`` and ``g_j`` are
    precomputed factors (:func:`_factors`), so that cosine, lift and co-occurrence are
    ``acc * f_i * g_j``. Non-decreasing in ``acc``, non-increasing in ``d_i`` and ``d_j``.
    ``-inf`` marks a pair that is not a candidate (no support). Computed in float64.
    """
    a = np.float64(acc)
    if a <= 0.0 or a < min_support:
        return -np.inf
    base = a / max(d_i + d_j - a, a) if measure == _JACCARD else a * f_i * g_j
    if shrink > 0.0:
        base *= a / (a + shrink)
    return base


@_jit()
def _factors(diag, measure, alpha):  # type: ignore[no-untyped-def]
    """Row and column factors ``(f, g)`` of a measure: ``sim = acc * f_i * g_j``."""
    n = diag.shape[0]
    f = np.ones(n, dtype=np.float64)
    g = np.ones(n, dtype=np.float64)
    for j in range(n):
        d = diag[j]
        if d <= 0.0:
            continue
        if measure == _COSINE:
            f[j] = 1.0 / np.sqrt(d)
            g[j] = f[j]
        elif measure == _LIFT:
            f[j] = 1.0 / d
            g[j] = d ** (-alpha)
    return f, g


@_jit(parallel=True)
def _topk_items(  # type: ignore[no-untyped-def]
    u_indptr,
    u_indices,
    u_data,
    i_indptr,
    i_indices,
    i_data,
    diag,
    work,
    labels,
    todo,
    slots,
    capacity,
    measure,
    alpha,
    shrink,
    min_support,
    binary,
    row_constant,
    keep_cooc,
    n_heads,
    n_chunks,
):
    """Top ``capacity`` neighbours of each item in ``todo``, plus the best one left out.

    ``u_*`` is the user x item CSR matrix (columns sorted), ``i_*`` its transpose (item x
    user, users sorted), all values positive. Items may be relabelled (popular items first
    keeps the accumulator's hot part in cache): ``labels[j]`` is the caller's index of
    internal item ``j``, ``diag``, ``work`` (:func:`_column_counts`) and ``todo`` use
    internal indices, ties and outputs use the caller's. The lists of ``todo[t]`` go to
    output row ``slots[t]``. The items are dealt to ``n_chunks`` chunks of about equal work
    (:func:`_deal_by_work`): one per thread. For item ``i`` the kernel accumulates
    ``acc[j] = sum_u x[u, i] * x[u, j]`` in a dense per-chunk buffer, scores every touched
    ``j != i``, sets aside those a sampled floor cannot rule out and selects the best
    ``capacity + 1`` of them.

    The first ``n_heads`` items (internal ``0..n_heads-1``, requiring ``todo[t] == t`` for
    them: :func:`_count_heads`) are not accumulated: every other item offers them its
    co-occurrence with each, and their co-occurrences among themselves come from one pass
    over the rows' first entries (:func:`_head_block_rows`). The float sums are the same,
    term by term in user order, so the lists are too.

    Returns ``(neighbours, scores, cooc, cut_score, cut_item)``: neighbours ``-1`` where an
    item has fewer candidates; ``cooc`` holds the kept pairs' co-occurrences, or nothing
    (no columns) unless ``keep_cooc``; ``cut_*`` is the best candidate not kept
    (``-inf``/``-1`` when there is none).
    """
    n_items = diag.shape[0]
    n_todo = todo.shape[0]
    # Every row is written whole (_write_row): first touched by the threads that fill it.
    out_idx = _allocate((n_todo, capacity), np.int32)
    out_score = _allocate((n_todo, capacity), np.float32)
    out_acc = _allocate((n_todo, capacity if keep_cooc else 0), np.float32)
    cut_score = np.empty(n_todo, dtype=np.float64)
    cut_item = np.empty(n_todo, dtype=np.int32)
    f, g = _factors(diag, measure, alpha)
    # Product measures without shrinkage or support: the score is acc * f_i * g_j, exactly
    # what _similarity computes for them.
    simple = measure != _JACCARD and shrink <= 0.0 and min_support <= 0.0
    keep = capacity + 1
    deal_indptr, dealt = _deal_by_work(work, todo[n_heads:], n_items, n_chunks)
    # Per chunk and head: a heap of the best candidates offered, and its worst entry once
    # full (before: the smallest positive double and item -1, which any candidate beats).
    heap_s = np.empty((n_chunks, n_heads, keep), dtype=np.float64)
    heap_i = np.empty((n_chunks, n_heads, keep), dtype=np.int32)
    heap_a = np.empty((n_chunks, n_heads, keep), dtype=np.float32)
    heap_n = np.zeros((n_chunks, n_heads), dtype=np.int64)
    root_s = np.full((n_chunks, n_heads), 5e-324, dtype=np.float64)
    root_i = np.full((n_chunks, n_heads), -1, dtype=np.int32)
    # The heads' co-occurrences among themselves: each chunk fills a range of rows.
    block = np.zeros((n_heads, n_heads), dtype=np.float32)
    block_rows = _head_bounds(i_indptr, n_heads, n_chunks)
    for chunk in prange(n_chunks):
        if n_heads > 0:
            _head_block_rows(
                u_indptr, u_indices, u_data, binary, row_constant, n_heads, block_rows[chunk],
                block_rows[chunk + 1], block,
            )  # fmt: skip
        acc = np.zeros(n_items, dtype=np.float32)
        touched = np.empty(n_items + 1, dtype=np.int32)  # + 1: the branch-free writes
        best_s = np.empty(n_items, dtype=np.float64)
        best_j = np.empty(n_items, dtype=np.int32)
        best_a = np.empty(n_items, dtype=np.float32)
        longest_sample = _SAMPLE_PER_KEPT * _FLOOR_MIN_SAMPLES * keep // _SHORT_LIST_SHARE
        sample = np.empty(max(longest_sample, _SAMPLE_PER_KEPT * keep), dtype=np.float64)
        for d in range(deal_indptr[chunk], deal_indptr[chunk + 1]):
            t = dealt[d] + n_heads
            i = todo[t]
            # Items touching the catalog many times over: branch-free accumulation, then a
            # scan.
            dense = work[i] > _DENSE_WORK_PER_ITEM * n_items
            n_touched = _accumulate(
                u_indptr, u_indices, u_data, i_indptr, i_indices, i_data, i, binary,
                row_constant, dense, acc, touched,
            )  # fmt: skip
            n_scan = n_items if dense else n_touched
            _offer_to_heads(
                acc, i, labels, n_heads, keep, diag, f, g, simple, measure, shrink, min_support,
                heap_s[chunk], heap_i[chunk], heap_a[chunk], heap_n[chunk], root_s[chunk],
                root_i[chunk],
            )  # fmt: skip
            floor = _sampled_floor(
                acc, touched, n_scan, dense, i, diag, f, g, simple, measure, shrink,
                min_support, keep, sample,
            )  # fmt: skip
            n_best = _collect(
                acc, touched, n_scan, dense, i, diag, f, g, simple, measure, shrink,
                min_support, floor, labels, best_s, best_j, best_a,
            )  # fmt: skip
            if n_best > _NARROW_FROM * keep:
                n_best = _narrow(best_s, best_j, best_a, n_best, keep, sample)
            if n_best > keep:
                _select_best(best_s, best_j, best_a, n_best, keep)
                n_best = keep
            _sort_best(best_s, best_j, best_a, n_best)
            _write_row(
                best_s, best_j, best_a, n_best, capacity, slots[t], out_idx, out_score, out_acc,
                cut_score, cut_item,
            )  # fmt: skip
    for p in range(n_heads):  # (a few microseconds each: in parallel, a longer compile)
        _head_list(
            p, block, heap_s, heap_i, heap_a, heap_n, labels, keep, capacity, diag, f, g,
            simple, measure, shrink, min_support, slots[p], out_idx, out_score, out_acc,
            cut_score, cut_item,
        )  # fmt: skip
    return out_idx, out_score, out_acc, cut_score, cut_item


@_jit()
def _count_heads(work, todo, n_items):  # type: ignore[no-untyped-def]
    """How many items :func:`_topk_items` may gather as heads: the leading items of a
    ``todo`` that is the whole catalog in order (the most popular first), while their work
    is at least ``_HEAD_WORK_PER_ITEM`` per catalog item; at most ``_MOST_HEADS``, and one
    per ``_ITEMS_PER_HEAD`` items of the catalog."""
    if todo.shape[0] != n_items:
        return 0
    most = min(_MOST_HEADS, n_items // _ITEMS_PER_HEAD)
    n = 0
    while n < most and todo[n] == n and work[n] >= _HEAD_WORK_PER_ITEM * n_items:
        n += 1
    return n


@_jit()
def _offer_to_heads(  # type: ignore[no-untyped-def]
    acc, j, labels, n_heads, keep, diag, f, g, simple, measure, shrink, min_support, heap_s,
    heap_i, heap_a, heap_n, root_s, root_i,
):  # fmt: skip
    """Offer item ``j``'s co-occurrence with each head (``acc[:n_heads]``) to the head's
    heap, scored as the head's own accumulation would score it."""
    label = labels[j]
    g_j = g[j]
    if simple:
        # Most items beat no head's worst kept candidate: one branch-free look at all, which
        # lets ties through (the exact test below settles them) and no zero count.
        better = 0
        for p in range(n_heads):
            better += acc[p] * f[p] * g_j >= root_s[p]
        if better == 0:
            return
    for p in range(n_heads):
        a = acc[p]
        sc = _score(a, p, j, diag[p], f[p], diag, g, simple, measure, shrink, min_support)
        if sc == -np.inf or (heap_n[p] == keep and not _better(sc, label, root_s[p], root_i[p])):
            continue
        heap_n[p] = _heap_push(heap_s[p], heap_i[p], heap_a[p], heap_n[p], keep, sc, label, a)
        if heap_n[p] == keep:
            root_s[p] = heap_s[p, 0]
            root_i[p] = heap_i[p, 0]


@_jit()
def _head_bounds(i_indptr, n_heads, n_chunks):  # type: ignore[no-untyped-def]
    """Split the heads ``0..n_heads`` into ``n_chunks`` ranges of about equal users: the
    rows of the heads' block that each chunk fills (:func:`_head_block_rows`)."""
    total = i_indptr[n_heads] - i_indptr[0]
    bounds = np.full(n_chunks + 1, n_heads, dtype=np.int64)
    bounds[0] = 0
    c = 1
    for a in range(n_heads):
        seen = i_indptr[a + 1] - i_indptr[0]
        while c < n_chunks and seen * n_chunks >= total * c:
            bounds[c] = a + 1
            c += 1
    return bounds


@_jit()
def _head_block_rows(  # type: ignore[no-untyped-def]
    u_indptr, u_indices, u_data, binary, row_constant, n_heads, first_head, end_head, block
):  # fmt: skip
    """Rows ``first_head..end_head`` of the heads' co-occurrences among themselves.

    One pass over the users' rows, whose heads come first (rows are sorted by label), adding
    a pair's terms in user order with the products of :func:`_accumulate`, as the pair's own
    accumulation would.
    """
    for u in range(u_indptr.shape[0] - 1):
        lo = u_indptr[u]
        hi = u_indptr[u + 1]
        if lo == hi or u_indices[lo] >= end_head:
            continue
        end = lo  # the row's heads: lo..end
        first = lo  # its heads from first_head on: first..
        while end < hi and u_indices[end] < n_heads:
            if u_indices[end] < first_head:
                first = end + 1
            end += 1
        for qa in range(first, end):
            a = u_indices[qa]
            if a >= end_head:
                break
            row = block[a]
            if binary or row_constant:
                w = np.float32(1.0) if binary else u_data[qa] * u_data[lo]
                for qb in range(lo, end):
                    row[u_indices[qb]] += w
            else:
                w = u_data[qa]
                for qb in range(lo, end):
                    row[u_indices[qb]] += w * u_data[qb]


@_jit()
def _head_list(  # type: ignore[no-untyped-def]
    p, block, heap_s, heap_i, heap_a, heap_n, labels, keep, capacity, diag, f, g, simple,
    measure, shrink, min_support, row, out_idx, out_score, out_acc, cut_score, cut_item,
):  # fmt: skip
    """Head ``p``'s list: the best of the other heads and of every chunk's heap."""
    n_heads = block.shape[0]
    n_chunks = heap_n.shape[0]
    size = n_heads + n_chunks * keep
    best_s = np.empty(size, dtype=np.float64)
    best_j = np.empty(size, dtype=np.int32)
    best_a = np.empty(size, dtype=np.float32)
    n = 0
    for q in range(n_heads):
        a = block[p, q]
        sc = _score(a, p, q, diag[p], f[p], diag, g, simple, measure, shrink, min_support)
        if sc != -np.inf:
            best_s[n] = sc
            best_j[n] = labels[q]
            best_a[n] = a
            n += 1
    for c in range(n_chunks):
        for e in range(heap_n[c, p]):
            best_s[n] = heap_s[c, p, e]
            best_j[n] = heap_i[c, p, e]
            best_a[n] = heap_a[c, p, e]
            n += 1
    if n > keep:
        _select_best(best_s, best_j, best_a, n, keep)
        n = keep
    _sort_best(best_s, best_j, best_a, n)
    _write_row(
        best_s, best_j, best_a, n, capacity, row, out_idx, out_score, out_acc, cut_score,
        cut_item,
    )  # fmt: skip


@_jit()
def _deal_by_work(work, todo, n_items, n_chunks):  # type: ignore[no-untyped-def]
    """The positions in ``todo`` of each of ``n_chunks`` chunks, as CSR offsets and
    positions (increasing within a chunk), with about the same work in every chunk.

    numba hands each thread a contiguous range of a ``prange``'s chunks, decided before any
    runs: chunks of unequal work leave threads idle. An item costs its accumulation
    (``work``) and a scan of at most the catalog; each item, heaviest first as ``todo``
    comes (by popularity), goes to the chunk with the least work so far.
    """
    n_todo = todo.shape[0]
    load = np.zeros(n_chunks, dtype=np.float64)
    owner = np.empty(n_todo, dtype=np.int64)
    counts = np.zeros(n_chunks + 1, dtype=np.int64)
    for t in range(n_todo):
        c = 0
        for k in range(1, n_chunks):
            if load[k] < load[c]:
                c = k
        owner[t] = c
        load[c] += work[todo[t]] + min(work[todo[t]], n_items)
        counts[c + 1] += 1
    indptr = np.cumsum(counts)
    fill = indptr[:-1].copy()
    dealt = np.empty(n_todo, dtype=np.int64)
    for t in range(n_todo):
        dealt[fill[owner[t]]] = t
        fill[owner[t]] += 1
    return indptr, dealt


@_jit(inline=True)
def _score(a, i, j, d_i, f_i, diag, g, simple, measure, shrink, min_support):  # type: ignore[no-untyped-def]
    """Item ``i``'s score for ``j`` from their co-occurrence ``a``; ``-inf``: no candidate."""
    if a == 0.0 or j == i:
        return -np.inf
    if simple:
        return a * f_i * g[j]
    return _similarity(a, d_i, diag[j], f_i, g[j], measure, shrink, min_support)


@_jit()
def _sampled_floor(  # type: ignore[no-untyped-def]
    acc, touched, n_scan, dense, i, diag, f, g, simple, measure, shrink, min_support, keep,
    sample,
):  # fmt: skip
    """A score below which none of item ``i``'s best ``keep`` candidates can be.

    The ``keep``-th best of any subset is at most the ``keep``-th best of all: the scores of
    an evenly spread sample of the touched items give a floor that sets most candidates
    aside unseen. Lists too short to sample get no floor (``-inf``).
    """
    m = _SAMPLE_PER_KEPT * keep
    if n_scan <= _FLOOR_MIN_SAMPLES * m:
        m = n_scan // _SHORT_LIST_SHARE
        if m < 2 * keep:
            return -np.inf
    d_i = diag[i]
    f_i = f[i]
    for s in range(m):
        q = (s * n_scan) // m
        j = q if dense else touched[q]
        sample[s] = _score(acc[j], i, j, d_i, f_i, diag, g, simple, measure, shrink, min_support)
    return _kth_largest(sample, m, keep)


@_jit()
def _collect(  # type: ignore[no-untyped-def]
    acc, touched, n_scan, dense, i, diag, f, g, simple, measure, shrink, min_support, floor,
    labels, best_s, best_j, best_a,
):  # fmt: skip
    """Zero ``acc`` and put item ``i``'s candidates scoring at least ``floor`` (with their
    caller's index and co-occurrence) into ``best_*``; return how many."""
    n_best = _index(0)
    d_i = diag[i]
    f_i = f[i]
    for q in range(_index(n_scan)):
        if not dense and q + _COLLECT_AHEAD < n_scan:
            # The touched items lie anywhere, and the branch below, when mispredicted,
            # throws away the look-ups the CPU had started on its own.
            ahead = touched[q + _COLLECT_AHEAD]
            _prefetch(g, ahead)
            _prefetch(labels, ahead)
        j = q if dense else _index(touched[q])
        a = acc[j]
        if a == 0.0:
            continue
        acc[j] = 0.0
        sc = _score(a, i, j, d_i, f_i, diag, g, simple, measure, shrink, min_support)
        # Branch-free: always write the slot, keep it only when it may be among the best.
        best_s[n_best] = sc
        best_j[n_best] = labels[j]
        best_a[n_best] = a
        n_best += _index((sc >= floor) & (sc != -np.inf))
    return np.intp(n_best)


@_jit()
def _kth_largest(values, n, k):  # type: ignore[no-untyped-def]
    """The ``k``-th largest of ``values[:n]`` (``k >= 1``), reordering them in place.

    A three-way partition keeps many equal values (common among 0/1 scores) linear.
    """
    lo = 0
    hi = n - 1
    while lo < hi:
        pivot = _median_of_three(values, lo, hi)
        # Invariant: values[lo:above] > pivot == values[above:p], values[below + 1 : hi + 1] < pivot
        above = lo
        p = lo
        below = hi
        while p <= below:
            value = values[p]
            if value > pivot:
                values[p], values[above] = values[above], value
                above += 1
                p += 1
            elif value < pivot:
                values[p], values[below] = values[below], value
                below -= 1
            else:
                p += 1
        if k - 1 < above:
            hi = above - 1
        elif k - 1 > below:
            lo = below + 1
        else:
            return pivot
    return values[lo]


@_jit(inline=True)
def _median_of_three(values, lo, hi):  # type: ignore[no-untyped-def]
    """Order ``values[lo]``, ``[mid]`` and ``[hi]`` so that the median is at ``hi``; return it."""
    mid = (lo + hi) // 2
    if values[mid] > values[lo]:
        values[mid], values[lo] = values[lo], values[mid]
    if values[hi] > values[lo]:
        values[hi], values[lo] = values[lo], values[hi]
    if values[mid] > values[hi]:
        values[mid], values[hi] = values[hi], values[mid]
    return values[hi]


@_jit()
def _narrow(best_s, best_j, best_a, n, k, sample):  # type: ignore[no-untyped-def]
    """Drop most of ``best_*[:n]`` that cannot be among the ``k`` best; return how many
    are left (``n > k``).

    The floor is a score that a small, evenly spaced sample puts at about twice ``k``
    candidates from the top. Guessed, not proved: the candidates above it are counted
    first, and the narrowing happens only if they are ``k`` or more (the ``k`` best are then
    among them). A quickselect over all of them moves every candidate several times; this
    reads them once to count and once to keep.
    """
    m = min(_NARROW_SAMPLE, sample.shape[0], n)
    rank = max(1, min(m, (2 * k * m + n - 1) // n))
    for s in range(m):
        sample[s] = best_s[(s * n) // m]
    floor = _kth_largest(sample, m, rank)
    above = _index(0)
    for p in range(n):
        above += _index(best_s[p] >= floor)
    if above < k:
        return n
    kept = _index(0)
    for p in range(n):
        # Branch-free, as in _collect: always write the slot, advance past a kept one.
        score = best_s[p]
        best_s[kept] = score
        best_j[kept] = best_j[p]
        best_a[kept] = best_a[p]
        kept += _index(score >= floor)
    return np.intp(kept)


@_jit()
def _select_best(best_s, best_j, best_a, n, k):  # type: ignore[no-untyped-def]
    """Reorder ``best_*[:n]`` so that the ``k`` best candidates come first, in any order."""
    lo = 0
    hi = n - 1
    while lo < hi:
        mid = (lo + hi) // 2
        # The median of three ends up at ``hi`` and is the pivot.
        if _better(best_s[mid], best_j[mid], best_s[lo], best_j[lo]):
            _swap(best_s, best_j, best_a, mid, lo)
        if _better(best_s[hi], best_j[hi], best_s[lo], best_j[lo]):
            _swap(best_s, best_j, best_a, hi, lo)
        if _better(best_s[mid], best_j[mid], best_s[hi], best_j[hi]):
            _swap(best_s, best_j, best_a, mid, hi)
        pivot_s = best_s[hi]
        pivot_j = best_j[hi]
        store = lo
        for p in range(lo, hi):
            # Branch-free (whether a candidate beats the pivot is a coin toss for the CPU's
            # predictor): always swap, advance only past a better one. The comparison uses
            # the values read before the swap: reading them back from ``store`` would chain
            # each step to the last through memory (the whole kernel measured 20% slower).
            s = best_s[p]
            j = best_j[p]
            _swap(best_s, best_j, best_a, p, store)
            store += _better(s, j, pivot_s, pivot_j)
        _swap(best_s, best_j, best_a, store, hi)
        if store == k or store == k - 1:
            return
        if store > k:
            hi = store - 1
        else:
            lo = store + 1


@_jit(inline=True)
def _swap(best_s, best_j, best_a, p, q):  # type: ignore[no-untyped-def]
    best_s[p], best_s[q] = best_s[q], best_s[p]
    best_j[p], best_j[q] = best_j[q], best_j[p]
    best_a[p], best_a[q] = best_a[q], best_a[p]


@_jit()
def _sort_best(best_s, best_j, best_a, n):  # type: ignore[no-untyped-def]
    """Sort ``best_*[:n]`` best first (insertion sort: ``n`` is about a list's length)."""
    for c in range(1, n):
        _sift_in(best_s, best_j, best_a, c, best_s[c], best_j[c], best_a[c])


@_jit(inline=True)
def _sift_in(top_s, top_i, top_a, pos, score, item, payload):  # type: ignore[no-untyped-def]
    """Place a candidate into the best-first ``top_*[:pos]``, moving worse ones one slot on
    (slot ``pos`` is free)."""
    while pos > 0 and _better(score, item, top_s[pos - 1], top_i[pos - 1]):
        top_s[pos] = top_s[pos - 1]
        top_i[pos] = top_i[pos - 1]
        top_a[pos] = top_a[pos - 1]
        pos -= 1
    top_s[pos] = score
    top_i[pos] = item
    top_a[pos] = payload


@_jit(parallel=True)
def _column_counts(indptr, indices, n_cols, n_chunks):  # type: ignore[no-untyped-def]
    """Per column of a CSR matrix: the number of stored values (float64) and the summed
    lengths of the rows that hold one (int64: the accumulations a fit of that item takes),
    counted by ``n_chunks`` ranges of rows at once; and the counts of each range
    (``[n_chunks, n_cols]``, what :func:`_transpose_counted` takes)."""
    n_rows = indptr.shape[0] - 1
    counts = np.zeros((n_chunks, n_cols), dtype=np.int64)
    lengths = np.zeros((n_chunks, n_cols), dtype=np.int64)
    for c in prange(n_chunks):
        first, stop = _row_range(n_rows, c, n_chunks)
        for r in range(first, stop):
            length = indptr[r + 1] - indptr[r]
            for p in range(indptr[r], indptr[r + 1]):
                counts[c, indices[p]] += 1
                lengths[c, indices[p]] += length
    return counts.sum(axis=0).astype(np.float64), lengths.sum(axis=0), counts


@_jit(parallel=True)
def _row_squares(indptr, data):  # type: ignore[no-untyped-def]
    """Per row, the sum of its squared values (float64, in storage order)."""
    n_rows = indptr.shape[0] - 1
    out = np.empty(n_rows, dtype=np.float64)
    for r in prange(n_rows):
        total = 0.0
        for p in range(indptr[r], indptr[r + 1]):
            value = np.float64(data[p])
            total += value * value
        out[r] = total
    return out


@_jit()
def _positive_column_sums(indices, data, n_cols):  # type: ignore[no-untyped-def]
    """Per column, the sum of the positive values (in float64, in storage order)."""
    out = np.zeros(n_cols, dtype=np.float64)
    for p in range(indices.shape[0]):
        value = data[p]
        if value > 0:
            out[indices[p]] += value
    return out


@_jit(parallel=True)
def _bm25_values(indptr, data, idf, norm, k1):  # type: ignore[no-untyped-def]
    """BM25 weights (:func:`recsdk.engine.matrix.bm25_weight`) of a CSR matrix's values, from
    each row's ``idf`` and length ``norm``; computed in float64, stored in float32."""
    out = np.empty(data.shape[0], dtype=np.float32)
    for r in prange(indptr.shape[0] - 1):
        for q in range(indptr[r], indptr[r + 1]):
            x = np.float64(data[q])
            out[q] = idf[r] * x * (k1 + 1.0) / (x + norm[r])
    return out


@_jit(parallel=True)
def _tfidf_values(indptr, data, idf):  # type: ignore[no-untyped-def]
    """TF-IDF weights (:func:`recsdk.engine.matrix.tfidf_weight`): the float32 square root
    of each value (negatives as 0) times its row's ``idf``, stored in float32."""
    out = np.empty(data.shape[0], dtype=np.float32)
    for r in prange(indptr.shape[0] - 1):
        for q in range(indptr[r], indptr[r + 1]):
            root = np.sqrt(max(data[q], np.float32(0.0)))
            out[q] = np.float64(root) * idf[r]
    return out


@_jit()
def _accumulate(  # type: ignore[no-untyped-def]
    u_indptr, u_indices, u_data, i_indptr, i_indices, i_data, i, binary, row_constant, dense,
    acc, touched,
):  # fmt: skip
    """Add item ``i``'s co-occurrences into ``acc`` (all zero on entry, values positive).

    ``binary``: every value is 1 (then ``u_data`` is not read); ``row_constant``: each user's
    row holds one value (BM25 or TF-IDF weights of 0/1 input), so that one product per user
    serves the whole row, as it would entry by entry. Unless ``dense``, list the touched
    items in ``touched`` (one slot longer than the catalog: each entry writes the next slot
    before it knows whether it keeps it); return how many.
    """
    n_touched = _index(0)
    first, last = i_indptr[i], i_indptr[i + 1]
    for p in range(first, last):
        # Two steps ahead: the offsets of a row far on, the first lines of a row nearer on.
        if p + _PREFETCH_OFFSETS_AHEAD < last:
            _prefetch(u_indptr, i_indices[p + _PREFETCH_OFFSETS_AHEAD])
        if p + _PREFETCH_ROWS_AHEAD < last:
            _prefetch_row(u_indptr, u_indices, u_data, i_indices[p + _PREFETCH_ROWS_AHEAD], binary)
        u = i_indices[p]
        lo = _index(u_indptr[u])
        hi = _index(u_indptr[u + 1])
        if binary or row_constant:
            w = np.float32(1.0)
            if not binary and hi > lo:
                w = i_data[p] * u_data[lo]
            if dense:
                for q in range(lo, hi):
                    acc[_index(u_indices[q])] += w
            else:
                for q in range(lo, hi):
                    # Branch-free: always write the slot, advance only on a first touch.
                    j = _index(u_indices[q])
                    a = acc[j]
                    touched[n_touched] = j
                    n_touched += _index(a == 0.0)
                    acc[j] = a + w
        elif dense:
            w = i_data[p]
            for q in range(lo, hi):
                acc[_index(u_indices[q])] += w * u_data[q]
        else:
            w = i_data[p]
            for q in range(lo, hi):
                j = _index(u_indices[q])
                a = acc[j]
                touched[n_touched] = j
                n_touched += _index(a == 0.0)
                acc[j] = a + w * u_data[q]
    return np.intp(n_touched)


@_jit(inline=True)
def _prefetch_row(u_indptr, u_indices, u_data, u, binary):  # type: ignore[no-untyped-def]
    """Prefetch the first cache lines of user ``u``'s row (and its first value)."""
    start = u_indptr[u]
    stop = min(u_indptr[u + 1], start + _PREFETCH_ROW_ENTRIES)
    for q in range(start, stop, _ENTRIES_PER_LINE):
        _prefetch(u_indices, q)
    if not binary:
        _prefetch(u_data, start)


@_jit(parallel=True)
def _rows_constant(indptr, data):  # type: ignore[no-untyped-def]
    """Whether each row of a CSR matrix holds a single value (:func:`_accumulate`)."""
    n_rows = indptr.shape[0] - 1
    varied = np.zeros(n_rows, dtype=np.bool_)
    for r in prange(n_rows):
        lo = indptr[r]
        for q in range(lo + 1, indptr[r + 1]):
            if data[q] != data[lo]:
                varied[r] = True
                break
    return not varied.any()


@_jit()
def _write_row(  # type: ignore[no-untyped-def]
    best_s, best_j, best_a, size, capacity, row, out_idx, out_score, out_acc, cut_score, cut_item
):  # fmt: skip
    """Write sorted candidates into ``row`` (-1 and zeros past them; co-occurrences where
    ``out_acc`` has columns); the one past ``capacity`` becomes the cut (``-inf``/-1:
    none)."""
    with_acc = out_acc.shape[1] > 0
    for c in range(capacity):
        if c < size:
            out_idx[row, c] = best_j[c]
            out_score[row, c] = best_s[c]
            if with_acc:
                out_acc[row, c] = best_a[c]
        else:
            out_idx[row, c] = -1
            out_score[row, c] = 0.0
            if with_acc:
                out_acc[row, c] = 0.0
    if size > capacity:
        cut_score[row] = best_s[capacity]
        cut_item[row] = best_j[capacity]
    else:
        cut_score[row] = -np.inf
        cut_item[row] = -1


# --------------------------------------------------------------------------- scoring


@_jit()
def _contains(sorted_items, item):  # type: ignore[no-untyped-def]
    """Binary search in a sorted array."""
    lo = 0
    hi = sorted_items.shape[0]
    while lo < hi:
        mid = (lo + hi) // 2
        v = sorted_items[mid]
        if v == item:
            return True
        if v < item:
            lo = mid + 1
        else:
            hi = mid
    return False


@_jit()
def _fill_popular(out_i, out_s, row, size, k, excluded, popular):  # type: ignore[no-untyped-def]
    """Complete row ``row`` (``size`` entries so far) with popular items, score 0."""
    for p in range(popular.shape[0]):
        if size >= k:
            break
        j = popular[p]
        if _contains(excluded, j):
            continue
        taken = False
        for c in range(size):
            if out_i[row, c] == j:
                taken = True
                break
        if not taken:
            out_i[row, size] = j
            out_s[row, size] = 0.0
            size += 1
    return size


@_jit()
def _emit_top(heap_s, heap_i, size, row, out_i, out_s):  # type: ignore[no-untyped-def]
    order = _heap_sorted(heap_s, heap_i, size)
    for c in range(size):
        out_i[row, c] = heap_i[order[c]]
        out_s[row, c] = heap_s[order[c]]


@_jit()
def _score_one(  # type: ignore[no-untyped-def]
    nbr, nbr_score, hist, hist_w, excluded, popular, prior, trending, k, fill, acc, best, leader
):
    """Top ``k`` items for one history: ``score(j) = sum_h w_h * sim(h, j)``.

    Only items with a positive score and not in ``excluded`` (sorted) are candidates. With
    a trend term (``trending``, the items with a positive ``prior``, best first, is not
    empty) scores are scaled so that the best is 1 and ``prior[j]`` is added, and trending
    items outside the neighbours compete with ``prior[j]`` alone. With ``fill`` the rest of
    the ``k`` slots take the most popular allowed items (score 0). Sums run in history
    order, as in :func:`_score_many`. History items outside the catalog count for nothing.

    ``acc`` (zeros), ``best`` (``-inf``) and ``leader`` are the caller's scratch arrays of
    one entry per item, left as they were found: a request touches only its candidates.
    An excluded item's ``best`` is ``+inf`` meanwhile, so that it never becomes one (a
    look-up, where a search of ``excluded`` per candidate took a third of the time).

    Returns ``(items, scores, sources, top)``: ``sources[c]`` is the position in ``hist``
    of the item that contributed most to ``items[c]`` (the earliest on a tie; -1 for items
    that no history item led to), ``top`` the largest eligible neighbour sum (0 if none).
    """
    width = nbr.shape[1]
    for e in range(excluded.shape[0]):
        if 0 <= excluded[e] < best.shape[0]:
            best[excluded[e]] = np.inf
    union = np.empty(hist.shape[0] * width, dtype=np.int32)
    m = 0
    for h in range(hist.shape[0]):
        item = hist[h]
        if item < 0 or item >= nbr.shape[0]:  # not in the catalog
            continue
        w = np.float64(hist_w[h])
        for c in range(width):
            j = nbr[item, c]
            if j < 0:
                break
            v = w * nbr_score[item, c]
            if best[j] == -np.inf:
                union[m] = j
                m += 1
            acc[j] += v
            if v > best[j]:
                best[j] = v
                leader[j] = h
    totals = np.empty(m, dtype=np.float64)
    top = 0.0
    for c in range(m):
        totals[c] = acc[union[c]]
        top = max(top, totals[c])
    scale = _trend_scale(top, trending)
    heap_s = np.empty(k, dtype=np.float64)
    heap_i = np.empty(k, dtype=np.int32)
    heap_a = np.empty(k, dtype=np.float32)
    size = 0
    for c in range(m):
        j = union[c]
        if totals[c] > 0.0 and k > 0:
            sc = totals[c] * scale + prior[j]
            if size < k or sc >= heap_s[0]:
                size = _heap_push(heap_s, heap_i, heap_a, size, k, sc, j, 0.0)
    offered = 0
    for p in range(trending.shape[0]):
        if offered >= k:
            break
        j = trending[p]
        if best[j] != -np.inf:  # a neighbour, or excluded
            continue
        size = _heap_push(heap_s, heap_i, heap_a, size, k, prior[j], j, 0.0)
        offered += 1
    out_i = np.full((1, k), -1, dtype=np.int32)
    out_s = np.zeros((1, k), dtype=np.float32)
    _emit_top(heap_s, heap_i, size, 0, out_i, out_s)
    if fill:
        size = _fill_popular(out_i, out_s, 0, size, k, excluded, popular)
    sources = np.full(size, -1, dtype=np.int32)
    for c in range(size):
        j = out_i[0, c]
        if -np.inf < best[j] < np.inf and acc[j] > 0.0:
            sources[c] = leader[j]
    for c in range(m):
        j = union[c]
        acc[j] = 0.0
        best[j] = -np.inf
    for e in range(excluded.shape[0]):
        if 0 <= excluded[e] < best.shape[0]:
            acc[excluded[e]] = 0.0
            best[excluded[e]] = -np.inf
    return out_i[0, :size], out_s[0, :size], sources, top


@_jit(inline=True)
def _trend_scale(best, trending):  # type: ignore[no-untyped-def]
    """The factor to apply to neighbour sums whose best eligible one is ``best``: 1, or with
    a trend term 1 / ``best``, so that the trend weighs the same against every user's best
    recommendation."""
    if trending.shape[0] == 0:
        return 1.0
    return 1.0 / best if best > 0.0 else 0.0


@_jit(parallel=True)
def _score_many(  # type: ignore[no-untyped-def]
    nbr, nbr_score, h_indptr, h_items, h_w, x_indptr, x_items, popular, prior, trending, k,
    fill, n_chunks,
):  # fmt: skip
    """:func:`_score_one` for many histories (CSR), in parallel; rows padded with -1."""
    n_items = nbr.shape[0]
    width = nbr.shape[1]
    n_rows = h_indptr.shape[0] - 1
    out_i = np.full((n_rows, k), -1, dtype=np.int32)
    out_s = np.zeros((n_rows, k), dtype=np.float32)
    for chunk in prange(n_chunks):
        acc = np.zeros(n_items, dtype=np.float64)
        mark = np.full(n_items, -1, dtype=np.int64)
        touched = np.empty(n_items, dtype=np.int32)
        totals = np.empty(n_items, dtype=np.float64)
        heap_s = np.empty(k, dtype=np.float64)
        heap_i = np.empty(k, dtype=np.int32)
        heap_a = np.empty(k, dtype=np.float32)
        for r in range(chunk, n_rows, n_chunks):
            excluded = x_items[x_indptr[r] : x_indptr[r + 1]]
            for e in range(excluded.shape[0]):  # marked as seen: never a candidate
                if excluded[e] < n_items:
                    mark[excluded[e]] = r
            n_touched = 0
            for h in range(h_indptr[r], h_indptr[r + 1]):
                item = h_items[h]
                w = np.float64(h_w[h])
                for c in range(width):
                    j = nbr[item, c]
                    if j < 0:
                        break
                    if mark[j] != r:
                        mark[j] = r
                        touched[n_touched] = j
                        n_touched += 1
                    acc[j] += w * nbr_score[item, c]
            top = 0.0
            for q in range(n_touched):
                j = touched[q]
                totals[q] = acc[j]
                acc[j] = 0.0
                top = max(top, totals[q])
            for e in range(excluded.shape[0]):
                if excluded[e] < n_items:
                    acc[excluded[e]] = 0.0
            scale = _trend_scale(top, trending)
            size = 0
            for q in range(n_touched):
                j = touched[q]
                if totals[q] > 0.0 and k > 0:
                    sc = totals[q] * scale + prior[j]
                    size = _heap_push(heap_s, heap_i, heap_a, size, k, sc, j, 0.0)
            offered = 0
            for p in range(trending.shape[0]):
                if offered >= k:
                    break
                j = trending[p]
                if mark[j] == r:  # a neighbour, or excluded
                    continue
                size = _heap_push(heap_s, heap_i, heap_a, size, k, prior[j], j, 0.0)
                offered += 1
            _emit_top(heap_s, heap_i, size, r, out_i, out_s)
            if fill:
                _fill_popular(out_i, out_s, r, size, k, excluded, popular)
    return out_i, out_s


# --------------------------------------------------------------------------- incremental update


@_jit(parallel=True)
def _merge_csr(  # type: ignore[no-untyped-def]
    a_indptr, a_indices, a_data, a_extra, b_indptr, b_indices, b_data, b_extra, with_extra
):
    """Sum of two CSR matrices with sorted rows (``b`` may have more rows).

    ``*_extra`` is a second value array summed the same way when ``with_extra`` (else the
    returned one is empty). Returns ``(indptr, indices, data, extra)`` and, for the rows
    where ``b`` has entries (in order), ``(c_indptr, c_indices, c_new, c_old)``: their
    merged entries with the sums and the values in ``a`` (0 where ``a`` had none).
    """
    n_rows = b_indptr.shape[0] - 1
    n_a = a_indptr.shape[0] - 1
    counts = np.zeros(n_rows + 1, dtype=np.int64)
    for r in prange(n_rows):
        p, p_end = (a_indptr[r], a_indptr[r + 1]) if r < n_a else (0, 0)
        q, q_end = b_indptr[r], b_indptr[r + 1]
        n = p_end - p
        while q < q_end:  # b's entries not in a's row
            p = _lower_bound(a_indices, p, p_end, b_indices[q])
            if p >= p_end or a_indices[p] != b_indices[q]:
                n += 1
            q += 1
        counts[r + 1] = n
    indptr = np.cumsum(counts)
    rank = np.full(n_rows, -1, dtype=np.int64)
    n_changed = 0
    for r in range(n_rows):
        if b_indptr[r + 1] > b_indptr[r]:
            rank[r] = n_changed
            n_changed += 1
    c_indptr = np.zeros(n_changed + 1, dtype=np.int64)
    for r in range(n_rows):
        if rank[r] >= 0:
            c_indptr[rank[r] + 1] = c_indptr[rank[r]] + indptr[r + 1] - indptr[r]
    nnz = indptr[n_rows]
    indices = _allocate(nnz, np.int32)
    data = _allocate(nnz, np.float32)
    extra = _allocate(nnz if with_extra else 0, np.float32)
    c_indices = _allocate(c_indptr[n_changed], np.int32)
    c_new = _allocate(c_indptr[n_changed], np.float32)
    c_old = _allocate(c_indptr[n_changed], np.float32)
    for r in prange(n_rows):
        p, p_end = (a_indptr[r], a_indptr[r + 1]) if r < n_a else (0, 0)
        o = indptr[r]
        if rank[r] < 0:  # a's row as it was
            indices[o : o + p_end - p] = a_indices[p:p_end]
            data[o : o + p_end - p] = a_data[p:p_end]
            if with_extra:
                extra[o : o + p_end - p] = a_extra[p:p_end]
            continue
        q, q_end = b_indptr[r], b_indptr[r + 1]
        c = c_indptr[rank[r]]
        while p < p_end or q < q_end:
            take_a = q >= q_end or (p < p_end and a_indices[p] <= b_indices[q])
            take_b = p >= p_end or (q < q_end and b_indices[q] <= a_indices[p])
            j = a_indices[p] if take_a else b_indices[q]
            old = a_data[p] if take_a else np.float32(0.0)
            value = old + (b_data[q] if take_b else np.float32(0.0))
            if with_extra:
                extra[o] = (a_extra[p] if take_a else np.float32(0.0)) + (
                    b_extra[q] if take_b else np.float32(0.0)
                )
            indices[o] = j
            data[o] = value
            c_indices[c] = j
            c_new[c] = value
            c_old[c] = old
            p += take_a
            q += take_b
            o += 1
            c += 1
    return indptr, indices, data, extra, c_indptr, c_indices, c_new, c_old


@_jit(parallel=True)
def _split_changes(indptr, indices, old, new, n_items, max_spread, n_chunks):  # type: ignore[no-untyped-def]
    """What :func:`_update_items` reads of the changed rows (``old`` and ``new`` values at
    the same positions), item by item.

    Returns whether it fits, then, in order:

    - ``(t_indptr, t_rows, t_old, t_new)``: per item, the rows where its own value changed
      (its co-occurrences with the whole new row change), with its old and new value;
    - ``(e_indptr, e_items, e_change)``: per item, what the other changed entries of the
      rows where its value ``v`` stayed do to its co-occurrences: ``v * (new - old)`` of
      each, written out so that the update reads them in order, not row by row;
    - the change of :func:`_column_counts`'s work (over positive values) per item.

    It does not fit, and every array comes back empty, when ``e_*`` would hold more than
    ``max_spread`` entries (users who both had and added many items).

    Built like :func:`_transpose`: each of ``n_chunks`` row ranges counts its columns, then
    all fill their slots at once.
    """
    n_rows = indptr.shape[0] - 1
    # Each row's changed entries and their changes (g_*): what the per-item e_* are made of.
    g_counts = np.zeros(n_rows + 1, dtype=np.int64)
    for r in prange(n_rows):
        n_moved = 0
        for q in range(indptr[r], indptr[r + 1]):
            n_moved += old[q] != new[q]
        g_counts[r + 1] = n_moved
    g_indptr = np.cumsum(g_counts)
    t_counts = np.zeros((n_chunks, n_items), dtype=np.int64)
    e_counts = np.zeros((n_chunks, n_items), dtype=np.int64)
    work = np.zeros((n_chunks, n_items), dtype=np.int64)
    for c in prange(n_chunks):
        first, stop = _row_range(n_rows, c, n_chunks)
        for r in range(first, stop):
            n_moved = g_indptr[r + 1] - g_indptr[r]
            if n_moved == 0:
                continue
            n_old = 0
            n_new = 0
            for q in range(indptr[r], indptr[r + 1]):
                j = indices[q]
                if old[q] != new[q]:
                    t_counts[c, j] += 1
                elif new[q] != 0.0:
                    e_counts[c, j] += n_moved
                n_old += old[q] > 0.0
                n_new += new[q] > 0.0
            for q in range(indptr[r], indptr[r + 1]):
                work[c, indices[q]] += (n_new if new[q] > 0.0 else 0) - (
                    n_old if old[q] > 0.0 else 0
                )
    work_change = work.sum(axis=0)
    t_indptr = _column_slots(t_counts)
    e_indptr = _column_slots(e_counts)
    if e_indptr[n_items] > max_spread:
        no_rows = np.empty(0, dtype=np.int32)
        no_values = np.empty(0, dtype=np.float32)
        no_offsets = np.empty(0, dtype=np.int64)
        return (
            False, no_offsets, no_rows, no_values, no_values, no_offsets, no_rows, no_rows,
            no_offsets,
        )  # fmt: skip
    t_rows = np.empty(t_indptr[n_items], dtype=np.int32)
    t_old = np.empty(t_indptr[n_items], dtype=np.float32)
    t_new = np.empty(t_indptr[n_items], dtype=np.float32)
    e_items = _allocate(e_indptr[n_items], np.int32)
    e_change = _allocate(e_indptr[n_items], np.int32)
    g_items = np.empty(g_indptr[n_rows], dtype=np.int32)
    g_change = np.empty(g_indptr[n_rows], dtype=np.int32)
    for c in prange(n_chunks):
        t_fill = t_counts[c]
        e_fill = e_counts[c]
        first, stop = _row_range(n_rows, c, n_chunks)
        for r in range(first, stop):
            g_first, g_last = g_indptr[r], g_indptr[r + 1]
            if g_last == g_first:
                continue
            o = g_first
            for q in range(indptr[r], indptr[r + 1]):
                if old[q] != new[q]:
                    g_items[o] = indices[q]
                    g_change[o] = np.int32(new[q]) - np.int32(old[q])
                    o += 1
            for q in range(indptr[r], indptr[r + 1]):
                j = indices[q]
                if old[q] != new[q]:
                    p = t_fill[j]
                    t_rows[p] = r
                    t_old[p] = old[q]
                    t_new[p] = new[q]
                    t_fill[j] = p + 1
                elif new[q] != 0.0:
                    value = np.int32(new[q])
                    p = e_fill[j]
                    for m in range(g_first, g_last):
                        e_items[p] = g_items[m]
                        e_change[p] = value * g_change[m]
                        p += 1
                    e_fill[j] = p
    return True, t_indptr, t_rows, t_old, t_new, e_indptr, e_items, e_change, work_change


@_jit(parallel=True)
def _kept_per_row(indptr, keep):  # type: ignore[no-untyped-def]
    """Offsets of the rows of a CSR matrix once the entries with ``keep`` false are gone."""
    n_rows = indptr.shape[0] - 1
    counts = np.zeros(n_rows + 1, dtype=np.int64)
    for r in prange(n_rows):
        n = 0
        for q in range(indptr[r], indptr[r + 1]):
            n += keep[q]
        counts[r + 1] = n
    return np.cumsum(counts)


@_jit(parallel=True)
def _row_positions(indptr, rows):  # type: ignore[no-untyped-def]
    """Offsets and entry positions of the rows ``rows`` (outside the matrix: empty)."""
    n_rows = indptr.shape[0] - 1
    n = rows.shape[0]
    out_indptr = np.zeros(n + 1, dtype=np.int64)
    for t in range(n):
        r = rows[t]
        length = indptr[r + 1] - indptr[r] if 0 <= r < n_rows else 0
        out_indptr[t + 1] = out_indptr[t] + length
    positions = np.empty(out_indptr[n], dtype=np.int64)
    for t in prange(n):
        r = rows[t]
        o = out_indptr[t]
        for k in range(out_indptr[t + 1] - o):
            positions[o + k] = indptr[r] + k
    return out_indptr, positions


@_jit(parallel=True)
def _ones(n):  # type: ignore[no-untyped-def]
    """``n`` float32 ones, first touched by every thread."""
    out = _allocate(n, np.float32)
    for k in prange(n):
        out[k] = 1.0
    return out


@_jit(parallel=True)
def _merge_item_users(  # type: ignore[no-untyped-def]
    starts, ends, indices, data, t_indptr, t_rows, t_old, t_new, row_users, with_values
):
    """The item x user matrix after some users' rows were replaced.

    Item ``i``'s users are ``indices[starts[i]:ends[i]]`` (sorted, positive values; none
    for ``i`` beyond ``starts``). ``t_*`` lists for each item the changed rows where its
    value changed (``row_users`` maps a changed row to its user, increasing) with its old
    and new value there: the user held the item iff the old value is positive, and keeps it
    iff the new one is. Returns the CSR ``(indptr, indices, data)`` in item order (without
    ``with_values``, ``data`` comes back empty).
    """
    n_items = t_indptr.shape[0] - 1
    n_old = starts.shape[0]
    counts = np.zeros(n_items + 1, dtype=np.int64)
    for i in prange(n_items):
        n = ends[i] - starts[i] if i < n_old else 0
        for q in range(t_indptr[i], t_indptr[i + 1]):
            n += int(t_new[q] > 0.0) - int(t_old[q] > 0.0)
        counts[i + 1] = n
    indptr = np.cumsum(counts)
    out_indices = _allocate(indptr[n_items], np.int32)
    out_data = _allocate(indptr[n_items] if with_values else 0, np.float32)
    for i in prange(n_items):
        p, p_end = (starts[i], ends[i]) if i < n_old else (0, 0)
        o = indptr[i]
        for q in range(t_indptr[i], t_indptr[i + 1]):
            user = row_users[t_rows[q]]
            # The users before this one, in one copy.
            stop = _lower_bound(indices, p, p_end, user)
            out_indices[o : o + stop - p] = indices[p:stop]
            if with_values:
                out_data[o : o + stop - p] = data[p:stop]
            o += stop - p
            p = stop
            if p < p_end and indices[p] == user:
                p += 1  # replaced by the new value
            if t_new[q] > 0.0:
                out_indices[o] = user
                if with_values:
                    out_data[o] = t_new[q]
                o += 1
        out_indices[o : o + p_end - p] = indices[p:p_end]
        if with_values:
            out_data[o : o + p_end - p] = data[p:p_end]
    return indptr, out_indices, out_data


@_jit(inline=True)
def _max_old_cooc(cut, d_i, d_j, f_i, g_j, measure, shrink, min_support, binary):  # type: ignore[no-untyped-def]
    """An upper bound of an integral co-occurrence whose similarity was at most ``cut``
    (``-inf``: the pair was no candidate)."""
    # A 0/1 co-occurrence counts common users; else Cauchy-Schwarz (non-negative data).
    hi = min(d_i, d_j) if binary else np.sqrt(d_i * d_j)
    if cut == -np.inf:
        top = min(max(min_support, 0.0), hi)
    elif measure != _JACCARD and shrink <= 0.0:
        # sim = acc * f_i * g_j; scaled up a hair to stay an upper bound.
        top = min(max(cut / (f_i * g_j) * (1.0 + 1e-9) + 1e-12, min_support), hi)
    else:
        top = min(_max_old_cooc_real(cut, d_i, d_j, f_i, g_j, measure, shrink, min_support), hi)
    return np.floor(top * (1.0 + 1e-9) + 1e-9)


@_jit()
def _max_old_cooc_real(cut, d_i, d_j, f_i, g_j, measure, shrink, min_support):  # type: ignore[no-untyped-def]
    """:func:`_max_old_cooc` for any measure, before rounding (a bisection with shrinkage)."""
    hi = np.sqrt(d_i * d_j)
    if cut == -np.inf:
        return min(
            max(min_support, 0.0), hi
        )  # Cauchy-Schwarz: acc <= |x_i| |x_j| for non-negative data
    if _similarity(hi, d_i, d_j, f_i, g_j, measure, shrink, min_support) <= cut:
        return hi
    if shrink <= 0.0:
        bound = cut * (d_i + d_j) / (1.0 + cut) if measure == _JACCARD else cut / (f_i * g_j)
        bound = bound * (1.0 + 1e-9) + 1e-12  # absorb rounding, stay an upper bound
        return min(max(bound, min_support), hi)
    lo = 0.0
    top = hi
    for _ in range(60):
        mid = 0.5 * (lo + top)
        if _similarity(mid, d_i, d_j, f_i, g_j, measure, shrink, min_support) <= cut:
            lo = mid
        else:
            top = mid
    return max(top, min_support)


@_jit(parallel=True)
def _update_items(  # type: ignore[no-untyped-def]
    old_neighbors, old_scores, old_cooc, old_cut_score, old_cut_item, d_old, d_new,
    t_indptr, t_rows, t_old, t_new, c_indptr, c_items, c_old, c_new, e_indptr, e_items,
    e_change, xt_indptr, xt_indices, xt_data, work, n_users,
    served, measure, alpha, shrink, min_support, binary, share, give_up, sample, n_chunks,
):  # fmt: skip
    """Neighbour lists of every item after some users' rows changed, where provable.

    Requires integral data whose co-occurrences stay below 2**24 (every sum exact in
    float32) and no decreasing ``d``. ``old_*`` are the fitted lists (read only; fewer rows
    when items were added), ``d_*`` the items' self-products before and after. The changed
    users' rows: ``c_*`` (all entries, new and old values); per item, ``t_*`` the rows where
    its own value changed (old and new value) and ``e_*`` the co-occurrence changes where it
    did not (:func:`_split_changes`). ``xt_*`` is the new item x user matrix
    (sorted user lists, ``n_users`` columns) and ``work[i]`` the accumulations a
    recomputation of item ``i`` takes.

    Stored entries keep exact co-occurrences. Any other candidate is bounded: an untouched
    one by the stored cut, a touched one by the largest old co-occurrence the cut allows
    plus the change. A bounded pair that could reach the served list is computed exactly
    from ``xt_*`` while item ``i``'s budget (``share`` times its ``work``) lasts.

    An update can cost more than a refit (a batch that reorders most lists, stored without
    a margin). Each chunk therefore weighs its first ``sample`` items (dealt in an order
    unrelated to their labels): if their look-ups and the work of the recomputations they
    need exceed ``give_up`` times their ``work``, it stops, as do the chunks that see it
    stop, and the update gives up.

    Returns ``(neighbors, scores, cooc, cut_score, cut_item, codes, gave_up)``; ``codes[i]``
    is -1 for a list that cannot have changed (copied), 0 for an exact update and otherwise
    why the item must be recomputed (1: too few known candidates, 2: the old cut-off, 3: a
    changed pair may beat the served list). Every cut is an upper bound of the candidates
    left out. After ``gave_up`` the lists are incomplete.
    """
    n_items = d_new.shape[0]
    capacity = old_neighbors.shape[1]
    neighbors = _allocate((n_items, capacity), np.int32)
    scores = _allocate((n_items, capacity), np.float32)
    cooc = _allocate((n_items, capacity), np.float32)
    cut_score = np.empty(n_items, dtype=np.float64)
    cut_item = np.empty(n_items, dtype=np.int32)
    codes = np.empty(n_items, dtype=np.int8)
    f_old, col_old = _factors(d_old, measure, alpha)
    f_new, col_new = _factors(d_new, measure, alpha)
    # What a pair needs of its other item, side by side: one cache line per look-up.
    facts = np.empty((n_items, 4), dtype=np.float64)
    for j in range(n_items):
        facts[j, 0] = d_old[j]
        facts[j, 1] = d_new[j]
        facts[j, 2] = col_old[j]
        facts[j, 3] = col_new[j]
    # Whose self-product changed: a byte an item, so the checks of unchanged lists stay in cache.
    grown = d_new[: old_neighbors.shape[0]] != d_old[: old_neighbors.shape[0]]
    stopped = np.zeros(n_chunks, dtype=np.uint8)
    for chunk in prange(n_chunks):
        # Per other item: the change of its co-occurrence (an integer: the input is), and
        # the stamp (i + 1) of the item that touched it (negated once found among the
        # item's stored entries). Eight bytes an item, half what float64 took: more of
        # it stays in the core's cache.
        pair = np.zeros((n_items, 2), dtype=np.int32)
        touched = np.empty(n_items + 1, dtype=np.int32)  # + 1: the branch-free writes
        top_s = np.empty(capacity + 1, dtype=np.float64)
        top_i = np.empty(capacity + 1, dtype=np.int32)
        top_a = np.empty(capacity + 1, dtype=np.float32)
        contender_j = np.empty(n_items, dtype=np.int32)
        contender_top = np.empty(n_items, dtype=np.float64)
        users = np.zeros((n_users + 63) // 64, dtype=np.uint64)
        users_of = np.full(1, -1, dtype=np.int64)
        # Blocks of neighbouring items (their rows and outputs stay with one thread), dealt
        # out in turn: few chunks (each zeroes its scratch arrays) that still share the
        # work evenly.
        mine = _dealt_blocks(chunk, n_chunks, n_items)
        seen_work = 0.0
        lost_work = 0.0
        for n_seen in range(mine.shape[0]):
            if n_seen == sample and lost_work > give_up * seen_work:
                stopped[chunk] = 1
                break
            if n_seen % 64 == 0 and _any_stopped(stopped):
                break
            i = mine[n_seen]
            seen_work += work[i]
            changed = t_indptr[i + 1] > t_indptr[i] or e_indptr[i + 1] > e_indptr[i]
            if not changed and not _neighbor_grew(i, old_neighbors, grown):
                _copy_row(
                    i, old_neighbors, old_scores, old_cooc, old_cut_score, old_cut_item,
                    neighbors, scores, cooc, cut_score, cut_item,
                )  # fmt: skip
                codes[i] = -1
                continue
            stamp = np.int32(i + 1)
            n_touched = 0
            if changed:
                n_touched = _delta_cooc(
                    i, stamp, t_indptr, t_rows, t_old, t_new, c_indptr, c_items, c_old, c_new,
                    e_indptr, e_items, e_change, pair, touched,
                )  # fmt: skip
            size = _rescore_stored(
                i, stamp, old_neighbors, old_cooc, facts, f_new[i], measure, shrink,
                min_support, pair, top_s, top_i, top_a,
            )  # fmt: skip
            cut_s, cut_i = _untouched_bound(i, old_cut_score, old_cut_item, f_old, f_new, measure)
            size, cut_s, cut_i, n_contenders = _screen_touched(
                i, stamp, served, size, cut_s, cut_i, old_cut_score, old_cut_item, facts,
                f_old[i], f_new[i], measure, shrink, min_support, binary, pair, touched,
                n_touched, top_s, top_i, top_a, contender_j, contender_top,
            )  # fmt: skip
            budget = share * work[i]
            size, cut_s, cut_i, left = _settle_contenders(
                i, served, size, cut_s, cut_i, n_contenders, contender_j, contender_top, facts,
                f_new[i], measure, shrink, min_support, binary, pair, top_s, top_i, top_a,
                xt_indptr, xt_indices, xt_data, budget, users, users_of,
            )  # fmt: skip
            codes[i] = _finish_row(
                i, served, size, cut_s, cut_i, old_cut_item, top_s, top_i, top_a, neighbors,
                scores, cooc, cut_score, cut_item,
            )  # fmt: skip
            lost_work += budget - left + (work[i] if codes[i] > 0 else 0.0)
            for q in range(n_touched):
                pair[touched[q], 0] = 0
            if users_of[0] == i:
                _set_users(users, xt_indptr, xt_indices, i, False)
                users_of[0] = -1
    return neighbors, scores, cooc, cut_score, cut_item, codes, _any_stopped(stopped)


@_jit(inline=True)
def _any_stopped(stopped):  # type: ignore[no-untyped-def]
    """Whether a chunk of :func:`_update_items` gave up."""
    return stopped.max() > 0


@_jit()
def _dealt_blocks(chunk, n_chunks, n_items):  # type: ignore[no-untyped-def]
    """The items of chunk ``chunk``: blocks of 64 neighbouring items, every ``n_chunks``-th
    one in an order scattered by a hash of the block, so that a chunk's first blocks sample
    the whole catalog, whatever its labels follow."""
    n_blocks = (n_items + 63) // 64
    order = np.argsort(_mix32(np.arange(n_blocks, dtype=np.int64)), kind="mergesort")
    n_mine = (n_blocks - chunk + n_chunks - 1) // n_chunks if chunk < n_blocks else 0
    out = np.empty(n_mine * 64, dtype=np.int64)
    n = 0
    for k in range(chunk, n_blocks, n_chunks):
        b = order[k]
        for i in range(b * 64, min(n_items, b * 64 + 64)):
            out[n] = i
            n += 1
    return out[:n]


@_jit()
def _mix32(x):  # type: ignore[no-untyped-def]
    """A 32-bit integer hash of each of ``x`` (non-negative, below 2**32)."""
    mask = 0xFFFFFFFF
    x = (x ^ (x >> 16)) * 0x45D9F3B & mask
    x = (x ^ (x >> 16)) * 0x45D9F3B & mask
    return x ^ (x >> 16)


@_jit()
def _neighbor_grew(i, old_neighbors, grown):  # type: ignore[no-untyped-def]
    """Whether a stored neighbour of ``i`` has a new self-product (``grown``)."""
    if i >= old_neighbors.shape[0]:
        return False
    for c in range(old_neighbors.shape[1]):
        j = old_neighbors[i, c]
        if j < 0:
            break
        if grown[j]:
            return True
    return False


@_jit()
def _copy_row(  # type: ignore[no-untyped-def]
    i, old_neighbors, old_scores, old_cooc, old_cut_score, old_cut_item, neighbors, scores,
    cooc, cut_score, cut_item,
):  # fmt: skip
    """Item ``i``'s unchanged list (an item beyond the old lists has none)."""
    if i >= old_neighbors.shape[0]:
        neighbors[i, :] = -1
        scores[i, :] = 0.0
        cooc[i, :] = 0.0
        cut_score[i] = -np.inf
        cut_item[i] = -1
        return
    neighbors[i, :] = old_neighbors[i, :]
    scores[i, :] = old_scores[i, :]
    cooc[i, :] = old_cooc[i, :]
    cut_score[i] = old_cut_score[i]
    cut_item[i] = old_cut_item[i]


@_jit()
def _delta_cooc(  # type: ignore[no-untyped-def]
    i, stamp, t_indptr, t_rows, t_old, t_new, c_indptr, c_items, c_old, c_new, e_indptr,
    e_items, e_change, pair, touched,
):  # fmt: skip
    """``pair[j, 0]`` = change of item ``i``'s co-occurrence with ``j``; return #touched."""
    n_touched = _index(0)
    last = t_indptr[i + 1]
    for p in range(t_indptr[i], last):
        if p + 4 < last:  # the rows come in no order the hardware can guess
            _prefetch(c_items, c_indptr[t_rows[p + 4]])
        r = t_rows[p]
        o_i = np.int32(t_old[p])
        n_i = np.int32(t_new[p])
        for q in range(_index(c_indptr[r]), _index(c_indptr[r + 1])):
            j = _index(c_items[q])
            touched[n_touched] = j  # kept only on a first touch: no branch to miss
            n_touched += _index(pair[j, 1] != stamp)
            pair[j, 1] = stamp
            pair[j, 0] += n_i * np.int32(c_new[q]) - o_i * np.int32(c_old[q])
    for p in range(_index(e_indptr[i]), _index(e_indptr[i + 1])):
        j = _index(e_items[p])
        touched[n_touched] = j
        n_touched += _index(pair[j, 1] != stamp)
        pair[j, 1] = stamp
        pair[j, 0] += e_change[p]
    return np.intp(n_touched)


@_jit()
def _rescore_stored(  # type: ignore[no-untyped-def]
    i, stamp, old_neighbors, old_cooc, facts, f_i, measure, shrink, min_support, pair, top_s,
    top_i, top_a,
):  # fmt: skip
    """Item ``i``'s stored candidates with their new co-occurrences, sorted into ``top_*``
    (best first); the touched ones are marked as stored in ``pair``. Return how many are
    still candidates."""
    if i >= old_neighbors.shape[0]:
        return 0
    d_i = facts[i, 1]
    size = 0
    # Score first, sort after: the look-ups of one entry do not wait for the previous
    # entry's insertion.
    width = old_neighbors.shape[1]
    for c in range(width):
        j = old_neighbors[i, c]
        if j < 0:
            break
        if c + 8 < width and old_neighbors[i, c + 8] >= 0:
            _prefetch(facts, old_neighbors[i, c + 8])
            _prefetch(pair, old_neighbors[i, c + 8])
        a32 = np.float32(old_cooc[i, c] + pair[j, 0])  # 0 for an untouched pair
        if pair[j, 1] == stamp:
            pair[j, 1] = -stamp
        s = _similarity(a32, d_i, facts[j, 1], f_i, facts[j, 3], measure, shrink, min_support)
        if s != -np.inf:
            top_s[size] = s
            top_i[size] = j
            top_a[size] = a32
            size += 1
    _sort_best(top_s, top_i, top_a, size)
    return size


@_jit()
def _untouched_bound(i, old_cut_score, old_cut_item, f_old, f_new, measure):  # type: ignore[no-untyped-def]
    """A bound ``(score, item)`` of the candidates of ``i`` whose co-occurrence did not
    change and that were not stored (``-inf``/-1: there are none)."""
    if i >= old_cut_item.shape[0] or old_cut_item[i] < 0:
        return -np.inf, -1
    cut_s = old_cut_score[i]
    if measure != _JACCARD and f_old[i] > 0.0:
        # Such a pair keeps its co-occurrence and d_j only grew: its score shrank at least
        # by the factor of item i (scaled up a hair to stay an upper bound).
        cut_s = cut_s * (f_new[i] / f_old[i]) * (1.0 + 1e-9)
    return cut_s, old_cut_item[i]


@_jit(inline=True)
def _old_cut(i, old_cut_score, old_cut_item, d_old_i, min_support):  # type: ignore[no-untyped-def]
    """Item ``i``'s old cut score, or ``nan`` when a pair it did not store had no
    co-occurrence (-inf: nothing was cut off but ``min_support`` hid some)."""
    if i >= old_cut_item.shape[0] or d_old_i <= 0.0:
        return np.nan
    if old_cut_item[i] >= 0:
        return old_cut_score[i]
    return -np.inf if min_support > 0.0 else np.nan


@_jit()
def _screen_touched(  # type: ignore[no-untyped-def]
    i, stamp, served, size, cut_s, cut_i, old_cut_score, old_cut_item, facts, f_old_i, f_i,
    measure, shrink, min_support, binary, pair, touched, n_touched, top_s, top_i, top_a,
    contender_j, contender_top,
):  # fmt: skip
    """Place the touched pairs that were not stored: into ``top_*`` when their old
    co-occurrence was 0 (known exactly), into the cut when their bound cannot reach the
    served list, else into ``contender_*`` (with the bound of the old co-occurrence).

    Return ``(size, cut_s, cut_i, n_contenders)``.
    """
    limit = top_s.shape[0]
    d_old_i = facts[i, 0]
    d_i = facts[i, 1]
    old_cut = _old_cut(i, old_cut_score, old_cut_item, d_old_i, min_support)
    n_contenders = 0
    for q in range(n_touched):
        if q + 8 < n_touched:  # as in _collect: the branches below lose the CPU's own look-ups
            _prefetch(facts, touched[q + 8])
            _prefetch(pair, touched[q + 8])
        j = touched[q]
        if j == i or pair[j, 1] != stamp:
            continue
        d_old_j = facts[j, 0]
        top = 0.0
        if not np.isnan(old_cut) and d_old_j > 0.0:
            top = _max_old_cooc(
                old_cut, d_old_i, d_old_j, f_old_i, facts[j, 2], measure, shrink, min_support,
                binary,
            )  # fmt: skip
        if top <= 0.0:
            a32 = np.float32(pair[j, 0])
            s = _similarity(a32, d_i, facts[j, 1], f_i, facts[j, 3], measure, shrink, min_support)
            size = _insert_sorted(top_s, top_i, top_a, size, limit, s, j, a32)
            continue
        bound = _similarity(
            top + pair[j, 0], d_i, facts[j, 1], f_i, facts[j, 3], measure, shrink, min_support
        )
        if bound == -np.inf:
            continue
        if _may_serve(bound, j, size, served, top_s, top_i):
            contender_j[n_contenders] = j
            contender_top[n_contenders] = top
            n_contenders += 1
        else:
            cut_s, cut_i = _best(cut_s, cut_i, bound, j)
    return size, cut_s, cut_i, n_contenders


@_jit()
def _settle_contenders(  # type: ignore[no-untyped-def]
    i, served, size, cut_s, cut_i, n_contenders, contender_j, contender_top, facts, f_i,
    measure, shrink, min_support, binary, pair, top_s, top_i, top_a, xt_indptr, xt_indices,
    xt_data, budget, users, users_of,
):  # fmt: skip
    """Place the pairs that may reach the served list: exactly, from the users, while
    ``budget`` look-ups last, else into the cut. Return ``(size, cut_s, cut_i, budget)``
    with the budget left."""
    limit = top_s.shape[0]
    d_i = facts[i, 1]
    for b in range(n_contenders):
        # The user lists of the next pairs lie anywhere: start loading them now.
        if b + 4 < n_contenders:
            _prefetch(xt_indptr, contender_j[b + 4])
        if b + 2 < n_contenders:
            start = xt_indptr[contender_j[b + 2]]
            _prefetch(xt_indices, start)
            _prefetch(xt_indices, start + 16)
            _prefetch(xt_indices, start + 32)
        j = contender_j[b]
        d_j = facts[j, 1]
        g_j = facts[j, 3]
        a = contender_top[b] + pair[j, 0]
        bound = _similarity(a, d_i, d_j, f_i, g_j, measure, shrink, min_support)
        if not _may_serve(bound, j, size, served, top_s, top_i):  # the list rose since
            cut_s, cut_i = _best(cut_s, cut_i, bound, j)
            continue
        cost = _cooc_cost(i, j, xt_indptr)
        if cost <= budget:
            budget -= cost
            a32 = _cooc_exact(i, j, xt_indptr, xt_indices, xt_data, binary, users, users_of)
            s = _similarity(a32, d_i, d_j, f_i, g_j, measure, shrink, min_support)
            size = _insert_sorted(top_s, top_i, top_a, size, limit, s, j, a32)
        else:
            cut_s, cut_i = _best(cut_s, cut_i, bound, j)
    return size, cut_s, cut_i, budget


@_jit(inline=True)
def _may_serve(bound, j, size, served, top_s, top_i):  # type: ignore[no-untyped-def]
    """Whether a candidate bounded by ``(bound, j)`` could enter the served list."""
    return size < served or _better(bound, j, top_s[served - 1], top_i[served - 1])


@_jit(inline=True)
def _best(score_a, item_a, score_b, item_b):  # type: ignore[no-untyped-def]
    """The better of two ``(score, item)`` candidates (item -1: none)."""
    if item_a < 0 or (item_b >= 0 and _better(score_b, item_b, score_a, item_a)):
        return score_b, item_b
    return score_a, item_a


@_jit(inline=True)
def _search_steps(n):  # type: ignore[no-untyped-def]
    """Steps of a binary search among ``n`` values."""
    steps = 1
    while n > 1:
        n >>= 1
        steps += 1
    return steps


# A binary-search step costs about this many bit-set tests (it misses the cache more).
_SEARCH_COST = 4


@_jit()
def _cooc_cost(i, j, xt_indptr):  # type: ignore[no-untyped-def]
    """Look-ups :func:`_cooc_exact` makes for the pair ``(i, j)``."""
    n_i = xt_indptr[i + 1] - xt_indptr[i]
    n_j = xt_indptr[j + 1] - xt_indptr[j]
    return np.float64(min(n_j, _SEARCH_COST * n_i * _search_steps(n_j)))


@_jit()
def _cooc_exact(i, j, xt_indptr, xt_indices, xt_data, binary, users, users_of):  # type: ignore[no-untyped-def]
    """``sum_u x[u, i] * x[u, j]`` from the sorted user lists (integral, so exact).

    Few users of ``i`` against many of ``j``: each of ``i``'s looked up in ``j``'s list.
    Otherwise each user of ``j`` is tested in the bit set ``users`` of ``i``'s users,
    filled on first use (``users_of[0] = i``; the caller clears it).
    """
    lo_i, end_i = xt_indptr[i], xt_indptr[i + 1]
    lo_j, end_j = xt_indptr[j], xt_indptr[j + 1]
    total = 0.0
    if _SEARCH_COST * (end_i - lo_i) * _search_steps(end_j - lo_j) < end_j - lo_j:
        for p in range(lo_i, end_i):
            u = xt_indices[p]
            lo_j = _lower_bound(xt_indices, lo_j, end_j, u)
            if lo_j < end_j and xt_indices[lo_j] == u:
                total += np.float64(xt_data[p]) * xt_data[lo_j]
                lo_j += 1
        return np.float32(total)
    if users_of[0] != i:
        _set_users(users, xt_indptr, xt_indices, i, True)
        users_of[0] = i
    for p in range(lo_j, end_j):
        u = xt_indices[p]
        hit = (users[u >> 6] >> np.uint64(u & 63)) & np.uint64(1)
        if binary:
            total += hit  # no branch: hits are rare and unpredictable
        elif hit:
            lo_i = _lower_bound(xt_indices, lo_i, end_i, u)  # users of j come sorted
            total += np.float64(xt_data[lo_i]) * xt_data[p]
    return np.float32(total)


@_jit(inline=True)
def _lower_bound(values, lo, hi, value):  # type: ignore[no-untyped-def]
    """First position in the sorted ``values[lo:hi]`` not below ``value``."""
    while lo < hi:
        mid = (lo + hi) // 2
        if values[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    return lo


@_jit()
def _set_users(users, xt_indptr, xt_indices, i, on):  # type: ignore[no-untyped-def]
    """Set (or clear) the bits of item ``i``'s users."""
    for p in range(xt_indptr[i], xt_indptr[i + 1]):
        u = xt_indices[p]
        bit = np.uint64(1) << np.uint64(u & 63)
        if on:
            users[u >> 6] |= bit
        else:
            users[u >> 6] &= ~bit


@_jit()
def _finish_row(  # type: ignore[no-untyped-def]
    i, served, size, cut_s, cut_i, old_cut_item, top_s, top_i, top_a, neighbors, scores,
    cooc, cut_score, cut_item,
):  # fmt: skip
    """Write item ``i``'s list when its served part is provably exact; return the code of
    :func:`_update_items`."""
    capacity = neighbors.shape[1]
    if cut_i >= 0:
        if size < served:
            return 1
        if not _better(top_s[served - 1], top_i[served - 1], cut_s, cut_i):
            old = old_cut_item[i] if i < old_cut_item.shape[0] else -1
            return 2 if cut_i == old else 3
    for c in range(capacity):
        if c < size:
            neighbors[i, c] = top_i[c]
            scores[i, c] = top_s[c]
            cooc[i, c] = top_a[c]
        else:
            neighbors[i, c] = -1
            scores[i, c] = 0.0
            cooc[i, c] = 0.0
    if size > capacity:
        cut_s, cut_i = _best(cut_s, cut_i, top_s[capacity], top_i[capacity])
    cut_score[i] = cut_s if cut_i >= 0 else -np.inf
    cut_item[i] = cut_i
    return 0


@_jit()
def _insert_sorted(top_s, top_i, top_a, size, limit, score, item, payload):  # type: ignore[no-untyped-def]
    """Insert a candidate into a best-first array of at most ``limit``; return the size.

    ``-inf`` scores (no support) are not candidates.
    """
    if score == -np.inf:
        return size
    if size == limit:
        if not _better(score, item, top_s[size - 1], top_i[size - 1]):
            return size
        size -= 1
    _sift_in(top_s, top_i, top_a, size, score, item, payload)
    return size + 1
