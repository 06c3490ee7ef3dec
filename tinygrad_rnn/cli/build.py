"""From settings (command-line names and numbers) to objects: the task, the model, the optimizer;
and back from a checkpoint of `tinygrad-rnn train` to the model it holds.

Settings are a plain dict (saved in every checkpoint under "args"), filled from the command
line, then the checkpoint being resumed, then the defaults below.
"""
from __future__ import annotations

from .. import nn, optim
from .chars import make_chars_task
from .common import DTYPES
from .errors import UsageError
from .tasks import SequenceModel, Task, make_task

__all__ = ["DEFAULTS", "SEQ_LEN", "OPTIMIZERS", "DEFAULT_LR", "ARCHITECTURE", "SERIES_TASKS", "resolve",
           "build_task", "build_model", "char_model", "make_optimizer", "restore_model"]

OPTIMIZERS = {"sgd": optim.SGD, "adam": optim.Adam, "rmsprop": optim.RMSprop, "adagrad": optim.Adagrad}
DEFAULT_LR = {"sgd": 0.1, "adam": 3e-3, "rmsprop": 1e-3, "adagrad": 0.05}
SEQ_LEN = {"adding": 50, "copy": 20, "sine": 50, "mackey-glass": 100, "chars": 100}
DEFAULTS = {"task": "adding", "model": "lstm", "layers": 1, "steps": 1000, "batch": 32, "optimizer": "adam",
            "clip": 1.0, "bptt": None, "seed": 0, "save_every": 200, "text": None}
ARCHITECTURE = ("task", "model", "hidden", "layers")  # fixed once a model is trained
SERIES_TASKS = ("sine", "mackey-glass")               # what an echo state network can learn
EMBEDDING = 32                                        # the character model's embedding size


def resolve(given: dict, saved: dict = None) -> dict:
    """Every setting: given (not None) > saved (a checkpoint's "args") > default. Changing the
    architecture of a saved model is a UsageError."""
    saved = saved or {}
    settings = {}
    for key in list(DEFAULTS) + ["hidden", "seq_len", "lr", "dtype"]:
        value = given.get(key)
        if key in ARCHITECTURE and value is not None and key in saved and value != saved[key]:
            raise UsageError(f"--{key.replace('_', '-')} {value}: the checkpoint's model has {saved[key]}; "
                             "leave it out to resume that model")
        settings[key] = value if value is not None else saved.get(key, DEFAULTS.get(key))
    esn = settings["model"] == "esn"
    settings["hidden"] = settings["hidden"] or (300 if esn else 64)
    settings["seq_len"] = settings["seq_len"] or SEQ_LEN[settings["task"]]
    settings["dtype"] = settings["dtype"] or ("float64" if esn else "float32")
    if settings["lr"] is None and not esn:
        settings["lr"] = DEFAULT_LR[settings["optimizer"]]
    check(settings)
    return settings


def check(settings: dict) -> None:
    """UsageError for combinations that cannot work, saying what would."""
    task, model = settings["task"], settings["model"]
    if model == "esn" and task not in SERIES_TASKS:
        raise UsageError(f"--model esn is an echo state network: a fixed reservoir with a readout fitted in closed "
                         f"form to predict a series' next value; use it with --task sine or --task mackey-glass, "
                         f"not --task {task}")
    if settings["text"] is not None and task != "chars":
        raise UsageError(f"--text is the training text of --task chars; --task {task} makes its own data")
    if settings["bptt"] is not None and task == "adding":
        raise UsageError("--bptt: the adding problem's target is read at the last step only, so truncated BPTT "
                         "would never carry its gradient back to the marked values; leave --bptt out")
    if settings["bptt"] is not None and model == "esn":
        raise UsageError("--bptt: an echo state network is not trained by backpropagation; leave --bptt out")


def build_task(settings: dict, vocab_chars: str = None) -> Task:
    """The Task of the settings (vocab_chars: a saved character model's vocabulary)."""
    if settings["task"] == "chars":
        window = settings["bptt"] or settings["seq_len"]
        return make_chars_task(settings["text"], settings["batch"], window, vocab_chars)
    try:
        return make_task(settings["task"], settings["seq_len"], settings["seed"])
    except ValueError as error:
        raise UsageError(str(error)) from None


def build_model(task: Task, settings: dict, device: str, fused=True):
    """The model of the settings for the task: CharRNN for characters, nn.ESN for --model esn,
    else a SequenceModel (recurrent layer + linear readout); `fused` as for nn.LSTM."""
    dtype = DTYPES[settings["dtype"]]
    cell, hidden, layers = settings["model"], settings["hidden"], settings["layers"]
    if cell == "esn":
        return nn.ESN(task.input_size, hidden, spectral_radius=0.9, leak_rate=0.5, input_scaling=0.5,
                      seed=settings["seed"], dtype=dtype, device=device)
    if task.vocab is not None:
        return char_model(len(task.vocab), settings, device, fused)
    return SequenceModel(cell, task.input_size, hidden, task.output_size, layers, last_only=task.last_only,
                         fused=fused, dtype=dtype, device=device)


def char_model(vocab_size: int, settings: dict, device: str, fused=True):
    """The CharRNN of the settings for a vocabulary of vocab_size characters."""
    return nn.CharRNN(vocab_size, settings["hidden"], settings["layers"], cell=settings["model"],
                      embedding_dim=EMBEDDING, fused=fused, dtype=DTYPES[settings["dtype"]], device=device)


def make_optimizer(settings: dict, model):
    """The optimizer of the settings over the model's parameters."""
    return OPTIMIZERS[settings["optimizer"]](model.parameters(), lr=settings["lr"])


def restore_model(state: dict, device: str, fused=True) -> tuple:
    """(model with the checkpoint's weights, its task (None for characters: the text may be
    gone; the vocabulary is in the checkpoint), its settings) from a checkpoint of `train`.
    fused=False rebuilds the composite form (every gate an op, for drawings)."""
    settings = resolve({}, state["args"])
    if settings["task"] == "chars":
        task, model = None, char_model(len(state["vocab"]), settings, device, fused)
    else:
        task = build_task(settings)
        model = build_model(task, settings, device, fused)
    try:
        model.load_state_dict(state["model"])
    except (KeyError, ValueError) as error:
        raise UsageError(f"the checkpoint's weights do not fit its settings: {error}") from None
    return model, task, settings
