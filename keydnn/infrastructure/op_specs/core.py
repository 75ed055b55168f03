"""Registry entries for the core ops: elementwise, reductions, layout, indexing, matmul."""

from __future__ import annotations

import numpy as np

from keydnn.domain.errors import AxisError, DTypeError, IndexingError, ShapeError
from keydnn.infrastructure.ops import elementwise as ew
from keydnn.infrastructure.ops import linalg as la
from keydnn.infrastructure.ops import reduce as rd
from keydnn.infrastructure.ops import shape as sh
from keydnn.infrastructure.registry import (
    ErrorSample,
    OpSpec,
    Sample,
    away_from_zero,
    binary_samples,
    rand,
    register,
    unary_samples,
)


def _ew_cost(s: Sample) -> tuple[float, float]:
    n = max(int(np.prod(np.broadcast_shapes(*(np.shape(a) for a in s.args)))), 1)
    return float(n), float(4 * n * (len(s.args) + 1))


def _bench_unary(dtype, rng):
    return Sample((rng.uniform(0.5, 2.0, (1024, 1024)),))


def _bench_binary(dtype, rng):
    return Sample((rng.uniform(0.5, 2.0, (1024, 1024)), rng.uniform(0.5, 2.0, (1024, 1024))))


def _binary_errors(fn_name: str):
    def gen():
        return [ErrorSample(Sample((np.ones((2, 3)), np.ones((4,)))), ShapeError, fn_name),
                ErrorSample(Sample((np.ones((2, 3)), np.ones((2, 3), np.int64))), DTypeError, fn_name)]
    return gen


def _torch(name):
    import torch
    return getattr(torch, name)


# ---- elementwise binary --------------------------------------------------------------------------------
for _name, _fn, _ref, _tname, _make_b in (
        ("add", ew.add, np.add, "add", None),
        ("sub", ew.sub, np.subtract, "sub", None),
        ("mul", ew.mul, np.multiply, "mul", None),
        ("div", ew.div, np.divide, "div", away_from_zero),
        ("maximum", ew.maximum, np.maximum, "maximum", None),
        ("minimum", ew.minimum, np.minimum, "minimum", None)):
    register(OpSpec(_name, "elementwise", _fn, _ref, binary_samples(_make_b), errors=_binary_errors(_name),
                    torch_fn=(lambda n: lambda a, b: _torch(n)(a, b))(_tname), bench=_bench_binary,
                    cost=_ew_cost))

register(OpSpec("pow", "elementwise", ew.pow, np.power,
                lambda dt, rng: [Sample((rng.uniform(0.5, 2.0, (3, 4)), rand(rng, 3, 4)), label="tensor"),
                                 Sample((rng.uniform(0.5, 2.0, (3, 4)), 3.0), label="scalar")],
                torch_fn=lambda a, b: a ** b, bench=_bench_binary, cost=_ew_cost))

register(OpSpec("rsub_scalar", "elementwise", lambda a: 1.5 - a, lambda a: 1.5 - a, unary_samples(),
                torch_fn=lambda a: 1.5 - a, bench=_bench_unary, cost=_ew_cost))
register(OpSpec("rdiv_scalar", "elementwise", lambda a: 2.0 / a, lambda a: 2.0 / a,
                lambda dt, rng: [Sample((away_from_zero(rng, 3, 4),))], torch_fn=lambda a: 2.0 / a,
                bench=_bench_unary, cost=_ew_cost))
register(OpSpec("mul_scalar", "elementwise", lambda a: a * 0.5, lambda a: a * 0.5, unary_samples(),
                torch_fn=lambda a: a * 0.5, bench=_bench_unary, cost=_ew_cost))

# ---- elementwise unary ---------------------------------------------------------------------------------
_UNARY = (("neg", ew.neg, np.negative, "neg", (-2, 2)), ("exp", ew.exp, np.exp, "exp", (-2, 2)),
          ("log", ew.log, np.log, "log", (0.2, 3)), ("sqrt", ew.sqrt, np.sqrt, "sqrt", (0.2, 3)),
          ("tanh", ew.tanh, np.tanh, "tanh", (-2, 2)),
          ("sigmoid", ew.sigmoid, lambda a: 1 / (1 + np.exp(-a)), "sigmoid", (-4, 4)),
          ("relu", ew.relu, lambda a: np.maximum(a, 0), "relu", (-2, 2)),
          ("abs", ew.abs, np.abs, "abs", (-2, 2)))
