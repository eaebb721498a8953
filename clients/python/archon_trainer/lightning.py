"""Archon Fleet for PyTorch Lightning.

:func:`trainer_kwargs` turns the configuration Archon passes to this attempt — remediated after a failure — into
``pl.Trainer`` arguments, and adds :class:`ArchonCallback`, which reports through the contract and writes the
checkpoints Archon's policy asks for::

    import torch
    import pytorch_lightning as pl
    from torch.utils.data import DataLoader
    import archon_trainer
    from archon_trainer import lightning as archon_pl

    run = archon_trainer.init()

    class Model(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))

        def training_step(self, batch, batch_idx):
            x, y = batch
            return torch.nn.functional.cross_entropy(self.net(x), y)        # a tensor, or a dict with "loss"

        def validation_step(self, batch, batch_idx):
            x, y = batch
            logits = self.net(x)
            self.log("val_loss", torch.nn.functional.cross_entropy(logits, y))   # reported in the epoch event
            self.log("val_acc", (logits.argmax(1) == y).float().mean())

        def configure_optimizers(self):
            optimizer = torch.optim.SGD(self.parameters(), lr=run.config["learningRate"])
            # optimiser steps in one epoch (after gradient accumulation), as Lightning counts them
            steps = self.trainer.estimated_stepping_batches // self.trainer.max_epochs
            return archon_pl.configure_optimizers(run, optimizer, steps)

    def train():
        if run.config["seed"]:
            pl.seed_everything(run.config["seed"])
        train_loader = DataLoader(train_data, batch_size=run.config["batchSize"], shuffle=True)   # your Datasets
        val_loader = DataLoader(val_data, batch_size=run.config["batchSize"])
        trainer = pl.Trainer(**archon_pl.trainer_kwargs(run))        # more Trainer arguments as keywords
        # ckpt_path: resume after the last checkpoint, None for a fresh start
        trainer.fit(Model(), train_loader, val_loader, ckpt_path=archon_pl.ckpt_path(run))

    run.main(train)   # any exception -> error event; a NaN loss -> diverging_loss, exit 3

What it honours, field by field:

* ``batchSize``: the micro-batch; the script's DataLoader uses it.
* ``gradientAccumulationSteps``: ``accumulate_grad_batches``.
* ``learningRate`` and ``lrSchedule``: :func:`configure_optimizers` sets the optimiser's learning rate from the config
  and steps :func:`archon_trainer.pytorch.lr_scheduler` every optimiser step. On resume the checkpoint's optimiser and
  scheduler states are retargeted to the config's learning rate before Lightning restores them
  (:meth:`ArchonCallback.on_load_checkpoint`): a cut ordered after a divergence is not undone by the restored state.
* ``gradientClipping``: ``gradient_clip_val`` = ``maxNorm`` with the "norm" algorithm.
* ``mixedPrecision``: ``precision`` "bf16-mixed" on CPU, "16-mixed" (float16 with loss scaling) on CUDA.
* ``epochs``: ``max_epochs``; ``checkpoint.everyEpochs`` (and the final epoch): one ``.ckpt`` file per checkpoint,
  written by ``trainer.save_checkpoint`` at the end of the training epoch (after its validation), atomically, and
  reported. Lightning's own checkpointing is off: Archon's policy decides, and the agent keeps the last few.
* ``hyperparameters.logEvery`` (default 10): a ``step`` event every that many optimiser steps.
  ``hyperparameters.maxLoss`` (when > 0): a batch loss above it counts as diverging, like NaN or infinity.

A NaN or infinite loss raises :class:`archon_trainer.DivergingLoss` from the callback, after an ``epoch`` event that
carries it (so the loss curve Archon watches shows where it broke). The callback sees the loss once Lightning has
stepped the optimiser on that batch: the weights in memory are spoiled, the checkpoints on disk are not. Lightning
lets an exception out of ``trainer.fit`` after its ``on_exception`` hooks, and :meth:`archon_trainer.Run.main`
reports it and exits 3.

The ``epoch`` event's validation is ``val_loss`` and ``val_acc`` (or ``val_accuracy``) from
``trainer.callback_metrics``, present only when validation ran during that epoch. Metrics logged in the
LightningModule's own ``on_train_epoch_end`` come after the callback's and are not seen. Events are sent from global
rank 0 only. The callback needs a strategy that writes a checkpoint as one file (a single device, DDP).

This module uses ``pytorch_lightning``, else ``lightning.pytorch``: the Trainer, the LightningModule and the callback
must come from the same package.
"""

from __future__ import annotations

import time

import torch

try:
    import pytorch_lightning as pl
