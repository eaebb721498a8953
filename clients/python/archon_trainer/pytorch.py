"""Archon Fleet for a plain PyTorch training loop.

:class:`Training` applies the configuration Archon passes to this attempt — remediated after a failure — to a model
and optimiser, and reports through the contract::

    import torch
    import archon_trainer
    from archon_trainer.pytorch import Training

    run = archon_trainer.init()

    def train():
        model = make_model()
        optimizer = torch.optim.SGD(model.parameters(), lr=run.config["learningRate"])
        training = Training(run, model, optimizer, steps_per_epoch=...)   # optimiser steps in one epoch
        loader = DataLoader(data, batch_size=training.batch_size, shuffle=True)
        for epoch in training.epochs():                                    # resumes after the last checkpoint
            for x, y in training.batches(loader):                        # + a last step for a short group
                with training.autocast():
                    loss = torch.nn.functional.cross_entropy(model(x), y)
                training.backward(loss)                                    # accumulation, clipping, schedule, events
            training.end_epoch(epoch, validation={"loss": ..., "accuracy": ...})   # epoch event, checkpoint

    run.main(train)   # any exception -> error event (CUDA/CPU allocator OOM -> out_of_memory, NaN -> diverging_loss)

What it honours, field by field:

* ``batchSize``: :attr:`Training.batch_size` is the micro-batch to load; what one forward pass holds.
* ``gradientAccumulationSteps``: one optimiser step every N micro-batches, each loss scaled by 1/N, so batch B × N
  gives the same gradients as batch B·N (halving the batch and doubling this is how Archon answers an OOM).
* ``learningRate`` and ``lrSchedule``: the optimiser's learning rate is set from the config and follows the schedule
  per optimiser step (:func:`archon_trainer.schedule_factor`). On resume the checkpoint's optimiser and scheduler
  state are retargeted to the config's learning rate (:func:`retarget_learning_rate`): a cut ordered after a
  divergence is not undone by the restored state.
* ``gradientClipping``: the global L2 norm of the accumulated gradient clipped to ``maxNorm``.
* ``mixedPrecision``: :meth:`Training.autocast` runs the forward pass in bfloat16 on CPU, float16 with loss scaling
  on CUDA.
* ``epochs``, ``checkpoint.everyEpochs`` (and the final epoch), ``seed`` (``torch.manual_seed`` when non-zero).

A non-finite loss raises :class:`archon_trainer.DivergingLoss` before it reaches the weights.
"""

from __future__ import annotations

import contextlib
import math
import time

import torch

from . import DivergingLoss, Run, loss_diverges, schedule_factor

__all__ = ["Training", "lr_scheduler", "retarget_learning_rate"]