for _name, _fn, _ref, _tname, (_lo, _hi) in _UNARY:
    register(OpSpec(_name, "elementwise", _fn, _ref, unary_samples(_lo, _hi),
                    torch_fn=(lambda n: lambda a: _torch(n)(a))(_tname), bench=_bench_unary, cost=_ew_cost))

register(OpSpec("leaky_relu", "elementwise", lambda a: ew.leaky_relu(a, 0.1),
                lambda a: np.where(a > 0, a, 0.1 * a), unary_samples(),
                torch_fn=lambda a: _torch("nn").functional.leaky_relu(a, 0.1), bench=_bench_unary, cost=_ew_cost))
register(OpSpec("clip", "elementwise", lambda a: ew.clip(a, -0.5, 1.0), lambda a: np.clip(a, -0.5, 1.0),
                unary_samples(), torch_fn=lambda a: a.clamp(-0.5, 1.0), bench=_bench_unary, cost=_ew_cost))
register(OpSpec("where", "elementwise", lambda c, a, b: ew.where(c, a, b), np.where,
                lambda dt, rng: [Sample((rng.random((3, 4)) > 0.5, rand(rng, 3, 4), rand(rng, 4)))],
                torch_fn=lambda c, a, b: _torch("where")(c, a, b), cost=_ew_cost,
                bench=lambda dt, rng: Sample((rng.random((1024, 1024)) > 0.5, *_bench_binary(dt, rng).args))))
for _name, _fn, _ref in (("gt", ew.gt, np.greater), ("ge", ew.ge, np.greater_equal), ("lt", ew.lt, np.less),
                         ("le", ew.le, np.less_equal), ("eq", ew.eq, np.equal), ("ne", ew.ne, np.not_equal)):
    register(OpSpec(_name, "compare", _fn, _ref,
                    lambda dt, rng: [Sample((np.round(rand(rng, 3, 4)), np.round(rand(rng, 4))))],
                    differentiable=False, bench=_bench_binary, cost=_ew_cost))
register(OpSpec("astype_f64", "elementwise", lambda a: a.astype("float64"), lambda a: a, unary_samples(),
                dtypes=("float32",), torch_fn=lambda a: a.double(), bench=_bench_unary, cost=_ew_cost))


# ---- reductions ------------------------------------------------------------------------------------------
def _reduce_samples(dtype, rng):
    return [Sample((rand(rng, 3, 4, 5),), {"axis": ax, "keepdims": kd}, label=f"axis={ax},keepdims={kd}")
            for ax, kd in ((None, False), (1, False), ((0, 2), True), (-1, True))]


def _torch_reduce(name):
    def fn(a, axis=None, keepdims=False):
        if axis is None:
            r = getattr(a, name)()
            return r.reshape((1,) * a.ndim) if keepdims else r
        dims = axis if isinstance(axis, tuple) else (axis,)
        if name in ("sum", "mean"):
            return getattr(a, name)(dim=dims, keepdim=keepdims)
        return getattr(a, "amax" if name == "max" else "amin")(dim=dims, keepdim=keepdims)
    return fn


def _reduce_errors(name: str):
    def errors():
        out = [ErrorSample(Sample((np.ones((2, 3)),), {"axis": 2}), AxisError, "out of range"),
               ErrorSample(Sample((np.ones((2, 3)),), {"axis": (0, 0)}), AxisError, "repeated"),
               ErrorSample(Sample((np.ones((2, 3)),), {"axis": 0, "dim": 1}), AxisError, "not both")]
        if name in ("max", "min"):  # no identity: NumPy's own error used to escape
            out.append(ErrorSample(Sample((np.ones((0, 3)),)), ShapeError, "empty axis"))
        return out
    return errors


for _name, _fn, _ref in (("sum", rd.sum, np.sum), ("mean", rd.mean, np.mean), ("max", rd.max, np.max),
                         ("min", rd.min, np.min)):
    register(OpSpec(_name, "reduce", _fn, _ref, _reduce_samples, torch_fn=_torch_reduce(_name),
                    errors=_reduce_errors(_name), cost=_ew_cost,
                    bench=lambda dt, rng: Sample((rng.random((1024, 1024)),), {"axis": 1})))
