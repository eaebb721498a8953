#!/usr/bin/env python3
"""A real trainer for Archon Fleet: a one-hidden-layer MLP on the 8x8 digits set, in numpy.

The data are the 1797 handwritten digits (8x8 pixels, values 0..16, labels 0..9)
bundled with scikit-learn as ``sklearn/datasets/data/digits.csv.gz``. The file is
read straight from the installed package (sklearn itself is never imported, so
start-up stays fast); ``ARCHON_DATASET_PATH`` overrides it with a file in the same
format (``.csv.gz`` or ``.csv``: 65 comma-separated numbers a row, label last) or an
``.npz`` with ``images`` (N x 64 or N x 8 x 8) and ``target`` (N), or a directory
holding ``digits.csv.gz``, ``digits.csv`` or ``digits.npz``.

What it honours from ``ARCHON_CONFIG`` (see ``clients/python/archon_trainer/__init__.py``):
batchSize (micro-batch), gradientAccumulationSteps (one optimiser step every N
micro-batches: effective batch = batchSize * N; activations are those of one
micro-batch), learningRate, lrSchedule (constant / exponential / cosine / step, per
optimiser step), gradientClipping (global L2 norm), mixedPrecision (float32 instead
of float64: half the activation memory), epochs, dataSubset (fraction of the
training split), checkpoint.everyEpochs (plus the final epoch), dataQualityCheck,
seed, resources.cpuCores (BLAS threads, 1 when 0) and the hyperparameters
``hidden`` (hidden width, default 64: activation memory is about
25 * batchSize * hidden bytes in float64) and ``logEvery`` (optimiser steps between
step events, default 10). 20% of the data (a fixed split) is the validation set.

Failures are real: a missing dataset raises FileNotFoundError, an unreadable one
PermissionError, garbage bytes DataCorruption (and, with dataQualityCheck, NaN or
out-of-range pixels too); a too-high learning rate drives the loss to NaN
(reported, exit 3); a too-large batch with a large ``hidden`` exhausts a memory
limit (MemoryError under RLIMIT_AS, SIGKILL under a cgroup). See README.md.
"""

from __future__ import annotations

import errno
import glob
import gzip
import importlib.util
import io
import json
import math
import os
import resource
import sys
import time
import zipfile
import zlib

try:
    import archon_trainer
except ImportError:  # run from the repository: the helper lives in clients/python
    sys.path.insert(0, os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python")))
    import archon_trainer

from archon_trainer import DataCorruption

RUN = archon_trainer.init()
CFG = RUN.config

# BLAS threads must be fixed before numpy is imported.
_cores = CFG.get("resources", {}).get("cpuCores", 0) or 0
_threads = str(max(1, int(_cores))) if _cores else "1"
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, _threads)

import numpy as np  # noqa: E402

N_CLASSES = 10
N_PIXELS = 64
SPLIT_SEED = 20240611  # the train/validation split is the same for every attempt
LEAK = 0.01  # leaky-ReLU slope for negative inputs


def log(msg):
    print(msg, flush=True)


# --------------------------------------------------------------------------- data


def bundled_digits_path():
    """Path of digits.csv.gz inside the installed scikit-learn, without importing it."""
    candidates = []
    try:
        spec = importlib.util.find_spec("sklearn")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            candidates.append(os.path.join(loc, "datasets", "data", "digits.csv.gz"))
    # Debian's python3-sklearn, for an interpreter other than the one it was packaged for.
    candidates += sorted(glob.glob("/usr/lib/python3*/dist-packages/sklearn/datasets/data/digits.csv.gz"))
    candidates += sorted(glob.glob("/usr/local/lib/python3*/*-packages/sklearn/datasets/data/digits.csv.gz"))
    for c in candidates:
        if os.path.isfile(c):
            return c
    raise FileNotFoundError(
        errno.ENOENT,
        "bundled digits dataset not found; install scikit-learn (python3 -m pip install scikit-learn) "
        "or set ARCHON_DATASET_PATH",
        "sklearn/datasets/data/digits.csv.gz",
    )


def _resolve(path):
    if os.path.isdir(path):
        for name in ("digits.csv.gz", "digits.csv", "digits.npz"):
            p = os.path.join(path, name)
            if os.path.exists(p):
                return p
        raise FileNotFoundError(errno.ENOENT, "no digits.csv.gz, digits.csv or digits.npz in the dataset directory", path)
    return path


