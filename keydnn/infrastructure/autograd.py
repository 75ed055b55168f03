"""Reverse-mode autograd: Function (an op's forward and backward), Context (a graph node), backward, no_grad.

An op subclasses Function and writes ``forward(ctx, *storages, **params) -> storage`` and
``backward(ctx, grad) -> tuple`` (one gradient storage or None per positional input). ``Function.apply``
unwraps Tensors, checks that they share one device, picks the kernel table for it (``ctx.k``) and records
the node when a gradient is needed. ``backward`` walks the graph with an explicit stack, so depth is bounded
only by memory, never by Python's recursion limit.
"""

from __future__ import annotations

import functools
from operator import itemgetter as _itemgetter
from typing import Any
from weakref import ref as _weakref

import numpy as np

from keydnn.domain.errors import AutogradError, DeviceMismatchError, KeyDNNError, wrap_kernel_error
from keydnn.infrastructure.backends import kernels_for

Tensor: Any = None  # set by keydnn.infrastructure.tensor._tensor (which imports this module first)


class _GradMode:
    enabled = True


def is_grad_enabled() -> bool:
    return _GradMode.enabled


class no_grad:
    """Context manager and decorator: ops inside record no graph (as in PyTorch)."""

    _target = False

    def __enter__(self) -> None:
        self._prev = _GradMode.enabled
        _GradMode.enabled = self._target

    def __exit__(self, *exc: object) -> None:
        _GradMode.enabled = self._prev

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with type(self)():
                return fn(*args, **kwargs)
        return wrapper


class enable_grad(no_grad):
    _target = True


class Context:
    """One node of the graph: the Function, its inputs (``parents``), what forward saved, the kernel table.

    Ops may set further attributes (shapes, params) on it for their backward.
    """

    __slots__ = ("k", "fn", "parents", "saved", "versions", "needs_grad", "freed", "__dict__", "__weakref__")

    def __init__(self, k: Any) -> None:
        self.k = k
        self.saved: tuple = ()
        self.freed = False

    def save(self, *items: Any) -> None:
        self.saved = items


class Input(tuple):
    """What a graph node keeps of an input that is not a leaf requiring grad: the node that made it (None for
    a tensor without grad), a weak reference to the tensor (for the in-place version check while it lives),
    its shape, dtype and device (for Add/Sub's backward and for error messages).

    Keeping the Tensor itself would keep its storage alive until this node's backward ran, even when the
    op saved nothing of it (a ReLU's input, a max-pool's input): PyTorch's nodes keep edges, not tensors.
    Whatever a backward needs of an input's values, its forward saves (``ctx.saved``). A tuple, since
    one is made per input of every recorded op: tuple.__new__ is the cheapest object Python builds."""

    __slots__ = ()
    _node = property(_itemgetter(0))
    shape = property(_itemgetter(2))
    dtype = property(_itemgetter(3))
    device = property(_itemgetter(4))

    def version(self) -> int | None:
        """The live tensor's version, or None once it is gone (nothing can change it in place then)."""
        t = self[1]()
        return None if t is None else t._version


def graph_inputs(args: Any) -> tuple:
    """A node's ``parents``: leaves that require grad as themselves (their ``grad`` is accumulated), other
    tensors as ``Input`` (their storage is not kept), anything else (scalars, None) as given."""
    return tuple(a if not isinstance(a, Tensor) or (a._node is None and a.requires_grad) else
                 _new_tuple(Input, (a._node, _weakref(a), a._data.shape, a._data.dtype, a._device)) for a in args)


