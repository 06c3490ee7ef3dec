"""Optimizers against their update formulas written out here in NumPy (PyTorch's documented
algorithms), step by step; skipping, zero_grad, state round trips and argument checks.

The live comparison with torch.optim is in test_optim_torch.py.
"""
import math

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import Tensor, nn, optim
from conftest import host

SHAPES = [(3, 4), (5,)]
GRAD_SCALES = (1.0, 3.0, 0.1, 2.0, 0.01)  # varying sizes: AMSGrad's running max and RMSprop's averages matter

# (optimizer name, hyper-parameters): every option of every algorithm, alone and combined
CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.1, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.8, weight_decay=0.1, nesterov=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05)),
    ("Adagrad", dict(lr=0.1, weight_decay=0.1)),
    ("Adagrad", dict(lr=0.1, initial_accumulator_value=0.5)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.05, initial_accumulator_value=0.2, eps=1e-6)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-6, centered=True, momentum=0.5, weight_decay=0.05)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05, amsgrad=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
]


def case_id(case) -> str:
    name, hp = case
    return name + "-" + "-".join(f"{k}={v}" for k, v in hp.items() if k != "lr")


# ---------------------------------------------------------------- reference formulas (NumPy)
# Each takes (p, g, s, t, **hp): the parameter, its gradient, this parameter's state dict and the
# 1-based count of steps this parameter has taken; returns the new parameter (no in-place work).

