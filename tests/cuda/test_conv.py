"""cuDNN conv2d kernels: forward, input and weight gradients against a float64 im2col reference and torch."""

from __future__ import annotations

import os

import numpy as np
import pytest

from keydnn.domain.errors import DTypeError, ShapeError
from keydnn.infrastructure.backends.cuda import _cudart, _cudnn, conv, storage

REQUIRE = os.environ.get("KEYDNN_REQUIRE_CUDA") == "1"
pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not _cudart.is_available() and not REQUIRE,
                                 reason=f"CUDA unavailable: {_cudart.unavailable_reason()}")]
TOL = {np.float32: 3e-5, np.float64: 1e-12}  # float32 leaves room for Winograd and FFT algorithms

# (N, C, H, W, K, kh, kw, stride, padding, dilation, groups)
CASES = [
    (1, 1, 5, 5, 1, 3, 3, (1, 1), (0, 0), (1, 1), 1),
    (2, 3, 7, 6, 4, 3, 3, (1, 1), (1, 1), (1, 1), 1),
    (2, 4, 9, 8, 6, 3, 2, (2, 1), (1, 0), (1, 1), 2),
    (3, 6, 11, 10, 6, 3, 3, (2, 2), (2, 1), (2, 1), 3),
    (2, 4, 8, 8, 4, 3, 3, (1, 1), (1, 1), (1, 1), 4),   # depthwise
    (1, 8, 5, 7, 16, 1, 1, (1, 1), (0, 0), (1, 1), 1),   # pointwise
    (2, 3, 13, 9, 5, 5, 3, (3, 2), (2, 1), (1, 2), 1),   # odd sizes, strides that do not divide
    (1, 2, 4, 4, 3, 4, 4, (1, 1), (0, 0), (1, 1), 1),    # kernel as large as the input
]
IDS = ["x".join(map(str, c[:4])) + f"-k{c[5]}{c[6]}-s{c[7][0]}{c[7][1]}-g{c[10]}" for c in CASES]


def to_device(a: np.ndarray) -> storage.CudaArray:
    a = np.ascontiguousarray(a)
    out = storage.empty(a.shape, a.dtype, 0)
    _cudart.memcpy(out.ptr, a.ctypes.data, a.nbytes, _cudart.MEMCPY_H2D)
    return out


def to_host(x: storage.CudaArray) -> np.ndarray:
    out = np.empty(x.shape, x.dtype)
    _cudart.memcpy(out.ctypes.data, x.ptr, x.nbytes, _cudart.MEMCPY_D2H)
    return out


def rel_err(got: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(got.astype(np.float64) - ref) / max(np.linalg.norm(ref), 1e-300))


def _windows(x_shape, w_shape, stride, padding, dilation):
    """Slices of the padded input that kernel tap (i, j) meets, and the output size."""
    (_, _, h, w), (_, _, kh, kw) = x_shape, w_shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    oh, ow = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    taps = {(i, j): (slice(i * dh, i * dh + sh * (oh - 1) + 1, sh),
                     slice(j * dw, j * dw + sw * (ow - 1) + 1, sw))
            for i in range(kh) for j in range(kw)}
    return taps, oh, ow


