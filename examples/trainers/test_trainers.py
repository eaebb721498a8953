"""End-to-end tests of the example trainers, run as real processes with a real pipe on fd 3.

Run with `python3 -m pytest -q examples/trainers`. The digits tests need the digits data
bundled with scikit-learn (`python3 -m pip install scikit-learn`).
"""

import contextlib
import gzip
import json
import math
import os
import resource
import select
import signal
import subprocess
import sys
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
DIGITS = os.path.join(HERE, "digits_mlp.py")
FAULT = os.path.join(HERE, "fault_trainer.py")
MiB = 1 << 20


class Result:
    def __init__(self, rc, events, out, err, ckpt_dir):
        self.rc, self.events, self.out, self.err, self.ckpt_dir = rc, events, out, err, ckpt_dir

    def of(self, kind):
        return [e for e in self.events if e["type"] == kind]

    @property
    def epochs(self):
        return self.of("epoch")

    @property
    def errors(self):
        return [e["errorClass"] for e in self.of("error")]


def _env(workdir, config, attempt=1, resume=None, dataset=None, extra=None):
    os.makedirs(workdir, exist_ok=True)
    cfg_path = os.path.join(workdir, f"config-{attempt}.json")
    with open(cfg_path, "w") as f:
        json.dump(config, f)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHON_")}
    env.update({
        "PYTHONDONTWRITEBYTECODE": "1",
        "ARCHON_JOB_ID": "test-job",
        "ARCHON_ATTEMPT": str(attempt),
        "ARCHON_CONFIG": cfg_path,
        "ARCHON_CHECKPOINT_DIR": os.path.join(workdir, "ckpt"),
        "ARCHON_RESUME_FROM": resume or "",
        "ARCHON_EVENTS_FD": "3",
    })
    if dataset is not None:
        env["ARCHON_DATASET_PATH"] = dataset
    env.update(extra or {})
    return env


PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 24, 1, 2


