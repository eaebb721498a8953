"""Tests of archon_trainer.lightning: run with `python3 -m pytest -q clients/python`.

The end-to-end tests run real training processes (a tiny LightningModule on random tensors) with the events on a
real pipe on fd 3, as the agent runs them; each process pays Lightning's import, so each one checks several things.
"""

import json
import math
import os
import types

import pytest

pytest.importorskip("pytorch_lightning")

from test_archon_trainer import run_script  # noqa: E402  (also puts clients/python on sys.path)

import torch  # noqa: E402

import archon_trainer as at  # noqa: E402
from archon_trainer import lightning as archon_pl  # noqa: E402

pl = archon_pl.pl

#: A trainer script: an MLP on 256 random samples, batch 32 (8 micro-batches an epoch), validation on 64.
#: Hyperparameter nanAt: the loss of that training batch (counted from 1 in this process) is NaN. On stdout, JSON
#: lines: the Trainer's settings, then per epoch the loss of its first micro-batch and the mean of its micro-batch
#: losses, as training_step computed them.
TRAINER = """
import json
import torch
import pytorch_lightning as pl
from torch.utils.data import DataLoader, TensorDataset
from archon_trainer import lightning as archon_pl

run = archon_trainer.init()
nan_at = run.hyperparameter("nanAt", 0, int)


def dataset(seed, n):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    return TensorDataset(x, (x[:, :4].sum(1) > 0).long())


class Tiny(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
        self.batches = 0
        self.losses = []

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.net(x), y)
        self.batches += 1
        if self.batches == nan_at:
            loss = loss * float("nan")
        self.losses.append(loss.item())
        if batch_idx == 0:
            print(json.dumps({"epoch": self.current_epoch + 1, "firstLoss": loss.item()}), flush=True)
        return {"loss": loss}

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self.net(x)
        self.log("val_loss", torch.nn.functional.cross_entropy(logits, y))
        self.log("val_accuracy", (logits.argmax(1) == y).float().mean())

    def on_train_epoch_end(self):
        print(json.dumps({"epoch": self.current_epoch + 1, "meanLoss": sum(self.losses) / len(self.losses)}))
        self.losses = []

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=1.0)
        steps = self.trainer.estimated_stepping_batches // self.trainer.max_epochs
        return archon_pl.configure_optimizers(run, optimizer, steps)


def train():
    torch.manual_seed(0)
    trainer = pl.Trainer(**archon_pl.trainer_kwargs(run, accelerator="cpu", num_sanity_val_steps=0))
    print(json.dumps({"precision": trainer.precision, "clip": trainer.gradient_clip_val,
                      "clipAlgorithm": trainer.gradient_clip_algorithm, "accumulate": trainer.accumulate_grad_batches,
                      "maxEpochs": trainer.max_epochs}), flush=True)
    trainer.fit(Tiny(), DataLoader(dataset(1, 256), batch_size=run.config["batchSize"]),
                DataLoader(dataset(2, 64), batch_size=64), ckpt_path=archon_pl.ckpt_path(run))


run.main(train)
"""

CONFIG = {
    "epochs": 4,
    "batchSize": 32,
    "learningRate": 0.1,
    "gradientAccumulationSteps": 2,
    "lrSchedule": {"kind": "step", "decayRate": 0.5, "decaySteps": 4},
    "gradientClipping": {"enabled": True, "maxNorm": 1.0},
    "mixedPrecision": True,
    "checkpoint": {"everyEpochs": 2},
    "hyperparameters": {"logEvery": "2"},
}


def train(directory, config, env_extra=None):
    directory.mkdir()
    rc, events, out, err = run_script(directory, TRAINER, config=config, env_extra=env_extra, timeout=180)
    printed = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return rc, events, out, err, printed


def of(events, kind):
    return [e for e in events if e["type"] == kind]


@pytest.fixture(scope="module")
def attempts(tmp_path_factory):
    """Attempt 1 diverges in epoch 3 of 4 (a NaN loss at its 19th micro-batch); attempt 2 resumes from the
    checkpoint after epoch 2 with the learning rate cut tenfold, as Archon's remediation orders it."""
    base = tmp_path_factory.mktemp("lightning")
    first = train(base / "attempt1", dict(CONFIG, hyperparameters={"logEvery": "2", "nanAt": "19"}))
    checkpoints = of(first[1], "checkpoint")
    assert checkpoints, first[3]
    second = train(base / "attempt2", dict(CONFIG, learningRate=0.01, checkpoint={"everyEpochs": 3}),
                   {"ARCHON_RESUME_FROM": checkpoints[-1]["path"]})
    return base, first, second


# --------------------------------------------------------------------------- end to end