register(OpSpec("argmax", "reduce", lambda a, axis=None: rd.argmax(a, axis), lambda a, axis=None: np.argmax(a, axis),
                lambda dt, rng: [Sample((rand(rng, 3, 5),), {"axis": 1}), Sample((rand(rng, 4),))],
                differentiable=False, bench=lambda dt, rng: Sample((rng.random((1024, 1024)),), {"axis": 1})))

# ---- layout ------------------------------------------------------------------------------------------------
register(OpSpec("reshape", "shape", lambda a: sh.reshape(a, (4, -1)), lambda a: a.reshape(4, -1),
                lambda dt, rng: [Sample((rand(rng, 2, 3, 4),)), Sample((rand(rng, 4, 6).T,), label="transposed")],
                torch_fn=lambda a: a.reshape(4, -1), bench=lambda dt, rng: Sample((rng.random((1024, 1024)),)),
                errors=lambda: [ErrorSample(Sample((np.ones((2, 3)),)), ShapeError, "reshape")]))
register(OpSpec("permute", "shape", lambda a: sh.permute(a, (2, 0, 1)), lambda a: a.transpose(2, 0, 1),
                lambda dt, rng: [Sample((rand(rng, 2, 3, 4),))], torch_fn=lambda a: a.permute(2, 0, 1),
                bench=lambda dt, rng: Sample((rng.random((64, 128, 128)),))))
register(OpSpec("transpose", "shape", lambda a: a.T, lambda a: a.T, lambda dt, rng: [Sample((rand(rng, 3, 4),))],
                torch_fn=lambda a: a.T, bench=lambda dt, rng: Sample((rng.random((1024, 1024)),))))
register(OpSpec("squeeze_unsqueeze", "shape", lambda a: sh.unsqueeze(sh.squeeze(a, 1), 0),
                lambda a: a.squeeze(1)[None], lambda dt, rng: [Sample((rand(rng, 3, 1, 4),))],
                torch_fn=lambda a: a.squeeze(1).unsqueeze(0),
                bench=lambda dt, rng: Sample((rng.random((1024, 1, 1024)),))))
register(OpSpec("flatten", "shape", lambda a: sh.flatten(a, 1), lambda a: a.reshape(a.shape[0], -1),
                lambda dt, rng: [Sample((rand(rng, 2, 3, 4),))], torch_fn=lambda a: a.flatten(1),
                bench=lambda dt, rng: Sample((rng.random((64, 128, 128)),))))
register(OpSpec("broadcast_to", "shape", lambda a: sh.broadcast_to(a, (2, 3, 4)),
                lambda a: np.broadcast_to(a, (2, 3, 4)), lambda dt, rng: [Sample((rand(rng, 3, 1),))],
                torch_fn=lambda a: a.expand(2, 3, 4),
                bench=lambda dt, rng: Sample((rng.random((3, 1)),)),  # the op broadcasts to a fixed (2, 3, 4)
                errors=lambda: [ErrorSample(Sample((np.ones((2, 3)),)), ShapeError, "broadcast")]))
register(OpSpec("concat", "shape", lambda a, b: sh.concat([a, b], axis=1), lambda a, b: np.concatenate([a, b], 1),
                lambda dt, rng: [Sample((rand(rng, 2, 3), rand(rng, 2, 5)))],
                torch_fn=lambda a, b: _torch("cat")([a, b], 1),
                bench=lambda dt, rng: Sample((rng.random((1024, 512)), rng.random((1024, 512)))),
                errors=lambda: [ErrorSample(Sample((np.ones((2, 3)), np.ones((3, 3)))), ShapeError, "concat")]))
register(OpSpec("stack", "shape", lambda a, b: sh.stack([a, b], axis=1), lambda a, b: np.stack([a, b], 1),
                lambda dt, rng: [Sample((rand(rng, 2, 3), rand(rng, 2, 3)))],
                torch_fn=lambda a, b: _torch("stack")([a, b], 1), bench=_bench_binary,
                errors=lambda: [ErrorSample(Sample((np.ones((2, 3)), np.ones((3, 3)))), ShapeError, "stack")]))