except ImportError:
    try:
        import lightning.pytorch as pl  # the unified "lightning" package
    except ImportError as e:
        raise ImportError("archon_trainer.lightning needs PyTorch Lightning: pip install pytorch-lightning") from e

from . import DivergingLoss, Run, loss_diverges
from .pytorch import lr_scheduler, retarget_learning_rate

__all__ = ["ArchonCallback", "ckpt_path", "configure_optimizers", "trainer_kwargs"]


def trainer_kwargs(run: Run, **overrides):
    """Keyword arguments for ``pl.Trainer`` from ``run.config``; ``overrides`` win, except that ``callbacks`` given
    are added after :class:`ArchonCallback`."""
    cfg = run.config
    clipping = cfg.get("gradientClipping") or {}
    max_norm = float(clipping.get("maxNorm", 0) or 0) if clipping.get("enabled") else 0.0
    if cfg.get("mixedPrecision"):
        on_cuda = torch.cuda.is_available() and overrides.get("accelerator", "auto") in ("auto", "gpu", "cuda")
        precision = "16-mixed" if on_cuda else "bf16-mixed"
    else:
        precision = "32-true"
    kwargs = {
        "max_epochs": max(1, int(cfg["epochs"])),
        "accumulate_grad_batches": max(1, int(cfg.get("gradientAccumulationSteps", 1) or 1)),
        "gradient_clip_val": max_norm if max_norm > 0 else None,
        "gradient_clip_algorithm": "norm" if max_norm > 0 else None,
        "precision": precision,
        "enable_checkpointing": False,
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
    }
    callbacks = [ArchonCallback(run)]
    extra = overrides.pop("callbacks", None)
    if isinstance(extra, pl.Callback):
        callbacks.append(extra)
    elif extra:
        callbacks.extend(extra)
    kwargs.update(overrides)
    kwargs["callbacks"] = callbacks
    return kwargs


def configure_optimizers(run: Run, optimizer, steps_per_epoch):
    """What a LightningModule's ``configure_optimizers`` returns: ``optimizer`` at the config's learning rate, with
    the config's ``lrSchedule`` stepped every optimiser step.

    ``steps_per_epoch`` counts optimiser steps, after gradient accumulation
    (``trainer.estimated_stepping_batches // trainer.max_epochs``); the cosine schedule spans ``epochs`` of them.
    """
    cfg = run.config
    for group in optimizer.param_groups:
        group["lr"] = float(cfg["learningRate"])
        group.pop("initial_lr", None)
    total_steps = max(1, int(cfg["epochs"])) * max(1, int(steps_per_epoch))
    return {"optimizer": optimizer,
            "lr_scheduler": {"scheduler": lr_scheduler(optimizer, cfg, total_steps), "interval": "step"}}


def ckpt_path(run: Run):
    """The checkpoint to resume from (``trainer.fit(..., ckpt_path=ckpt_path(run))``), or None for a fresh start."""
    return run.resume_path() or None


def _loss_value(outputs):
    """The loss in what ``training_step`` returned (a tensor or a dict with "loss"), as a float; None when absent."""
    if isinstance(outputs, dict):
        outputs = outputs.get("loss")
    if outputs is None:
        return None
    if isinstance(outputs, torch.Tensor):
        return float(outputs.detach().float().item())
    return float(outputs)


def _batch_size(batch, default):
    """The number of samples in ``batch``: the first dimension of its first tensor."""
    while isinstance(batch, (list, tuple, dict)) and batch:
        batch = next(iter(batch.values())) if isinstance(batch, dict) else batch[0]
    if isinstance(batch, torch.Tensor) and batch.dim() > 0:
        return int(batch.shape[0])
    return default