def test_events_and_config(attempts):
    base, (rc, events, out, err, printed), _ = attempts
    settings = printed[0]
    # mixedPrecision on a CPU: bfloat16 autocast; clipping by norm; accumulation.
    assert (settings["precision"], settings["clip"], settings["clipAlgorithm"]) == ("bf16-mixed", 1.0, "norm")
    assert (settings["accumulate"], settings["maxEpochs"]) == (2, 4)

    # 8 micro-batches an epoch, accumulation 2: 4 optimiser steps an epoch; a step event every 2.
    steps = of(events, "step")
    assert [(e["step"], e["epoch"]) for e in steps] == [(2, 1), (4, 1), (6, 2), (8, 2)]
    # lrSchedule step: 0.1 halved every 4 optimiser steps (reported after the scheduler stepped).
    assert [e["learningRate"] for e in steps] == pytest.approx([0.1, 0.05, 0.05, 0.025])
    assert all(e["samplesPerSecond"] > 0 and 0 < e["loss"] < 5 for e in steps)

    epochs = of(events, "epoch")[:2]
    assert [(e["epoch"], e["totalEpochs"], e["step"]) for e in epochs] == [(1, 4, 4), (2, 4, 8)]
    assert [e["learningRate"] for e in epochs] == pytest.approx([0.05, 0.025])
    means = [p["meanLoss"] for p in printed if "meanLoss" in p]
    for e, mean in zip(epochs, means):
        # The mean of the micro-batch losses themselves, not Lightning's loss divided by the accumulation.
        assert e["loss"] == pytest.approx(mean, rel=1e-5)
        # That epoch's validation (Lightning runs it before on_train_epoch_end).
        assert 0 < e["validation"]["loss"] < 5 and 0 <= e["validation"]["accuracy"] <= 1
        assert e["durationSeconds"] > 0
    assert epochs[0]["validation"] != epochs[1]["validation"]

    # checkpoint.everyEpochs 2: one file, after its epoch event.
    path = base / "attempt1" / "ckpt" / "ckpt-epoch-0002.ckpt"
    assert of(events, "checkpoint") == [{"type": "checkpoint", "path": str(path), "epoch": 2, "step": 8}]
    assert os.listdir(path.parent) == [path.name]
    i = events.index(of(events, "checkpoint")[0])
    assert (events[i - 1]["type"], events[i - 1]["epoch"]) == ("epoch", 2)


def test_nan_loss_is_diverging_loss_exit_3(attempts):
    _, (rc, events, out, err, printed), _ = attempts
    assert rc == 3, err
    # Micro-batch 19 is the 3rd of epoch 3, after optimiser step 9. The epoch event with the NaN shows Archon where
    # the loss curve broke; the exception raised in the callback comes out of trainer.fit to run.main.
    assert [e["type"] for e in events[-3:]] == ["checkpoint", "epoch", "error"]
    assert (events[-2]["epoch"], events[-2]["step"], events[-2]["loss"]) == (3, 9, "NaN")
    assert "validation" not in events[-2]
    assert events[-1] == {"type": "error", "errorClass": "diverging_loss",
                          "message": "DivergingLoss: loss is nan at epoch 3, step 9"}
    assert "archon_trainer: diverging_loss (FloatingPointError)" in err.splitlines()[-1]


def test_resume_with_a_lower_learning_rate(attempts):
    base, first, (rc, events, out, err, printed) = attempts
    assert rc == 0, err
    assert of(events, "error") == []
    assert "resuming with learning rate 0.01 (the checkpoint's was 0.1)" in out
    # Epochs 3 and 4 only, the step count continuing from the checkpoint's.
    assert [(e["epoch"], e["step"]) for e in of(events, "epoch")] == [(3, 12), (4, 16)]
    assert [p["epoch"] for p in printed if "meanLoss" in p] == [3, 4]
    assert all("validation" in e for e in of(events, "epoch"))
    # The schedule continues where it was (halved twice by step 8), on the new base: ten times lower than before.
    steps = of(events, "step")
    assert [e["step"] for e in steps] == [10, 12, 14, 16]
    assert [e["learningRate"] for e in steps] == pytest.approx([0.0025, 0.00125, 0.00125, 0.000625])
    assert [e["learningRate"] for e in of(events, "epoch")] == pytest.approx([0.00125, 0.000625])
    # checkpoint.everyEpochs 3, and the final epoch.
    ckpt = base / "attempt2" / "ckpt"
    assert of(events, "checkpoint") == [
        {"type": "checkpoint", "path": str(ckpt / "ckpt-epoch-0003.ckpt"), "epoch": 3, "step": 12},
        {"type": "checkpoint", "path": str(ckpt / "ckpt-epoch-0004.ckpt"), "epoch": 4, "step": 16},
    ]
    # The first micro-batch of epoch 3 computes the same loss as in attempt 1: the weights were restored.
    first_loss = {p["epoch"]: p["firstLoss"] for p in first[4] if "firstLoss" in p}
    assert printed[1] == {"epoch": 3, "firstLoss": first_loss[3]}