def _parse(path, raw):
    """(images float64 N x 64, raw labels float64 N) from the file's bytes; DataCorruption if unparsable."""
    try:
        if path.endswith(".npz"):
            with np.load(io.BytesIO(raw), allow_pickle=False) as z:
                images = np.asarray(z["images"], dtype=np.float64).reshape(-1, N_PIXELS)
                labels = np.asarray(z["target"], dtype=np.float64).reshape(-1)
        else:
            text = gzip.decompress(raw) if (path.endswith(".gz") or raw[:2] == b"\x1f\x8b") else raw
            rows = np.loadtxt(io.StringIO(text.decode("utf-8")), delimiter=",", dtype=np.float64, ndmin=2)
            if rows.shape[1] != N_PIXELS + 1:
                raise DataCorruption(f"{path}: expected {N_PIXELS + 1} columns a row, found {rows.shape[1]}")
            images, labels = rows[:, :N_PIXELS], rows[:, N_PIXELS]
    except DataCorruption:
        raise
    except (OSError, EOFError, ValueError, KeyError, UnicodeDecodeError, zlib.error, zipfile.BadZipFile) as e:
        if isinstance(e, (FileNotFoundError, PermissionError)):
            raise
        raise DataCorruption(f"{path}: unreadable dataset ({type(e).__name__}: {e})") from e
    if images.shape[0] != labels.shape[0]:
        raise DataCorruption(f"{path}: {images.shape[0]} images but {labels.shape[0]} labels")
    if images.shape[0] < N_CLASSES:
        raise DataCorruption(f"{path}: only {images.shape[0]} samples")
    return images, labels


def load_digits(path, quality_check):
    """(X float64 N x 64 in [0, 1], y int N). Missing/unreadable files raise the natural OSError."""
    path = _resolve(path)
    with open(path, "rb") as f:  # FileNotFoundError / PermissionError surface here, untouched
        raw = f.read()
    images, labels = _parse(path, raw)
    # Labels index the one-hot targets: always validated.
    if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)) or labels.min() < 0 or labels.max() >= N_CLASSES:
        raise DataCorruption(f"{path}: labels must be integers 0..9")
    if quality_check:
        bad = ~np.isfinite(images)
        if bad.any():
            raise DataCorruption(f"{path}: {int(bad.sum())} non-finite pixel values (data quality check)")
        if images.min() < 0 or images.max() > 16:
            raise DataCorruption(f"{path}: pixel values outside 0..16 (data quality check)")
        missing = sorted(set(range(N_CLASSES)) - set(labels.astype(np.int64).tolist()))
        if missing:
            raise DataCorruption(f"{path}: no samples of classes {missing} (data quality check)")
    return images / 16.0, labels.astype(np.int64)


# --------------------------------------------------------------------------- model


def init_params(rng, hidden, dtype):
    w1 = rng.standard_normal((N_PIXELS, hidden)) * math.sqrt(2.0 / N_PIXELS)
    w2 = rng.standard_normal((hidden, N_CLASSES)) * math.sqrt(1.0 / hidden)
    return {
        "W1": w1.astype(dtype),
        "b1": np.zeros(hidden, dtype),
        "W2": w2.astype(dtype),
        "b2": np.zeros(N_CLASSES, dtype),
    }


def forward_backward(p, xb, yb):
    """Mean cross-entropy of the micro-batch and its gradients.

    Activations kept for the backward pass: a1 and the leaky-ReLU slope (B x H each),
    then the hidden gradient (B x H): about 3 B x H floats at the peak.
    """
    b = xb.shape[0]
    dtype = p["W1"].dtype
    z1 = xb @ p["W1"]
    z1 += p["b1"]
    slope = np.where(z1 > 0, dtype.type(1), dtype.type(LEAK))
    a1 = z1
    a1 *= slope  # leaky ReLU, in place
    logits = a1 @ p["W2"]
    logits += p["b2"]
    shifted = logits - logits.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(b)
    loss = float(-logp[rows, yb].mean())
    d = np.exp(logp)
    d[rows, yb] -= 1
    d /= b
    grads = {"W2": a1.T @ d, "b2": d.sum(axis=0)}
    da1 = d @ p["W2"].T
    da1 *= slope
    del slope
    grads["W1"] = xb.T @ da1
    grads["b1"] = da1.sum(axis=0)
    return loss, grads