def sgd_reference(p, g, s, t, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    if weight_decay:
        g = g + weight_decay * p
    if momentum:
        s["b"] = g.copy() if t == 1 else momentum * s["b"] + (1 - dampening) * g
        g = g + momentum * s["b"] if nesterov else s["b"]
    return p - lr * g


def adagrad_reference(p, g, s, t, lr, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
    lr_t = lr / (1 + (t - 1) * lr_decay)
    if weight_decay:
        g = g + weight_decay * p
    s["sum"] = s.get("sum", np.full_like(p, initial_accumulator_value)) + g ** 2
    return p - lr_t * g / (np.sqrt(s["sum"]) + eps)


def rmsprop_reference(p, g, s, t, lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
    if weight_decay:
        g = g + weight_decay * p
    s["v"] = alpha * s.get("v", np.zeros_like(p)) + (1 - alpha) * g ** 2
    v_tilde = s["v"]
    if centered:
        s["g_ave"] = alpha * s.get("g_ave", np.zeros_like(p)) + (1 - alpha) * g
        v_tilde = v_tilde - s["g_ave"] ** 2
    if momentum > 0:
        s["b"] = momentum * s.get("b", np.zeros_like(p)) + g / (np.sqrt(v_tilde) + eps)
        return p - lr * s["b"]
    return p - lr * g / (np.sqrt(v_tilde) + eps)


def adam_reference(p, g, s, t, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
                   decoupled=False):
    beta1, beta2 = betas
    if weight_decay and decoupled:
        p = p * (1 - lr * weight_decay)
    elif weight_decay:
        g = g + weight_decay * p
    s["m"] = beta1 * s.get("m", np.zeros_like(p)) + (1 - beta1) * g
    s["v"] = beta2 * s.get("v", np.zeros_like(p)) + (1 - beta2) * g ** 2
    m_hat = s["m"] / (1 - beta1 ** t)
    if amsgrad:  # PyTorch keeps the running maximum of v itself, then bias-corrects it
        s["v_max"] = np.maximum(s.get("v_max", np.zeros_like(p)), s["v"])
        v_hat = s["v_max"] / (1 - beta2 ** t)
    else:
        v_hat = s["v"] / (1 - beta2 ** t)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps)


def adamw_reference(p, g, s, t, lr, weight_decay=1e-2, **hp):
    return adam_reference(p, g, s, t, lr, weight_decay=weight_decay, decoupled=True, **hp)


REFERENCE = {"SGD": sgd_reference, "Adagrad": adagrad_reference, "RMSprop": rmsprop_reference,
             "Adam": adam_reference, "AdamW": adamw_reference}


def reference_trajectory(name, hp, p0s, grads):
    """The parameters after each step, by the formulas above; None gradients skip the parameter."""
    ps, states, counts, trajectory = [p.copy() for p in p0s], [{} for _ in p0s], [0] * len(p0s), []
    for step_grads in grads:
        for i, g in enumerate(step_grads):
            if g is not None:
                counts[i] += 1
                ps[i] = REFERENCE[name](ps[i], g, states[i], counts[i], **hp)
        trajectory.append([p.copy() for p in ps])
    return trajectory


# ---------------------------------------------------------------- helpers
def make_problem(seed=0, steps=len(GRAD_SCALES)):
    """Initial parameters (float64) and `steps` rounds of gradients of varying size."""
    rng = np.random.default_rng(seed)
    p0s = [rng.normal(size=shape) for shape in SHAPES]
    grads = [[scale * rng.normal(size=shape) for shape in SHAPES] for scale in GRAD_SCALES[:steps]]
    return p0s, grads



def run_ours(name, hp, params, grads, device="cpu"):
    """Step a new optimizer over `params` with the given gradients; (optimizer, parameters after each step)."""
    opt = getattr(optim, name)(params, **hp)
    return opt, step_through(opt, params, grads, device)


def step_through(opt, params, grads, device="cpu"):
    """Set each round of gradients (None: no gradient) and step; the parameters after each step."""
    trajectory = []
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = None if g is None else Tensor(g, device=device)
        opt.step()
        trajectory.append([host(p.data).copy() for p in params])
    return trajectory


def assert_trajectories_close(ours, expected, rtol=1e-12, atol=0.0):
    for step, (got_step, want_step) in enumerate(zip(ours, expected, strict=True)):
        for i, (got, want) in enumerate(zip(got_step, want_step, strict=True)):
            np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=f"step {step + 1}, parameter {i}")


# ---------------------------------------------------------------- (a) the written-out formulas
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_steps_follow_the_update_formula(case, device):
    name, hp = case
    p0s, grads = make_problem()
    params = [nn.Parameter(p, device=device) for p in p0s]
    _, ours = run_ours(name, hp, params, grads, device)
    expected = reference_trajectory(name, hp, p0s, grads)
    assert_trajectories_close(ours, expected)
    # not vacuous: every parameter moved at every step
    for before, after in zip([p0s] + expected[:-1], expected):
        assert all(not np.allclose(a, b, rtol=1e-9, atol=0) for a, b in zip(before, after))


def test_the_reference_formulas_tell_the_options_apart():
    """The cases above differ from each other, so a dropped option could not pass unnoticed."""
    p0s, grads = make_problem()
    finals = {case_id(case): reference_trajectory(*case, p0s, grads)[-1] for case in CASES}
    keys = list(finals)
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            assert not all(np.allclose(x, y, rtol=1e-9, atol=0) for x, y in zip(finals[a], finals[b])), (a, b)


def test_float32_parameters_stay_float32_and_follow_the_formula(device):
    p0s, grads = make_problem()
    p0s = [p.astype(np.float32) for p in p0s]
    grads = [[g.astype(np.float32) for g in step] for step in grads]
    params = [nn.Parameter(p, device=device) for p in p0s]
    opt, ours = run_ours("Adam", dict(lr=0.01), params, grads, device)
    assert all(p.dtype == np.float32 for p in params)
    assert all(opt.state[i][key].dtype == np.float32 for i in range(2) for key in ("exp_avg", "exp_avg_sq"))
    expected = reference_trajectory("Adam", dict(lr=0.01), [p.astype(np.float64) for p in p0s],
                                    [[g.astype(np.float64) for g in step] for step in grads])
    assert_trajectories_close(ours, expected, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- skipping, zero_grad
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_parameters_without_grad_are_skipped(case, device):
    """A parameter without a gradient neither moves nor advances its state (step counts included)."""
    name, hp = case
    p0s, grads = make_problem()
    # the second parameter has a gradient only at steps 1, 3 and 5
    grads = [[g0, g1 if step % 2 == 0 else None] for step, (g0, g1) in enumerate(grads)]
    params = [nn.Parameter(p, device=device) for p in p0s]
    _, ours = run_ours(name, hp, params, grads, device)
    assert_trajectories_close(ours, reference_trajectory(name, hp, p0s, grads))
    np.testing.assert_array_equal(ours[1][1], ours[0][1])  # step 2 left it bit-identical
    np.testing.assert_array_equal(ours[3][1], ours[2][1])


def test_a_parameter_that_never_gets_a_grad_keeps_no_state():
    p0s, grads = make_problem()
    params = [nn.Parameter(p) for p in p0s]
    opt, ours = run_ours("Adam", dict(lr=0.01), params, [[g, None] for g, _ in grads])
    np.testing.assert_array_equal(ours[-1][1], p0s[1])
    assert opt.state[1] == {}
    assert opt.state_dict()["state"]["1"] == {}


def test_zero_grad_forgets_every_gradient_and_a_step_then_changes_nothing():
    p0s, grads = make_problem(steps=1)
    params = [nn.Parameter(p) for p in p0s]
    opt = optim.SGD(params, lr=0.1, momentum=0.9)
    for p, g in zip(params, grads[0]):
        p.grad = Tensor(g)
    opt.zero_grad()
    assert all(p.grad is None for p in params)
    opt.step()
    for p, p0 in zip(params, p0s):
        np.testing.assert_array_equal(p.numpy(), p0)


def test_zero_grad_between_backward_passes_gives_fresh_gradients():
    """With zero_grad, each backward gives that loss's gradient, not the sum of the two."""
    w = nn.Parameter(np.array([1.0, 2.0]))
    opt = optim.SGD([w], lr=0.0)
    (w * w).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [2.0, 4.0])
    opt.zero_grad()
    (3.0 * w).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [3.0, 3.0])


