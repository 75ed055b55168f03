"""Optimizers: step-by-step against torch.optim (when installed) and against closed forms in NumPy; state
save/load continues the same trajectory; hyper-parameter validation; the seed's signatures."""

from __future__ import annotations

import numpy as np
import pytest

from keydnn import Tensor
from keydnn.domain.errors import SerializationError
from keydnn.infrastructure.nn import Linear
from keydnn.infrastructure.optim import SGD, Adam, AdamW
from keydnn.infrastructure.parameter import Parameter

CONFIGS = [
    (SGD, {"lr": 0.1}, "SGD", {"lr": 0.1}),
    (SGD, {"lr": 0.1, "momentum": 0.9}, "SGD", {"lr": 0.1, "momentum": 0.9}),
    (SGD, {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.01}, "SGD",
     {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.01}),
    (Adam, {"lr": 0.01}, "Adam", {"lr": 0.01}),
    (Adam, {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}, "Adam",
     {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}),
    (AdamW, {"lr": 0.01, "weight_decay": 0.1}, "AdamW", {"lr": 0.01, "weight_decay": 0.1}),
]


IDS = [f"{c[2]}-{i}" for i, c in enumerate(CONFIGS)]


def _grads(rng, steps, shapes):
    return [[rng.standard_normal(s) for s in shapes] for _ in range(steps)]


def _run_keydnn(cls, kwargs, init, grads):
    params = [Parameter(data=a.copy()) for a in init]
    opt = cls(params, **kwargs)
    traj = []
    for gs in grads:
        for p, g in zip(params, gs, strict=True):
            p.grad = Tensor.from_numpy(g)
        opt.step()
        traj.append([p.to_numpy().copy() for p in params])
    return traj, opt, params


@pytest.mark.parametrize("cls,kwargs,tname,tkwargs", CONFIGS, ids=IDS)
def test_matches_torch_step_by_step(cls, kwargs, tname, tkwargs, rng):
    torch = pytest.importorskip("torch")
    shapes = [(3, 4), (4,)]
    init = [rng.standard_normal(s) for s in shapes]
    grads = _grads(rng, 6, shapes)
    traj, _, _ = _run_keydnn(cls, kwargs, init, grads)
    tparams = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    topt = getattr(torch.optim, tname)(tparams, **tkwargs)
    for step, gs in enumerate(grads):
        for p, g in zip(tparams, gs, strict=True):
            p.grad = torch.from_numpy(g.copy())
        topt.step()
        for ours, theirs in zip(traj[step], tparams, strict=True):
            np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-10, atol=1e-12,
                                       err_msg=f"step {step + 1}")


def _reference(name, kw, init, grads):
    """Closed-form updates (PyTorch's documented rules), written independently in NumPy."""
    ps = [a.copy() for a in init]
    bufs = [np.zeros_like(a) for a in init]
    m = [np.zeros_like(a) for a in init]
    v = [np.zeros_like(a) for a in init]
    out = []
    for t, gs in enumerate(grads, start=1):
        for i, g in enumerate(gs):
            if name == "SGD":
                g = g + kw.get("weight_decay", 0) * ps[i]
                mom = kw.get("momentum", 0)
                if mom:
                    bufs[i] = g if t == 1 else mom * bufs[i] + g
                    g = g + mom * bufs[i] if kw.get("nesterov") else bufs[i]
                ps[i] = ps[i] - kw["lr"] * g
            else:
                b1, b2 = kw.get("betas", (0.9, 0.999))
                eps, wd, lr = kw.get("eps", 1e-8), kw.get("weight_decay", 0.0), kw["lr"]
                if name == "AdamW":
                    ps[i] = ps[i] * (1 - lr * wd)
                else:
                    g = g + wd * ps[i]
                m[i] = b1 * m[i] + (1 - b1) * g
                v[i] = b2 * v[i] + (1 - b2) * g * g
                mhat, vhat = m[i] / (1 - b1**t), v[i] / (1 - b2**t)
                ps[i] = ps[i] - lr * mhat / (np.sqrt(vhat) + eps)
        out.append([p.copy() for p in ps])
    return out


@pytest.mark.parametrize("cls,kwargs,tname,tkwargs", CONFIGS, ids=IDS)
def test_matches_closed_form(cls, kwargs, tname, tkwargs, rng):
    shapes = [(2, 3), (3,)]
    init = [rng.standard_normal(s) for s in shapes]
    grads = _grads(rng, 5, shapes)
    traj, _, _ = _run_keydnn(cls, kwargs, init, grads)
    for step, (ours, ref) in enumerate(zip(traj, _reference(tname, tkwargs, init, grads), strict=True)):
        for a, b in zip(ours, ref, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=f"step {step + 1}")


