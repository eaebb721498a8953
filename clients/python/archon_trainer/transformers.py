"""Archon Fleet for Hugging Face ``transformers``' ``Trainer``.

:func:`training_arguments` turns the configuration Archon passes to this attempt (remediated after a failure) into
``TrainingArguments``; :class:`ArchonTrainer` (a ``Trainer``) reports through the contract and turns the Trainer's
own checkpoints into Archon checkpoints; :func:`resume_checkpoint` turns ``ARCHON_RESUME_FROM`` back into a
checkpoint folder the Trainer resumes from::

    import transformers
    import archon_trainer
    from archon_trainer.transformers import ArchonTrainer, resume_checkpoint, training_arguments

    run = archon_trainer.init()

    def accuracy(prediction):
        return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}

    def train():
        args = training_arguments(run, eval_strategy="epoch")        # overrides: any TrainingArguments field
        transformers.set_seed(args.seed)                              # before the model: its initial weights too
        model = transformers.AutoModelForSequenceClassification.from_config(...)   # or from_pretrained(...)
        trainer = ArchonTrainer(model=model, args=args, run=run, train_dataset=train_data, eval_dataset=eval_data,
                                compute_metrics=accuracy)
        trainer.train(resume_from_checkpoint=resume_checkpoint(run))   # None on a fresh start
        trainer.save_model("/models/final")                         # the final model: outside ARCHON_CHECKPOINT_DIR

    run.main(train)   # any exception -> error event (OOM -> out_of_memory, NaN -> diverging_loss, exit 3)

What it honours, field by field:

* ``batchSize`` -> ``per_device_train_batch_size``; ``gradientAccumulationSteps`` -> ``gradient_accumulation_steps``
  (halving the batch and doubling this, Archon's answer to an OOM, keeps the optimiser steps per epoch).
* ``learningRate`` -> ``learning_rate`` (the Trainer's AdamW). ``lrSchedule``: :class:`ArchonTrainer` builds the
  scheduler itself, ``archon_trainer.pytorch.lr_scheduler`` over the Trainer's own count of optimiser steps, so all
  four kinds follow :func:`archon_trainer.schedule_factor` exactly (``warmup_*`` arguments are not used). A plain
  ``Trainer`` gets ``lr_scheduler_type`` "constant" or "cosine" (identical to Archon's without warmup); it has no
  equivalent of "exponential" and "step" (:class:`ArchonCallback` warns).
* ``gradientClipping`` -> ``max_grad_norm`` (0 when disabled: the Trainer clips only when it is above 0).
* ``mixedPrecision`` -> ``fp16`` on CUDA (with loss scaling); ``bf16`` elsewhere, with ``use_cpu`` on a machine
  without an accelerator (the Trainer then autocasts the forward pass to bfloat16 on the CPU).
* ``epochs`` -> ``num_train_epochs``; ``seed`` -> ``seed`` when non-zero; ``hyperparameters.logEvery`` (default 10)
  -> ``logging_steps``, one ``step`` event per log; ``hyperparameters.maxLoss`` (0 = off) as in the other adapters.
* ``checkpoint.everyEpochs`` and the final epoch: the Trainer saves its checkpoint folder only after those epochs,
  and the folder is packed into one file, ``ckpt-epoch-0003.hf.zip`` (the agent checksums single files).
  ``checkpoint.everySteps`` is not used (end-of-epoch checkpoints only, like the other adapters).

Checkpoints and resume go through the Trainer's own mechanism: model, optimiser, scheduler, scaler, RNG states and
``trainer_state.json``. The Trainer writes them in a scratch folder, ``output_dir`` (default
``<ARCHON_CHECKPOINT_DIR>/.hf-trainer``: same disk as the checkpoints, never a ``ckpt-*`` name); each folder is deleted
once packed, and the scratch folders are removed at the end of training. On resume the zip is unpacked into
``<ARCHON_CHECKPOINT_DIR>/.hf-resume`` and its optimiser and scheduler state are set to the config's learning rate
(:func:`archon_trainer.pytorch.retarget_learning_rate`): a cut ordered after a divergence is not undone by the
restored state. The Trainer counts finished epochs as ``global_step // optimiser steps per epoch``, so the epoch
resumed at is right as long as the effective batch (``batchSize`` x ``gradientAccumulationSteps``) is unchanged,
which Archon's remediations keep.

A NaN or infinite loss (or one above ``maxLoss``) raises :class:`archon_trainer.DivergingLoss` out of
``trainer.train()``: :class:`ArchonTrainer` checks every micro-batch's loss before the optimiser steps; the callback
alone checks each logged loss (``logging_nan_inf_filter`` is off, or the Trainer would hide NaN losses).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
import warnings
import zipfile

import torch
import transformers  # the library: absolute import, not this module
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from . import DataCorruption, Run, init, loss_diverges
from .pytorch import lr_scheduler, retarget_learning_rate

__all__ = ["ArchonCallback", "ArchonTrainer", "SUFFIX", "resume_checkpoint", "training_arguments"]

#: Suffix of the checkpoint files: a zip of the Trainer's checkpoint folder.
SUFFIX = ".hf.zip"
#: Scratch folders inside ``ARCHON_CHECKPOINT_DIR``: the Trainer's own checkpoints, and the unpacked resume checkpoint.
OUTPUT_DIRNAME = ".hf-trainer"
RESUME_DIRNAME = ".hf-resume"
#: Written into each zip next to the Trainer's files.
METADATA_NAME = "archon-checkpoint.json"


def _default_output_dir(run):
    return os.path.join(run.checkpoint_dir, OUTPUT_DIRNAME)


def _default_resume_dir(run):
    return os.path.join(run.checkpoint_dir, RESUME_DIRNAME)


def training_arguments(run: Run, output_dir=None, **overrides) -> transformers.TrainingArguments:
    """``TrainingArguments`` with the config's batch, accumulation, learning rate, schedule, clipping, precision,
    epochs, seed and logging, and checkpointing left to Archon (see the module docstring).

    ``output_dir`` is a scratch folder for the Trainer's own checkpoint folders (default
    ``<ARCHON_CHECKPOINT_DIR>/.hf-trainer``). ``overrides`` are any ``TrainingArguments`` fields and win, e.g.
    ``eval_strategy="epoch"`` with an eval dataset (evaluation is off by default), ``dataloader_num_workers=4``.
    """
    cfg = run.config
    clipping = cfg.get("gradientClipping") or {}
    schedule = (cfg.get("lrSchedule") or {}).get("kind", "constant")
    kwargs = dict(
        output_dir=output_dir or _default_output_dir(run),
        per_device_train_batch_size=max(1, int(cfg["batchSize"])),
        gradient_accumulation_steps=max(1, int(cfg.get("gradientAccumulationSteps", 1) or 1)),
        learning_rate=float(cfg["learningRate"]),
        lr_scheduler_type="cosine" if schedule == "cosine" else "constant",
        num_train_epochs=max(1, int(cfg["epochs"])),
        max_grad_norm=float(clipping.get("maxNorm", 0) or 0) if clipping.get("enabled") else 0.0,
        logging_strategy="steps",
        logging_steps=run.log_every,
        logging_nan_inf_filter=False,  # else a NaN loss is logged as the mean of the previous ones
        report_to="none",
        disable_tqdm=True,
        save_strategy="epoch",  # ArchonCallback keeps only the epochs checkpoint.everyEpochs asks for
        save_total_limit=1,
        save_only_model=False,  # optimiser, scheduler and RNG states are needed to resume
    )
    if cfg.get("mixedPrecision"):
        if torch.cuda.is_available() and not overrides.get("use_cpu"):
            kwargs["fp16"] = True
        else:
            kwargs["bf16"] = True
            if not _bf16_accelerator():
                kwargs["use_cpu"] = True  # the Trainer refuses bf16 without an accelerator unless told it is the CPU
    if int(cfg.get("seed", 0) or 0):
        kwargs["seed"] = int(cfg["seed"])
    kwargs.update(overrides)
    return transformers.TrainingArguments(**kwargs)


def _bf16_accelerator():
    try:
        from transformers.utils import is_torch_bf16_gpu_available
    except ImportError:  # pragma: no cover - older transformers
        return False
    return bool(is_torch_bf16_gpu_available())


# --------------------------------------------------------------------------- events, divergence, checkpoints


class ArchonCallback(transformers.TrainerCallback):
    """Reports the Trainer's progress through the contract and turns its epoch checkpoints into Archon's.

    * a ``step`` event for each logged training loss (every ``logging_steps``), which is checked first: NaN, infinite
      or above ``max_loss`` (default ``hyperparameters.maxLoss``, 0 = off) raises :class:`DivergingLoss`, after an
      ``epoch`` event with that loss;
    * an ``epoch`` event per epoch: the mean of the epoch's logged losses (its last steps are logged at the epoch's
      end), the learning rate, the duration, the steps so far, and ``validation`` (``eval_loss``,
      ``eval_accuracy``) when the epoch is evaluated. The Trainer evaluates after ``on_epoch_end``, so the event
      waits for ``on_evaluate`` then (and comes before the epoch's ``checkpoint`` event either way);
    * saves only after the epochs ``checkpoint.everyEpochs`` asks for (and the final one), and packs each of those
      checkpoint folders into ``ckpt-epoch-NNNN.hf.zip`` with :meth:`Run.save_checkpoint`;
    * a ``heartbeat`` when nothing was sent for a while during long steps or evaluations.
    """

    def __init__(self, run: Run, max_loss=None):
        self.run = run
        self.max_loss = max_loss if max_loss is not None else run.max_loss
        self.total_epochs = max(1, int(run.config["epochs"]))
        heartbeat = int((run.config.get("timeouts") or {}).get("heartbeatSeconds", 0) or 0)
        self.heartbeat_every = heartbeat / 4 if heartbeat > 0 else 30.0
        self._epoch = 1
        self._epoch_started = time.monotonic()
        self._loss_sum, self._loss_steps = 0.0, 0
        self._logged_step = 0
        self._last_log = time.monotonic()
        self._last_event = time.monotonic()
        self._pending = None  # the finished epoch whose event waits for its last log and its evaluation
        self._epoch_done = False
        self._resume_cleaned = False

    # ------------------------------------------------------------------ loop

    def on_train_begin(self, args, state, control, **kwargs):
        self._logged_step = state.global_step
        self._last_log = self._last_event = time.monotonic()
        self._resume_cleaned = False
        # A resumed TrainerState brings the checkpoint's logging/eval/save intervals; this attempt's arguments win.
        state.compute_steps(args, state.max_steps)
        scheduler, optimizer = kwargs.get("lr_scheduler"), kwargs.get("optimizer")
        if getattr(scheduler, "archon_schedule", False):
            # Resumed, the optimiser holds the learning rate of the checkpoint's schedule for the next step; take
            # this config's instead (the same unless remediation changed lrSchedule, e.g. to exponential decay).
            for group, base, factor in zip(optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
                group["lr"] = base * factor(scheduler.last_epoch)
            scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]
        else:
            kind = (self.run.config.get("lrSchedule") or {}).get("kind", "constant")
            if kind in ("exponential", "step"):
                warnings.warn(f"lrSchedule {kind!r} is applied by ArchonTrainer's scheduler; this Trainer's "
                              f"{type(scheduler).__name__} does not follow it")

    def on_epoch_begin(self, args, state, control, **kwargs):
        self._epoch = math.floor(state.epoch + 1e-9) + 1  # epochs done so far, also after a resume
        self._epoch_started = time.monotonic()
        self._loss_sum, self._loss_steps = 0.0, 0
        self._pending = None
        self._epoch_done = False

    def on_step_begin(self, args, state, control, **kwargs):
        if not self._resume_cleaned:  # the Trainer has read all of the resume checkpoint by now (RNG state last)
            self._resume_cleaned = True
            shutil.rmtree(_default_resume_dir(self.run), ignore_errors=True)

    def on_step_end(self, args, state, control, **kwargs):
        self._beat()

    def on_substep_end(self, args, state, control, **kwargs):
        self._beat()

    def on_prediction_step(self, args, state, control, **kwargs):
        self._beat()

    def on_log(self, args, state, control, logs=None, optimizer=None, **kwargs):
        logs = logs or {}
        if "loss" in logs:
            loss = float(logs["loss"])
            lr = float(logs.get("learning_rate", _lr(optimizer)))
            steps = state.global_step - self._logged_step
            self.check(loss, state, lr)
            now = time.monotonic()
            samples = steps * args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
            rate = samples / (now - self._last_log) if now > self._last_log else 0.0
            self._last_log = now
            self._logged_step = state.global_step
            self._loss_sum += loss * steps
            self._loss_steps += steps
            self._emit(state, lambda: self.run.step(state.global_step, self._epoch, loss, lr, rate))
        self._finish_epoch(state, optimizer)

    def on_epoch_end(self, args, state, control, optimizer=None, **kwargs):
        self._epoch_done = True
        control.should_log = True  # log the epoch's last steps: its mean loss is then complete
        # The Trainer saves after every epoch (save_strategy="epoch"); keep only the checkpoints Archon wants.
        control.should_save = self.run.should_checkpoint(self._epoch, final_epoch=self.total_epochs)
        self._pending = {"evaluate": bool(control.should_evaluate), "validation": None}
        self._finish_epoch(state, optimizer)

    def on_evaluate(self, args, state, control, metrics=None, optimizer=None, **kwargs):
        if self._pending is not None and self._pending["evaluate"]:
            metrics = metrics or {}
            if "eval_loss" in metrics:
                self._pending["validation"] = {"loss": metrics["eval_loss"],
                                               "accuracy": metrics.get("eval_accuracy", 0.0)}
            self._pending["evaluate"] = False
            self._finish_epoch(state, optimizer)

    def on_save(self, args, state, control, **kwargs):
        if not self._epoch_done or not state.is_world_process_zero:
            return  # a mid-epoch save (a save_strategy override): the Trainer's own, not an Archon checkpoint
        if not self.run.should_checkpoint(self._epoch, final_epoch=self.total_epochs):
            return
        folder = os.path.join(args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}")
        meta = {"epoch": self._epoch, "step": state.global_step, "transformers": transformers.__version__}
        self.run.save_checkpoint(self._epoch, state.global_step, lambda tmp: _pack(folder, tmp, meta), suffix=SUFFIX)
        if not args.load_best_model_at_end:  # packed: the Trainer's copy is no longer needed
            shutil.rmtree(folder, ignore_errors=True)

    def on_train_end(self, args, state, control, **kwargs):
        self.cleanup(args)

    def cleanup(self, args):
        """Removes the default scratch folders: the unpacked resume checkpoint, and the Trainer's output folder
        when empty (its checkpoint folders are deleted as they are packed)."""
        shutil.rmtree(_default_resume_dir(self.run), ignore_errors=True)
        if os.path.abspath(args.output_dir) == _default_output_dir(self.run):
            try:
                os.rmdir(args.output_dir)
            except OSError:
                pass

    # ------------------------------------------------------------------ divergence

    def check(self, loss, state, learning_rate):
        """Raise :class:`DivergingLoss` for a NaN or infinite ``loss``, or one above ``max_loss``; after an
        ``epoch`` event with that loss, which shows the controller where the loss went bad."""
        value = float(loss)
        if not loss_diverges(value, self.max_loss):
            return value
        self._emit(state, lambda: self.run.epoch(self._epoch, self.total_epochs, value, learning_rate,
                                                 time.monotonic() - self._epoch_started, state.global_step))
        return Run.check_finite(value, epoch=self._epoch, step=state.global_step, max_loss=self.max_loss)

    # ------------------------------------------------------------------ internals

    def _finish_epoch(self, state, optimizer):
        """Sends the finished epoch's event once its last steps are logged and its evaluation (if any) is done."""
        pending = self._pending
        if pending is None or pending["evaluate"] or self._logged_step != state.global_step:
            return
        self._pending = None
        if not self._loss_steps:
            return  # an epoch without a single step (an exhausted iterable dataset): nothing to report
        loss = self._loss_sum / self._loss_steps
        self._emit(state, lambda: self.run.epoch(self._epoch, self.total_epochs, loss, _lr(optimizer),
                                                 time.monotonic() - self._epoch_started, state.global_step,
                                                 validation=pending["validation"]))

    def _emit(self, state, send):
        if state.is_world_process_zero:
            send()
            self._last_event = time.monotonic()

    def _beat(self):
        if time.monotonic() - self._last_event >= self.heartbeat_every:
            self.run.heartbeat()
            self._last_event = time.monotonic()


def _lr(optimizer):
    try:
        return float(optimizer.param_groups[0]["lr"])
    except (AttributeError, IndexError, KeyError, TypeError):
        return float("nan")


def _pack(folder, target, meta):
    """Zips the checkpoint folder ``folder`` into ``target``, uncompressed (weights do not compress; speed does)."""
    if not os.path.isdir(folder):
        raise RuntimeError(f"the Trainer's checkpoint folder {folder} does not exist")  # not the dataset's fault
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        zf.writestr(METADATA_NAME, json.dumps(meta))
        for root, dirs, files in os.walk(folder):
            dirs.sort()
            for name in sorted(files):
                path = os.path.join(root, name)
                zf.write(path, os.path.relpath(path, folder))


# --------------------------------------------------------------------------- resume


def resume_checkpoint(run: Run, scratch_dir=None):
    """The checkpoint folder to pass as ``trainer.train(resume_from_checkpoint=...)``, or None for a fresh start.

    Unpacks ``ARCHON_RESUME_FROM`` (a ``.hf.zip`` this adapter wrote) into ``scratch_dir`` (default
    ``<ARCHON_CHECKPOINT_DIR>/.hf-resume``, emptied first and removed by :class:`ArchonCallback` once the Trainer has
    read it) and sets its optimiser and scheduler state to the config's ``learningRate``, keeping the schedule's
    position. An unreadable zip raises :class:`archon_trainer.DataCorruption` naming the file, which the agent
    reports as the checkpoint's fault (``checkpoint_unavailable``), not the dataset's.
    """
    path = run.resume_path()
    if not path:
        return None
    target = os.path.abspath(scratch_dir or _default_resume_dir(run))
    shutil.rmtree(target, ignore_errors=True)
    os.makedirs(target)
    try:
        with zipfile.ZipFile(path) as zf:
            zf.extractall(target)  # names are sanitised: nothing lands outside target
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as e:
        raise DataCorruption(f"checkpoint {path} is not a readable zip: {e}") from e
    if not os.path.isfile(os.path.join(target, "trainer_state.json")):
        raise DataCorruption(f"checkpoint {path} is not a Trainer checkpoint (no trainer_state.json)")
    _retarget(target, float(run.config["learningRate"]))
    meta = {}
    try:
        with open(os.path.join(target, METADATA_NAME), encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError):
        pass
    if meta:
        print(f"resuming from {path}: epoch {meta.get('epoch')} done, step {meta.get('step')}; "
              f"continuing at epoch {int(meta.get('epoch', 0)) + 1}", flush=True)
    return target


def _retarget(folder, learning_rate):
    """Rewrites ``optimizer.pt`` and ``scheduler.pt`` in ``folder`` for base learning rate ``learning_rate``."""
    opt_path = os.path.join(folder, "optimizer.pt")
    sched_path = os.path.join(folder, "scheduler.pt")
    if not os.path.isfile(opt_path):
        return  # saved without optimiser state: the Trainer starts a new one at args.learning_rate
    # weights_only, as the Trainer loads them; mmap: the optimiser's moments stay on disk while the groups change.
    optimizer_state = torch.load(opt_path, map_location="cpu", weights_only=True, mmap=True)
    scheduler_state = torch.load(sched_path, weights_only=True) if os.path.isfile(sched_path) else None
    old = retarget_learning_rate(optimizer_state, scheduler_state, learning_rate)
    if old == learning_rate:
        return
    print(f"learning rate {old:g} -> {learning_rate:g} (config) in the resumed optimiser and scheduler", flush=True)
    for state, path in ((optimizer_state, opt_path), (scheduler_state, sched_path)):
        if state is not None:
            tmp = path + ".tmp"
            torch.save(state, tmp)
            os.replace(tmp, path)  # never over the mmap'ed file in place


# --------------------------------------------------------------------------- trainer


class ArchonTrainer(transformers.Trainer):
    """A ``Trainer`` that follows Archon's config and contract.

    Adds an :class:`ArchonCallback` (unless one is given in ``callbacks``), builds the learning-rate scheduler from
    ``lrSchedule`` over the Trainer's own optimiser-step count, and checks every micro-batch's loss: NaN or infinite
    raises :class:`DivergingLoss` before the optimiser steps. ``args`` defaults to :func:`training_arguments`,
    ``run`` to :func:`archon_trainer.init`. Its overrides call ``super()``, so it combines with another Trainer
    subclass: ``class MyTrainer(ArchonTrainer, trl.SFTTrainer)``.
    """

    def __init__(self, model=None, args=None, *rest, run: Run | None = None, **kwargs):
        self.run = run = run if run is not None else init()
        super().__init__(model, args if args is not None else training_arguments(run), *rest, **kwargs)
        found = [cb for cb in self.callback_handler.callbacks if isinstance(cb, ArchonCallback)]
        if found:
            self.archon = found[0]
        else:
            self.archon = ArchonCallback(run)
            self.add_callback(self.archon)

    def train(self, *args, **kwargs):
        try:
            return super().train(*args, **kwargs)
        finally:
            self.archon.cleanup(self.args)  # also after a failure: no scratch left in ARCHON_CHECKPOINT_DIR

    def create_scheduler(self, num_training_steps, optimizer=None):
        """Archon's ``lrSchedule`` (:func:`archon_trainer.pytorch.lr_scheduler`) over ``num_training_steps``."""
        if self.lr_scheduler is None:
            optimizer = optimizer if optimizer is not None else self.optimizer
            self.lr_scheduler = lr_scheduler(optimizer, self.run.config, num_training_steps)
            self.lr_scheduler.archon_schedule = True
            self._created_lr_scheduler = True  # rebuilt on the next train(), as the Trainer does with its own
        return self.lr_scheduler

    def training_step(self, model, inputs, *args, **kwargs):
        loss = super().training_step(model, inputs, *args, **kwargs)
        if not torch.isfinite(loss).all():  # scaled for accumulation: only finiteness is meaningful here
            self.archon.check(float(loss.detach().float().mean()), self.state, self._get_learning_rate())
        return loss
