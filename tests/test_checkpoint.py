"""tr.save / tr.load: round trips of nested state, the plain-.npz layout, atomic writes, and
clear errors for corrupt files, foreign files, bad keys and mismatched models."""
import os
import re

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import Tensor, checkpoint, nn, optim


def trained_lstm_and_adam(steps=3, hidden=8):
    """An nn.LSTM and an Adam that has taken a few steps on it (so it has moments and a step count)."""
    model = nn.LSTM(4, hidden)
    opt = optim.Adam(model.parameters(), lr=0.01, weight_decay=0.1, amsgrad=True)
    x = tr.randn(5, 2, 4)
    for _ in range(steps):
        output, _ = model(x)
        loss = (output ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model, opt


def example_state(model, opt, device="cpu"):
    return {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "epoch": 7, "loss": 0.125, "best": True, "stopped": False, "name": "run/1 é", "note": None,
        "history": [1.5, 2, "three", None, True], "empty": {},
        "extra": {"tensor": Tensor(np.arange(6.0).reshape(2, 3), device=device),
                  "ints": np.arange(4, dtype=np.int32), "scalar": np.float32(2.5),
                  "deeper": {"flags": np.array([True, False]), "nothing": {}}},
    }


def assert_same_tree(got, want, where="state"):
    """Same keys, same leaf values and types (arrays: same dtype, shape and values)."""
    if isinstance(want, dict):
        assert isinstance(got, dict), where
        assert sorted(got) == sorted(want), where
        for key in want:
            assert_same_tree(got[key], want[key], f"{where}/{key}")
    elif isinstance(want, Tensor):
        assert_same_tree(got, want.numpy(), where)
    elif isinstance(want, np.generic):  # a NumPy scalar comes back as one, of its dtype
        assert type(got) is type(want) and got == want, (where, got, want)
    elif isinstance(want, np.ndarray):
        assert isinstance(got, np.ndarray), where
        assert got.dtype == want.dtype and got.shape == np.shape(want), where
        np.testing.assert_array_equal(got, want, err_msg=where)
    elif isinstance(want, tuple):  # JSON has no tuple: tuples come back as lists
        assert_same_tree(got, list(want), where)
    else:
        assert type(got) is type(want) and got == want, (where, got, want)


def files_in(directory) -> list:
    return sorted(os.listdir(directory))


# ---------------------------------------------------------------- round trips
def test_round_trip_of_model_optimizer_and_python_values(tmp_path, device):
    model, opt = trained_lstm_and_adam()
    state = example_state(model, opt, device)
    returned = tr.save(state, tmp_path / "ckpt.npz")
    assert os.fspath(returned) == os.fspath(tmp_path / "ckpt.npz")
    loaded = tr.load(tmp_path / "ckpt.npz")
    assert_same_tree(loaded, state)
    assert loaded["empty"] == {} and loaded["extra"]["deeper"]["nothing"] == {}
    assert loaded["optimizer"]["state"]["0"]["step"] == 3  # an int, not an array
    assert files_in(tmp_path) == ["ckpt.npz"]


def test_a_restored_model_and_optimizer_behave_as_the_saved_ones(tmp_path):
    model, opt = trained_lstm_and_adam()
    tr.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, str(tmp_path / "ckpt.npz"))
    loaded = tr.load(str(tmp_path / "ckpt.npz"))
    tr.manual_seed(5)
    fresh = nn.LSTM(4, 8)
    fresh.load_state_dict(loaded["model"])
    fresh_opt = optim.Adam(fresh.parameters(), lr=0.5)
    fresh_opt.load_state_dict(loaded["optimizer"])
    assert (fresh_opt.lr, fresh_opt.weight_decay, fresh_opt.amsgrad) == (0.01, 0.1, True)
    x = tr.randn(3, 2, 4)
    for m, o in ((model, opt), (fresh, fresh_opt)):
        output, _ = m(x)
        o.zero_grad()
        output.sum().backward()
        o.step()
    for (name, a), (_, b) in zip(model.named_parameters(), fresh.named_parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)