def test_a_step_trains_a_model_end_to_end():
    """Optimizer and autograd together: SGD on a least-squares problem moves the loss down."""
    tr.set_default_dtype(np.float64)
    rng = np.random.default_rng(1)
    x, y = Tensor(rng.normal(size=(32, 3))), Tensor(rng.normal(size=(32, 2)))
    model = nn.Linear(3, 2)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.5)
    losses = []
    for _ in range(20):
        loss = tr.F.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


# ---------------------------------------------------------------- state_dict through tr.save/tr.load
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_state_round_trip_through_a_checkpoint_continues_identically(case, tmp_path, device):
    """One optimizer runs 6 steps; another runs 3, is saved, restored into fresh parameters and a
    fresh optimizer (built with a different lr), and runs 3 more: the parameters are bit-identical."""
    name, hp = case
    p0s, grads = make_problem(steps=5)
    grads = grads + grads[:1]  # six steps

    straight = [nn.Parameter(p, device=device) for p in p0s]
    _, expected = run_ours(name, hp, straight, grads, device)

    first = [nn.Parameter(p, device=device) for p in p0s]
    opt, _ = run_ours(name, hp, first, grads[:3], device)
    tr.save({"params": {str(i): p for i, p in enumerate(first)}, "optimizer": opt.state_dict()},
            tmp_path / "ckpt.npz")
    del first, opt

    loaded = tr.load(tmp_path / "ckpt.npz")
    resumed = [nn.Parameter(loaded["params"][str(i)], device=device) for i in range(len(p0s))]
    opt = getattr(optim, name)(resumed, **{**hp, "lr": 123.0})
    opt.load_state_dict(loaded["optimizer"])
    assert opt.lr == hp["lr"]  # hyper-parameters come back with the state
    continued = step_through(opt, resumed, grads[3:], device)
    for got, want in zip(continued[-1], expected[-1], strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_a_0d_parameter_follows_the_formula_and_resumes_from_a_checkpoint(case, tmp_path):
    """A 0-d parameter's state is 0-d arrays, updated in place like any other: SGD's weight decay
    once made its momentum buffer a NumPy scalar, frozen after the first step, and load_state_dict
    once turned 0-d state arrays into Python floats, which the in-place updates then left unchanged."""
    name, hp = case
    rng = np.random.default_rng(1)
    p0 = np.array(rng.normal())
    grads = [[np.array(scale * rng.normal())] for scale in GRAD_SCALES + (1.0,)]
    _, straight = run_ours(name, hp, [nn.Parameter(p0)], grads)
    assert_trajectories_close(straight, reference_trajectory(name, hp, [p0], grads))

    first = [nn.Parameter(p0)]
    opt, _ = run_ours(name, hp, first, grads[:3])
    tr.save({"optimizer": opt.state_dict()}, tmp_path / "ckpt.npz")
    resumed = [nn.Parameter(first[0].numpy().copy())]
    opt = getattr(optim, name)(resumed, **hp)
    opt.load_state_dict(tr.load(tmp_path / "ckpt.npz")["optimizer"])
    assert all(isinstance(v, np.ndarray) for k, v in opt.state[0].items() if k != "step")
    continued = step_through(opt, resumed, grads[3:])
    np.testing.assert_array_equal(continued[-1][0], straight[-1][0])


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_load_state_dict_restores_hyperparameters_with_their_saved_types(case, tmp_path):
    """An optimizer built with integer hyper-parameters (lr=1, momentum=0) takes the saved floats as
    they are: casting them to the type given at construction once turned lr=0.5 into 0."""
    name, hp = case
    params = [nn.Parameter(p) for p in make_problem()[0]]
    saved = getattr(optim, name)(params, **{**hp, "lr": 0.5, "weight_decay": 0.25}).hyperparameters()
    fresh = getattr(optim, name)(params, **{**hp, "lr": 1, "weight_decay": 0})
    tr.save({"optimizer": {"hyperparameters": saved, "state": {}}}, tmp_path / "ckpt.npz")
    fresh.load_state_dict(tr.load(tmp_path / "ckpt.npz")["optimizer"])
    restored = fresh.hyperparameters()
    assert restored == saved
    assert {key: type(value) for key, value in restored.items()} == {key: type(value) for key, value in saved.items()}


def test_restarting_without_the_state_would_differ(tmp_path):
    """The round trip above is not vacuous: a fresh Adam continuing from the same parameters
    (without the saved moments and step count) ends elsewhere."""
    p0s, grads = make_problem(steps=5)
    straight = [nn.Parameter(p) for p in p0s]
    _, expected = run_ours("Adam", dict(lr=0.01), straight, grads)
    first = [nn.Parameter(p) for p in p0s]
    run_ours("Adam", dict(lr=0.01), first, grads[:3])
    _, continued = run_ours("Adam", dict(lr=0.01), first, grads[3:])
    assert not np.allclose(continued[-1][0], expected[-1][0], rtol=1e-6, atol=0)


def test_state_dict_holds_copies_of_the_state():
    p0s, grads = make_problem(steps=2)
    params = [nn.Parameter(p) for p in p0s]
    opt, _ = run_ours("Adam", dict(lr=0.01), params, grads)
    saved = opt.state_dict()
    saved["state"]["0"]["exp_avg"][...] = 1e9
    assert np.abs(host(opt.state[0]["exp_avg"])).max() < 1e3


def test_load_state_dict_replaces_the_whole_state():
    """Loading a never-stepped optimizer's state into one that has stepped forgets its moments:
    the next step is then a first step."""
    p0s, grads = make_problem(steps=3)
    stepped = [nn.Parameter(p) for p in p0s]
    opt, _ = run_ours("Adam", dict(lr=0.01), stepped, grads[:2])
    opt.load_state_dict(optim.Adam([nn.Parameter(p) for p in p0s], lr=0.01).state_dict())
    assert opt.state == [{}, {}]
    fresh = [nn.Parameter(p.numpy()) for p in stepped]
    after = step_through(opt, stepped, grads[2:])
    _, expected = run_ours("Adam", dict(lr=0.01), fresh, grads[2:])
    for got, want in zip(after[-1], expected[-1]):
        np.testing.assert_array_equal(got, want)


def test_load_state_dict_rejects_state_for_other_parameters():
    p0s, grads = make_problem(steps=1)
    opt, _ = run_ours("Adam", dict(lr=0.01), [nn.Parameter(p) for p in p0s], grads)
    state = opt.state_dict()
    fewer = optim.Adam([nn.Parameter(p0s[0])], lr=0.01)
    with pytest.raises(ValueError, match="parameters"):
        fewer.load_state_dict(state)
    swapped = optim.Adam([nn.Parameter(p0s[1]), nn.Parameter(p0s[0])], lr=0.01)
    with pytest.raises(ValueError, match="shape"):
        swapped.load_state_dict(state)


# ---------------------------------------------------------------- bad arguments
def one_param():
    return [nn.Parameter(np.zeros(3))]


@pytest.mark.parametrize("name", ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"])
def test_negative_learning_rate_is_rejected(name):
    with pytest.raises(ValueError, match=r"learning rate.*-0\.1"):
        getattr(optim, name)(one_param(), lr=-0.1)


@pytest.mark.parametrize("name", ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"])
def test_empty_parameter_list_is_rejected(name):
    with pytest.raises(ValueError, match="empty parameter list"):
        getattr(optim, name)([], lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        getattr(optim, name)(iter(nn.Module().parameters()), lr=0.1)


@pytest.mark.parametrize("kwargs", [dict(nesterov=True), dict(nesterov=True, momentum=0.0),
                                    dict(nesterov=True, momentum=0.9, dampening=0.1)],
                         ids=["no-momentum", "zero-momentum", "dampening"])
def test_nesterov_needs_momentum_and_no_dampening(kwargs):
    with pytest.raises(ValueError, match="nesterov.*momentum > 0.*dampening = 0"):
        optim.SGD(one_param(), lr=0.1, **kwargs)


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
@pytest.mark.parametrize("betas", [(1.0, 0.999), (0.9, 1.0), (-0.1, 0.999), (0.9, -0.5), (1.5, 2.0)])
def test_betas_outside_zero_one_are_rejected(name, betas):
    with pytest.raises(ValueError, match=r"betas must lie in \[0, 1\)"):
        getattr(optim, name)(one_param(), betas=betas)


@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_a_single_tensor_instead_of_a_list_is_rejected(name):
    """As PyTorch: a lone Parameter is not an iterable of parameters (iterating it would give
    row slices, which are not leaves and never receive a gradient)."""
    with pytest.raises(TypeError, match="iterable"):
        getattr(optim, name)(nn.Parameter(np.zeros((3, 4))), lr=0.1)


def test_a_constant_tensor_is_rejected():
    with pytest.raises(TypeError, match="Parameters"):
        optim.SGD([Tensor(np.zeros(3))], lr=0.1)


def test_zero_learning_rate_is_allowed_and_changes_nothing():
    p0s, grads = make_problem(steps=2)
    params = [nn.Parameter(p) for p in p0s]
    run_ours("SGD", dict(lr=0.0, momentum=0.9), params, grads)
    for p, p0 in zip(params, p0s):
        np.testing.assert_array_equal(p.numpy(), p0)


def test_defaults_match_pytorch():
    """PyTorch's documented defaults (lr, betas, eps, alpha, weight decay)."""
    p = one_param()
    assert optim.Adam(p).hyperparameters() == dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                                                   amsgrad=False)
    assert optim.AdamW(p).weight_decay == 1e-2
    rms = optim.RMSprop(p)
    assert (rms.lr, rms.alpha, rms.eps, rms.momentum, rms.centered) == (1e-2, 0.99, 1e-8, 0.0, False)
    ada = optim.Adagrad(p)
    assert (ada.lr, ada.lr_decay, ada.eps, ada.initial_accumulator_value) == (1e-2, 0.0, 1e-10, 0.0)
    assert math.isclose(optim.SGD(p).lr, 1e-3)
