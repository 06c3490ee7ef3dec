"""viz.plots: every gradient-flow plot returns a Figure with the expected lines or images and
writes a real image file."""
import numpy as np
import pytest

pytest.importorskip("matplotlib")

import tinygrad_rnn as tr  # noqa: E402
from tinygrad_rnn import Tensor, nn  # noqa: E402
from tinygrad_rnn.trace import GradientTracer, trace_gradients  # noqa: E402
from viz import plots  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"
STEPS, BATCH, HIDDEN = 12, 3, 4


@pytest.fixture(scope="module")
def flows():
    """{"RNN", "LSTM", "GRU"}: GradientFlows of the three layers on the same inputs and loss."""
    tr.manual_seed(0)
    x = tr.randn(STEPS, BATCH, 2)
    w = Tensor(np.random.default_rng(0).standard_normal((BATCH, HIDDEN)).astype(np.float32))
    loss_fn = lambda out, state: (out[-1] * w).sum()
    out = {}
    for name, layer in (("RNN", nn.RNN), ("LSTM", nn.LSTM), ("GRU", nn.GRU)):
        out[name] = trace_gradients(layer(2, HIDDEN), x, loss_fn)
    return out


@pytest.fixture(scope="module")
def tracer():
    """Six training steps with clipping at 0.05 (most steps clipped)."""
    tr.manual_seed(1)
    model = nn.RNN(2, HIDDEN)
    nn.init.orthogonal_(model.weight_hh_l0, gain=1.2)
    optimizer = tr.optim.SGD(model.parameters(), lr=0.1)
    x = tr.randn(STEPS, BATCH, 2)
    tracer = GradientTracer(max_norm=0.05)
    for _ in range(6):
        optimizer.zero_grad()
        tracer.record(model, x, lambda out, state: (out[-1] ** 2).sum())
        optimizer.step()
    return tracer


def written(path) -> bytes:
    data = path.read_bytes()
    assert len(data) > 1000
    return data


def test_gradient_norms_one_line_per_model(flows, tmp_path):
    fig = plots.plot_gradient_norms(flows, tmp_path / "norms.png")
    (ax,) = fig.axes
    assert len(ax.get_lines()) == 3 and ax.get_yscale() == "log"
    rnn = ax.get_lines()[0].get_ydata()
    assert rnn[-1] == pytest.approx(1.0)  # relative to the last step
    np.testing.assert_allclose(rnn, flows["RNN"].hidden_grad_norms[0] / flows["RNN"].hidden_grad_norms[0, -1])
    assert written(tmp_path / "norms.png").startswith(PNG)
    with_cell = plots.plot_gradient_norms(flows, cell=True, relative=False)
    assert len(with_cell.axes[0].get_lines()) == 4  # the LSTM's c_t as well
    np.testing.assert_allclose(with_cell.axes[0].get_lines()[0].get_ydata(), flows["RNN"].hidden_grad_norms[0])


def test_training_heatmap_is_time_step_by_training_step(tracer, tmp_path):
    fig = plots.plot_training_heatmap(tracer, tmp_path / "train.png")
    ax = fig.axes[0]
    (image,) = ax.get_images()
    np.testing.assert_allclose(image.get_array(), np.log10(tracer.hidden_grad_history()))
    assert image.get_array().shape == (6, STEPS)
    assert written(tmp_path / "train.png").startswith(PNG)
    from_flows = plots.plot_training_heatmap(tracer.flows)
    assert from_flows.axes[0].get_images()[0].get_array().shape == (6, STEPS)


def test_unit_heatmap_is_time_step_by_hidden_unit(flows, tmp_path):
    fig = plots.plot_unit_heatmap(flows["LSTM"], tmp_path / "units.png")
    (image,) = fig.axes[0].get_images()
    assert image.get_array().shape == (HIDDEN, STEPS)
    assert written(tmp_path / "units.png").startswith(PNG)


def test_jacobians_three_panels(flows, tmp_path):
    fig = plots.plot_jacobians(flows, tmp_path / "jacobians.png")
    ends, step, matrices = fig.axes
    assert len(ends.get_lines()) == 3 and ends.get_yscale() == "log"
    np.testing.assert_allclose(ends.get_lines()[1].get_ydata(), flows["LSTM"].jacobian_norms)
    assert len(step.get_lines()) == 3 + 1 + 1  # sigma_1 per model, the RNN's bound, the line 1
    assert len(matrices.patches) == 1 + 4 + 3  # a bar per recurrent matrix block
    assert written(tmp_path / "jacobians.png").startswith(PNG)

    single = plots.plot_jacobians(flows["RNN"])
    assert len(single.axes[1].get_lines()) == HIDDEN + 2  # every singular value, the bound, the line 1
    bars = single.axes[2].patches
    assert bars[0].get_height() == pytest.approx(flows["RNN"].recurrent[0].singular_value)


def test_jacobians_need_a_trace_with_jacobians():
    model = nn.RNN(2, 3)
    flow = trace_gradients(model, tr.randn(4, 1, 2), lambda out, state: out.sum(), jacobians=False)
    with pytest.raises(ValueError, match="jacobians=True"):
        plots.plot_jacobians(flow)


def test_weight_steps_one_line_per_weight(flows, tmp_path):
    fig = plots.plot_weight_steps(flows["GRU"], tmp_path / "weights.svg")
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["weight_ih_l0", "weight_hh_l0"]
    assert written(tmp_path / "weights.svg").lstrip().startswith(b"<?xml")  # the format follows the name


def test_echo_state_trajectories_converge_only_for_the_small_radius(tmp_path):
    esns = {"rho 0.8": nn.ESN(1, 100, spectral_radius=0.8, leak_rate=0.4, input_scaling=0.1, seed=2, dtype=np.float64),
            "rho 1.5": nn.ESN(1, 100, spectral_radius=1.5, leak_rate=0.4, input_scaling=0.1, seed=2, dtype=np.float64)}
    u = np.sin(np.arange(300) * 2 * np.pi / 25)[:, None]
    rng = np.random.default_rng(0)
    x0, x1 = rng.uniform(-1, 1, 100), rng.uniform(-1, 1, 100)
    _, _, small = plots.echo_state_trajectories(esns["rho 0.8"], u, x0, x1)
    _, _, large = plots.echo_state_trajectories(esns["rho 1.5"], u, x0, x1)
    assert small[-1] < 1e-12 < 1e-1 < large[-50:].min()  # forgets its start / does not
    fig = plots.plot_echo_state(esns, u, path=tmp_path / "echo.png")
    distance, *tops = fig.axes
    assert len(distance.get_lines()) == 2 + 1  # one per reservoir and the round-off line
    assert [len(ax.get_lines()) for ax in tops] == [2, 2]  # a unit from each initial state
    assert written(tmp_path / "echo.png").startswith(PNG)


def test_clipping_before_and_after(tracer, tmp_path):
    fig = plots.plot_clipping(tracer, tmp_path / "clip.png")
    ax = fig.axes[0]
    before, after, limit = ax.get_lines()
    np.testing.assert_allclose(before.get_ydata(), tracer.norms_before)
    np.testing.assert_allclose(after.get_ydata(), tracer.norms_after)
    assert limit.get_ydata()[0] == 0.05
    assert len(tracer.clip_events) >= 1 and len(ax.collections) == 1  # the clipped steps, marked
    assert written(tmp_path / "clip.png").startswith(PNG)
