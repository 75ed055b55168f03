"""Elementwise ops: arithmetic with broadcasting, unary math, comparisons (masks), where, clip, casts."""

from __future__ import annotations

from typing import Any

from keydnn.infrastructure.autograd import Function
from keydnn.infrastructure.ops._util import binary_operands, require_float, shape_of, unbroadcast
from keydnn.infrastructure.tensor._tensor import Tensor, as_dtype


# Add and Sub save nothing: their backward only needs the operands' shapes, which the recorded node's
# parents (the input tensors or scalars) give.
class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        return ctx.k.add(a, b)

    @staticmethod
    def backward(ctx, g):
        sa, sb = (shape_of(p) for p in ctx.parents)
        n = ctx.needs_grad
        return (unbroadcast(ctx.k, g, sa) if n[0] else None, unbroadcast(ctx.k, g, sb) if n[1] else None)


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        return ctx.k.subtract(a, b)

    @staticmethod
    def backward(ctx, g):
        sa, sb = (shape_of(p) for p in ctx.parents)
        n = ctx.needs_grad
        return (unbroadcast(ctx.k, g, sa) if n[0] else None,
                unbroadcast(ctx.k, ctx.k.negative(g), sb) if n[1] else None)


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.saved = (a, b)
        return ctx.k.multiply(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        k, n = ctx.k, ctx.needs_grad
        return (unbroadcast(k, k.multiply(g, b), shape_of(a)) if n[0] else None,
                unbroadcast(k, k.multiply(g, a), shape_of(b)) if n[1] else None)


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.saved = (a, b)
        return ctx.k.divide(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        k, n = ctx.k, ctx.needs_grad
        ga = unbroadcast(k, k.divide(g, b), shape_of(a)) if n[0] else None
        gb = None
        if n[1]:  # d(a/b)/db = -a / b^2
            gb = unbroadcast(k, k.negative(k.divide(k.multiply(g, a), k.multiply(b, b))), shape_of(b))
        return ga, gb


class Pow(Function):
    @staticmethod
    def forward(ctx, a, b):
        y = ctx.k.power(a, b)
        ctx.saved = (a, b, y)
        return y

    @staticmethod
    def backward(ctx, g):
        a, b, y = ctx.saved
        k, n = ctx.k, ctx.needs_grad
        ga = gb = None
        if n[0]:  # b * a^(b-1)
            ga = unbroadcast(k, k.multiply(g, k.multiply(b, k.power(a, k.subtract(b, 1)))), shape_of(a))
        if n[1]:  # a^b * log(a)
            gb = unbroadcast(k, k.multiply(g, k.multiply(y, k.log(a))), shape_of(b))
        return ga, gb


class _Select(Function):
    """maximum/minimum: the gradient goes to the chosen operand (to ``a`` on ties)."""

    kernel = "maximum"
    chooses_a = "greater_equal"

    @classmethod
    def forward(cls, ctx, a, b):
        ctx.saved = (a, b)
        return getattr(ctx.k, cls.kernel)(a, b)

    @classmethod
    def backward(cls, ctx, g):
        a, b = ctx.saved
        k, n = ctx.k, ctx.needs_grad
        mask = getattr(k, cls.chooses_a)(a, b)
        return (unbroadcast(k, k.where(mask, g, 0), shape_of(a)) if n[0] else None,
                unbroadcast(k, k.where(mask, 0, g), shape_of(b)) if n[1] else None)


class Maximum(_Select):
    kernel, chooses_a = "maximum", "greater_equal"


class Minimum(_Select):
    kernel, chooses_a = "minimum", "less_equal"


class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return ctx.k.negative(a)

    @staticmethod
    def backward(ctx, g):
        return (ctx.k.negative(g),)


class _UnaryFromOutput(Function):
    """Unary ops whose derivative is cheapest from the output y: exp, tanh, sigmoid, sqrt, relu."""

    kernel = ""

    @classmethod
    def forward(cls, ctx, a):
        y = getattr(ctx.k, cls.kernel)(a)
        ctx.saved = (y,)
        return y


class Exp(_UnaryFromOutput):
    kernel = "exp"

    @staticmethod
    def backward(ctx, g):
        return (ctx.k.multiply(g, ctx.saved[0]),)


class Tanh(_UnaryFromOutput):
    kernel = "tanh"

    @staticmethod
    def backward(ctx, g):
        k, y = ctx.k, ctx.saved[0]
        return (k.multiply(g, k.subtract(1, k.multiply(y, y))),)


class Sigmoid(_UnaryFromOutput):
    kernel = "sigmoid"

    @staticmethod
    def backward(ctx, g):
        k, y = ctx.k, ctx.saved[0]
        return (k.multiply(g, k.multiply(y, k.subtract(1, y))),)


class Sqrt(_UnaryFromOutput):
    kernel = "sqrt"

    @staticmethod
    def backward(ctx, g):
        k, y = ctx.k, ctx.saved[0]
        return (k.divide(g, k.multiply(y, 2)),)


class ReLU(_UnaryFromOutput):
    kernel = "relu"

    @staticmethod
    def backward(ctx, g):
        return (ctx.k.relu_backward(g, ctx.saved[0]),)


class Log(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.saved = (a,)
        return ctx.k.log(a)

    @staticmethod
    def backward(ctx, g):
        return (ctx.k.divide(g, ctx.saved[0]),)


class Abs(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.saved = (a,)
        return ctx.k.abs(a)

    @staticmethod
    def backward(ctx, g):
        return (ctx.k.multiply(g, ctx.k.sign(ctx.saved[0])),)


class LeakyReLU(Function):
    @staticmethod
    def forward(ctx, a, *, alpha):
        k = ctx.k
        mask = k.greater(a, 0)
        ctx.saved = (mask, alpha)
        return k.where(mask, a, k.multiply(a, alpha))

    @staticmethod
    def backward(ctx, g):
        mask, alpha = ctx.saved
        return (ctx.k.where(mask, g, ctx.k.multiply(g, alpha)),)


class Clip(Function):
    @staticmethod
    def forward(ctx, a, *, lo, hi):
        k = ctx.k
        ctx.saved = (a, lo, hi)
        return k.clip(a, lo, hi)

    @staticmethod
    def backward(ctx, g):
        a, lo, hi = ctx.saved
        k = ctx.k
        if lo is not None:
            g = k.where(k.greater_equal(a, lo), g, 0)
        if hi is not None:
            g = k.where(k.less_equal(a, hi), g, 0)
        return (g,)


class Where(Function):
    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.saved = (cond, shape_of(a), shape_of(b))
        return ctx.k.where(cond, a, b)

    @staticmethod
    def backward(ctx, g):
        cond, sa, sb = ctx.saved
        k, n = ctx.k, ctx.needs_grad
        return (None, unbroadcast(k, k.where(cond, g, 0), sa) if n[1] else None,
                unbroadcast(k, k.where(cond, 0, g), sb) if n[2] else None)


class Cast(Function):
    @staticmethod
    def forward(ctx, a, *, dtype):
        ctx.saved = (a.dtype,)
        return ctx.k.astype(a, dtype)

    @staticmethod
    def backward(ctx, g):
        return (ctx.k.astype(g, ctx.saved[0]),)


class _Compare(Function):
    differentiable = False
    kernel = ""

    @classmethod
    def forward(cls, ctx, a, b):
        return getattr(ctx.k, cls.kernel)(a, b)


def _compare(name: str) -> type:
    return type(name.title().replace("_", ""), (_Compare,), {"kernel": name})


Equal, NotEqual, Less, LessEqual, Greater, GreaterEqual = (
    _compare(n) for n in ("equal", "not_equal", "less", "less_equal", "greater", "greater_equal"))


# ---- functional API on Tensors -----------------------------------------------------------------------
def _binary(fn: type, name: str):
    def op(a: Any, b: Any) -> Tensor:
        # Two tensors of one dtype and shape need no checks here (the common case, so it skips the call).
        if not (type(a) is Tensor and type(b) is Tensor and a._data.dtype == b._data.dtype
                and a._data.shape == b._data.shape):
            a, b = binary_operands(a, b, name)
        return fn.apply(a, b)
    op.__name__ = name
    return op


add = _binary(Add, "add")
sub = _binary(Sub, "sub")
mul = _binary(Mul, "mul")
div = _binary(Div, "div")
pow = _binary(Pow, "pow")  # noqa: A001
maximum = _binary(Maximum, "maximum")
minimum = _binary(Minimum, "minimum")
eq = _binary(Equal, "eq")
ne = _binary(NotEqual, "ne")
lt = _binary(Less, "lt")
le = _binary(LessEqual, "le")
gt = _binary(Greater, "gt")
ge = _binary(GreaterEqual, "ge")


def _unary(fn: type, name: str):
    def op(a: Tensor) -> Tensor:
        require_float(name, a)
        return fn.apply(a)
    op.__name__ = name
    return op


exp = _unary(Exp, "exp")
log = _unary(Log, "log")
sqrt = _unary(Sqrt, "sqrt")
tanh = _unary(Tanh, "tanh")
sigmoid = _unary(Sigmoid, "sigmoid")
relu = _unary(ReLU, "relu")


def neg(a: Tensor) -> Tensor:
    return Neg.apply(a)


def abs(a: Tensor) -> Tensor:  # noqa: A001
    return Abs.apply(a)


def leaky_relu(a: Tensor, alpha: float = 0.01) -> Tensor:
    require_float("leaky_relu", a)
    return LeakyReLU.apply(a, alpha=float(alpha))


def clip(a: Tensor, lo: float | None = None, hi: float | None = None) -> Tensor:
    return Clip.apply(a, lo=lo, hi=hi)


def where(cond: Tensor, a: Any, b: Any) -> Tensor:
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        a, b = binary_operands(a, b, "where")
    if cond.dtype.kind != "b":
        cond = cond.astype(bool)
    return Where.apply(cond, a, b)


def astype(a: Tensor, dtype: Any) -> Tensor:
    dt = as_dtype(dtype, "astype")
    if dt == a.dtype:
        return a
    if dt.kind != "f" or a.dtype.kind != "f":
        with_grad = Cast.apply(a.detach(), dtype=dt)
        return with_grad
    return Cast.apply(a, dtype=dt)
