"""NumPy reference kernels for the core contract: creation, elementwise, reductions, layout, indexing, matmul."""

from __future__ import annotations

from typing import Any

import numpy as np

ndarray = np.ndarray


def _arr(r: Any) -> np.ndarray:
    # NumPy returns scalars for 0-d results; storage is always an ndarray so in-place ops work on it.
    return r if type(r) is ndarray else np.asarray(r)


def _binary(ufunc: np.ufunc):
    def kernel(a: Any, b: Any, out: np.ndarray | None = None) -> np.ndarray:
        return _arr(ufunc(a, b, out=out))
    kernel.__name__ = ufunc.__name__
    return kernel


def _unary(ufunc: Any):
    def kernel(a: np.ndarray) -> np.ndarray:
        return _arr(ufunc(a))
    kernel.__name__ = getattr(ufunc, "__name__", "unary")
    return kernel


# creation and transfer
def empty(shape: tuple, dtype: Any) -> np.ndarray:
    return np.empty(shape, dtype)


def zeros(shape: tuple, dtype: Any) -> np.ndarray:
    return np.zeros(shape, dtype)


def full(shape: tuple, value: Any, dtype: Any) -> np.ndarray:
    return np.full(shape, value, dtype)


def arange(start: float, stop: float, step: float, dtype: Any) -> np.ndarray:
    return np.arange(start, stop, step, dtype=dtype)


def uniform(shape: tuple, low: float, high: float, dtype: Any, seed: int) -> np.ndarray:
    # drawn in the target dtype and scaled in place: peak memory is the array itself, not a float64 copy
    out = np.random.default_rng(seed).random(shape, dtype=dtype)
    if (low, high) != (0.0, 1.0):
        out *= high - low
        out += low
    return out


def normal(shape: tuple, mean: float, std: float, dtype: Any, seed: int) -> np.ndarray:
    out = np.random.default_rng(seed).standard_normal(shape, dtype=dtype)
    if (mean, std) != (0.0, 1.0):
        out *= std
        out += mean
    return out


def dropout_mask(shape: tuple, p: float, dtype: Any, seed: int) -> np.ndarray:
    keep = np.random.default_rng(seed).random(shape, dtype=np.float32) >= p
    return keep.astype(dtype) * np.asarray(1.0 / (1.0 - p), dtype)


def from_host(a: np.ndarray) -> np.ndarray:
    return np.array(a, copy=True, order="C")


def to_host(a: np.ndarray) -> np.ndarray:
    return a


# elementwise
add = _binary(np.add)
subtract = _binary(np.subtract)
multiply = _binary(np.multiply)
divide = _binary(np.true_divide)
power = _binary(np.power)
maximum = _binary(np.maximum)
minimum = _binary(np.minimum)
equal = _binary(np.equal)
not_equal = _binary(np.not_equal)
less = _binary(np.less)
less_equal = _binary(np.less_equal)
greater = _binary(np.greater)
greater_equal = _binary(np.greater_equal)
negative = _unary(np.negative)
exp = _unary(np.exp)
log = _unary(np.log)
sqrt = _unary(np.sqrt)
tanh = _unary(np.tanh)
abs = _unary(np.abs)  # noqa: A001 - the contract's name
sign = _unary(np.sign)


def sigmoid(a: np.ndarray) -> np.ndarray:
    # exp of a non-positive argument only, so large |a| neither overflows nor loses precision:
    # e = exp(-|a|), r = 1 / (1 + e) = sigmoid(|a|), e r = sigmoid(-|a|); the sign picks one without np.where
    # (which took 4 ms of a 1M-element call's 10 here: a random mask defeats its branch prediction).
    e, r = np.empty_like(a), np.empty_like(a)  # arrays even for 0-d input (ufuncs return scalars there)
    np.abs(a, out=e)
    np.negative(e, out=e)
    np.exp(e, out=e)
    np.add(e, 1.0, out=r)
    np.reciprocal(r, out=r)
    np.multiply(e, r, out=e)
    np.subtract(r, e, out=r)  # sigmoid(|a|) - sigmoid(-|a|), added back where a >= 0
    np.multiply(r, a >= 0, out=r)
    return _arr(np.add(e, r, out=e))


def relu(a: np.ndarray) -> np.ndarray:
    return _arr(np.maximum(a, 0, dtype=a.dtype))


def relu_backward(g: np.ndarray, y: np.ndarray) -> np.ndarray:
    return _arr(np.multiply(g, y > 0, dtype=g.dtype))


def clip(a: np.ndarray, lo: Any, hi: Any) -> np.ndarray:
    return _arr(np.clip(a, lo, hi))


def where(cond: np.ndarray, a: Any, b: Any) -> np.ndarray:
    return _arr(np.where(cond, a, b))


def astype(a: np.ndarray, dtype: Any) -> np.ndarray:
    return _arr(a.astype(dtype))


def copyto(dst: np.ndarray, src: Any) -> None:
    np.copyto(dst, src, casting="unsafe")


# reductions
def sum(a: np.ndarray, axis: Any = None, keepdims: bool = False) -> np.ndarray:  # noqa: A001
    return _arr(np.sum(a, axis=axis, keepdims=keepdims))


def max(a: np.ndarray, axis: Any = None, keepdims: bool = False) -> np.ndarray:  # noqa: A001
    return _arr(np.max(a, axis=axis, keepdims=keepdims))


def min(a: np.ndarray, axis: Any = None, keepdims: bool = False) -> np.ndarray:  # noqa: A001
    return _arr(np.min(a, axis=axis, keepdims=keepdims))


def argmax(a: np.ndarray, axis: Any = None, keepdims: bool = False) -> np.ndarray:
    return _arr(np.argmax(a, axis=axis, keepdims=keepdims).astype(np.int64, copy=False))


# layout
def reshape(a: np.ndarray, shape: tuple) -> np.ndarray:
    return a.reshape(shape)


def transpose(a: np.ndarray, axes: tuple) -> np.ndarray:
    return a.transpose(axes)


def broadcast_to(a: np.ndarray, shape: tuple) -> np.ndarray:
    return np.broadcast_to(a, shape)


def ascontiguousarray(a: np.ndarray) -> np.ndarray:
    # np.ascontiguousarray turns 0-d into 1-d; broadcast views are read-only, so they are copied too.
    return a if a.flags.c_contiguous and a.flags.writeable else np.array(a, order="C")


def concatenate(arrays: list, axis: int) -> np.ndarray:
    return np.concatenate(arrays, axis=axis)


def stack(arrays: list, axis: int) -> np.ndarray:
    return np.stack(arrays, axis=axis)


# indexing
def getitem(a: np.ndarray, index: tuple) -> np.ndarray:
    return _arr(a[index])


def setitem(a: np.ndarray, index: tuple, values: Any) -> None:
    a[index] = values


def index_add(shape: tuple, dtype: Any, index: tuple, values: np.ndarray) -> np.ndarray:
    out = np.zeros(shape, dtype)
    if _is_basic(index):  # a view: plain addition is exact and far faster than np.add.at
        out[index] += values
    else:
        np.add.at(out, index, values)
    return out


def _is_basic(index: tuple) -> bool:
    return all(i is None or i is Ellipsis or isinstance(i, (int, slice, np.integer)) for i in index)


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _arr(np.matmul(a, b))