def lr_scheduler(optimizer, config, total_steps):
    """A ``LambdaLR`` that applies ``config``'s ``lrSchedule`` per optimiser step over ``total_steps``."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: schedule_factor(config, step, total_steps))


def retarget_learning_rate(optimizer_state, scheduler_state, learning_rate):
    """Scale a saved optimiser (and scheduler) state so that its base learning rate becomes ``learning_rate``.

    The states are ``state_dict()``s, changed in place and returned. The scheduler keeps its position: a schedule
    halfway through continues from the same factor of the new base. Returns the old base learning rate.
    """
    groups = optimizer_state.get("param_groups") or []
    if scheduler_state and scheduler_state.get("base_lrs"):
        old = float(scheduler_state["base_lrs"][0])
    elif groups:
        old = float(groups[0].get("initial_lr", groups[0].get("lr", learning_rate)))
    else:
        return learning_rate
    if old == learning_rate or old <= 0 or not math.isfinite(old):
        return old
    ratio = learning_rate / old
    for group in groups:
        for key in ("lr", "initial_lr"):
            if key in group:
                group[key] = group[key] * ratio
    if scheduler_state:
        for key in ("base_lrs", "_last_lr"):
            if scheduler_state.get(key):
                scheduler_state[key] = [lr * ratio for lr in scheduler_state[key]]
    return old


class Training:
    """One attempt's training with the config Archon passes (see the module docstring)."""

    def __init__(self, run: Run, model, optimizer, *, steps_per_epoch, device=None, log_every=None, max_loss=None):
        cfg = run.config
        self.run = run
        self.model = model
        self.optimizer = optimizer
        self.batch_size = max(1, int(cfg["batchSize"]))
        self.accumulation = max(1, int(cfg.get("gradientAccumulationSteps", 1) or 1))
        self.total_epochs = max(1, int(cfg["epochs"]))
        self.steps_per_epoch = max(1, int(steps_per_epoch))
        self.learning_rate = float(cfg["learningRate"])
        clipping = cfg.get("gradientClipping") or {}
        self.max_norm = float(clipping.get("maxNorm", 0) or 0) if clipping.get("enabled") else 0.0
        self.log_every = log_every or run.log_every
        self.max_loss = max_loss if max_loss is not None else run.max_loss
        if device is None:
            device = next((p.device for p in model.parameters()), torch.device("cpu"))
        self.device = torch.device(device)
        self.mixed = bool(cfg.get("mixedPrecision"))
        self.autocast_dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.mixed and self.device.type == "cuda")
        if int(cfg.get("seed", 0) or 0):
            torch.manual_seed(int(cfg["seed"]))
        for group in optimizer.param_groups:
            group["lr"] = self.learning_rate
            group.pop("initial_lr", None)
        self.scheduler = lr_scheduler(optimizer, cfg, self.total_epochs * self.steps_per_epoch)
        #: Optimiser steps taken, over all attempts.
        self.step = 0
        self._micro = 0
        self._epoch = 1
        self._epoch_started = time.monotonic()
        self._loss_sum = 0.0
        self._loss_count = 0
        self._last_report = time.monotonic()
        self._window_sum = 0.0
        self._window_count = 0
        self.start_epoch = self._resume()

    # ------------------------------------------------------------------ loop

    def epochs(self):
        """The epochs left to run, from 1 or after the checkpoint resumed from."""
        for epoch in range(self.start_epoch, self.total_epochs + 1):
            self._epoch = epoch
            self._epoch_started = time.monotonic()
            self._loss_sum, self._loss_count = 0.0, 0
            yield epoch

    def batches(self, loader):
        """The epoch's micro-batches from ``loader``; when it is exhausted, the optimiser steps on a last, shorter
        accumulation group, so that evaluation right after the loop sees every micro-batch applied."""
        yield from loader
        self.flush()

    def flush(self):
        """Steps the optimiser on micro-batches still waiting for their accumulation group, if any."""
        leftover = self._micro % self.accumulation
        if leftover:
            # Each micro-batch was scaled by 1/accumulation: rescale so the last, shorter group is a mean too.
            for p in self.model.parameters():
                if p.grad is not None:
                    p.grad.mul_(self.accumulation / leftover)
            self._optimizer_step()
        self._micro = 0

    def autocast(self):
        """The forward pass's precision context: mixed precision when the config asks for it."""
        if not self.mixed:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    @property
    def current_learning_rate(self):
        return float(self.optimizer.param_groups[0]["lr"])

    def backward(self, loss):
        """Back-propagates one micro-batch's (mean) loss; steps the optimiser every ``accumulation`` micro-batches.

        Returns the loss as a float. Raises :class:`DivergingLoss` for a NaN or infinite loss (or one above
        ``hyperparameters.maxLoss`` when set), before any weight changes.
        """
        value = float(loss.detach().float().item())
        if loss_diverges(value, self.max_loss):
            self.run.epoch(self._epoch, self.total_epochs, value, self.current_learning_rate,
                           time.monotonic() - self._epoch_started, self.step)
            raise DivergingLoss(f"loss is {value} at epoch {self._epoch}, step {self.step}")
        self.scaler.scale(loss / self.accumulation).backward()
        self._loss_sum += value
        self._loss_count += 1
        self._window_sum += value
        self._window_count += 1
        self._micro += 1
        if self._micro % self.accumulation == 0:
            self._optimizer_step()
        return value

    def end_epoch(self, epoch, loss=None, validation=None):
        """Finishes epoch ``epoch``: :meth:`flush`, the epoch event (``loss``
        defaults to the mean of the epoch's micro-batch losses), and a checkpoint when the policy asks for one."""
        self.flush()
        if loss is None:
            loss = self._loss_sum / self._loss_count if self._loss_count else float("nan")
        self.run.epoch(epoch, self.total_epochs, loss, self.current_learning_rate,
                       time.monotonic() - self._epoch_started, self.step, validation=validation)
        if self.run.should_checkpoint(epoch, final_epoch=self.total_epochs):
            self.save(epoch)

    # ------------------------------------------------------------------ checkpoints

    def state(self, epoch):
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": int(epoch),
            "step": int(self.step),
            "rng": torch.get_rng_state(),
        }

    def save(self, epoch):
        """Writes the checkpoint after ``epoch`` atomically and reports it; returns its path."""
        state = self.state(epoch)
        return self.run.save_checkpoint(epoch, self.step, lambda tmp: torch.save(state, tmp), suffix=".pt")

    def _resume(self):
        path = self.run.resume_path()
        if not path:
            return 1
        state = torch.load(path, map_location=self.device, weights_only=True)
        self.model.load_state_dict(state["model"])
        retarget_learning_rate(state["optimizer"], state["scheduler"], self.learning_rate)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"].cpu())
        self.step = int(state["step"])
        print(f"resuming from {path}: epoch {state['epoch']} done, step {self.step}; "
              f"continuing at epoch {state['epoch'] + 1}", flush=True)
        return int(state["epoch"]) + 1

    # ------------------------------------------------------------------ internals

    def _optimizer_step(self):
        if self.max_norm > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.max_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.step += 1
        if self.step % self.log_every == 0:
            now = time.monotonic()
            samples = self.log_every * self.accumulation * self.batch_size
            rate = samples / (now - self._last_report) if now > self._last_report else 0.0
            self._last_report = now
            mean = self._window_sum / self._window_count if self._window_count else float("nan")
            self._window_sum, self._window_count = 0.0, 0
            self.run.step(self.step, self._epoch, mean, self.current_learning_rate, rate)