class ArchonCallback(pl.Callback):
    """Reports ``step`` and ``epoch`` events, writes the checkpoints ``checkpoint.everyEpochs`` asks for, raises
    :class:`archon_trainer.DivergingLoss` on a diverging loss and retargets the learning rate of a resumed
    checkpoint (see the module docstring)."""

    def __init__(self, run: Run, log_every=None, max_loss=None):
        self.run = run
        self.log_every = max(1, int(log_every or run.log_every))
        self.max_loss = max_loss if max_loss is not None else run.max_loss
        self._epoch_started = time.monotonic()
        self._epoch_loss, self._epoch_batches = 0.0, 0
        self._report_loss, self._report_batches, self._report_samples = 0.0, 0, 0
        self._reported_step = 0
        self._last_report = time.monotonic()
        self._validated = False

    # ------------------------------------------------------------------ hooks

    def on_train_start(self, trainer, pl_module):
        self._reported_step = trainer.global_step  # a resumed run reports from the steps it takes itself
        self._last_report = time.monotonic()

    def on_train_epoch_start(self, trainer, pl_module):
        self._epoch_started = time.monotonic()
        self._epoch_loss, self._epoch_batches = 0.0, 0
        self._validated = False

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        value = _loss_value(outputs)
        if value is None:  # training_step returned None: the batch was skipped
            return
        if pl_module.automatic_optimization:
            # Lightning hands on the loss divided by accumulate_grad_batches (what it back-propagates).
            value *= trainer.accumulate_grad_batches
        epoch = trainer.current_epoch + 1
        if loss_diverges(value, self.max_loss):
            # The epoch's loss as it stands, so that the loss curve Archon watches shows where it diverged.
            self._emit_epoch(trainer, epoch, value, validation=None)
            raise DivergingLoss(f"loss is {value} at epoch {epoch}, step {trainer.global_step}")
        self._epoch_loss += value
        self._epoch_batches += 1
        self._report_loss += value
        self._report_batches += 1
        self._report_samples += _batch_size(batch, int(self.run.config["batchSize"]))
        step = trainer.global_step
        if step > self._reported_step and step % self.log_every == 0:
            now = time.monotonic()
            rate = self._report_samples / (now - self._last_report) if now > self._last_report else 0.0
            if trainer.is_global_zero:
                self.run.step(step, epoch, self._report_loss / self._report_batches, self._learning_rate(trainer),
                              rate)
            self._reported_step = step
            self._last_report = now
            self._report_loss, self._report_batches, self._report_samples = 0.0, 0, 0

    def on_validation_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self._validated = True

    def on_train_epoch_end(self, trainer, pl_module):
        # Lightning 2.x runs the epoch's validation before this hook, so callback_metrics hold its results.
        epoch = trainer.current_epoch + 1
        loss = self._epoch_loss / self._epoch_batches if self._epoch_batches else float("nan")
        self._emit_epoch(trainer, epoch, loss, validation=self._validation(trainer) if self._validated else None)
        if self.run.should_checkpoint(epoch, final_epoch=self._total_epochs(trainer)):
            self._save(trainer, epoch)

    def on_load_checkpoint(self, trainer, pl_module, checkpoint):
        """Retargets the saved optimiser and scheduler states to the config's learning rate.

        Lightning calls this with the loaded checkpoint dict before it restores the optimisers and schedulers from
        that same dict, so the change is what they are restored to.
        """
        learning_rate = float(self.run.config["learningRate"])
        schedulers = checkpoint.get("lr_schedulers") or []
        for i, optimizer_state in enumerate(checkpoint.get("optimizer_states") or []):
            old = retarget_learning_rate(optimizer_state, schedulers[i] if i < len(schedulers) else None,
                                         learning_rate)
            if old != learning_rate and trainer.is_global_zero:
                print(f"resuming with learning rate {learning_rate} (the checkpoint's was {old})", flush=True)

    # ------------------------------------------------------------------ internals

    def _total_epochs(self, trainer):
        if trainer.max_epochs is not None and trainer.max_epochs > 0:
            return int(trainer.max_epochs)
        return max(1, int(self.run.config["epochs"]))

    @staticmethod
    def _learning_rate(trainer):
        return float(trainer.optimizers[0].param_groups[0]["lr"]) if trainer.optimizers else float("nan")

    @staticmethod
    def _validation(trainer):
        metrics = trainer.callback_metrics
        if "val_loss" not in metrics:
            return None
        validation = {"loss": float(metrics["val_loss"])}
        accuracy = metrics.get("val_acc", metrics.get("val_accuracy"))
        if accuracy is not None:
            validation["accuracy"] = float(accuracy)
        return validation

    def _emit_epoch(self, trainer, epoch, loss, validation):
        if trainer.is_global_zero:
            self.run.epoch(epoch, self._total_epochs(trainer), loss, self._learning_rate(trainer),
                           time.monotonic() - self._epoch_started, trainer.global_step, validation=validation)

    def _save(self, trainer, epoch):
        """Writes the checkpoint after ``epoch``. Saved here, in on_train_epoch_end (as ModelCheckpoint does), it
        resumes at the start of the next epoch."""
        if trainer.is_global_zero:
            self.run.save_checkpoint(epoch, trainer.global_step,
                                     lambda tmp: trainer.save_checkpoint(tmp, weights_only=False), suffix=".ckpt")
        else:
            # Every rank takes part in trainer.save_checkpoint; with DDP only rank 0 writes.
            trainer.save_checkpoint(self.run.checkpoint_path(epoch, suffix=".ckpt"), weights_only=False)
