"""Optimizers against live torch.optim with identical hyper-parameters, float64, step by step."""
import numpy as np
import pytest

from tinygrad_rnn import nn

from test_optim import CASES, case_id, make_problem, run_ours

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.torch


def torch_trajectory(name, hp, p0s, grads):
    """The parameters after each step of torch.optim.<name> (single-tensor path, float64)."""
    params = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in p0s]
    opt = getattr(torch.optim, name)(params, foreach=False, **hp)
    trajectory = []
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = None if g is None else torch.tensor(g, dtype=torch.float64)
        opt.step()
        trajectory.append([p.detach().numpy().copy() for p in params])
    return trajectory


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_steps_match_torch_optim(case, device):
    name, hp = case
    p0s, grads = make_problem(seed=1)
    params = [nn.Parameter(p, device=device) for p in p0s]
    _, ours = run_ours(name, hp, params, grads, device)
    expected = torch_trajectory(name, hp, p0s, grads)
    for step, (got_step, want_step) in enumerate(zip(ours, expected, strict=True)):
        for i, (got, want) in enumerate(zip(got_step, want_step, strict=True)):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=0, err_msg=f"step {step + 1}, parameter {i}")


@pytest.mark.parametrize("case", [c for c in CASES if c[0] in ("SGD", "Adam", "RMSprop")][::2], ids=case_id)
def test_skipped_parameters_match_torch_optim(case):
    """PyTorch also leaves a parameter without .grad (and its step count) alone."""
    name, hp = case
    p0s, grads = make_problem(seed=2)
    grads = [[g0, g1 if step % 2 == 0 else None] for step, (g0, g1) in enumerate(grads)]
    _, ours = run_ours(name, hp, [nn.Parameter(p) for p in p0s], grads)
    expected = torch_trajectory(name, hp, p0s, grads)
    for got, want in zip(ours[-1], expected[-1], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
