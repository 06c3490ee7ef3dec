"""`tinygrad-rnn train`: train one model on one task, with checkpoints, resume and Ctrl-C.

A checkpoint (tr.save: one .npz, written atomically) holds the model's and the optimizer's
state_dicts, the number of steps done, the settings ("args"), the training losses so far, and
for the character task its vocabulary and the state carried into the next window. Training
batch s is drawn from the seed (seed, s), so a resumed run continues exactly as an uninterrupted
one would have. Ctrl-C finishes the step in progress, saves, and exits with status 130.
"""
from __future__ import annotations

import math
import os

import numpy as np

from ..checkpoint import save
from ..factories import manual_seed
from ..tensor import Tensor
from .build import (DEFAULT_LR, DEFAULTS, OPTIMIZERS, SEQ_LEN, build_model, build_task, make_optimizer,
                    resolve)
from .common import (DTYPES, HelpFormatter, StopRequest, device_of, nonnegative_float, nonnegative_int,
                     positive_float, positive_int, read_checkpoint, writable_file)
from .loop import evaluate, train_step
from .progress import Progress
from .errors import UsageError
from .tasks import TASKS

__all__ = ["add_parser", "run"]

MODELS = ("rnn", "lstm", "gru", "esn")
INTERRUPTED = 130  # the exit status of a program stopped by SIGINT (128 + 2)