def start(script, workdir, config, memory_limit=None, drop_dac=False, **kw):
    """Start a trainer with the pipe's write end as its fd 3; returns (proc, read fd).

    memory_limit: RLIMIT_AS in bytes. drop_dac: take CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH out of
    the bounding set, so that even root gets EACCES on a mode-000 file (as in a container without them).
    """
    env = _env(workdir, config, **kw)
    prctl = None
    if drop_dac:
        import ctypes
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    r, w = os.pipe()

    def child_setup():
        os.dup2(w, 3)  # dup2 clears close-on-exec: fd 3 survives exec, as the agent arranges it
        if memory_limit:
            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
        if prctl is not None:
            for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
                if prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                    os._exit(97)

    proc = subprocess.Popen([sys.executable, script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, close_fds=False, preexec_fn=child_setup)
    os.close(w)
    return proc, r


def run(script, workdir, config, timeout=60, **kw):
    proc, r = start(script, workdir, config, **kw)
    chunks = []

    def drain():
        with os.fdopen(r, "rb") as f:
            chunks.append(f.read())

    t = threading.Thread(target=drain)
    t.start()
    out, err = proc.communicate(timeout=timeout)
    t.join(timeout)
    lines = b"".join(chunks).decode().splitlines()
    events = [json.loads(x) for x in lines]  # every line must be one JSON object
    return Result(proc.returncode, events, out, err, os.path.join(workdir, "ckpt"))


def digits(workdir, config, **kw):
    return run(DIGITS, str(workdir), config, **kw)


def fault(workdir, mode, config=None, **kw):
    cfg = dict(config or {})
    cfg.setdefault("epochs", 3)
    cfg["hyperparameters"] = dict(cfg.get("hyperparameters", {}), fault=mode)
    return run(FAULT, str(workdir), cfg, **kw)


def _digits_module():
    sys.path.insert(0, HERE)
    import digits_mlp  # noqa: E402  (imports numpy and the helper only; trains nothing)
    return digits_mlp


# The digits data are required, not optional: fail loudly with the install hint.
def test_bundled_digits_data_present():
    path = _digits_module().bundled_digits_path()  # FileNotFoundError says: python3 -m pip install scikit-learn
    assert path.endswith("digits.csv.gz") and os.path.getsize(path) > 50_000


# --------------------------------------------------------------------------- digits_mlp: learning


def test_digits_default_config_converges(tmp_path):
    res = digits(tmp_path, {"epochs": 4})  # every other field at the TrainingConfig default (lr 0.01, batch 32)
    assert res.rc == 0, res.err
    ep = res.epochs
    assert [e["epoch"] for e in ep] == [1, 2, 3, 4]
    assert all(e["totalEpochs"] == 4 for e in ep)
    assert ep[-1]["loss"] < ep[0]["loss"]
    assert ep[-1]["validation"]["accuracy"] > 0.8
    assert [e["step"] for e in ep] == [45, 90, 135, 180]  # ceil(1438 / 32) optimiser steps an epoch
    steps = res.of("step")
    assert steps and all(s["samplesPerSecond"] > 0 and s["learningRate"] == 0.01 for s in steps)
    ck = res.of("checkpoint")
    assert [c["epoch"] for c in ck] == [1, 2, 3, 4]  # checkpoint.everyEpochs defaults to 1
    assert sorted(os.listdir(res.ckpt_dir)) == [f"ckpt-epoch-000{i}.npz" for i in (1, 2, 3, 4)]
    assert res.of("error") == []


def test_digits_resume_continues_at_next_epoch(tmp_path):
    cfg = {"epochs": 2, "learningRate": 0.1, "seed": 7}
    first = digits(tmp_path / "a", cfg)
    assert first.rc == 0, first.err
    ckpt = first.of("checkpoint")[-1]["path"]
    assert ckpt.endswith("ckpt-epoch-0002.npz")
    resumed = digits(tmp_path / "a", dict(cfg, epochs=4), attempt=2, resume=ckpt)
    assert resumed.rc == 0, resumed.err
    assert "continuing at epoch 3" in resumed.out
    assert [e["epoch"] for e in resumed.epochs] == [3, 4]
    assert resumed.epochs[0]["step"] == first.epochs[-1]["step"] + 45
    # Weights, momentum and RNG state are restored: the same numbers as an uninterrupted run.
    straight = digits(tmp_path / "b", dict(cfg, epochs=4))
    assert straight.rc == 0, straight.err
    for a, b in zip(resumed.epochs, straight.epochs[2:]):
        assert a["epoch"] == b["epoch"] and math.isclose(a["loss"], b["loss"], rel_tol=1e-9)


def test_digits_gradient_accumulation_matches_larger_batch(tmp_path):
    base = {"epochs": 2, "learningRate": 0.1, "checkpoint": {"everyEpochs": 0}}
    big = digits(tmp_path / "a", dict(base, batchSize=32))
    accum = digits(tmp_path / "b", dict(base, batchSize=16, gradientAccumulationSteps=2))
    assert big.rc == 0 and accum.rc == 0, accum.err
    for a, b in zip(big.epochs, accum.epochs):
        assert a["step"] == b["step"]  # one optimiser step per 2 micro-batches of 16
        assert math.isclose(a["loss"], b["loss"], rel_tol=1e-9)
    assert big.of("checkpoint") == [] and not os.path.exists(big.ckpt_dir)


def test_digits_lr_schedules_clipping_subset_precision(tmp_path):
    cos = digits(tmp_path / "cos", {"epochs": 3, "learningRate": 0.1, "lrSchedule": {"kind": "cosine"},
                                    "dataSubset": 0.5, "checkpoint": {"everyEpochs": 0}})
    assert cos.rc == 0, cos.err
    assert cos.epochs[-1]["step"] == 3 * 23  # ceil(719 / 32)
    lrs = [e["learningRate"] for e in cos.epochs]
    assert lrs[0] < 0.1 and lrs[-1] < lrs[0] and lrs[-1] < 0.001
    stepped = digits(tmp_path / "step", {"epochs": 2, "learningRate": 0.1, "checkpoint": {"everyEpochs": 0},
                                         "lrSchedule": {"kind": "step", "decayRate": 0.5, "decaySteps": 50}})
    assert [e["learningRate"] for e in stepped.epochs] == [0.1, 0.05]  # last step of epoch 2 is step 89
    expo = digits(tmp_path / "exp", {"epochs": 1, "learningRate": 0.1, "checkpoint": {"everyEpochs": 0},
                                     "lrSchedule": {"kind": "exponential", "decayRate": 0.5, "decaySteps": 44}})
    assert math.isclose(expo.epochs[0]["learningRate"], 0.05)  # step 44: 0.1 * 0.5^(44/44)
    mixed = digits(tmp_path / "mixed", {"epochs": 2, "learningRate": 0.1, "mixedPrecision": True,
                                        "checkpoint": {"everyEpochs": 0}})
    assert mixed.rc == 0 and "dtype=float32" in mixed.out
    # Clipping by global norm tames a learning rate that otherwise goes to NaN in epoch 3.
    clipped = digits(tmp_path / "clip", {"epochs": 3, "learningRate": 100, "checkpoint": {"everyEpochs": 0},
                                         "gradientClipping": {"enabled": True, "maxNorm": 1.0}})
    assert clipped.rc == 0, clipped.err
    assert all(isinstance(e["loss"], float) for e in clipped.epochs)


def test_digits_too_high_learning_rate_diverges_to_nan(tmp_path):
    res = digits(tmp_path, {"epochs": 5, "learningRate": 1000})
    assert res.rc == 3, res.err
    assert res.errors == ["diverging_loss"]
    last = res.epochs[-1]
    assert last["epoch"] <= 2 and last["loss"] in ("NaN", "Infinity")
    assert "DivergingLoss" in res.err and ("NaN" in res.err or "Infinity" in res.err)
    # ... and a tenth of ... a tenth of it converges; the default 0.1 does too.
    ok = digits(tmp_path / "ok", {"epochs": 3, "learningRate": 1, "checkpoint": {"everyEpochs": 0}})
    assert ok.rc == 0 and ok.epochs[-1]["loss"] < ok.epochs[0]["loss"]


# --------------------------------------------------------------------------- digits_mlp: memory

OOM_HP = {"hidden": "12288"}


def test_digits_out_of_memory_under_rlimit_as(tmp_path):
    limit = 350 * MiB  # virtual memory: batch 1024 peaks at ~445 MiB, batch 256 at ~252 MiB
    cfg = {"epochs": 1, "batchSize": 1024, "resources": {"cpuCores": 1}, "hyperparameters": OOM_HP,
           "checkpoint": {"everyEpochs": 0}}
    res = digits(tmp_path / "big", cfg, memory_limit=limit)
    assert res.rc == 1, res.err
    assert res.errors == ["out_of_memory"]
    assert "MemoryError" in res.err
    small = digits(tmp_path / "small", dict(cfg, batchSize=256, gradientAccumulationSteps=4, dataSubset=0.4),
                   memory_limit=limit)
    assert small.rc == 0, small.err
    assert small.errors == [] and len(small.epochs) == 1


def _memory_cgroup_parent():
    """A writable memory cgroup directory (v1 or v2) to make a child in, else None."""
    try:
        lines = open("/proc/self/cgroup").read().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            d = os.path.join("/sys/fs/cgroup/memory", path.lstrip("/"))
            if os.access(os.path.join(d, "cgroup.procs"), os.W_OK):
                return d, "v1"
    for line in lines:
        if line.startswith("0::"):
            d = os.path.join("/sys/fs/cgroup", line[3:].lstrip("/"))
            if os.path.exists(os.path.join(d, "memory.max")) or os.path.exists(os.path.join(d, "cgroup.subtree_control")):
                ctl = os.path.join(d, "cgroup.subtree_control")
                if os.access(ctl, os.W_OK) and "memory" in open(os.path.join(d, "cgroup.controllers")).read():
                    return d, "v2"
    return None


@contextlib.contextmanager
def memory_cgroup(limit_bytes):
    """A new memory cgroup limited to ``limit_bytes`` (no swap); yields ``(run, oom_kills)``: ``run(script, env)``
    runs a trainer inside it (no events fd) and ``oom_kills()`` reads the kernel's OOM-kill count. Skips the test
    where no memory cgroup can be made."""
    found = _memory_cgroup_parent()
    if found is None:
        pytest.skip("no writable memory cgroup here (the RLIMIT_AS test covers the OOM path)")
    parent, version = found
    cg = os.path.join(parent, f"archon-test-{os.getpid()}")
    try:
        os.mkdir(cg)
    except OSError as e:
        pytest.skip(f"cannot create a memory cgroup: {e}")
    try:
        limit = str(limit_bytes)
        # memory and, where the files exist, memory+swap: with swap the job would page instead of dying.
        names = [("memory.limit_in_bytes", limit), ("memory.memsw.limit_in_bytes", limit)] if version == "v1" \
            else [("memory.max", limit), ("memory.swap.max", "0")]
        if not os.path.exists(os.path.join(cg, names[0][0])):
            pytest.skip("the memory controller is not enabled for child cgroups here")
        for name, value in names:
            if os.path.exists(os.path.join(cg, name)):
                with open(os.path.join(cg, name), "w") as f:
                    f.write(value)

        def run_inside(script, env, timeout=90):
            return subprocess.run(["sh", "-c", f'echo $$ > {cg}/cgroup.procs && exec "$0" "$1"', sys.executable, script],
                                  env=dict(env, ARCHON_EVENTS_FD=""), capture_output=True, text=True, timeout=timeout)

        def oom_kills():
            events = open(os.path.join(cg, "memory.oom_control" if version == "v1" else "memory.events")).read()
            return sum(int(line.split()[1]) for line in events.splitlines() if line.split()[0] == "oom_kill")

        yield run_inside, oom_kills
    finally:
        for _ in range(50):
            try:
                os.rmdir(cg)
                break
            except OSError:
                time.sleep(0.1)


def test_digits_oom_killed_under_cgroup_limit(tmp_path):
    with memory_cgroup(256 * MiB) as (run_inside, oom_kills):
        cfg = {"epochs": 1, "batchSize": 1024, "resources": {"cpuCores": 1}, "hyperparameters": OOM_HP,
               "checkpoint": {"everyEpochs": 0}}
        proc = run_inside(DIGITS, _env(str(tmp_path), cfg))
        assert proc.returncode == -signal.SIGKILL or proc.returncode == 128 + signal.SIGKILL, proc.stderr
        assert oom_kills() >= 1
        # half the batch, twice the accumulation: the same effective batch fits.
        proc = run_inside(DIGITS, _env(str(tmp_path), dict(cfg, batchSize=512, gradientAccumulationSteps=2, dataSubset=0.75)))
        assert proc.returncode == 0, proc.stderr


# --------------------------------------------------------------------------- digits_mlp: data problems


def test_digits_missing_dataset_path(tmp_path):
    res = digits(tmp_path, {"epochs": 1}, dataset=str(tmp_path / "no-such-dataset"))
    assert res.rc == 1
    assert res.errors == ["dataset_not_found"]
    assert "FileNotFoundError" in res.err


def test_digits_unreadable_dataset_is_permission_denied(tmp_path):
    data = tmp_path / "digits.csv"
    data.write_text("0," * 64 + "1\n")
    data.chmod(0)
    # Root reads a mode-000 file anyway; without the DAC capabilities it cannot.
    res = run(DIGITS, str(tmp_path / "run"), {"epochs": 1}, dataset=str(data), drop_dac=os.geteuid() == 0)
    if res.rc == 97:
        pytest.skip("cannot drop capabilities here")
    assert res.rc == 1, res.err
    assert res.errors == ["permission_denied"]
    assert "PermissionError: [Errno 13] Permission denied" in res.err


def _bundled_rows():
    with gzip.open(_digits_module().bundled_digits_path(), "rt") as f:
        return f.read().splitlines()


def test_digits_own_dataset_file_and_corruption(tmp_path):
    rows = _bundled_rows()
    good = tmp_path / "good" / "digits.csv.gz"
    good.parent.mkdir()
    with gzip.open(good, "wt") as f:
        f.write("\n".join(rows) + "\n")
    ok = digits(tmp_path / "run-good", {"epochs": 1, "learningRate": 0.1}, dataset=str(good.parent))
    assert ok.rc == 0, ok.err
    assert str(good) in ok.out

    garbage = tmp_path / "garbage.csv.gz"
    garbage.write_bytes(bytes(range(256)) * 40)
    bad = digits(tmp_path / "run-garbage", {"epochs": 1}, dataset=str(garbage))
    assert bad.rc == 4, bad.err
    assert bad.errors == ["data_corruption"]

    # NaN pixels: without the quality check they poison the loss (looks like divergence) ...
    nan_rows = [r if i % 7 else ",".join(["nan"] + r.split(",")[1:]) for i, r in enumerate(rows)]
    nans = tmp_path / "nans.csv"
    nans.write_text("\n".join(nan_rows) + "\n")
    poisoned = digits(tmp_path / "run-nan", {"epochs": 1}, dataset=str(nans))
    assert poisoned.rc == 3 and poisoned.errors == ["diverging_loss"]
    # ... and with dataQualityCheck they are caught up front as data corruption.
    checked = digits(tmp_path / "run-check", {"epochs": 1, "dataQualityCheck": True}, dataset=str(nans))
    assert checked.rc == 4 and checked.errors == ["data_corruption"]
    assert "non-finite" in checked.of("error")[0]["message"]
    assert checked.epochs == []


# --------------------------------------------------------------------------- fault_trainer


def test_fault_none_completes_and_resumes(tmp_path):
    res = fault(tmp_path, "none", {"epochs": 3})
    assert res.rc == 0, res.err
    losses = [e["loss"] for e in res.epochs]
    assert [e["epoch"] for e in res.epochs] == [1, 2, 3] and losses == sorted(losses, reverse=True)
    assert [c["epoch"] for c in res.of("checkpoint")] == [1, 2, 3]
    again = fault(tmp_path, "none", {"epochs": 5}, attempt=2, resume=res.of("checkpoint")[1]["path"])
    assert again.rc == 0, again.err
    assert "resuming from" in again.out and "continuing at epoch 3" in again.out
    assert [e["epoch"] for e in again.epochs] == [3, 4, 5]
    assert again.epochs[0]["step"] == 30


def test_fault_big_checkpoint_completes_where_there_is_room(tmp_path):
    res = fault(tmp_path, "big_checkpoint", {"epochs": 2, "hyperparameters": {"checkpointMB": "2"}})
    assert res.rc == 0, res.err
    paths = [c["path"] for c in res.of("checkpoint")]
    assert len(paths) == 2 and all(os.path.getsize(p) > 2 * MiB for p in paths)
    with open(paths[-1]) as f:
        assert json.load(f)["epoch"] == 2  # still a checkpoint it can resume from
    again = fault(tmp_path, "big_checkpoint", {"epochs": 3, "hyperparameters": {"checkpointMB": "0"}}, attempt=2, resume=paths[-1])
    assert again.rc == 0 and "continuing at epoch 3" in again.out, again.err


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_fault_big_checkpoint_on_a_full_disk_is_enospc(tmp_path):
    ckpt = tmp_path / "ckpt"
    os.makedirs(ckpt)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(ckpt)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        res = fault(tmp_path, "big_checkpoint", {"epochs": 2, "hyperparameters": {"checkpointMB": "2"}})
    finally:
        subprocess.run(["umount", str(ckpt)], check=False)
    assert res.rc == 1 and res.errors == ["crash"]
    assert "OSError: [Errno 28] No space left on device" in res.err
    assert res.of("checkpoint") == []


def test_fault_missing_dataset(tmp_path):
    res = fault(tmp_path, "missing_dataset")
    assert res.rc == 1 and res.errors == ["dataset_not_found"]
    assert "FileNotFoundError: [Errno 2] No such file or directory" in res.err


def test_fault_permission(tmp_path):
    res = fault(tmp_path, "permission")
    assert res.rc == 1 and res.errors == ["permission_denied"]
    assert "PermissionError: [Errno 13] Permission denied" in res.err


def test_fault_corrupt(tmp_path):
    res = fault(tmp_path, "corrupt")
    assert res.rc == 4 and res.errors == ["data_corruption"]


def test_fault_nan_and_cure_by_lower_lr(tmp_path):
    res = fault(tmp_path, "nan", {"epochs": 4, "learningRate": 0.1, "hyperparameters": {"nanAboveLR": "0.05"}})
    assert res.rc == 3 and res.errors == ["diverging_loss"]
    assert [e["loss"] for e in res.epochs][-1] == "NaN" and res.epochs[-1]["epoch"] == 2
    cured = fault(tmp_path / "b", "nan", {"epochs": 4, "learningRate": 0.01, "hyperparameters": {"nanAboveLR": "0.05"}})
    assert cured.rc == 0 and len(cured.epochs) == 4


def test_fault_crash_segv(tmp_path):
    res = fault(tmp_path, "crash")
    assert res.rc == -signal.SIGSEGV
    assert "Segmentation fault" in res.err
    assert len(res.epochs) == 1 and len(res.of("checkpoint")) == 1


def test_fault_crash_exception_and_exit(tmp_path):
    res = fault(tmp_path / "a", "crash", {"hyperparameters": {"crashHow": "exception"}})
    assert res.rc == 1 and res.errors == ["crash"] and "RuntimeError" in res.err
    res = fault(tmp_path / "b", "crash", {"hyperparameters": {"crashHow": "exit", "crashAfterEpochs": "2"}})
    assert res.rc == 1 and res.errors == [] and len(res.epochs) == 2


def test_fault_crash_once_then_resume(tmp_path):
    first = fault(tmp_path, "crash_once", {"epochs": 3})
    assert first.rc == -signal.SIGSEGV
    ckpt = first.of("checkpoint")[-1]["path"]
    second = fault(tmp_path, "crash_once", {"epochs": 3}, attempt=2, resume=ckpt)
    assert second.rc == 0, second.err
    assert [e["epoch"] for e in second.epochs] == [2, 3]


def test_fault_memory_under_rlimit(tmp_path):
    limit = 300 * MiB
    res = fault(tmp_path / "a", "memory", {"batchSize": 64, "hyperparameters": {"allocMBPerSample": "8"}},
                memory_limit=limit)
    assert res.rc == 1 and res.errors == ["out_of_memory"] and "MemoryError" in res.err
    ok = fault(tmp_path / "b", "memory", {"batchSize": 8, "hyperparameters": {"allocMBPerSample": "8"}},
               memory_limit=limit)
    assert ok.rc == 0, ok.err
    once = fault(tmp_path / "c", "oom_once", {"hyperparameters": {"allocMB": "1024"}}, memory_limit=limit, attempt=2)
    assert once.rc == 0, once.err


def test_fault_memory_after_epochs_fails_mid_training(tmp_path):
    """allocAfterEpochs: the epochs before the peak are reported and checkpointed, then the allocation fails."""
    hp = {"allocMBPerSample": "8", "allocAfterEpochs": "2"}
    res = fault(tmp_path, "memory", {"epochs": 4, "batchSize": 64, "hyperparameters": hp}, memory_limit=300 * MiB)
    assert res.rc == 1 and res.errors == ["out_of_memory"], res.err
    assert [e["epoch"] for e in res.epochs] == [1, 2]
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["ckpt-epoch-0001.json", "ckpt-epoch-0002.json"]


def test_fault_slow_epochs_with_heartbeats(tmp_path):
    res = fault(tmp_path, "slow", {"epochs": 2, "hyperparameters": {"epochSeconds": "0.6", "heartbeatEvery": "0.2"}})
    assert res.rc == 0, res.err
    assert all(e["durationSeconds"] >= 0.6 for e in res.epochs)
    assert len(res.of("heartbeat")) >= 4


def test_fault_slow_save_checkpoints_on_sigterm_and_resumes_there(tmp_path):
    # No regular checkpoints: the only one is the one saved on SIGTERM.
    cfg = {"epochs": 6, "checkpoint": {"everyEpochs": 0},
           "hyperparameters": {"fault": "slow_save", "epochSeconds": "0.4", "saveSeconds": "0.5", "heartbeatEvery": "0"}}
    proc, r = start(FAULT, str(tmp_path), cfg)
    buf = b""
    try:
        deadline = time.monotonic() + 20
        while buf.count(b'"type":"epoch"') < 2 and time.monotonic() < deadline:
            ready, _, _ = select.select([r], [], [], 0.2)
            if ready:
                buf += os.read(r, 65536)
        assert buf.count(b'"type":"epoch"') >= 2
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
        assert time.monotonic() - t0 >= 0.5, "the save takes saveSeconds"
        while True:
            chunk = os.read(r, 65536)
            if not chunk:
                break
            buf += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        os.close(r)
    assert proc.returncode == 128 + signal.SIGTERM, err
    events = [json.loads(x) for x in buf.decode().splitlines()]
    saved = [e for e in events if e["type"] == "checkpoint"]
    assert len(saved) == 1 and events[-1] == saved[0], events
    last_epoch = max(e["epoch"] for e in events if e["type"] == "epoch")
    assert saved[0]["epoch"] == last_epoch and os.path.exists(saved[0]["path"])

    res = fault(tmp_path, "slow_save", dict(cfg, hyperparameters=dict(cfg["hyperparameters"], epochSeconds="0")),
                attempt=2, resume=saved[0]["path"])
    assert res.rc == 0, res.err
    assert f"continuing at epoch {last_epoch + 1}" in res.out
    assert [e["epoch"] for e in res.epochs] == list(range(last_epoch + 1, 7))


def test_fault_hang_goes_silent(tmp_path):
    cfg = {"epochs": 3, "hyperparameters": {"fault": "hang"}}
    proc, r = start(FAULT, str(tmp_path), cfg)
    try:
        buf = b""
        deadline = time.monotonic() + 20
        while b'"type":"epoch"' not in buf and time.monotonic() < deadline:
            ready, _, _ = select.select([r], [], [], 0.5)
            if ready:
                buf += os.read(r, 65536)
        assert b'"type":"epoch"' in buf
        # checkpoint line follows the epoch; then nothing more while the process lives on.
        time.sleep(0.3)
        ready, _, _ = select.select([r], [], [], 0.1)
        if ready:
            buf += os.read(r, 65536)
        ready, _, _ = select.select([r], [], [], 1.5)
        assert not ready, "a hung trainer must say nothing"
        assert proc.poll() is None
        events = [json.loads(x) for x in buf.decode().splitlines()]
        assert [e["type"] for e in events] == ["heartbeat", "step", "epoch", "checkpoint"]
    finally:
        proc.kill()
        proc.communicate()
        os.close(r)
    assert proc.returncode == -signal.SIGKILL


# --------------------------------------------------------------------------- examples/jobs/*.yaml

JOBS = os.path.normpath(os.path.join(HERE, "..", "jobs"))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))