class Function:
    """Base of every op. Subclasses give ``forward`` and ``backward``; ``differentiable = False`` for masks."""

    differentiable = True

    @staticmethod
    def forward(ctx: Context, *args: Any, **params: Any) -> Any:
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, grad: Any) -> tuple:
        raise NotImplementedError

    @classmethod
    def apply(cls, *args: Any, **params: Any) -> Any:
        # The hot path of every op: kept to plain loops and attribute stores (no helper call but the table
        # lookup), since its cost is paid per op and a tiny CUDA op spends about as long here as in its launch.
        device = None
        need = False
        data = []
        for a in args:
            if isinstance(a, Tensor):
                d = a._device
                if device is None:
                    device = d
                elif d is not device:
                    raise DeviceMismatchError(cls.__name__, "operands are on different devices", *args)
                if a.requires_grad:
                    need = True
                data.append(a._data)
            else:
                data.append(a)
        ctx = _new(Context)  # Context(kernels_for(device)), without the __init__ call
        ctx.k, ctx.saved, ctx.freed = kernels_for(device), (), False
        try:
            out = cls.forward(ctx, *data, **params) if params else cls.forward(ctx, *data)
        except KeyDNNError:
            raise
        except (MemoryError, ValueError, TypeError, IndexError) as e:  # free unless raised: name the op
            raise wrap_kernel_error(cls.__name__, e, *args) from e
        t = _new(Tensor)
        t._data, t._device, t.grad, t._version = out, device, None, 0
        if need and _GradMode.enabled and cls.differentiable:
            ctx.fn = cls
            parents, needs, versions = [], [], []
            for a in args:  # graph_inputs(args), inlined with the per-input bookkeeping
                if not isinstance(a, Tensor):
                    parents.append(a)
                    needs.append(False)
                    versions.append(0)
                    continue
                rg, node = a.requires_grad, a._node
                if rg and node is None:
                    parents.append(a)
                else:
                    d = a._data
                    parents.append(_new_tuple(Input, (node, _weakref(a), d.shape, d.dtype, a._device)))
                    if not rg:  # inputs without grad still feed the backward: Tensor.to_numpy hands them
                        a._graph_ref = _weakref(ctx)  # out read-only while this node lives
                needs.append(rg)
                versions.append(a._version)
            ctx.parents, ctx.needs_grad, ctx.versions = tuple(parents), needs, versions
            t.requires_grad, t._node = True, ctx
        else:
            t.requires_grad, t._node = False, None
        return t


_new = object.__new__
_new_tuple = tuple.__new__