# ---- indexing -------------------------------------------------------------------------------------------------
_INDEXES = {"slice": (slice(1, None), slice(None, None, 2)), "int": (1,), "negative_step": (slice(None, None, -1),),
            "fancy_repeat": (np.array([0, 2, 0, 0]),), "fancy_2d": (np.array([0, 1]), np.array([3, 1])),
            "mixed": (slice(None), np.array([1, 1, 3])), "newaxis": (None, 0, Ellipsis)}


def _index_samples(dtype, rng):
    out = [Sample((rand(rng, 3, 4),), {"index": idx}, label=name) for name, idx in _INDEXES.items()]
    out.append(Sample((rand(rng, 3, 4),), {"index": (rng.random((3, 4)) > 0.4,)}, label="bool_mask"))
    return out


register(OpSpec("getitem", "index", lambda a, index: a[index], lambda a, index: a[index], _index_samples,
                torch_fn=None, bench=lambda dt, rng: Sample((rng.random((1024, 1024)),),
                                                            {"index": (slice(1, None), slice(None, None, 2))}),
                errors=lambda: [ErrorSample(Sample((np.ones((2, 3)),), {"index": (5,)}), IndexingError, "getitem"),
                                ErrorSample(Sample((np.ones((2, 3)),), {"index": (1.5,)}), IndexingError,
                                            "unsupported")]))

# ---- linear algebra ---------------------------------------------------------------------------------------------


def _matmul_samples(dtype, rng):
    return [Sample((rand(rng, 3, 4), rand(rng, 4, 5)), label="2d"),
            Sample((rand(rng, 2, 3, 4), rand(rng, 4, 5)), label="batched_broadcast"),
            Sample((rand(rng, 2, 1, 3, 4), rand(rng, 3, 4, 2)), label="batch_broadcast_both"),
            Sample((rand(rng, 4), rand(rng, 4, 5)), label="vector_matrix"),
            Sample((rand(rng, 3, 4), rand(rng, 4)), label="matrix_vector"),
            Sample((rand(rng, 4), rand(rng, 4)), label="vector_vector_dot"),
            Sample((rand(rng, 5, 4).T, rand(rng, 5, 3)), label="transposed_view")]


def _matmul_cost(s: Sample) -> tuple[float, float]:
    a, b = s.args
    m, k = a.shape[-2:] if a.ndim > 1 else (1, a.shape[0])
    n = b.shape[-1]
    batch = int(np.prod(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]))) if a.ndim > 2 or b.ndim > 2 else 1
    return 2.0 * batch * m * n * k, 4.0 * (a.size + b.size + batch * m * n)


register(OpSpec("matmul", "linalg", la.matmul, np.matmul, _matmul_samples, torch_fn=lambda a, b: a @ b,
                tol={"float32": (1e-4, 1e-5), "float64": (1e-10, 1e-12)},
                errors=lambda: [ErrorSample(Sample((np.ones((2, 3)), np.ones((4, 2)))), ShapeError, "inner"),
                                ErrorSample(Sample((np.ones(3), np.ones(4))), ShapeError, "same length"),
                                ErrorSample(Sample((np.ones((2, 3)), np.ones((3, 2), np.int64))), DTypeError,
                                            "matmul")],
                bench=lambda dt, rng: Sample((rng.random((1024, 1024)), rng.random((1024, 1024)))),
                cost=_matmul_cost))
register(OpSpec("linear", "linalg", la.linear, lambda x, w, b: x @ w.T + b,
                lambda dt, rng: [Sample((rand(rng, 5, 4), rand(rng, 3, 4), rand(rng, 3))),
                                 Sample((rand(rng, 2, 5, 4), rand(rng, 3, 4), rand(rng, 3)), label="3d_input")],
                torch_fn=lambda x, w, b: _torch("nn").functional.linear(x, w, b),
                errors=lambda: [ErrorSample(Sample((np.ones((2, 3)), np.ones((4, 2)), np.ones(4))), ShapeError,
                                            "in_features")],
                bench=lambda dt, rng: Sample((rng.random((1024, 1024)), rng.random((1024, 1024)),
                                              rng.random(1024))),
                cost=lambda s: (2.0 * s.args[0].shape[0] * s.args[1].size, 4.0 * sum(a.size for a in s.args))))
