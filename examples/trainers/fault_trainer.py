#!/usr/bin/env python3
"""A small trainer (standard library only) that fails on request, for testing the node agent.

It speaks the same contract as a real trainer (``clients/python/archon_trainer/__init__.py``):
epochs with a decreasing loss, step events, checkpoints (JSON files) and resume.
``hyperparameters["fault"]`` picks the behaviour; every failure is a real one
(a real syscall error, a real allocation, a real signal), not a pretend event.

fault              behaviour
-----------------  -----------------------------------------------------------------
none (default)     ``epochs`` quick epochs, loss decreasing, checkpoints, exit 0
missing_dataset    opens ARCHON_DATASET_PATH and hyperparameters["datasetPath"] (when
                   set), then /nonexistent/archon-datasets/<dataset>: FileNotFoundError,
                   exit 1
permission         opens ARCHON_DATASET_PATH if set (an unreadable one fails there), then
                   a mode-000 temp file with the effective uid dropped to 65534
                   ("nobody") when running as root (root ignores mode bits):
                   PermissionError, exit 1
corrupt            "reads" a dataset of garbage bytes as gzip: DataCorruption, exit 4
hang               reports one epoch, then sleeps forever saying nothing more
hang_once          as hang on attempt 1 only; later attempts run normally (and resume)
slow               each epoch takes ``epochSeconds`` (default 2) seconds, with a
                   heartbeat every ``heartbeatEvery`` seconds (default 1; 0 = none)
crash              after ``crashAfterEpochs`` epochs (default 1, checkpointed) dies:
                   ``crashHow`` = segv (default: SIGSEGV, faulthandler prints
                   "Fatal Python error: Segmentation fault"), exception (RuntimeError,
                   reported as crash, exit 1) or exit (``os._exit(1)``, no report)
crash_once         as crash on attempt 1 only; later attempts run normally (and resume)
nan                epoch ``nanAtEpoch`` (default 2) has loss NaN: reported, then
                   diverging_loss and exit 3; only when learningRate > ``nanAboveLR``
                   (default 0), so lowering the learning rate cures it
memory             allocates ``allocMB`` + ``allocMBPerSample`` * batchSize MiB and
                   touches every page, then trains normally while holding it: under
                   RLIMIT_AS a MemoryError (out_of_memory, exit 1), under a cgroup
                   limit the kernel's OOM kill (SIGKILL); with ``allocAfterEpochs`` N
                   it trains N epochs first (checkpointed), as a model whose memory
                   peaks late does (a longer sequence bucket, a bigger eval batch)
oom_once           as memory on attempt 1 only
big_checkpoint     trains normally, but every checkpoint carries ``checkpointMB`` MiB
                   (default 8) of padding: on a disk without that room the write fails
                   for real (``OSError: [Errno 28] No space left on device``, reported
                   as crash, exit 1; the agent classifies it as a node fault, disk full)
slow_save          as slow, but on SIGTERM (a drain, a move, an operator stop) saves like a
                   large model: takes ``saveSeconds`` (default 3) to write a checkpoint of
                   the last finished epoch, reports it, and exits 143 (128 + SIGTERM); with
                   no epoch finished yet it exits at once, saving nothing
hostile_numbers    trains normally (finite losses) but reports every other number as
                   the contract allows and no controller should trust: epoch durations
                   "NaN" and "Infinity", a learning rate of 1e300, validation accuracy
                   "NaN", samples per second "Infinity"

Other hyperparameters: ``epochSeconds`` (epoch length for every mode; default 0 except
slow), ``stepsPerEpoch`` (default 10). On resume it prints
``resuming from <path>: continuing at epoch N`` on stdout and starts at that epoch.
"""

from __future__ import annotations

import errno
import faulthandler
import gzip
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import time

try:
    import archon_trainer