def test_params_without_grad_are_skipped_and_keep_their_own_step_count(rng):
    a, b = Parameter(data=np.ones(2)), Parameter(data=np.ones(2))
    opt = Adam([a, b], lr=0.1)
    a.grad = Tensor.from_numpy(np.ones(2))
    opt.step()
    np.testing.assert_array_equal(b.to_numpy(), np.ones(2))
    b.grad = Tensor.from_numpy(np.ones(2))
    opt.step()
    assert [s["step"] for s in opt.state] == [2, 1]
    # bias correction at step 1 makes the first Adam step exactly lr * sign(g)
    np.testing.assert_allclose(b.to_numpy(), np.ones(2) - 0.1, rtol=1e-7)


def test_zero_grad_and_shared_parameters():
    lin = Linear(2, 2)
    opt = SGD(list(lin.parameters()) + [lin.weight], lr=0.1)
    assert len(opt.params) == 2
    lin(Tensor.ones((1, 2))).sum().backward()
    opt.zero_grad()
    assert all(p.grad is None for p in lin.parameters())
    assert len(SGD(lin).params) == 2  # a Module is accepted too


def test_step_invalidates_graphs_recorded_before_it():
    lin = Linear(2, 1)
    opt = SGD(lin.parameters(), lr=0.1)
    out = lin(Tensor.ones((1, 2), requires_grad=True)) * lin.weight.sum()
    lin.weight.grad = Tensor.ones((1, 2))
    opt.step()
    with pytest.raises(Exception, match="modified in place"):
        out.sum().backward()


@pytest.mark.parametrize("cls,kwargs", [(SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
                                        (Adam, {"lr": 0.01}), (AdamW, {"lr": 0.01})])
def test_state_dict_round_trip_continues_the_trajectory(cls, kwargs, rng):
    shapes = [(3, 2), (2,)]
    init = [rng.standard_normal(s) for s in shapes]
    grads = _grads(rng, 6, shapes)
    full, _, _ = _run_keydnn(cls, kwargs, init, grads)
    first, opt, params = _run_keydnn(cls, kwargs, init, grads[:3])
    state = opt.state_dict()
    assert state["type"] == cls.__name__ and all(s["step"] == 3 for s in state["state"])
    params2 = [Parameter(data=p.to_numpy().copy()) for p in params]
    opt2 = cls(params2, lr=123.0)
    opt2.load_state_dict(state)
    assert opt2.lr == kwargs["lr"]
    for gs in grads[3:]:
        for p, g in zip(params2, gs, strict=True):
            p.grad = Tensor.from_numpy(g)
        opt2.step()
    for a, b in zip(params2, full[-1], strict=True):
        np.testing.assert_allclose(a.to_numpy(), b, rtol=1e-12)


def test_load_state_dict_rejects_mismatches_before_changing_anything(rng):
    p = Parameter(data=rng.standard_normal((2, 2)))
    opt = Adam([p], lr=0.01)
    p.grad = Tensor.from_numpy(np.ones((2, 2)))
    opt.step()
    good = opt.state_dict()
    other = Adam([Parameter(data=np.zeros((3,)))], lr=0.5)
    before = other.state_dict()
    for bad in ({**good, "type": "SGD"}, {**good, "state": []},
                {**good, "state": [{**good["state"][0], "exp_avg": np.zeros((3, 3))}]}, "nonsense"):
        with pytest.raises(SerializationError):
            other.load_state_dict(bad)
        assert other.lr == 0.5 and other.state_dict()["state"] == before["state"]


@pytest.mark.parametrize("make", [
    lambda p: SGD(p, lr=0.0), lambda p: SGD(p, lr=-1), lambda p: SGD(p, momentum=-0.1),
    lambda p: SGD(p, weight_decay=-1), lambda p: SGD(p, nesterov=True), lambda p: Adam(p, lr=-1e-3),
    lambda p: Adam(p, betas=(1.0, 0.9)), lambda p: Adam(p, betas=(0.9, -0.1)), lambda p: Adam(p, eps=-1),
    lambda p: Adam(p, weight_decay=-0.1), lambda p: AdamW(p, betas=(0.9,)), lambda p: SGD([]),
])
def test_bad_hyper_parameters_raise_value_error(make):
    with pytest.raises(ValueError):
        make([Parameter((2,))])


def test_seed_signatures_still_work():
    p = Parameter(data=np.ones(2))
    sgd = SGD([p], lr=1e-2, weight_decay=0.5)
    p.grad = Tensor.from_numpy(np.ones(2))
    sgd.step()
    np.testing.assert_allclose(p.to_numpy(), 1 - 1e-2 * (1 + 0.5))
    adam = Adam([p], lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    assert adam.params == [p] and adam.betas == (0.9, 0.999)
    with pytest.raises(TypeError):
        SGD(p)  # a bare tensor is not a parameter list


def test_load_state_dict_with_invalid_hyper_parameters_keeps_the_optimizer():
    p = Parameter(data=np.ones(2))
    opt = SGD([p], lr=0.1, momentum=0.9)
    p.grad = Tensor.from_numpy(np.ones(2))
    opt.step()
    state = opt.state_dict()
    state["hyper"]["lr"] = -5.0
    with pytest.raises(SerializationError, match="lr"):
        opt.load_state_dict(state)
    assert opt.lr == 0.1 and opt.state[0]["step"] == 1