EPILOG = """\
tasks:
  adding        the sum of two marked values in a sequence (MSE; 0.167 = learned nothing)
  copy          replay 10 symbols after --seq-len blank steps (cross-entropy per step)
  sine          next value of a random sine wave (MSE)
  mackey-glass  next value of the chaotic Mackey-Glass series (MSE)
  chars         next character of a text: Tiny Shakespeare, or --text FILE (cross-entropy)

examples:
  tinygrad-rnn train --task adding --model lstm --seq-len 50 --steps 2000
  tinygrad-rnn train --task chars --model gru --hidden 256 --bptt 100 --checkpoint shakespeare.npz
  tinygrad-rnn train --resume shakespeare.npz --steps 5000     # go on to step 5000
  tinygrad-rnn train --task mackey-glass --model esn --hidden 500
"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a model on a task (checkpoints, resume, Ctrl-C saves)",
        description="Train an RNN, LSTM, GRU or echo state network on a sequence task. Prints progress and the "
                    "final validation metric; saves checkpoints every --save-every steps, at the end, and on "
                    "Ctrl-C (exit status 130). Options left out when resuming keep the checkpoint's values.",
        epilog=EPILOG, formatter_class=HelpFormatter)
    p.add_argument("--task", choices=TASKS, help=f"what to learn (default {DEFAULTS['task']})")
    p.add_argument("--model", choices=MODELS, help=f"the recurrent cell (default {DEFAULTS['model']}); "
                   "esn only for sine and mackey-glass")
    p.add_argument("--hidden", type=positive_int, metavar="N",
                   help="hidden units (default 64; esn: 300 reservoir units)")
    p.add_argument("--layers", type=positive_int, metavar="N", help="stacked recurrent layers (default 1)")
    p.add_argument("--steps", type=positive_int, metavar="N",
                   help="train until this many steps are done in all, counting resumed ones "
                        f"(default {DEFAULTS['steps']})")
    p.add_argument("--batch", type=positive_int, metavar="N", help=f"sequences per step (default {DEFAULTS['batch']})")
    p.add_argument("--seq-len", type=positive_int, metavar="T",
                   help="sequence length; for copy the blank delay; for chars the window unless --bptt "
                        f"(defaults: {', '.join(f'{k} {v}' for k, v in SEQ_LEN.items())})")
    p.add_argument("--lr", type=positive_float, metavar="X",
                   help="learning rate (default by optimizer: "
                        + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LR.items()) + ")")
    p.add_argument("--optimizer", choices=sorted(OPTIMIZERS), help=f"(default {DEFAULTS['optimizer']})")
    p.add_argument("--clip", type=nonnegative_float, metavar="X",
                   help="clip the gradient norm to X before each update; 0: no clipping "
                        f"(default {DEFAULTS['clip']:g})")
    p.add_argument("--bptt", type=positive_int, metavar="K",
                   help="truncated BPTT: update every K steps, carrying the state between windows (default: full BPTT)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (cuda needs CuPy; default cpu)")
    p.add_argument("--dtype", choices=sorted(DTYPES), help="(default float32; esn float64)")
    p.add_argument("--seed", type=int, help=f"seeds the weights and the data (default {DEFAULTS['seed']})")
    p.add_argument("--text", metavar="FILE", help="--task chars: train on this UTF-8 text (default: the packaged "
                   "Tiny Shakespeare excerpt)")
    p.add_argument("--checkpoint", metavar="PATH", help="where to save (default: the --resume file, else "
                   "checkpoints/<task>-<model>.npz)")
    p.add_argument("--save-every", type=nonnegative_int, metavar="N",
                   help=f"also save every N steps; 0: only at the end (default {DEFAULTS['save_every']})")
    p.add_argument("--resume", metavar="PATH", help="continue training from this checkpoint")
    p.set_defaults(run=run)


def run(args) -> int:
    given = {k: getattr(args, k) for k in list(DEFAULTS) + ["hidden", "seq_len", "lr", "dtype"]}
    saved = read_checkpoint(args.resume) if args.resume else None
    settings = resolve(given, saved["args"] if saved else None)
    device = device_of(args.device)
    path = args.checkpoint or args.resume or os.path.join("checkpoints", f"{settings['task']}-{settings['model']}.npz")
    writable_file(path, "--checkpoint")
    if settings["model"] == "esn":
        if saved:
            raise UsageError("an echo state network is fitted in one go, so there is nothing to resume: run the "
                             "command without --resume to fit it again")
        return _fit_esn(settings, device, path)

    task = build_task(settings, saved.get("vocab") if saved else None)
    manual_seed(settings["seed"])
    model = build_model(task, settings, device, fused="sequence")  # nothing drawn or traced: the fastest form
    optimizer = make_optimizer(settings, model)
    step, losses, carry = 0, [], None
    if saved:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        optimizer.to(device)
        step, losses, carry = int(saved["step"]), list(saved.get("losses", [])), _carry_from(saved, settings, device)
    print(_headline(settings, task, device, step))
    if step >= settings["steps"]:
        print(f"the checkpoint has done {step} of --steps {settings['steps']}: nothing to train; "
              "raise --steps to go on")

    def checkpoint(done: int) -> None:
        save({"args": settings, "step": done, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
              "losses": losses, "vocab": task.vocab.chars if task.vocab else None, "carry": _carry_to(carry)}, path)

    dtype = DTYPES[settings["dtype"]]
    interrupted = False
    with StopRequest() as stop, Progress(settings["steps"], settings["model"].upper(), start=step) as bar:
        try:
            while step < settings["steps"] and not stop.requested:
                if task.period and step % task.period == 0:
                    carry = None  # a new pass over the text starts from a zero state
                x, y = task.tensors(*task.batch(step, settings["batch"]), dtype, device)
                loss, _, carry = train_step(model, task, optimizer, x, y, settings["clip"],
                                            None if task.period else settings["bptt"], carry)
                losses.append(loss)
                step += 1
                bar.update(loss=float(np.mean(losses[-50:])))
                if settings["save_every"] and step % settings["save_every"] == 0 and step < settings["steps"]:
                    checkpoint(step)
        except KeyboardInterrupt:
            interrupted = True
    if interrupted or stop.requested:
        checkpoint(step)
        print(f"interrupted after step {step} of {settings['steps']}: checkpoint saved to {path}\n"
              f"resume with: tinygrad-rnn train --resume {path}")
        return INTERRUPTED
    checkpoint(step)
    metric = evaluate(model, task, dtype, device)
    print(_result(task, metric))
    if not math.isfinite(metric):
        print("the loss is not finite: lower --lr, or clip the gradient (--clip 1)")
    print(f"checkpoint: {path} (step {step})")
    return 0


def _fit_esn(settings: dict, device: str, path: str) -> int:
    """Fit an echo state network's readout on one batch of --batch sequences (ridge regression,
    the first quarter of each sequence as washout) and score it on the validation batch."""
    task = build_task(settings)
    esn = build_model(task, settings, device)
    print(f"fitting an echo state network ({settings['hidden']} reservoir units) on {task.name}: "
          f"{settings['batch']} sequences of {settings['seq_len']} steps")
    warmup = settings["seq_len"] // 4
    x, y = task.batch(0, settings["batch"])
    esn.fit(x, y, warmup=warmup)
    esn.reset_state()
    x_val, y_val = task.validation
    prediction = esn.predict(Tensor(x_val, dtype=esn.W.dtype, device=device)).numpy()
    metric = float(np.mean((prediction[warmup:] - y_val[warmup:]) ** 2))
    save({"args": settings, "step": 1, "model": esn.state_dict(), "optimizer": {}, "losses": [], "vocab": None,
          "carry": {}}, path)
    print(_result(task, metric) + f" (after a washout of {warmup} steps)")
    print(f"checkpoint: {path}")
    return 0


def _headline(settings: dict, task, device: str, step: int) -> str:
    clip = f"clip {settings['clip']:g}" if settings["clip"] else "no clipping"
    bptt = f", truncated BPTT every {settings['bptt']} steps" if settings["bptt"] else ""
    begin = f"resuming at step {step}: " if step else ""
    return (f"{begin}{settings['model'].upper()} ({settings['layers']} x {settings['hidden']} units) on {task.name} "
            f"(T = {settings['seq_len']}), {settings['optimizer']} lr {settings['lr']:g}, {clip}{bptt}, "
            f"batch {settings['batch']}, {settings['steps']} steps, {device} {settings['dtype']}")


def _result(task, metric: float) -> str:
    return f"validation {task.metric}: {metric:.4g}   (baseline {task.baseline:.4g}: {task.baseline_note})"


def _carry_to(carry) -> dict:
    """The carried state as a checkpoint entry: {"0": h} or {"0": h, "1": c}."""
    if carry is None:
        return {}
    states = carry if isinstance(carry, tuple) else (carry,)
    return {str(i): s.numpy() for i, s in enumerate(states)}


def _carry_from(saved: dict, settings: dict, device: str):
    """The carried state saved by _carry_to, as Tensors of the model's dtype on `device` (or None)."""
    entries = saved.get("carry") or {}
    if not entries:
        return None
    dtype = DTYPES[settings["dtype"]]
    states = tuple(Tensor(entries[str(i)], dtype=dtype, device=device) for i in range(len(entries)))
    return states if len(states) > 1 else states[0]