# --------------------------------------------------------------------------- in process


def make_run(tmp_path, **config):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return at.Run({"ARCHON_CONFIG": str(path), "ARCHON_CHECKPOINT_DIR": str(tmp_path / "ckpt")})


def test_trainer_kwargs(tmp_path, monkeypatch):
    run = make_run(tmp_path, epochs=3, gradientAccumulationSteps=4, mixedPrecision=True,
                   gradientClipping={"enabled": True, "maxNorm": 0.5})
    extra = pl.callbacks.LearningRateMonitor()
    kwargs = archon_pl.trainer_kwargs(run, accelerator="cpu", callbacks=[extra], max_epochs=5)
    assert isinstance(kwargs["callbacks"][0], archon_pl.ArchonCallback) and kwargs["callbacks"][1] is extra
    trainer = pl.Trainer(**kwargs)
    assert (trainer.max_epochs, trainer.accumulate_grad_batches) == (5, 4)
    assert (trainer.gradient_clip_val, trainer.gradient_clip_algorithm) == (0.5, "norm")
    assert trainer.precision == "bf16-mixed"
    assert trainer.checkpoint_callback is None and trainer.logger is None and not trainer.progress_bar_callback

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert archon_pl.trainer_kwargs(run)["precision"] == "16-mixed"
    assert archon_pl.trainer_kwargs(run, accelerator="cpu")["precision"] == "bf16-mixed"
    plain = archon_pl.trainer_kwargs(make_run(tmp_path))
    assert (plain["precision"], plain["gradient_clip_val"], plain["gradient_clip_algorithm"]) == ("32-true", None, None)
    assert (plain["max_epochs"], plain["accumulate_grad_batches"]) == (1, 1)


def test_configure_optimizers_and_ckpt_path(tmp_path):
    run = make_run(tmp_path, epochs=2, learningRate=0.2, lrSchedule={"kind": "exponential", "decayRate": 0.5,
                                                                      "decaySteps": 2})
    optimizer = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=1.0)
    conf = archon_pl.configure_optimizers(run, optimizer, steps_per_epoch=3)
    assert conf["optimizer"] is optimizer and conf["lr_scheduler"]["interval"] == "step"
    scheduler = conf["lr_scheduler"]["scheduler"]
    lrs = []
    for _ in range(4):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs == pytest.approx([0.2 * 0.5 ** (s / 2) for s in range(4)])
    assert archon_pl.ckpt_path(run) is None
    resumed = at.Run({"ARCHON_RESUME_FROM": "/c/ckpt-epoch-0002.ckpt"})
    assert archon_pl.ckpt_path(resumed) == "/c/ckpt-epoch-0002.ckpt"


def test_on_load_checkpoint_retargets_the_learning_rate(tmp_path):
    run = make_run(tmp_path, learningRate=0.01)
    checkpoint = {
        "optimizer_states": [{"state": {}, "param_groups": [{"lr": 0.05, "initial_lr": 0.1, "params": [0]}]}],
        "lr_schedulers": [{"base_lrs": [0.1], "_last_lr": [0.05], "last_epoch": 4}],
    }
    trainer = types.SimpleNamespace(is_global_zero=True)
    archon_pl.ArchonCallback(run).on_load_checkpoint(trainer, None, checkpoint)
    assert checkpoint["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(0.005)
    assert checkpoint["optimizer_states"][0]["param_groups"][0]["initial_lr"] == pytest.approx(0.01)
    assert checkpoint["lr_schedulers"][0]["base_lrs"] == pytest.approx([0.01])
    assert checkpoint["lr_schedulers"][0]["last_epoch"] == 4


def test_max_loss_is_diverging(tmp_path, capsys):
    run = make_run(tmp_path, epochs=2, hyperparameters={"maxLoss": "10"})
    callback = archon_pl.ArchonCallback(run)
    optimizer = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.01)
    trainer = types.SimpleNamespace(global_step=3, current_epoch=0, accumulate_grad_batches=2, is_global_zero=True,
                                    optimizers=[optimizer], max_epochs=2)
    module = types.SimpleNamespace(automatic_optimization=True)
    batch = (torch.zeros(4, 2), torch.zeros(4))
    callback.on_train_epoch_start(trainer, module)
    callback.on_train_batch_end(trainer, module, {"loss": torch.tensor(4.0)}, batch, 0)  # 8 after the 1/2 scaling
    with pytest.raises(at.DivergingLoss, match="loss is 12.0 at epoch 1, step 3"):
        callback.on_train_batch_end(trainer, module, torch.tensor(6.0), batch, 1)
    line = [x for x in capsys.readouterr().err.splitlines() if x.startswith("archon-event: ")][-1]
    event = json.loads(line[len("archon-event: "):])
    assert (event["type"], event["epoch"], event["loss"]) == ("epoch", 1, 12.0)
    assert not math.isnan(event["learningRate"])