def _job(name):
    yaml = pytest.importorskip("yaml")
    with open(os.path.join(JOBS, name)) as f:
        return yaml.safe_load(f)


def test_job_specs_are_well_formed():
    sys.path.insert(0, os.path.join(REPO, "clients", "python"))
    import archon_trainer
    import re
    names = sorted(n for n in os.listdir(JOBS) if n.endswith(".yaml"))
    assert {"ok.yaml", "oom.yaml", "diverge.yaml", "missing-dataset.yaml", "permission.yaml", "timeout.yaml",
            "hang.yaml"} <= set(names)
    ids = set()
    for name in names:
        spec = _job(name)
        assert set(spec) <= {"id", "name", "team", "command", "env", "config", "labels"}, name
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", spec["id"]) and spec["id"] not in ids, name
        ids.add(spec["id"])
        assert spec["command"][0] == "python3" and os.path.exists(os.path.join(REPO, spec["command"][1])), name
        assert spec["labels"]["kind"], name
        for key, value in spec["config"].items():
            assert key in archon_trainer.DEFAULT_CONFIG, (name, key)
            if isinstance(value, dict) and key != "hyperparameters":
                assert set(value) <= set(archon_trainer.DEFAULT_CONFIG[key]), (name, key)
        assert all(isinstance(v, str) for v in spec["config"].get("hyperparameters", {}).values()), name