except ImportError:  # run from the repository: the helper lives in clients/python
    sys.path.insert(0, os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python")))
    import archon_trainer

from archon_trainer import DataCorruption

FAULTS = ("none", "missing_dataset", "permission", "corrupt", "hang", "hang_once", "slow", "crash", "crash_once",
          "nan", "memory", "oom_once", "big_checkpoint", "hostile_numbers", "slow_save")


def log(msg):
    print(msg, flush=True)


def touch_dataset(path):
    """Open the dataset for real (a directory is listed, a file read): OSErrors surface as they are."""
    if os.path.isdir(path):
        os.listdir(path)
    else:
        with open(path, "rb") as f:
            f.read(1)


def permission_denied(run):
    """Open something this process may not read, for real."""
    if run.dataset_path:
        touch_dataset(run.dataset_path)  # unreadable: PermissionError here; readable: go on
    d = tempfile.mkdtemp(prefix="archon-fault-")
    path = os.path.join(d, "secret-dataset.bin")
    with open(path, "wb") as f:
        f.write(b"not for you\n")
    os.chmod(d, 0o755)
    os.chmod(path, 0)
    dropped = False
    try:
        if os.geteuid() == 0:
            os.seteuid(65534)  # root bypasses mode bits; "nobody" does not
            dropped = True
        with open(path, "rb") as f:  # raises PermissionError: [Errno 13] Permission denied
            f.read()
    finally:
        if dropped:
            os.seteuid(0)
        shutil.rmtree(d, ignore_errors=True)
    raise PermissionError(errno.EACCES, "could not provoke a permission error here", path)


def corrupt_dataset():
    """Decode garbage as a gzip dataset: the real decoder error, wrapped as DataCorruption."""
    garbage = bytes((i * 131 + 7) % 256 for i in range(4096))
    try:
        gzip.decompress(garbage)
    except (OSError, EOFError) as e:
        raise DataCorruption(f"dataset is not valid gzip ({type(e).__name__}: {e})") from e
    raise DataCorruption("dataset decoded but is garbage")


def allocate(mib):
    """Allocate ``mib`` MiB and write every page, so it is resident (RSS), not just reserved."""
    n = int(mib * (1 << 20))
    log(f"allocating {mib:.0f} MiB")
    block = bytearray(b"\x01") * n  # the repetition writes every byte
    return block


class Beater:
    """Sleeps in slices, sending a heartbeat whenever ``every`` seconds passed since the last one."""

    def __init__(self, run, every):
        self.run, self.every, self.last = run, every, time.monotonic()

    def sleep(self, seconds):
        end = time.monotonic() + seconds
        while True:
            now = time.monotonic()
            if self.every > 0 and now - self.last >= self.every:
                self.run.heartbeat()
                self.last = now
            left = end - now
            if left <= 0:
                return
            time.sleep(min(left, self.every) if self.every > 0 else left)


def write_state(path, epoch, step, loss, pad_mib=0.0):
    """The checkpoint: a JSON object, with ``pad_mib`` MiB of padding written (and synced) a MiB at a time."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps({"epoch": epoch, "step": step, "loss": loss})[:-1] + ', "pad": "')
        left = int(pad_mib * (1 << 20))
        while left > 0:
            n = min(left, 1 << 20)
            f.write("0" * n)
            left -= n
        f.write('"}')
        f.flush()
        os.fsync(f.fileno())  # a full disk fails here at the latest, not after the checkpoint is reported


def train(run=None):
    run = run or archon_trainer.init()
    cfg = run.config
    fault = run.hyperparameter("fault", "none")
    if fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r}; one of {', '.join(FAULTS)}")
    attempt = run.attempt
    if fault in ("crash_once", "oom_once", "hang_once") and attempt > 1:
        log(f"fault {fault}: attempt {attempt}, behaving")
        fault = "none"
    epochs = int(cfg["epochs"])
    lr = float(cfg["learningRate"])
    steps_per_epoch = max(1, run.hyperparameter("stepsPerEpoch", 10, int))
    epoch_seconds = run.hyperparameter("epochSeconds", 2.0 if fault in ("slow", "slow_save") else 0.0, float)
    heartbeat_every = run.hyperparameter("heartbeatEvery", 1.0, float)
    pad_mib = run.hyperparameter("checkpointMB", 8.0, float) if fault == "big_checkpoint" else 0.0
    log(f"fault_trainer job={run.job_id} attempt={attempt} fault={fault} epochs={epochs}")

    if fault == "crash" or fault == "crash_once":
        faulthandler.enable()
    hold = None
    alloc_after = run.hyperparameter("allocAfterEpochs", 0, int) if fault in ("memory", "oom_once") else -1

    def allocate_now():
        return allocate(run.hyperparameter("allocMB", 0.0, float) +
                        run.hyperparameter("allocMBPerSample", 0.0, float) * int(cfg["batchSize"]))

    if alloc_after == 0:
        hold = allocate_now()

    if fault == "missing_dataset":
        for path in (run.dataset_path, run.hyperparameter("datasetPath"),
                     os.path.join("/nonexistent/archon-datasets", cfg.get("dataset") or "missing")):
            if path:
                touch_dataset(path)  # FileNotFoundError for the first one that is missing
    if fault == "permission":
        permission_denied(run)
    if fault == "corrupt":
        corrupt_dataset()
    if run.dataset_path:
        touch_dataset(run.dataset_path)

    start_epoch, step = 1, 0
    resume = run.resume_path()
    if resume:
        with open(resume, "r", encoding="utf-8") as f:
            state = json.load(f)
        start_epoch, step = int(state["epoch"]) + 1, int(state["step"])
        log(f"resuming from {resume}: continuing at epoch {start_epoch}")
    run.heartbeat()

    crash_after = run.hyperparameter("crashAfterEpochs", 1, int)
    nan_at = run.hyperparameter("nanAtEpoch", 2, int)
    nan_above = run.hyperparameter("nanAboveLR", 0.0, float)
    beater = Beater(run, heartbeat_every)
    stop = []
    if fault == "slow_save":
        signal.signal(signal.SIGTERM, lambda signum, frame: stop.append(signum))
    done_epoch, done_step = start_epoch - 1, step

    def save_and_exit():
        """SIGTERM: save the last finished epoch slowly, report it, exit 128 + SIGTERM."""
        if done_epoch < 1:
            log("SIGTERM before the first epoch finished: nothing to save")
            sys.exit(128 + signal.SIGTERM)
        seconds = run.hyperparameter("saveSeconds", 3.0, float)
        log(f"SIGTERM: saving epoch {done_epoch} (takes {seconds:g}s)")
        time.sleep(seconds)
        loss = 2.3 * math.exp(-0.35 * done_epoch) + 0.05
        path = run.save_checkpoint(done_epoch, done_step, lambda tmp: write_state(tmp, done_epoch, done_step, loss), suffix=".json")
        log(f"checkpoint {path} saved on SIGTERM")
        sys.exit(128 + signal.SIGTERM)

    for epoch in range(start_epoch, epochs + 1):
        if alloc_after > 0 and epoch > alloc_after and hold is None:
            hold = allocate_now()
        t0 = time.monotonic()
        loss = 2.3 * math.exp(-0.35 * epoch) + 0.05
        if fault == "nan" and epoch >= nan_at and lr > nan_above:
            loss = float("nan")
        for i in range(steps_per_epoch):
            step += 1
            if epoch_seconds > 0:
                beater.sleep(epoch_seconds / steps_per_epoch)
            if stop:
                save_and_exit()
            if i == steps_per_epoch // 2:
                speed = math.inf if fault == "hostile_numbers" else 32 / max(epoch_seconds / steps_per_epoch, 1e-3)
                run.step(step, epoch, loss, lr, speed)
        duration = time.monotonic() - t0
        val = {"loss": loss * 1.1, "accuracy": min(0.99, 0.5 + 0.1 * epoch)} if math.isfinite(loss) else None
        if fault == "hostile_numbers":
            run.epoch(epoch, epochs, loss, 1e300, math.nan if epoch % 2 else math.inf, step,
                      validation={"loss": loss * 1.1, "accuracy": math.nan})
        else:
            run.epoch(epoch, epochs, loss, lr, duration, step, validation=val)
        log(f"epoch {epoch}/{epochs} loss {loss:.4f} step {step} {duration:.2f}s")
        run.check_finite(loss, epoch=epoch, step=step)  # nan: raises DivergingLoss
        if run.should_checkpoint(epoch, final_epoch=epochs):
            path = run.save_checkpoint(epoch, step, lambda tmp: write_state(tmp, epoch, step, loss, pad_mib), suffix=".json")
            log(f"checkpoint {path}")
        done_epoch, done_step = epoch, step
        if stop:
            save_and_exit()
        if fault in ("hang", "hang_once"):
            log("hanging")
            while True:
                time.sleep(3600)
        if fault in ("crash", "crash_once") and epoch - start_epoch + 1 >= crash_after:
            how = run.hyperparameter("crashHow", "segv")
            log(f"crashing ({how})")
            if how == "exit":
                sys.stdout.flush()
                os._exit(1)
            if how == "exception":
                raise RuntimeError(f"simulated crash after epoch {epoch}")
            os.kill(os.getpid(), signal.SIGSEGV)
            time.sleep(5)
    del hold
    log(f"done: {epochs} epochs, {step} steps")


if __name__ == "__main__":
    archon_trainer.init().main(train)
