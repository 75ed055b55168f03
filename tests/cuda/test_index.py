"""CUDA getitem/setitem/index_add against NumPy: basic indices as views, advanced indices (int arrays, lists,
bool masks, device index arrays) with NumPy's placement rules, repeated indices accumulating."""

from __future__ import annotations

import numpy as np
import pytest

from keydnn.domain.errors import IndexingError
from tests.cuda.cuda_helpers import assert_close

pytestmark = pytest.mark.cuda

BASIC = [
    (0,),
    (-1,),
    (slice(1, 3),),
    (slice(None, None, -1),),
    (Ellipsis, 2),
    (None, slice(None), 1),
    (slice(None, None, 2), None, slice(4, 0, -2)),
    (1, 2, 3),
    (Ellipsis,),
    (slice(5, 1),),
]
ADVANCED = [
    (np.array([0, 2, 2, -1]),),
    ([1, 0],),
    (slice(None), np.array([[0, 1], [4, 4]])),
    (np.array([0, 1]), slice(None), np.array([2, 3])),  # separated advanced indices: dims go first
    (slice(None), np.array([1, 2]), np.array([0, 3])),  # adjacent: stay in place
    (1, slice(None), np.array([0, 0, 2])),  # an int counts as advanced
    (slice(None), 0, np.array([1, 2])),
    (None, np.array([2, 0]), slice(1, None, 2)),
    (Ellipsis, np.array([3, 0])),
    (np.array([True, False, True]),),
    (slice(None), np.array([True, False, True, True, False])),
    (np.arange(15).reshape(3, 5) % 3 == 0,),
    (np.array([], dtype=np.int64),),
]


def _array(rng, dtype=np.float32):
    if np.dtype(dtype) == np.bool_:
        return rng.random((3, 5, 4)) > 0.5
    return (rng.standard_normal((3, 5, 4)) * 10).astype(dtype)


@pytest.mark.parametrize("index", BASIC, ids=str)
def test_basic_getitem_is_a_view(kt, rng, index):
    a = _array(rng)
    da = kt.from_host(a)
    v = kt.getitem(da, index)
    assert v.buffer is da.buffer
    assert_close(kt.to_host(v), a[index])


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.bool_])
@pytest.mark.parametrize("index", ADVANCED, ids=str)
def test_advanced_getitem(kt, rng, index, dtype):
    a = _array(rng, dtype)
    assert_close(kt.to_host(kt.getitem(kt.from_host(a), index)), a[index])


def test_getitem_on_views_and_device_indices(kt, rng):
    a = _array(rng, np.float64)
    view = kt.transpose(kt.getitem(kt.from_host(a), (slice(None, None, -1),)), (2, 1, 0))  # (4, 5, 3)
    ref = a[::-1].transpose(2, 1, 0)
    idx = np.array([3, 0, 3])
    assert_close(kt.to_host(kt.getitem(view, (kt.from_host(idx), slice(None), 1))), ref[idx, :, 1])
    mask = ref[:, :, 0] > 0
    assert_close(kt.to_host(kt.getitem(view, (kt.from_host(mask),))), ref[mask])


def test_embedding_lookup(kt, rng):
    weight = rng.standard_normal((1000, 64)).astype(np.float32)
    ids = rng.integers(0, 1000, (8, 16))
    assert_close(kt.to_host(kt.getitem(kt.from_host(weight), (kt.from_host(ids),))), weight[ids])


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.bool_])
@pytest.mark.parametrize("width", [1, 3, 8, 64, 1000])
def test_whole_row_gather_and_scatter(kt, rng, dtype, width):
    """x[idx] and its index_add/setitem backward on rows that are contiguous on both sides (the fast row
    kernels): widths that fill 16-byte vectors and widths that do not, row starts that are aligned and (a
    view one element in) ones that are not, repeated indices."""
    base = (rng.standard_normal((41, width)) * 10).astype(dtype)
    idx = rng.integers(0, 40, 300)
    idx[:20] = 7  # repeats
    for a, dev in ((base, kt.from_host(base)), (base[1:], kt.getitem(kt.from_host(base), (slice(1, None),)))):
        got = kt.to_host(kt.getitem(dev, (kt.from_host(idx),)))
        np.testing.assert_array_equal(got, a[idx])
    if dtype == np.bool_:
        return
    values = (rng.standard_normal((300, width)) * 10).astype(dtype)
    ref = np.zeros((40, width), dtype)
    np.add.at(ref, idx, values)
    got = kt.to_host(kt.index_add((40, width), dtype, (kt.from_host(idx),), kt.from_host(values)))
    assert_close(got, ref, rtol=1e-5, atol=1e-6 * float(np.abs(ref).max()))  # atomics sum in any order
    unique = rng.permutation(40)[:25]
    target = kt.zeros((40, width), dtype)
    kt.setitem(target, (kt.from_host(unique),), kt.from_host(values[:25]))
    expect = np.zeros((40, width), dtype)
    expect[unique] = values[:25]
    np.testing.assert_array_equal(kt.to_host(target), expect)


@pytest.mark.parametrize("index", BASIC[:-1] + ADVANCED[:-1], ids=str)
def test_setitem(kt, rng, index):
    a = _array(rng, np.float64)
    target = a[index]
    values = rng.standard_normal(target.shape[-1:] if target.ndim else ())
    da = kt.from_host(a)
    kt.setitem(da, index, kt.from_host(values))
    ref = a.copy()
    ref[index] = values
    assert_close(kt.to_host(da), ref)
    kt.setitem(da, index, 2.5)
    ref[index] = 2.5
    assert_close(kt.to_host(da), ref)