def test_the_file_is_a_plain_npz_without_pickles(tmp_path):
    model, opt = trained_lstm_and_adam()
    tr.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3}, tmp_path / "c.npz")
    with np.load(tmp_path / "c.npz", allow_pickle=False) as data:
        names = set(data.files)
        for key, value in model.state_dict().items():
            np.testing.assert_array_equal(data[f"model/{key}"], value)
        np.testing.assert_array_equal(data["optimizer/state/1/exp_avg"], opt.state_dict()["state"]["1"]["exp_avg"])
        assert all(data[name].dtype != object for name in names)
    assert {"model/weight_ih_l0", "model/bias_hh_l0", "epoch", "__checkpoint__"} <= names


def test_saving_twice_to_one_path_replaces_the_checkpoint(tmp_path):
    tr.save({"a": np.zeros(2)}, tmp_path / "c.npz")
    tr.save({"b": np.ones(3)}, tmp_path / "c.npz")
    loaded = tr.load(tmp_path / "c.npz")
    assert list(loaded) == ["b"]
    np.testing.assert_array_equal(loaded["b"], np.ones(3))
    assert files_in(tmp_path) == ["c.npz"]


def test_an_empty_state_round_trips(tmp_path):
    tr.save({}, tmp_path / "c.npz")
    assert tr.load(tmp_path / "c.npz") == {}


# ---------------------------------------------------------------- atomic writes
class DiskFull(OSError):
    pass


def crash_mid_write(exception):
    """A stand-in for np.savez that writes part of a file and then fails."""
    def savez(file, *args, **kwargs):
        file.write(b"PK\x03\x04 partial checkpoint bytes " * 50)
        raise exception
    return savez


@pytest.mark.parametrize("exception", [DiskFull("No space left on device"), KeyboardInterrupt()],
                         ids=["oserror", "keyboard-interrupt"])
def test_a_crash_mid_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch, exception):
    path = tmp_path / "ckpt.npz"
    model, opt = trained_lstm_and_adam()
    good = {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 1}
    tr.save(good, path)
    good_bytes = path.read_bytes()

    model2, opt2 = trained_lstm_and_adam(steps=5)
    monkeypatch.setattr(checkpoint.np, "savez", crash_mid_write(exception))
    with pytest.raises(type(exception)):
        tr.save({"model": model2.state_dict(), "optimizer": opt2.state_dict(), "epoch": 2}, path)
    monkeypatch.undo()

    assert path.read_bytes() == good_bytes
    assert_same_tree(tr.load(path), good)
    assert files_in(tmp_path) == ["ckpt.npz"]  # no temporary file left behind


def test_a_crash_on_the_first_save_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint.np, "savez", crash_mid_write(DiskFull("No space left on device")))
    with pytest.raises(DiskFull):
        tr.save({"a": np.zeros(3)}, tmp_path / "ckpt.npz")
    assert files_in(tmp_path) == []


# ---------------------------------------------------------------- unreadable and foreign files
def good_checkpoint_bytes(tmp_path) -> bytes:
    model, opt = trained_lstm_and_adam(steps=1)
    tr.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, tmp_path / "good.npz")
    return (tmp_path / "good.npz").read_bytes()


