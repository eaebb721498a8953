"""archon_trainer: the training-process side of the Archon Fleet contract.

A dependency-free (standard library only) helper that a training script imports
to read the configuration the node agent gives it, find the checkpoint to resume
from, write checkpoints atomically and report progress and errors to the agent.
It works the same with PyTorch, JAX, numpy or anything else: it never touches
the model, only paths, numbers and the events pipe.

Environment set by the agent
----------------------------
``ARCHON_JOB_ID``          job id
``ARCHON_ATTEMPT``         attempt number, from 1
``ARCHON_CONFIG``          path of a JSON file: the attempt's full TrainingConfig (camelCase)
``ARCHON_CHECKPOINT_DIR``  where checkpoints go (the agent deletes old ones)
``ARCHON_RESUME_FROM``     latest valid checkpoint to resume from; empty or unset = start fresh
``ARCHON_EVENTS_FD``       file descriptor (3) on which to write events
``ARCHON_DATASET_PATH``    resolved location of the dataset; unset = the trainer's built-in one

Run by hand (none of these set), :func:`init` still works: the config is the
TrainingConfig defaults, the checkpoint dir is ``./checkpoints`` and events go to
stderr (see below).

Events: one JSON object per line on fd ``ARCHON_EVENTS_FD``
-----------------------------------------------------------
Each line goes out with one unbuffered ``write`` (atomic on a pipe: lines stay under
4 KiB), so the agent sees it at once. Exactly these shapes::

    {"type":"epoch","epoch":1,"totalEpochs":5,"loss":0.53,"learningRate":0.01,"durationSeconds":1.2,"step":57,"validation":{"loss":0.6,"accuracy":0.9}}
    {"type":"step","step":100,"epoch":2,"loss":0.4,"learningRate":0.01,"samplesPerSecond":900.0}
    {"type":"checkpoint","path":"/abs/path/ckpt-epoch-0003.npz","epoch":3,"step":171}
    {"type":"error","errorClass":"diverging_loss","message":"loss is NaN at epoch 1, step 12"}
    {"type":"heartbeat"}

* ``epoch``: ``epoch`` is the 1-based epoch that just finished, ``step`` the optimiser
  steps done so far, ``loss`` the mean training loss of the epoch; ``validation`` is
  optional (absent when the epoch was not evaluated).
* ``checkpoint``: ``path`` is absolute; the file is complete when the line is written.
* ``error``: ``errorClass`` is one of ``dataset_not_found``, ``permission_denied``,
  ``out_of_memory``, ``diverging_loss``, ``data_corruption``, ``crash``.
  The process exits non-zero after it.
* Non-finite numbers: JSON has no NaN, so a NaN or infinite float (a diverging
  loss) is written as the JSON *string* ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``,
  e.g. ``"loss":"NaN"``. Every other number is a plain JSON number; no line ever
  contains a bare ``NaN``.
* No event is ever sent from a background thread: a heartbeat or step line means
  the training loop itself is alive, so a hung loop falls silent and the agent can
  see it.

If ``ARCHON_EVENTS_FD`` is unset (the script was started by hand), or its fd is
not open, or the agent's end is gone (EPIPE), each line goes to stderr instead,
prefixed ``archon-event: ``. Reporting never raises.

Errors and exit codes
---------------------
``with run.guard():`` around the training code reports any exception as an
``error`` event, classified by type (``FileNotFoundError`` -> dataset_not_found,
``PermissionError`` -> permission_denied, ``MemoryError`` or a "CUDA out of memory"
message -> out_of_memory, :class:`DivergingLoss` -> diverging_loss,
:class:`DataCorruption` -> data_corruption, anything else -> crash) and lets it
propagate, so Python prints the traceback on stderr and exits 1.
:meth:`Run.main` does the same and picks the exit code: 3 for a diverging loss,
4 for data corruption, 1 otherwise; 0 when the function returns.

Checkpoints
-----------
``checkpoint_path(epoch)`` names ``<dir>/ckpt-epoch-0003<suffix>``: the checkpoint
after epoch 3. ``checkpoint_path(epoch, step)`` names a mid-epoch one (for
``checkpoint.everySteps``), ``ckpt-epoch-0003-step-000000171<suffix>``, with the epoch
in progress; it sorts before ``ckpt-epoch-0003<suffix>`` and after epoch 2's, so names
sort by progress. (The step is the one order key that is always monotonic; the
example trainers write end-of-epoch checkpoints only.) ``save_checkpoint`` calls your
writer on a temporary file in the same directory, fsyncs it, renames it into place
with ``os.replace`` and reports the ``checkpoint`` event: a reader never sees a
half-written checkpoint. The trainer never deletes checkpoints; the agent keeps
``checkpoint.keepLast`` of them.

Example: a PyTorch loop
-----------------------
::

    import time
    import torch
    import archon_trainer

    run = archon_trainer.init()
    cfg = run.config

    def train():
        model = make_model(run.hyperparameter("hidden", 128, int))
        opt = torch.optim.SGD(model.parameters(), lr=cfg["learningRate"])
        loader = make_loader(run.dataset_path or "/data/default", batch_size=cfg["batchSize"])
        start_epoch, step = 1, 0
        if run.resume_path():                       # continue after the last saved epoch
            state = torch.load(run.resume_path())
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["opt"])
            start_epoch, step = state["epoch"] + 1, state["step"]
        for epoch in range(start_epoch, cfg["epochs"] + 1):
            t0, total, n = time.monotonic(), 0.0, 0
            for x, y in loader:
                loss = torch.nn.functional.cross_entropy(model(x), y)
                run.check_finite(loss.item(), epoch=epoch, step=step)   # NaN -> DivergingLoss
                opt.zero_grad()
                loss.backward()
                opt.step()
                step += 1
                total += loss.item()
                n += 1
                if step % 50 == 0:
                    run.step(step, epoch, loss.item(), cfg["learningRate"])
            run.epoch(epoch, cfg["epochs"], total / n, cfg["learningRate"],
                      time.monotonic() - t0, step)
            if run.should_checkpoint(epoch, final_epoch=cfg["epochs"]):
                state = {"model": model.state_dict(), "opt": opt.state_dict(),
                         "epoch": epoch, "step": step}
                run.save_checkpoint(epoch, step, lambda tmp: torch.save(state, tmp), suffix=".pt")

    # Reports any exception as an error event (torch.cuda.OutOfMemoryError -> out_of_memory,
    # FileNotFoundError -> dataset_not_found, ...), prints the traceback, exits non-zero.
    run.main(train)

The runnable examples are ``examples/trainers/digits_mlp.py`` and
``examples/trainers/fault_trainer.py``.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import json
import math
import operator
import os
import select
import sys
import threading
import traceback

__all__ = [
    "ERROR_CLASSES",
    "DEFAULT_CONFIG",
    "DataCorruption",
    "DivergingLoss",
    "Run",
    "classify_exception",
    "encode_event",
    "init",
    "load_config",
    "loss_diverges",
    "schedule_factor",
]

#: The ``errorClass`` values a trainer may report.
ERROR_CLASSES = (
    "dataset_not_found",
    "permission_denied",
    "out_of_memory",
    "diverging_loss",
    "data_corruption",
    "checkpoint_unavailable",  # the checkpoint in ARCHON_RESUME_FROM cannot be read (never the dataset's fault)
    "crash",
)

#: Exit codes used by :meth:`Run.main` (any other failure exits 1).
EXIT_CODES = {"diverging_loss": 3, "data_corruption": 4}

#: The TrainingConfig defaults (mirrors Sources/ArchonModel/TrainingConfig.swift);
#: absent fields of ``ARCHON_CONFIG`` are filled from here.
DEFAULT_CONFIG = {
    "batchSize": 32,
    "gradientAccumulationSteps": 1,
    "learningRate": 0.01,
    "lrSchedule": {"kind": "constant", "decayRate": 0.0, "decaySteps": 0},
    "gradientClipping": {"enabled": False, "maxNorm": 0.0},
    "mixedPrecision": False,
    "epochs": 1,
    "dataSubset": 0.0,
    "timeouts": {"perEpochSeconds": 0, "totalSeconds": 0, "heartbeatSeconds": 0},
    "checkpoint": {"everyEpochs": 1, "everySteps": 0, "keepLast": 3},
    "resources": {"memoryBytes": 0, "cpuCores": 0.0, "gpuClass": "", "gpuCount": 0, "diskBytes": 0},
    "dataset": "",
    "dataQualityCheck": False,
    "hyperparameters": {},
    "seed": 0,
}

EVENT_PREFIX = "archon-event: "


class DivergingLoss(FloatingPointError):
    """The loss became NaN or infinite. Reported as ``diverging_loss``."""


class DataCorruption(ValueError):
    """The dataset exists but is unreadable or invalid. Reported as ``data_corruption``."""


# --------------------------------------------------------------------------- config


def _merge(defaults, given):
    out = copy.deepcopy(defaults)
    for key, value in given.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "hyperparameters":
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(path=None):
    """Read the TrainingConfig JSON at ``path`` (default ``$ARCHON_CONFIG``), defaults filled in.

    With no path and no ``ARCHON_CONFIG``, returns the defaults. A path that is
    set but missing or unreadable raises (FileNotFoundError / PermissionError).
    """
    if path is None:
        path = os.environ.get("ARCHON_CONFIG") or None
    given = {}
    if path:
        with open(path, "r", encoding="utf-8") as f:
            given = json.load(f)
        if not isinstance(given, dict):
            raise ValueError(f"{path}: the config must be a JSON object")
    cfg = _merge(DEFAULT_CONFIG, given)
    hp = cfg.get("hyperparameters") or {}
    cfg["hyperparameters"] = {str(k): str(v) for k, v in hp.items()}
    return cfg


# --------------------------------------------------------------------------- events


def _finite(value):
    """Replace non-finite floats by "NaN"/"Infinity"/"-Infinity", recursively."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    # numpy / torch scalars and the like
    try:
        return operator.index(value)
    except TypeError:
        pass
    try:
        return _finite(float(value))
    except (TypeError, ValueError):
        return str(value)


