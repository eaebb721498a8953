#!/usr/bin/env python3
"""A PyTorch trainer for Archon Fleet: an MLP on the 8x8 digits, through ``archon_trainer.pytorch``.

The same data as ``digits_mlp.py`` (scikit-learn's bundled digits, or ``ARCHON_DATASET_PATH``; the same fixed 20 %
validation split), the same model shape (64 -> ``hidden`` -> 10, ReLU) and SGD with momentum, written as people
write PyTorch: an ``nn.Module``, a ``DataLoader``, ``loss.backward()``. ``archon_trainer.pytorch.Training`` applies
the config Archon passes (micro-batch, gradient accumulation, learning rate and schedule, clipping, bfloat16
autocast for ``mixedPrecision``, checkpoint policy, resume) and reports steps, epochs and checkpoints.

Its failures are real: a learning rate of 1000 sends the loss to NaN in the first epochs (``diverging_loss``,
exit 3); a batch of 1024 with ``hidden`` 16384 needs ~0.5 GiB and is OOM-killed under a smaller cgroup limit (or
PyTorch's CPU allocator fails under an address-space limit: ``out_of_memory``), while batch 512 × accumulation 2,
Archon's answer, fits. Measurements: examples/trainers/README.md.

Hyperparameters: ``hidden`` (default 256), ``momentum`` (0.9), ``logEvery`` (optimiser steps between step events,
10), ``maxLoss`` (0 = only NaN/Inf count as divergence).
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
try:
    import archon_trainer
except ImportError:  # run from the repository, not installed: the package lives in clients/python
    sys.path.insert(0, os.path.normpath(os.path.join(HERE, "..", "..", "clients", "python")))
    import archon_trainer

RUN = archon_trainer.init()
_cores = RUN.config.get("resources", {}).get("cpuCores", 0) or 0
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, str(max(1, int(_cores))))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from archon_trainer.pytorch import Training  # noqa: E402

sys.path.insert(0, HERE)
from digits_mlp import training_split  # noqa: E402


def peak_memory():
    """(VmHWM, VmPeak) in MiB, from /proc/self/status."""
    found = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmPeak"):
                found[key] = int(rest.split()[0]) / 1024
    return found.get("VmHWM", 0.0), found.get("VmPeak", 0.0)


def train(run=RUN):
    cfg = run.config
    torch.set_num_threads(max(1, int(_cores)))
    hidden = run.hyperparameter("hidden", 256, int)
    momentum = run.hyperparameter("momentum", 0.9, float)
    source, x_all, y_all, train_idx, val_idx = training_split(run)
    x_train = torch.tensor(x_all[train_idx], dtype=torch.float32)
    y_train = torch.tensor(y_all[train_idx])
    x_val, y_val = torch.tensor(x_all[val_idx], dtype=torch.float32), torch.tensor(y_all[val_idx])

    torch.manual_seed(int(cfg.get("seed") or 0))
    model = nn.Sequential(nn.Linear(64, hidden), nn.LeakyReLU(0.01), nn.Linear(hidden, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg["learningRate"], momentum=momentum)
    batch = max(1, int(cfg["batchSize"]))
    micro_per_epoch = -(-len(y_train) // batch)
    accumulation = max(1, int(cfg.get("gradientAccumulationSteps", 1) or 1))
    training = Training(run, model, optimizer, steps_per_epoch=-(-micro_per_epoch // accumulation))
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x_train, y_train), batch_size=training.batch_size, shuffle=True,
        generator=torch.Generator().manual_seed(int(cfg.get("seed") or 0) + training.start_epoch))
    print(f"torch_mlp job={run.job_id} attempt={run.attempt} torch={torch.__version__} data={source} "
          f"train={len(y_train)} val={len(y_val)} hidden={hidden} batch={training.batch_size} "
          f"accum={training.accumulation} mixed={training.mixed} epochs={training.total_epochs}", flush=True)
    run.heartbeat()
    for epoch in training.epochs():
        model.train()
        for x, y in training.batches(loader):
            with training.autocast():
                loss = nn.functional.cross_entropy(model(x), y)
            training.backward(loss)
        model.eval()
        with torch.no_grad(), training.autocast():
            logits = model(x_val)
            validation = {"loss": nn.functional.cross_entropy(logits.float(), y_val).item(),
                          "accuracy": (logits.argmax(dim=1) == y_val).float().mean().item()}
        training.end_epoch(epoch, validation=validation)
        rss, vm = peak_memory()
        print(f"epoch {epoch}/{training.total_epochs} step={training.step} lr={training.current_learning_rate:.6g} "
              f"val_loss={validation['loss']:.4f} val_acc={validation['accuracy']:.3f} "
              f"peak_rss={rss:.0f}MiB peak_vm={vm:.0f}MiB", flush=True)


if __name__ == "__main__":
    RUN.main(train)