def ref_forward(x, w, b, stride, padding, dilation, groups):
    """float64 im2col + einsum over groups."""
    x, w = x.astype(np.float64), w.astype(np.float64)
    (n, c, _, _), (k, cg, kh, kw) = x.shape, w.shape
    taps, oh, ow = _windows(x.shape, w.shape, stride, padding, dilation)
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    cols = np.empty((n, c, kh, kw, oh, ow))
    for (i, j), (si, sj) in taps.items():
        cols[:, :, i, j] = xp[:, :, si, sj]
    cols = cols.reshape(n, groups, cg, kh, kw, oh, ow)
    y = np.einsum("ngcijhw,gkcij->ngkhw", cols, w.reshape(groups, k // groups, cg, kh, kw))
    y = y.reshape(n, k, oh, ow)
    return y if b is None else y + b.astype(np.float64).reshape(1, k, 1, 1)


def ref_backward(gy, x, w, stride, padding, dilation, groups):
    """(gx, gw) in float64: the adjoints of ref_forward's gather and contraction."""
    gy, x, w = gy.astype(np.float64), x.astype(np.float64), w.astype(np.float64)
    (n, c, h, wd), (k, cg, kh, kw) = x.shape, w.shape
    taps, oh, ow = _windows(x.shape, w.shape, stride, padding, dilation)
    (ph, pw) = padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    gyg = gy.reshape(n, groups, k // groups, oh, ow)
    wg = w.reshape(groups, k // groups, cg, kh, kw)
    gcols = np.einsum("ngkhw,gkcij->ngcijhw", gyg, wg).reshape(n, c, kh, kw, oh, ow)
    gxp = np.zeros_like(xp)
    gw = np.zeros((groups, k // groups, cg, kh, kw))
    for (i, j), (si, sj) in taps.items():
        gxp[:, :, si, sj] += gcols[:, :, i, j]
        patch = xp[:, :, si, sj].reshape(n, groups, cg, oh, ow)
        gw[:, :, :, i, j] = np.einsum("ngkhw,ngchw->gkc", gyg, patch)
    return gxp[:, :, ph:ph + h, pw:pw + wd], gw.reshape(w.shape)


def make(case, dtype, rng):
    n, c, h, w, k, kh, kw, stride, padding, dilation, groups = case
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((k, c // groups, kh, kw)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype)
    return x, wt, b, (stride, padding, dilation, groups)


@pytest.fixture(params=["graph", "legacy", "auto"])
def api(request, monkeypatch):
    """Run a test through cuDNN's graph API, its legacy calls and the race of both (fresh plan caches)."""
    monkeypatch.setenv("KEYDNN_CUDNN_GRAPH", {"graph": "1", "legacy": "0", "auto": "auto"}[request.param])
    monkeypatch.setattr(conv, "_plans", {})
    monkeypatch.setattr(conv, "graph_fallbacks", {})
    return request.param


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_and_gradients(case, dtype, rng, api):
    x, w, b, params = make(case, dtype, rng)
    for bias in (b, None):
        db = None if bias is None else to_device(bias)
        y = conv.conv2d_forward(to_device(x), to_device(w), db, *params)
        ref = ref_forward(x, w, bias, *params)
        assert y.shape == ref.shape and y.dtype == np.dtype(dtype)
        assert rel_err(to_host(y), ref) < TOL[dtype]
    gy = rng.standard_normal(ref.shape).astype(dtype)
    gx_ref, gw_ref = ref_backward(gy, x, w, *params)
    gx = conv.conv2d_backward_input(to_device(gy), to_device(w), x.shape, *params)
    gw = conv.conv2d_backward_weight(to_device(gy), to_device(x), w.shape, *params)
    assert rel_err(to_host(gx), gx_ref) < TOL[dtype]
    assert rel_err(to_host(gw), gw_ref) < TOL[dtype]
    if api == "legacy":
        assert all(type(plan) is conv._Plan for plan in conv._plans.values())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", [CASES[1], CASES[2], (4, 16, 15, 17, 32, 3, 3, (1, 1), (1, 1), (1, 1), 1)])
def test_graph_api_takes_common_convolutions(case, dtype, rng, monkeypatch):
    """Plain, strided and grouped convolutions run on graph-API execution plans, not the legacy fallback."""
    monkeypatch.setenv("KEYDNN_CUDNN_GRAPH", "1")
    monkeypatch.setattr(conv, "_plans", {})
    monkeypatch.setattr(conv, "graph_fallbacks", {})
    assert _cudnn.has_graph_api()
    x, w, b, params = make(case, dtype, rng)
    y = conv.conv2d_forward(to_device(x), to_device(w), to_device(b), *params)
    gy = to_device(np.ones(y.shape, dtype))
    conv.conv2d_backward_input(gy, to_device(w), x.shape, *params)
    conv.conv2d_backward_weight(gy, to_device(x), w.shape, *params)
    assert not conv.graph_fallbacks, conv.graph_fallbacks
    assert len(conv._plans) == 3 and all(type(p) is conv._GraphPlan for p in conv._plans.values())


def test_unknown_graph_mode_is_refused(monkeypatch):
    monkeypatch.setenv("KEYDNN_CUDNN_GRAPH", "sometimes")
    with pytest.raises(ValueError, match="KEYDNN_CUDNN_GRAPH"):
        conv._graph_mode()


def test_describe_names_the_api(rng, monkeypatch):
    monkeypatch.setattr(conv, "_plans", {})
    x, w, _, params = make(CASES[1], np.float32, rng)
    for mode, word in (("1", "graph engine"), ("0", "legacy algo")):
        monkeypatch.setenv("KEYDNN_CUDNN_GRAPH", mode)
        conv.conv2d_forward(to_device(x), to_device(w), None, *params)
        plan = next(p for k, p in conv._plans.items() if k[8] == mode)
        assert conv.describe(plan).startswith(word) and "MiB workspace" in conv.describe(plan)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_graph_bias_ignores_stale_output(dtype, rng, monkeypatch):
    """beta = 0: whatever the reused output block held (NaN here) never reaches y."""
    monkeypatch.setenv("KEYDNN_CUDNN_GRAPH", "1")
    monkeypatch.setattr(conv, "_plans", {})
    x, w, b, params = make(CASES[1], dtype, rng)
    ref = ref_forward(x, w, b, *params)
    dx, dw, db = to_device(x), to_device(w), to_device(b)
    stale = storage.empty(ref.shape, dtype, 0)
    _cudart.memset(stale.ptr, 0xFF, stale.nbytes)
    del stale
    y = to_host(conv.conv2d_forward(dx, dw, db, *params))
    assert not np.isnan(y).any() and rel_err(y, ref) < TOL[dtype]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("algo", [0, 1])  # IMPLICIT_GEMM + cudnnAddTensor; IMPLICIT_PRECOMP_GEMM, bias fused
def test_both_bias_paths(algo, dtype, rng, monkeypatch):
    monkeypatch.setenv("KEYDNN_CUDNN_GRAPH", "0")
    monkeypatch.setattr(conv, "_plans", {})
    monkeypatch.setattr(conv, "_choose", lambda op, direction, h, code, descs, ptrs, device:
                        (algo, _cudnn.workspace_size(op, direction, h, descs, algo)))
    x, w, b, params = make(CASES[2], dtype, rng)
    ref = ref_forward(x, w, b, *params)
    dx, dw, db = to_device(x), to_device(w), to_device(b)
    stale = storage.empty(ref.shape, dtype, 0)  # NaN-filled memory the output will reuse from the cache
    _cudart.memset(stale.ptr, 0xFF, stale.nbytes)
    del stale
    y = to_host(conv.conv2d_forward(dx, dw, db, *params))
    assert next(iter(conv._plans.values())).algo == algo
    assert not np.isnan(y).any() and rel_err(y, ref) < TOL[dtype]


@pytest.mark.parametrize("output_padding", [(1, 0), (0, 1), (1, 2)])
def test_backward_input_honours_output_padding(output_padding, rng):
    """Conv2dTranspose's forward: an x_shape larger than the smallest one whose output is gy's."""
    stride, padding, dilation, groups = (2, 3), (1, 1), (1, 1), 1
    gy = rng.standard_normal((2, 4, 5, 4))
    w = rng.standard_normal((4, 3, 3, 3))
    h = (5 - 1) * 2 - 2 + 3 + output_padding[0]
    wd = (4 - 1) * 3 - 2 + 3 + output_padding[1]
    x_shape = (2, 3, h, wd)
    gx = conv.conv2d_backward_input(to_device(gy), to_device(w), x_shape, stride, padding, dilation, groups)
    gx_ref, _ = ref_backward(gy, np.zeros(x_shape), w, stride, padding, dilation, groups)
    assert gx.shape == x_shape and rel_err(to_host(gx), gx_ref) < 1e-12


def test_empty_batch(rng):
    x, w = np.zeros((0, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3))
    y = conv.conv2d_forward(to_device(x), to_device(w), None, (1, 1), (1, 1), (1, 1), 1)
    assert y.shape == (0, 4, 6, 6)
    gw = conv.conv2d_backward_weight(to_device(np.zeros((0, 4, 6, 6))), to_device(x), w.shape,
                                     (1, 1), (1, 1), (1, 1), 1)
    np.testing.assert_array_equal(to_host(gw), np.zeros(w.shape))


def test_plan_is_cached(rng, monkeypatch, api):
    x, w, _, params = make(CASES[1], np.float32, rng)
    dx, dw = to_device(x), to_device(w)
    first = to_host(conv.conv2d_forward(dx, dw, None, *params))

    def refuse(*args):
        raise AssertionError("algorithm search ran again for a cached configuration")
    monkeypatch.setattr(_cudnn, "find_algorithms", refuse)
    monkeypatch.setattr(_cudnn, "heuristic_algorithms", refuse)
    monkeypatch.setattr(_cudnn, "convolution_plans", refuse)
    np.testing.assert_array_equal(to_host(conv.conv2d_forward(dx, dw, None, *params)), first)


def test_non_contiguous_input(rng, api):
    """A channel slice of a larger tensor is packed before cuDNN sees it."""
    big = rng.standard_normal((2, 6, 7, 7))
    w = rng.standard_normal((3, 4, 3, 3))
    view = to_device(big).view((2, 4, 7, 7), (294, 49, 7, 1), 49)  # big[:, 1:5]
    y = conv.conv2d_forward(view, to_device(w), None, (1, 1), (1, 1), (1, 1), 1)
    assert rel_err(to_host(y), ref_forward(big[:, 1:5], w, None, (1, 1), (1, 1), (1, 1), 1)) < 1e-12


@pytest.mark.parametrize("x_shape,w_shape,kwargs,error", [
    ((1, 3, 5, 5), (2, 4, 3, 3), {}, ShapeError),                  # channels differ
    ((1, 4, 5, 5), (3, 2, 3, 3), {"groups": 2}, ShapeError),      # groups do not divide K
    ((1, 3, 2, 2), (2, 3, 3, 3), {}, ShapeError),                  # kernel larger than input
    ((1, 3, 5, 5), (2, 3, 3, 3), {"stride": (0, 1)}, ShapeError),
])
def test_forward_errors(x_shape, w_shape, kwargs, error):
    args = {"stride": (1, 1), "padding": (0, 0), "dilation": (1, 1), "groups": 1} | kwargs
    with pytest.raises(error, match="conv2d_forward"):
        conv.conv2d_forward(to_device(np.ones(x_shape)), to_device(np.ones(w_shape)), None, **args)


def test_gradient_shape_and_dtype_errors():
    gy, w = to_device(np.ones((1, 2, 3, 3))), to_device(np.ones((2, 3, 3, 3)))
    with pytest.raises(ShapeError, match="conv2d_backward_input"):
        conv.conv2d_backward_input(gy, w, (1, 3, 6, 6), (1, 1), (0, 0), (1, 1), 1)  # gives 4x4, not 3x3
    with pytest.raises(DTypeError, match="conv2d_backward_weight"):
        conv.conv2d_backward_weight(gy, to_device(np.ones((1, 3, 5, 5), np.float32)), (2, 3, 3, 3),
                                    (1, 1), (0, 0), (1, 1), 1)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", [CASES[3], CASES[6], (4, 16, 15, 17, 32, 3, 3, (1, 1), (1, 1), (1, 1), 1)])
def test_matches_torch(case, dtype, rng, api):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch without CUDA")
    torch.backends.cudnn.allow_tf32 = False
    x, w, b, params = make(case, getattr(np, dtype), rng)
    stride, padding, dilation, groups = params
    tx, tw, tb = (torch.from_numpy(a).cuda().requires_grad_() for a in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, stride, padding, dilation, groups)
    gy = rng.standard_normal(tuple(ty.shape)).astype(dtype)
    ty.backward(torch.from_numpy(gy).cuda())
    y = conv.conv2d_forward(to_device(x), to_device(w), to_device(b), *params)
    gx = conv.conv2d_backward_input(to_device(gy), to_device(w), x.shape, *params)
    gw = conv.conv2d_backward_weight(to_device(gy), to_device(x), w.shape, *params)
    tol = TOL[getattr(np, dtype)] * 2
    for got, want in ((y, ty), (gx, tx.grad), (gw, tw.grad)):
        assert rel_err(to_host(got), want.detach().cpu().numpy().astype(np.float64)) < tol


@pytest.fixture
def rng():
    return np.random.default_rng(0)