def _num(value):
    """A float from any numeric scalar (numpy, torch .item() results...)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def encode_event(event):
    """One event as its JSON line (no newline), non-finite floats as strings."""
    return json.dumps(_finite(event), separators=(",", ":"), allow_nan=False)


class _Sink:
    """Writes event lines to an fd, or to stderr with a prefix. Never raises."""

    def __init__(self, fd):
        self._lock = threading.Lock()
        self.fd = None
        if fd is not None:
            try:
                os.fstat(fd)
                self.fd = fd
            except OSError:
                self.fd = None

    @property
    def to_fd(self):
        return self.fd is not None

    def write(self, line):
        data = (line + "\n").encode("utf-8")
        with self._lock:
            if self.fd is not None:
                try:
                    view = memoryview(data)
                    while view:
                        try:
                            n = os.write(self.fd, view)
                        except InterruptedError:
                            continue
                        except BlockingIOError:  # a non-blocking pipe that is full: wait for the reader
                            select.select([], [self.fd], [], 1.0)
                            continue
                        view = view[n:]
                    return
                except OSError as e:
                    # EPIPE/EBADF: the agent's end is gone; keep training, log to stderr.
                    self.fd = None
                    self._stderr(f"archon_trainer: events fd unusable ({errno.errorcode.get(e.errno, e.errno)}); "
                                 "falling back to stderr\n")
                except Exception:  # noqa: BLE001 - reporting must never crash training
                    self.fd = None
            self._stderr(EVENT_PREFIX + line + "\n")

    @staticmethod
    def _stderr(text):
        try:
            sys.stderr.write(text)
            sys.stderr.flush()
        except Exception:  # noqa: BLE001
            pass


# --------------------------------------------------------------------------- classification


def classify_exception(exc):
    """The ``errorClass`` for an exception (see the module docstring)."""
    if isinstance(exc, DivergingLoss):
        return "diverging_loss"
    if isinstance(exc, DataCorruption):
        return "data_corruption"
    if isinstance(exc, MemoryError):
        return "out_of_memory"
    if isinstance(exc, FileNotFoundError):
        return "dataset_not_found"
    if isinstance(exc, PermissionError):
        return "permission_denied"
    if isinstance(exc, OSError) and exc.errno == errno.ENOMEM:
        return "out_of_memory"
    text = f"{type(exc).__name__}: {exc}"
    lowered = text.lower()
    # CUDA: "CUDA out of memory" (torch.cuda.OutOfMemoryError); CPU: PyTorch's "DefaultCPUAllocator: can't allocate
    # memory ... Error code 12 (Cannot allocate memory)" under an address-space limit.
    if ("out of memory" in lowered or "OutOfMemoryError" in text or "can't allocate memory" in lowered
            or "cannot allocate memory" in lowered):
        return "out_of_memory"
    return "crash"


def loss_diverges(value, max_loss=0.0):
    """Whether a loss means divergence: NaN or infinite, or above ``max_loss`` when that is above 0."""
    value = _num(value)
    return not math.isfinite(value) or (max_loss > 0 and value > max_loss)


# --------------------------------------------------------------------------- learning-rate schedule


def schedule_factor(config, step, total_steps):
    """The factor ``lrSchedule`` applies to ``learningRate`` at optimiser step ``step`` (from 0) of ``total_steps``.

    ``constant`` 1; ``exponential`` decayRate^(step/decaySteps); ``step`` decayRate^floor(step/decaySteps);
    ``cosine`` from 1 down to 0 over ``total_steps``. A schedule missing its numbers is constant.
    """
    sched = config.get("lrSchedule") or {}
    kind = sched.get("kind", "constant")
    rate = float(sched.get("decayRate", 0) or 0)
    period = int(sched.get("decaySteps", 0) or 0)
    if kind == "exponential" and period > 0 and rate > 0:
        return rate ** (step / period)
    if kind == "step" and period > 0 and rate > 0:
        return rate ** (step // period)
    if kind == "cosine" and total_steps > 0:
        return 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))
    return 1.0


# --------------------------------------------------------------------------- run


class Run:
    """The attempt this process is: its config, paths and events channel."""

    def __init__(self, environ=None):
        env = os.environ if environ is None else environ
        self.environ = env
        self.job_id = env.get("ARCHON_JOB_ID", "") or "local"
        try:
            self.attempt = int(env.get("ARCHON_ATTEMPT", "") or 1)
        except ValueError:
            self.attempt = 1
        self.config_path = env.get("ARCHON_CONFIG") or None
        self.config = load_config(self.config_path)
        self.checkpoint_dir = os.path.abspath(env.get("ARCHON_CHECKPOINT_DIR") or "checkpoints")
        self.dataset_path = env.get("ARCHON_DATASET_PATH") or None
        self._resume = env.get("ARCHON_RESUME_FROM") or None
        fd = None
        raw_fd = env.get("ARCHON_EVENTS_FD", "")
        if raw_fd.strip():
            try:
                fd = int(raw_fd)
            except ValueError:
                fd = None
        self._sink = _Sink(fd)
        self._reported_error = False

    # ---------------------------------------------------------------- config helpers

    @property
    def events_to_fd(self):
        """True when events go to the agent's fd, False when they fall back to stderr."""
        return self._sink.to_fd

    def get(self, key, default=None):
        """``config[key]``, or ``default`` when absent."""
        return self.config.get(key, default)

    def hyperparameter(self, name, default=None, cast=str):
        """``hyperparameters[name]`` converted with ``cast`` (values are strings), else ``default``."""
        raw = self.config.get("hyperparameters", {}).get(name)
        if raw is None or raw == "":
            return default
        if cast is bool:
            return str(raw).strip().lower() in ("1", "true", "yes", "on")
        return cast(raw)

    @property
    def log_every(self):
        """``hyperparameters.logEvery``: optimiser steps between ``step`` events (default 10, at least 1)."""
        return max(1, self.hyperparameter("logEvery", 10, int))

    @property
    def max_loss(self):
        """``hyperparameters.maxLoss``: a finite loss above it diverges too; 0 (the default) = only NaN and Inf."""
        return self.hyperparameter("maxLoss", 0.0, float)

    def resume_path(self):
        """``ARCHON_RESUME_FROM``, or None for a fresh start."""
        return self._resume

    def should_checkpoint(self, epoch, final_epoch=None):
        """Whether ``checkpoint.everyEpochs`` asks for a checkpoint after ``epoch``.

        With ``final_epoch`` given, the final epoch is checkpointed too (when
        checkpoints are enabled at all).
        """
        every = int(self.config.get("checkpoint", {}).get("everyEpochs", 0) or 0)
        if every <= 0:
            return False
        return epoch % every == 0 or (final_epoch is not None and epoch == final_epoch)

    def checkpoint_path(self, epoch, step=None, suffix=".ckpt"):
        """Absolute path of the checkpoint after ``epoch`` (or at ``step`` inside epoch ``epoch``)."""
        name = f"ckpt-epoch-{int(epoch):04d}"
        if step is not None:
            name += f"-step-{int(step):09d}"
        return os.path.join(self.checkpoint_dir, name + suffix)

    @contextlib.contextmanager
    def atomic_path(self, final_path):
        """Yield a temporary path next to ``final_path``; on success fsync and rename it into place."""
        directory = os.path.dirname(os.path.abspath(final_path)) or "."
        os.makedirs(directory, exist_ok=True)
        tmp = os.path.join(directory, f".{os.path.basename(final_path)}.tmp-{os.getpid()}")
        try:
            yield tmp
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, final_path)
            try:
                dfd = os.open(directory, os.O_RDONLY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
            except OSError:
                pass
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def save_checkpoint(self, epoch, step, write, suffix=".ckpt", path=None):
        """Write a checkpoint atomically and report it.

        ``write(tmp_path)`` must write the whole checkpoint to ``tmp_path`` (e.g.
        ``torch.save(state, tmp_path)``; for ``numpy.savez`` open the file first,
        since savez appends ``.npz`` to a bare name). Returns the final path.
        """
        final = os.path.abspath(path or self.checkpoint_path(epoch, suffix=suffix))
        with self.atomic_path(final) as tmp:
            write(tmp)
        self.checkpoint(final, epoch, step)
        return final

    # ---------------------------------------------------------------- events

    def emit(self, event):
        """Write one event object (a dict with ``type``)."""
        try:
            line = encode_event(event)
        except Exception as e:  # noqa: BLE001
            line = encode_event({"type": "error", "errorClass": "crash",
                                 "message": f"unencodable event: {e}"})
        self._sink.write(line)

    def epoch(self, epoch, total_epochs, loss, learning_rate, duration_seconds, step, validation=None):
        ev = {
            "type": "epoch",
            "epoch": int(epoch),
            "totalEpochs": int(total_epochs),
            "loss": _num(loss),
            "learningRate": _num(learning_rate),
            "durationSeconds": _num(duration_seconds),
            "step": int(step),
        }
        if validation is not None:
            ev["validation"] = {"loss": _num(validation.get("loss")),
                                "accuracy": _num(validation.get("accuracy", 0.0))}
        self.emit(ev)

    def step(self, step, epoch, loss, learning_rate, samples_per_second=0.0):
        self.emit({
            "type": "step",
            "step": int(step),
            "epoch": int(epoch),
            "loss": _num(loss),
            "learningRate": _num(learning_rate),
            "samplesPerSecond": _num(samples_per_second),
        })

    def checkpoint(self, path, epoch, step):
        self.emit({"type": "checkpoint", "path": os.path.abspath(path), "epoch": int(epoch), "step": int(step)})

    def error(self, error_class, message):
        if error_class not in ERROR_CLASSES:
            error_class = "crash"
        self._reported_error = True
        self.emit({"type": "error", "errorClass": error_class, "message": str(message)[:2000]})

    def heartbeat(self):
        """Say the training loop is alive. Call it from the loop itself, never from a timer thread."""
        self.emit({"type": "heartbeat"})

    # ---------------------------------------------------------------- failure handling

    @staticmethod
    def check_finite(loss, epoch=None, step=None, max_loss=0.0):
        """Raise :class:`DivergingLoss` when ``loss`` diverges (:func:`loss_diverges`); else return it as float."""
        value = _num(loss)
        if not loss_diverges(value, max_loss):
            return value
        where = []
        if epoch is not None:
            where.append(f"epoch {epoch}")
        if step is not None:
            where.append(f"step {step}")
        at = (" at " + ", ".join(where)) if where else ""
        if not math.isfinite(value):
            raise DivergingLoss(f"loss is {_finite(value)}{at}")
        raise DivergingLoss(f"loss {value:.3g} exceeds maxLoss {max_loss:g}{at} (exploding)")

    def report_exception(self, exc):
        """Report ``exc`` as an error event (once per run); return its class."""
        cls = classify_exception(exc)
        if not self._reported_error:
            try:
                self.error(cls, f"{type(exc).__name__}: {exc}")
            except Exception:  # noqa: BLE001
                pass
        return cls

    @contextlib.contextmanager
    def guard(self):
        """Report any exception raised inside as an ``error`` event, then let it propagate.

        KeyboardInterrupt and SystemExit pass through unreported.
        """
        try:
            yield self
        except Exception as exc:
            self.report_exception(exc)
            raise

    def main(self, fn, *args, **kwargs):
        """Run ``fn`` under :meth:`guard`; exit 0 on return, else print the traceback and exit non-zero.

        Exit codes: 3 diverging_loss, 4 data_corruption, 1 any other error. After the
        traceback, one more stderr line: ``archon_trainer: <errorClass> (<builtin type>): <message>``
        (e.g. ``archon_trainer: out_of_memory (MemoryError): Unable to allocate ...``).
        """
        try:
            with self.guard():
                fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001
            cls = classify_exception(exc)
            try:
                traceback.print_exc()
                # A last line naming the builtin exception type and the class, for stderr matching.
                builtin = next((t.__name__ for t in type(exc).__mro__ if t.__module__ == "builtins"), "Exception")
                sys.stderr.write(f"archon_trainer: {cls} ({builtin}): {exc}\n")
                sys.stderr.flush()
            except Exception:  # noqa: BLE001
                pass
            sys.exit(EXIT_CODES.get(cls, 1))
        sys.exit(0)


_default = None
_default_lock = threading.Lock()


def init(environ=None):
    """The process's :class:`Run` (created from the environment on first call)."""
    global _default
    if environ is not None:
        return Run(environ)
    with _default_lock:
        if _default is None:
            _default = Run()
        return _default