@pytest.mark.parametrize("damage", ["first-half", "last-bytes-cut", "random-bytes", "empty", "flipped-middle"])
def test_a_corrupt_file_gives_a_value_error_naming_the_path(tmp_path, damage):
    data = good_checkpoint_bytes(tmp_path)
    if damage == "first-half":
        data = data[: len(data) // 2]
    elif damage == "last-bytes-cut":
        data = data[:-10]
    elif damage == "random-bytes":
        data = np.random.default_rng(0).bytes(len(data))
    elif damage == "empty":
        data = b""
    else:  # the archive's directory is intact; a stored array's bytes are not (the CRC check catches it)
        middle = bytearray(data)
        for i in range(len(data) // 2, len(data) // 2 + 16):
            middle[i] ^= 0xFF
        data = bytes(middle)
    path = tmp_path / "broken.npz"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=f"{re.escape(str(path))}.*not a readable checkpoint"):
        tr.load(path)


def test_a_plain_npz_without_manifest_gives_a_value_error_naming_the_path(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, weight=np.ones(3))
    with pytest.raises(ValueError, match=f"{re.escape(str(path))}.*not a tinygrad_rnn checkpoint"):
        tr.load(path)


def test_a_single_npy_array_gives_a_value_error_naming_the_path(tmp_path):
    path = tmp_path / "array.npz"
    with open(path, "wb") as file:
        np.save(file, np.ones(3))
    with pytest.raises(ValueError, match=f"{re.escape(str(path))}"):
        tr.load(path)


def test_a_newer_format_version_is_refused(tmp_path):
    path = tmp_path / "future.npz"
    np.savez(path, __checkpoint__=np.array('{"format": "tinygrad_rnn.checkpoint", "version": 99, '
                                           '"kinds": {}, "empty": []}'))
    with pytest.raises(ValueError, match=f"{re.escape(str(path))}.*version 99"):
        tr.load(path)


def test_a_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        tr.load(tmp_path / "nowhere.npz")


# ---------------------------------------------------------------- loading into the wrong model
def test_loading_into_a_model_of_a_different_size_names_the_mismatch(tmp_path):
    small = nn.LSTM(4, 8)
    tr.save({"model": small.state_dict()}, tmp_path / "c.npz")
    big = nn.LSTM(4, 16)
    before = big.state_dict()
    with pytest.raises(ValueError, match=r"shape mismatch.*weight_ih_l0: expected \(64, 4\), got \(32, 4\)"):
        big.load_state_dict(tr.load(tmp_path / "c.npz")["model"])
    for key, value in big.state_dict().items():  # nothing was half-loaded
        np.testing.assert_array_equal(value, before[key])


def test_loading_into_a_model_with_other_layers_names_the_keys(tmp_path):
    tr.save({"model": nn.LSTM(4, 8).state_dict()}, tmp_path / "c.npz")
    deeper = nn.LSTM(4, 8, num_layers=2)
    with pytest.raises(KeyError, match="missing keys.*weight_ih_l1"):
        deeper.load_state_dict(tr.load(tmp_path / "c.npz")["model"])


# ---------------------------------------------------------------- bad keys and values
@pytest.mark.parametrize("state", [{"a/b": np.zeros(1)}, {"model": {"layer/0": np.zeros(1)}},
                                   {"": np.zeros(1)}, {"x": {3: np.zeros(1)}}],
                         ids=["slash", "nested-slash", "empty-key", "int-key"])
def test_bad_keys_are_rejected_before_anything_is_written(tmp_path, state):
    with pytest.raises(ValueError, match="keys must be non-empty strings without '/'"):
        tr.save(state, tmp_path / "c.npz")
    assert files_in(tmp_path) == []


def test_unsupported_values_are_rejected(tmp_path):
    with pytest.raises(TypeError, match="cannot store object at 'x/y'"):
        tr.save({"x": {"y": object()}}, tmp_path / "c.npz")
    assert files_in(tmp_path) == []


def test_an_object_array_is_refused_and_the_previous_checkpoint_kept(tmp_path):
    """.npz stores an object array only by pickling it, which load() refuses: save() must refuse it
    before it replaces a good checkpoint with one that cannot be read."""
    path = tmp_path / "c.npz"
    tr.save({"good": np.ones(2)}, path)
    with pytest.raises(TypeError, match=r"'x/o' is an array of Python objects \(dtype object\)"):
        tr.save({"x": {"o": np.array([None, 1], dtype=object)}}, path)
    assert files_in(tmp_path) == ["c.npz"]
    np.testing.assert_array_equal(tr.load(path)["good"], np.ones(2))


def test_only_dicts_are_saved(tmp_path):
    with pytest.raises(TypeError, match="expects a dict"):
        tr.save([np.zeros(2)], tmp_path / "c.npz")
