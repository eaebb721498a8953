"""The PyTorch example trainer (torch_mlp.py, through archon_trainer.pytorch), run as real processes.

Skipped where PyTorch is not installed (`scripts/install-deps` installs the CPU wheel).
"""

import os
import signal

import pytest

torch = pytest.importorskip("torch")

from test_trainers import MiB, HERE, memory_cgroup, run, _env  # noqa: E402

TORCH_MLP = os.path.join(HERE, "torch_mlp.py")
#: hidden 32768: batch 1024 peaks at ~0.7 GiB resident (~1.05 GiB virtual), batch 512 at ~0.52 GiB (~0.88 GiB).
OOM = {"epochs": 1, "learningRate": 0.05, "batchSize": 1024, "resources": {"cpuCores": 1},
       "checkpoint": {"everyEpochs": 0}, "hyperparameters": {"hidden": "32768"}}


def torch_mlp(workdir, config, **kw):
    return run(TORCH_MLP, str(workdir), config, timeout=120, **kw)


def test_torch_trains_checkpoints_and_resumes_with_the_cut_learning_rate(tmp_path):
    cfg = {"epochs": 4, "learningRate": 0.1, "batchSize": 32, "resources": {"cpuCores": 1}, "seed": 3,
           "checkpoint": {"everyEpochs": 1, "keepLast": 3}}
    first = torch_mlp(tmp_path / "a", cfg)
    assert first.rc == 0, first.err
    assert [e["epoch"] for e in first.epochs] == [1, 2, 3, 4]
    assert first.epochs[-1]["validation"]["accuracy"] > 0.85
    assert first.epochs[-1]["step"] == 4 * 45  # 1438 samples / 32 = 45 optimiser steps an epoch
    steps = first.of("step")
    assert steps and all(e["step"] % 10 == 0 for e in steps)
    checkpoints = first.of("checkpoint")
    assert [c["epoch"] for c in checkpoints] == [1, 2, 3, 4] and all(os.path.isfile(c["path"]) for c in checkpoints)

    # Attempt 2 resumes after epoch 2 with the learning rate cut ten times: the restored optimiser state must not
    # bring the old one back.
    resumed = torch_mlp(tmp_path / "b", dict(cfg, learningRate=0.01), attempt=2, resume=checkpoints[1]["path"])
    assert resumed.rc == 0, resumed.err
    assert "continuing at epoch 3" in resumed.out
    assert [e["epoch"] for e in resumed.epochs] == [3, 4]
    assert resumed.epochs[0]["step"] == 3 * 45
    assert all(abs(e["learningRate"] - 0.01) < 1e-12 for e in resumed.epochs + resumed.of("step"))


def test_torch_accumulation_matches_the_larger_batch(tmp_path):
    base = {"epochs": 2, "learningRate": 0.1, "resources": {"cpuCores": 1}, "seed": 5, "checkpoint": {"everyEpochs": 0}}
    big = torch_mlp(tmp_path / "big", dict(base, batchSize=64))
    split = torch_mlp(tmp_path / "split", dict(base, batchSize=32, gradientAccumulationSteps=2))
    assert big.rc == 0 and split.rc == 0, big.err + split.err
    assert [e["step"] for e in big.epochs] == [e["step"] for e in split.epochs] == [23, 46]
    for a, b in zip(big.epochs, split.epochs):
        assert a["validation"]["loss"] == pytest.approx(b["validation"]["loss"], rel=1e-4)


def test_torch_schedule_clipping_and_mixed_precision(tmp_path):
    cfg = {"epochs": 2, "learningRate": 0.2, "batchSize": 32, "resources": {"cpuCores": 1},
           "lrSchedule": {"kind": "step", "decayRate": 0.5, "decaySteps": 30},
           "gradientClipping": {"enabled": True, "maxNorm": 1.0}, "mixedPrecision": True,
           "checkpoint": {"everyEpochs": 0}}
    r = torch_mlp(tmp_path, cfg)
    assert r.rc == 0, r.err
    assert "mixed=True" in r.out
    for e in r.of("step"):  # the rate after `step` optimiser steps
        assert e["learningRate"] == pytest.approx(0.2 * 0.5 ** (e["step"] // 30))
    assert r.epochs[-1]["validation"]["accuracy"] > 0.8


def test_torch_too_high_learning_rate_diverges(tmp_path):
    r = torch_mlp(tmp_path, {"epochs": 3, "learningRate": 100, "batchSize": 32, "resources": {"cpuCores": 1}, "seed": 1})
    assert r.rc == 3, r.err
    assert r.errors == ["diverging_loss"]
    assert r.epochs[-1]["loss"] in ("NaN", "Infinity")
    # Clipping is the other cure: the same rate stays finite with the gradient norm held at 1.
    clipped = torch_mlp(tmp_path / "clipped", {"epochs": 2, "learningRate": 100, "batchSize": 32, "seed": 1,
                                                "gradientClipping": {"enabled": True, "maxNorm": 1.0},
                                                "resources": {"cpuCores": 1}, "checkpoint": {"everyEpochs": 0}})
    assert clipped.rc == 0, clipped.err


def test_torch_out_of_memory_under_rlimit_as(tmp_path):
    r = torch_mlp(tmp_path, OOM, memory_limit=960 * MiB)
    assert r.rc == 1, r.err
    assert r.errors == ["out_of_memory"]
    assert "DefaultCPUAllocator: can't allocate memory" in r.err
    fits = torch_mlp(tmp_path / "fits", dict(OOM, batchSize=512, gradientAccumulationSteps=2), memory_limit=960 * MiB)
    assert fits.rc == 0, fits.err


def test_torch_oom_killed_under_cgroup_limit(tmp_path):
    with memory_cgroup(512 * MiB) as (run_inside, oom_kills):
        proc = run_inside(TORCH_MLP, _env(str(tmp_path), OOM))
        assert proc.returncode in (-signal.SIGKILL, 128 + signal.SIGKILL), proc.stderr
        assert oom_kills() >= 1
        proc = run_inside(TORCH_MLP, _env(str(tmp_path), dict(OOM, batchSize=512, gradientAccumulationSteps=2)))
        assert proc.returncode == 0, proc.stderr