def run_job(tmp_path, name, dataset=None, **kw):
    """Runs a job spec's trainer as the agent would; `dataset` is the ARCHON_DATASET_PATH the controller would
    set from the dataset registry (or the spec's own env)."""
    spec = _job(name)
    script = os.path.join(REPO, spec["command"][1])
    extra = dict(spec.get("env") or {})
    dataset = extra.pop("ARCHON_DATASET_PATH", dataset)
    return run(script, str(tmp_path), spec["config"], dataset=dataset, extra=extra, **kw)


def test_job_ok_diverge_missing_permission_crash(tmp_path):
    ok = run_job(tmp_path / "ok", "ok.yaml")
    assert ok.rc == 0 and ok.epochs[-1]["validation"]["accuracy"] > 0.9, ok.err
    div = run_job(tmp_path / "div", "diverge.yaml")
    assert div.rc == 3 and div.errors == ["diverging_loss"]
    # The registry lists digits-v2 at a path whose files are gone.
    missing = run_job(tmp_path / "missing", "missing-dataset.yaml", dataset=str(tmp_path / "datasets" / "digits-v2"))
    assert missing.rc == 1 and missing.errors == ["dataset_not_found"]
    perm = run_job(tmp_path / "perm", "permission.yaml")
    assert perm.rc == 1 and perm.errors == ["permission_denied"]
    crash = run_job(tmp_path / "crash", "crash.yaml")
    assert crash.rc == -signal.SIGSEGV and len(crash.epochs) == 1
    again = run_job(tmp_path / "crash", "crash.yaml", attempt=2, resume=crash.of("checkpoint")[-1]["path"])
    assert again.rc == 0 and [e["epoch"] for e in again.epochs] == [2, 3, 4]


def test_job_oom_under_its_memory_request_as_rlimit(tmp_path):
    spec = _job("oom.yaml")
    # Under RLIMIT_AS = memoryBytes (the agent's fallback) batch 1024 fails at once.
    res = run_job(tmp_path, "oom.yaml", memory_limit=spec["config"]["resources"]["memoryBytes"])
    assert res.rc == 1 and res.errors == ["out_of_memory"] and "MemoryError" in res.err