def evaluate(p, x, y, chunk):
    """(mean loss, accuracy) over x in chunks of ``chunk`` rows."""
    total, correct = 0.0, 0
    for s in range(0, x.shape[0], chunk):
        xb, yb = x[s:s + chunk], y[s:s + chunk]
        z1 = xb @ p["W1"] + p["b1"]
        a1 = np.where(z1 > 0, z1, LEAK * z1)
        logits = a1 @ p["W2"] + p["b2"]
        shifted = logits - logits.max(axis=1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        total += float(-logp[np.arange(len(yb)), yb].sum())
        correct += int((logits.argmax(axis=1) == yb).sum())
    return total / x.shape[0], correct / x.shape[0]


def training_split(run):
    """(source, X, y, training indices, validation indices): the run's dataset (``ARCHON_DATASET_PATH`` or the bundled
    digits), a fixed 20 % validation split, and ``dataSubset`` of the rest."""
    cfg = run.config
    source = _resolve(run.dataset_path) if run.dataset_path else bundled_digits_path()
    x_all, y_all = load_digits(source, bool(cfg.get("dataQualityCheck")))
    order = np.random.default_rng(SPLIT_SEED).permutation(len(y_all))
    n_val = len(y_all) // 5
    val_idx, train_idx = order[:n_val], order[n_val:]
    subset = float(cfg.get("dataSubset") or 0)
    if 0 < subset < 1:
        train_idx = train_idx[: max(1, int(round(len(train_idx) * subset)))]
    return source, x_all, y_all, train_idx, val_idx


def learning_rate(cfg, step, total_steps):
    return float(cfg["learningRate"]) * archon_trainer.schedule_factor(cfg, step, total_steps)


def peak_memory():
    """'rss=..MiB vm=..MiB' peaks from /proc/self/status (falls back to getrusage)."""
    out = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("VmHWM:", "VmPeak:")):
                    k, v = line.split(":", 1)
                    out[k] = int(v.split()[0]) / 1024
    except OSError:
        pass
    rss = out.get("VmHWM", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return f"peak_rss={rss:.0f}MiB peak_vm={out.get('VmPeak', 0):.0f}MiB"


# --------------------------------------------------------------------------- checkpoints


def save(run, params, velocity, epoch, step, rng, hidden):
    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez(
                f,
                epoch=np.int64(epoch),
                step=np.int64(step),
                hidden=np.int64(hidden),
                rng_state=np.array(json.dumps(rng.bit_generator.state)),
                **params,
                **{"v_" + k: v for k, v in velocity.items()},
            )

    path = run.save_checkpoint(epoch, step, write, suffix=".npz")
    log(f"checkpoint {path}")


def load(path, hidden, dtype, rng):
    with np.load(path, allow_pickle=False) as z:
        if int(z["hidden"]) != hidden:
            raise ValueError(f"checkpoint {path} has hidden={int(z['hidden'])}, config says {hidden}")
        params = {k: z[k].astype(dtype) for k in ("W1", "b1", "W2", "b2")}
        velocity = {k: z["v_" + k].astype(dtype) for k in params}
        rng.bit_generator.state = json.loads(str(z["rng_state"]))
        return params, velocity, int(z["epoch"]), int(z["step"])


# --------------------------------------------------------------------------- training


def train(run=RUN):
    cfg = run.config
    hidden = run.hyperparameter("hidden", 64, int)
    log_every = run.log_every
    momentum = run.hyperparameter("momentum", 0.9, float)
    batch = max(1, int(cfg["batchSize"]))
    accum = max(1, int(cfg["gradientAccumulationSteps"]))
    epochs = int(cfg["epochs"])
    dtype = np.float32 if cfg.get("mixedPrecision") else np.float64
    clip = cfg.get("gradientClipping") or {}
    clip_norm = float(clip.get("maxNorm", 0) or 0) if clip.get("enabled") else 0.0

    source, x_all, y_all, train_idx, val_idx = training_split(run)
    x_train, y_train = x_all[train_idx].astype(dtype), y_all[train_idx]
    x_val, y_val = x_all[val_idx].astype(dtype), y_all[val_idx]
    n = len(y_train)
    micro_per_epoch = math.ceil(n / batch)
    steps_per_epoch = math.ceil(micro_per_epoch / accum)
    total_steps = steps_per_epoch * epochs

    rng = np.random.default_rng(int(cfg.get("seed") or 0))
    params = init_params(rng, hidden, dtype)
    velocity = {k: np.zeros_like(v) for k, v in params.items()}
    start_epoch, step = 1, 0
    resume = run.resume_path()
    if resume:
        params, velocity, done_epoch, step = load(resume, hidden, dtype, rng)
        start_epoch = done_epoch + 1
        log(f"resuming from {resume}: epoch {done_epoch} done, step {step}; continuing at epoch {start_epoch}")
    log(f"digits_mlp job={run.job_id} attempt={run.attempt} data={source} train={n} val={len(y_val)} "
        f"hidden={hidden} batch={batch} accum={accum} dtype={np.dtype(dtype).name} epochs={epochs}")
    run.heartbeat()
    if start_epoch > epochs:
        log(f"nothing to do: all {epochs} epochs already done")
        return

    lr = learning_rate(cfg, step, total_steps)
    for epoch in range(start_epoch, epochs + 1):
        t0 = time.monotonic()
        perm = rng.permutation(n)
        loss_sum, seen = 0.0, 0
        acc, acc_samples, acc_micro = None, 0, 0
        window_t, window_samples = time.monotonic(), 0
        for mb in range(micro_per_epoch):
            idx = perm[mb * batch:(mb + 1) * batch]
            xb, yb = x_train[idx], y_train[idx]
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                loss, grads = forward_backward(params, xb, yb)
            loss_sum += loss * len(idx)
            seen += len(idx)
            if archon_trainer.loss_diverges(loss, run.max_loss):
                mean = loss_sum / seen
                run.epoch(epoch, epochs, mean, lr, time.monotonic() - t0, step)
                log(f"epoch {epoch}/{epochs} loss {mean} at step {step}: diverged")
                run.check_finite(loss, epoch=epoch, step=step, max_loss=run.max_loss)  # raises DivergingLoss
            # accumulate sample-weighted gradients; the step uses their mean over the effective batch
            if acc is None:
                acc = {k: g * len(idx) for k, g in grads.items()}
            else:
                for k, g in grads.items():
                    acc[k] += g * len(idx)
            acc_samples += len(idx)
            acc_micro += 1
            del grads
            if acc_micro == accum or mb == micro_per_epoch - 1:
                for k in acc:
                    acc[k] /= acc_samples
                if clip_norm > 0:
                    norm = math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in acc.values()))
                    if norm > clip_norm:
                        for k in acc:
                            acc[k] *= clip_norm / norm
                lr = learning_rate(cfg, step, total_steps)
                with np.errstate(over="ignore", invalid="ignore"):
                    for k in params:  # SGD with (heavy-ball) momentum
                        velocity[k] *= momentum
                        velocity[k] += acc[k]
                        params[k] -= dtype(lr) * velocity[k]
                step += 1
                window_samples += acc_samples
                acc, acc_samples, acc_micro = None, 0, 0
                if step % log_every == 0:
                    now = time.monotonic()
                    run.step(step, epoch, loss, lr, window_samples / max(now - window_t, 1e-9))
                    window_t, window_samples = now, 0
        mean = loss_sum / seen
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            val_loss, val_acc = evaluate(params, x_val, y_val, batch)
        duration = time.monotonic() - t0
        run.epoch(epoch, epochs, mean, lr, duration, step, validation={"loss": val_loss, "accuracy": val_acc})
        log(f"epoch {epoch}/{epochs} loss {mean:.4f} val_loss {val_loss:.4f} val_acc {val_acc:.4f} "
            f"lr {lr:.5g} step {step} {duration:.2f}s {peak_memory()}")
        if not math.isfinite(mean):
            run.check_finite(mean, epoch=epoch, step=step)
        if run.should_checkpoint(epoch, final_epoch=epochs):
            save(run, params, velocity, epoch, step, rng, hidden)
    log(f"done: {epochs} epochs, {step} steps, {peak_memory()}")


if __name__ == "__main__":
    RUN.main(train)