def _topological_order(root: Context) -> list[Context]:
    """Nodes reachable from ``root``, every node after all nodes that consume its output (iterative DFS)."""
    order: list[Context] = []
    seen: set[int] = set()
    stack: list[tuple[Context, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for p in node.parents:
            parent = getattr(p, "_node", None)
            if parent is not None and id(parent) not in seen:
                stack.append((parent, False))
    order.reverse()
    return order


# ---- post-accumulate gradient hooks (used by keydnn.distributed to reduce gradients during backward) ----
_LEAF_HOOKS: dict[int, tuple[Any, list]] = {}  # id(leaf) -> (weakref to the leaf, hooks)


class HookHandle:
    def __init__(self, key: int, fn: Any) -> None:
        self._key, self._fn = key, fn

    def remove(self) -> None:
        entry = _LEAF_HOOKS.get(self._key)
        if entry is not None and self._fn in entry[1]:
            entry[1].remove(self._fn)
            if not entry[1]:
                del _LEAF_HOOKS[self._key]


def register_post_accumulate_grad_hook(leaf: Any, fn: Any) -> HookHandle:
    """Call ``fn(leaf)`` once per backward pass, when every gradient contribution to ``leaf`` in that pass
    has been accumulated into ``leaf.grad`` (PyTorch's hook of the same name)."""
    import weakref

    if leaf._node is not None or not leaf.requires_grad:
        raise AutogradError("register_post_accumulate_grad_hook: only a leaf that requires grad has one")
    entry = _LEAF_HOOKS.get(id(leaf))
    if entry is None or entry[0]() is not leaf:
        entry = _LEAF_HOOKS[id(leaf)] = (weakref.ref(leaf), [])
    entry[1].append(fn)
    return HookHandle(id(leaf), fn)


def _hooked_leaf_uses(order: list[Context]) -> dict[int, list]:
    """For each hooked leaf in the graph: [remaining uses in this pass, the leaf]."""
    uses: dict[int, list] = {}
    for node in order:
        for p, needed in zip(node.parents, node.needs_grad):
            if needed and p._node is None and id(p) in _LEAF_HOOKS and _LEAF_HOOKS[id(p)][0]() is p:
                uses.setdefault(id(p), [0, p])[0] += 1
    return uses


def _leaf_done(uses: dict[int, list], parents: tuple, needs_grad: list) -> None:
    for p, needed in zip(parents, needs_grad):
        entry = uses.get(id(p)) if needed else None
        if entry is not None:
            entry[0] -= 1
            if entry[0] == 0 and p.grad is not None:
                for fn in list(_LEAF_HOOKS.get(id(p), (None, ()))[1]):
                    fn(p)


def _accumulate_leaf(leaf: Any, grad: Any, k: Any) -> None:
    if leaf.grad is None:  # contiguous and owned: a broadcast view would alias or be read-only
        leaf.grad = Tensor._make(k.ascontiguousarray(grad), leaf._device, False, None)
    else:  # out of place: a gradient storage may be shared with another input
        leaf.grad._data = k.add(leaf.grad._data, grad)


def backward(root: Any, grad: Any = None, retain_graph: bool = False) -> None:
    """Accumulate d(root)/d(leaf) into ``leaf.grad`` for every leaf that requires grad."""
    if not root.requires_grad:
        raise AutogradError(f"backward: tensor of shape {root.shape} does not require grad")
    k = kernels_for(root._device)
    if grad is None:
        if root.numel() != 1:
            raise AutogradError(f"backward: output of shape {root.shape} is not a scalar; pass a gradient "
                                "of the same shape (e.g. y.backward(Tensor.ones_like(y)))")
        g = k.full(root.shape, 1.0, root.dtype)
    else:
        g = grad._data if isinstance(grad, Tensor) else k.from_host(np.asarray(grad, dtype=root.dtype))
        if tuple(g.shape) != root.shape:
            raise AutogradError(f"backward: gradient shape {tuple(g.shape)} != output shape {root.shape}")
        if isinstance(grad, Tensor) and grad._device is not root._device:
            raise DeviceMismatchError("backward", "gradient is on another device", root, grad)
    if root._node is None:
        _accumulate_leaf(root, g, k)
        for fn in list(_LEAF_HOOKS.get(id(root), (None, ()))[1]):
            fn(root)
        return
    grads = {id(root._node): g}
    del g  # from here on the only reference to a node's incoming gradient is grads, until it runs
    order = _topological_order(root._node)
    uses = _hooked_leaf_uses(order) if _LEAF_HOOKS else None
    for node in order:
        if id(node) in grads:  # popped into the call: the node's incoming gradient dies inside it
            _run_node(node, grads.pop(id(node)), grads, uses, retain_graph)
        elif uses:
            _leaf_done(uses, node.parents, node.needs_grad)


def _run_node(node: Context, g: Any, grads: dict, uses: dict | None, retain_graph: bool) -> None:
    """One node's backward: its inputs' gradients into ``grads`` (or leaves' ``grad``), then, unless the
    graph is retained, its saved arrays and inputs dropped. A function of its own so that every
    temporary (the returned tuple, a summand) is released when it returns; ``g``, the gradient of the
    node's output, is released as soon as the node's backward has returned (PyTorch's order)."""
    if node.freed:
        raise AutogradError(f"backward: the graph through {node.fn.__name__} was already freed by an "
                            "earlier backward; call backward(retain_graph=True) the first time")
    for p, version in zip(node.parents, node.versions):
        current = p._version if isinstance(p, Tensor) else p.version() if isinstance(p, Input) else None
        if current is not None and current != version:
            raise AutogradError(f"backward: an input of {node.fn.__name__} (shape {p.shape}) was "
                                "modified in place after it was used; gradients would be wrong")
    try:
        in_grads = node.fn.backward(node, g)
    except KeyDNNError:
        raise
    except (MemoryError, ValueError, TypeError, IndexError) as e:
        raise wrap_kernel_error(f"{node.fn.__name__}.backward", e, *node.parents) from e
    del g
    if not isinstance(in_grads, tuple):
        in_grads = (in_grads,)
    parents, needs = node.parents, node.needs_grad
    if not retain_graph:  # drop saved arrays and inputs, so activations die with the backward pass
        node.saved = node.parents = ()
        node.freed = True
        node.__dict__.clear()
    for i, p in enumerate(parents):
        gi = in_grads[i] if i < len(in_grads) else None
        if gi is None or not needs[i]:
            continue
        if p._node is None:
            _accumulate_leaf(p, gi, kernels_for(p._device))
        else:
            key = id(p._node)
            prev = grads.get(key)
            grads[key] = gi if prev is None else p._node.k.add(prev, gi)
    in_grads = gi = prev = None  # a summand that went into an accumulated gradient dies before the hooks
    if uses:
        _leaf_done(uses, parents, needs)