def test_setitem_casts_and_host_values(kt, rng):
    a = np.zeros((4, 3), np.float32)
    da = kt.from_host(a)
    kt.setitem(da, (np.array([0, 2]),), np.array([[1, 2, 3]]))
    kt.setitem(da, (slice(None), 1), kt.from_host(np.arange(4)))
    a[[0, 2]] = [[1, 2, 3]]
    a[:, 1] = np.arange(4)
    assert_close(kt.to_host(da), a)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize(
    "index",
    [
        (np.array([0, 2, 0, 0, 1]),),
        (slice(None), np.array([3, 3, 1])),
        (np.array([1, 1]), np.array([4, 4])),
        (slice(1, 3),),
        (0, slice(None, None, 2)),
        (np.arange(15).reshape(3, 5) % 2 == 0,),
    ],
    ids=str,
)
def test_index_add_accumulates(kt, rng, index, dtype):
    shape = (3, 5, 4)
    target_shape = np.zeros(shape)[index].shape
    values = (rng.standard_normal(target_shape) * 10).astype(dtype)
    got = kt.to_host(kt.index_add(shape, dtype, index, kt.from_host(values)))
    ref = np.zeros(shape, dtype)
    np.add.at(ref, index, values)
    assert_close(got, ref, rtol=1e-5)


def test_index_errors(kt):
    a = kt.zeros((3, 4), np.float32)
    with pytest.raises(IndexingError):
        kt.getitem(a, (5,))
    with pytest.raises(IndexingError):
        kt.getitem(a, (np.array([0, 7]),))
    with pytest.raises(IndexingError):
        kt.getitem(a, (0, 1, 2))
    with pytest.raises(IndexingError):
        kt.getitem(a, (np.array([True, False]),))
    with pytest.raises(IndexingError):
        kt.getitem(a, (1.5,))
    with pytest.raises(IndexingError):
        kt.getitem(a, (np.array([0.5]),))


DEVICE_AXIS = [
    (np.array([0, 2, 2, -1]),),
    (slice(None), np.array([[0, 4], [4, -5]])),
    (Ellipsis, np.array([3, 0, 3])),
    (slice(None), np.array([1]), Ellipsis),
    (np.array([], dtype=np.int64),),
]


def _no_host_traffic(monkeypatch):
    """Fail on any device-to-host copy or host-to-device copy of index data (either would synchronise)."""
    from keydnn.infrastructure.backends.cuda import index

    def refuse(*args, **kwargs):
        raise AssertionError("the indexing op copied index data between host and device")
    monkeypatch.setattr(index, "to_host", refuse)
    monkeypatch.setattr(index, "from_host_on", refuse)


@pytest.mark.parametrize("index", DEVICE_AXIS, ids=str)
@pytest.mark.parametrize("idx_dtype", [np.int64])  # device arrays hold int64 indices (int32 is host-only)
def test_a_device_index_on_one_axis_stays_on_the_device(kt, rng, monkeypatch, index, idx_dtype):
    a = _array(rng, np.float32)
    dev = tuple(kt.from_host(i.astype(idx_dtype)) if isinstance(i, np.ndarray) else i for i in index)
    da = kt.from_host(a)
    values = rng.standard_normal(a[index].shape).astype(np.float32)
    dv = kt.from_host(values)
    _no_host_traffic(monkeypatch)
    got = kt.getitem(da, dev)
    added = kt.index_add(a.shape, np.float32, dev, dv)
    target = kt.astype(da, np.float32)
    kt.setitem(target, dev, 0.5)
    monkeypatch.undo()
    assert_close(kt.to_host(got), a[index])
    ref = np.zeros_like(a)
    np.add.at(ref, index, values)
    assert_close(kt.to_host(added), ref, rtol=1e-5)
    ref = a.copy()
    ref[index] = 0.5
    assert_close(kt.to_host(target), ref)


def test_a_device_index_on_a_strided_view(kt, rng, monkeypatch):
    a = _array(rng, np.float64)
    view = kt.transpose(kt.getitem(kt.from_host(a), (slice(None, None, -1),)), (2, 1, 0))  # (4, 5, 3)
    ref = a[::-1].transpose(2, 1, 0)
    idx = kt.from_host(np.array([2, 0, 2, 1]))
    _no_host_traffic(monkeypatch)
    got = kt.getitem(view, (slice(None), idx))
    monkeypatch.undo()
    assert_close(kt.to_host(got), ref[:, [2, 0, 2, 1]])


def test_an_out_of_range_device_index_raises_at_the_next_synchronisation(kt):
    from keydnn.infrastructure.backends import cuda

    a = kt.from_host(np.arange(12.0).reshape(3, 4))
    out = kt.getitem(a, (slice(None), kt.from_host(np.array([1, 9]))))  # queued, no sync
    with pytest.raises(IndexingError, match=r"index 9 .*axis 1 with size 4"):
        kt.to_host(out)
    with pytest.raises(IndexingError, match="index -4"):
        kt.index_add((3,), np.float64, (kt.from_host(np.array([-4])),), kt.from_host(np.ones(1)))
        cuda.synchronize(0)
    assert kt.to_host(kt.getitem(a, (kt.from_host(np.array([-1])),))).tolist() == [[8.0, 9.0, 10.0, 11.0]]
