"""Tests of archon_trainer.transformers: real Trainer runs in subprocesses, events on a real pipe on fd 3.

Run with `python3 -m pytest -q clients/python/test_transformers_adapter.py`. Each process imports transformers
(several seconds), so each run checks as much as it can: three processes in all.
"""

import json
import math
import os
import sys
import textwrap
import zipfile

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from test_archon_trainer import run_script  # noqa: E402

ENV = {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}

# A 4-class linear classifier on 8 random features (fixed seeds): a Dataset of dicts, a model whose forward returns
# {"loss", "logits"} and that can be told to return a NaN loss from its n-th training batch on.
COMMON = """
    import json
    import torch
    import transformers
    from archon_trainer.transformers import ArchonCallback, ArchonTrainer, resume_checkpoint, training_arguments

    class Data(torch.utils.data.Dataset):
        def __init__(self, n, seed):
            self.x = torch.randn(n, 8, generator=torch.Generator().manual_seed(seed))
            w = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))
            self.y = (self.x @ w).argmax(-1)

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            return {"input": self.x[i], "labels": self.y[i]}

    class Model(torch.nn.Module):
        def __init__(self, nan_after=0):
            super().__init__()
            self.linear = torch.nn.Linear(8, 4)
            self.nan_after, self.calls, self.dtype_seen = nan_after, 0, None

        def forward(self, input, labels=None):
            logits = self.linear(input)
            out = {"logits": logits}
            if labels is not None:
                loss = torch.nn.functional.cross_entropy(logits.float(), labels)
                if self.training:
                    self.calls += 1
                    self.dtype_seen = str(logits.dtype)
                    if self.nan_after and self.calls > self.nan_after:
                        loss = loss * float("nan")
                out["loss"] = loss
            return out

    def accuracy(prediction):
        return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}

    def show(args, **more):
        keys = ("per_device_train_batch_size", "gradient_accumulation_steps", "learning_rate", "num_train_epochs",
                "max_grad_norm", "logging_steps", "logging_nan_inf_filter", "seed", "bf16", "fp16", "use_cpu",
                "report_to", "disable_tqdm", "save_total_limit", "save_only_model")
        info = {k: getattr(args, k) for k in keys}
        info.update(save_strategy=str(args.save_strategy.value), eval_strategy=str(args.eval_strategy.value),
                    lr_scheduler_type=str(args.lr_scheduler_type.value), cuda=torch.cuda.is_available(), **more)
        print("ARGS " + json.dumps(info), flush=True)
"""


def script(body):
    return textwrap.dedent(COMMON) + textwrap.dedent(body)


def printed(out, tag):
    """The JSON printed on the stdout line starting with ``tag``."""
    return json.loads(next(line for line in out.splitlines() if line.startswith(tag + " "))[len(tag) + 1:])


def of_type(events, kind):
    return [e for e in events if e["type"] == kind]


# First attempt: 4 epochs configured, stopped after epoch 2 (as if the node went away) with both checkpoints written.
FIRST = """
    run = archon_trainer.init()

    class StopAfterTwo(transformers.TrainerCallback):
        def on_epoch_end(self, args, state, control, **kwargs):
            control.should_training_stop = state.epoch >= 2

    def train():
        args = training_arguments(run, eval_strategy="epoch")
        show(args)
        torch.manual_seed(0)
        trainer = ArchonTrainer(model=Model(), args=args, run=run, train_dataset=Data(256, 1),
                                eval_dataset=Data(64, 2), compute_metrics=accuracy, callbacks=[StopAfterTwo()])
        trainer.train(resume_from_checkpoint=resume_checkpoint(run))

    run.main(train)
"""

FIRST_CONFIG = {
    "batchSize": 16, "gradientAccumulationSteps": 2, "learningRate": 0.05, "epochs": 4, "seed": 7,
    "lrSchedule": {"kind": "step", "decayRate": 0.5, "decaySteps": 4},
    "gradientClipping": {"enabled": True, "maxNorm": 0.5},
    "checkpoint": {"everyEpochs": 1},
    "hyperparameters": {"logEvery": "3"},
}


@pytest.fixture(scope="module")
def first_attempt(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("attempt-1")
    rc, events, out, err = run_script(tmp, script(FIRST), config=FIRST_CONFIG, env_extra=ENV, timeout=180)
    return tmp, rc, events, out, err


def test_events_checkpoints_and_config(first_attempt):
    tmp, rc, events, out, err = first_attempt
    assert rc == 0, err
    assert "archon-event" not in err

    args = printed(out, "ARGS")
    assert (args["per_device_train_batch_size"], args["gradient_accumulation_steps"]) == (16, 2)
    assert (args["learning_rate"], args["num_train_epochs"], args["seed"]) == (0.05, 4, 7)
    assert args["max_grad_norm"] == 0.5  # gradientClipping.maxNorm
    assert args["logging_steps"] == 3 and args["logging_nan_inf_filter"] is False
    assert (args["bf16"], args["fp16"]) == (False, False)
    assert args["report_to"] == [] and args["disable_tqdm"] is True
    assert (args["save_strategy"], args["save_total_limit"], args["save_only_model"]) == ("epoch", 1, False)
    assert args["eval_strategy"] == "epoch"

    # 256 samples in micro-batches of 16 = 16 per epoch; accumulation 2 -> 8 optimiser steps per epoch.
    epochs = of_type(events, "epoch")
    assert [(e["epoch"], e["step"], e["totalEpochs"]) for e in epochs] == [(1, 8, 4), (2, 16, 4)]
    steps = of_type(events, "step")
    assert [(e["step"], e["epoch"]) for e in steps] == [(3, 1), (6, 1), (8, 1), (9, 2), (12, 2), (15, 2), (16, 2)]
    # lrSchedule step: 0.05 halved every 4 optimiser steps; a step event shows the rate its step used.
    for e in steps:
        assert e["learningRate"] == pytest.approx(0.05 * 0.5 ** ((e["step"] - 1) // 4)), e
        assert e["samplesPerSecond"] > 0 and math.isfinite(e["loss"])
    for e in epochs:
        assert e["learningRate"] == pytest.approx(0.05 * 0.5 ** (e["step"] // 4)), e  # the next step's
        assert e["durationSeconds"] > 0
        assert set(e["validation"]) == {"loss", "accuracy"} and 0 <= e["validation"]["accuracy"] <= 1
    # The epoch's loss is the mean over its optimiser steps of the logged losses (3 + 3 + 2 steps in epoch 1).
    l3, l6, l8 = (e["loss"] for e in steps[:3])
    assert epochs[0]["loss"] == pytest.approx((3 * l3 + 3 * l6 + 2 * l8) / 8)

    # One zip per epoch, reported after the epoch's event; the Trainer's scratch folder is gone.
    ckpt = tmp / "ckpt"
    checkpoints = of_type(events, "checkpoint")
    assert [(c["epoch"], c["step"], c["path"]) for c in checkpoints] == [
        (1, 8, str(ckpt / "ckpt-epoch-0001.hf.zip")), (2, 16, str(ckpt / "ckpt-epoch-0002.hf.zip"))]
    kinds = [(e["type"], e.get("epoch")) for e in events if e["type"] in ("epoch", "checkpoint")]
    assert kinds == [("epoch", 1), ("checkpoint", 1), ("epoch", 2), ("checkpoint", 2)]
    assert sorted(os.listdir(ckpt)) == ["ckpt-epoch-0001.hf.zip", "ckpt-epoch-0002.hf.zip"]
    with zipfile.ZipFile(ckpt / "ckpt-epoch-0002.hf.zip") as zf:
        names = set(zf.namelist())
        meta = json.loads(zf.read("archon-checkpoint.json"))
    assert {"trainer_state.json", "optimizer.pt", "scheduler.pt", "rng_state.pth", "model.safetensors"} <= names
    assert (meta["epoch"], meta["step"]) == (2, 16)


# Second attempt, as Archon would place it after an OOM and a divergence: batch halved with accumulation doubled,
# learning rate cut 10x, lrSchedule switched to exponential, mixed precision on; resumes from epoch 2's zip.
SECOND = """
    run = archon_trainer.init()

    def train():
        args = training_arguments(run)
        model = Model()
        trainer = ArchonTrainer(model=model, args=args, run=run, train_dataset=Data(256, 1))
        trainer.train(resume_from_checkpoint=resume_checkpoint(run))
        show(args, dtype=model.dtype_seen)

    run.main(train)
"""


def test_resume_continues_with_the_new_config(first_attempt, tmp_path):
    first, rc, _, _, err = first_attempt
    assert rc == 0, err
    config = dict(FIRST_CONFIG, batchSize=8, gradientAccumulationSteps=4, learningRate=0.005, mixedPrecision=True,
                  lrSchedule={"kind": "exponential", "decayRate": 0.5, "decaySteps": 8},
                  hyperparameters={"logEvery": "1"})
    resume = str(first / "ckpt" / "ckpt-epoch-0002.hf.zip")
    rc, events, out, err = run_script(tmp_path, script(SECOND), config=config, timeout=180,
                                      env_extra=dict(ENV, ARCHON_RESUME_FROM=resume))
    assert rc == 0, err
    assert f"resuming from {resume}: epoch 2 done, step 16; continuing at epoch 3" in out
    assert "learning rate 0.05 -> 0.005" in out

    args = printed(out, "ARGS")
    if args["cuda"]:
        assert args["fp16"] and not args["bf16"]
    else:  # mixed precision on the CPU: bfloat16 autocast, which the Trainer allows only with use_cpu
        assert args["bf16"] and args["use_cpu"] and not args["fp16"]
        assert args["dtype"] == "torch.bfloat16"
    assert args["max_grad_norm"] == 0.5 and args["gradient_accumulation_steps"] == 4

    # Same effective batch, so 8 steps per epoch still: the Trainer continues at epoch 3, step 17.
    steps = of_type(events, "step")
    assert [e["step"] for e in steps] == list(range(17, 33))
    assert [e["epoch"] for e in steps] == [3] * 8 + [4] * 8
    # The new learning rate and schedule from the first step on, at the schedule's position (not from step 0).
    for e in steps:
        assert e["learningRate"] == pytest.approx(0.005 * 0.5 ** ((e["step"] - 1) / 8), rel=1e-6), e
    epochs = of_type(events, "epoch")
    assert [(e["epoch"], e["step"]) for e in epochs] == [(3, 24), (4, 32)]
    assert all("validation" not in e for e in epochs)  # no eval dataset: sent at the epoch's end
    assert [c["epoch"] for c in of_type(events, "checkpoint")] == [3, 4]
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["ckpt-epoch-0003.hf.zip", "ckpt-epoch-0004.hf.zip"]


# Divergence, both ways: a plain Trainer with the callback (the logged loss above maxLoss), then ArchonTrainer with a
# NaN loss from the 6th batch on (caught at that micro-batch, before its optimiser step). Also an unreadable resume zip.
DIVERGING = """
    import os
    run = archon_trainer.init()

    def train():
        bad = os.path.join(os.path.dirname(run.checkpoint_dir), "garbage.hf.zip")
        with open(bad, "wb") as f:
            f.write(b"not a zip")
        try:
            resume_checkpoint(archon_trainer.Run({"ARCHON_RESUME_FROM": bad, "ARCHON_CHECKPOINT_DIR": "scratch"}))
        except archon_trainer.DataCorruption as e:
            print("CORRUPT " + json.dumps(str(e)), flush=True)

        args = training_arguments(run)
        show(args)
        try:
            transformers.Trainer(model=Model(), args=args, train_dataset=Data(256, 1),
                                 callbacks=[ArchonCallback(run, max_loss=1e-3)]).train()
        except archon_trainer.DivergingLoss as e:
            print("CALLBACK " + json.dumps(str(e)), flush=True)
        ArchonTrainer(model=Model(nan_after=5), args=args, run=run, train_dataset=Data(256, 1)).train()

    run.main(train)
"""


def test_diverging_loss(tmp_path):
    config = {"batchSize": 16, "learningRate": 0.05, "epochs": 2, "lrSchedule": {"kind": "cosine"},
              "hyperparameters": {"logEvery": "2"}}
    rc, events, out, err = run_script(tmp_path, script(DIVERGING), config=config, env_extra=ENV, timeout=180)
    assert rc == 3, err  # run.main: diverging_loss
    assert "archon_trainer: diverging_loss (FloatingPointError): loss is NaN at epoch 1, step 5" in err

    corrupt = printed(out, "CORRUPT")
    assert "garbage.hf.zip" in corrupt and "not a readable zip" in corrupt
    args = printed(out, "ARGS")
    assert args["max_grad_norm"] == 0.0  # clipping disabled: the Trainer clips only above 0
    assert args["lr_scheduler_type"] == "cosine"  # for a plain Trainer; ArchonTrainer builds its own

    # The callback: the first logged loss (step 2) is above maxLoss; trainer.train() raised it.
    assert "exceeds maxLoss 0.001 at epoch 1, step 2" in printed(out, "CALLBACK")
    # ArchonTrainer: the NaN at micro-batch 6 (5 optimiser steps done) is reported at once, after an epoch event
    # carrying it (where the loss went bad, for the controller), and nothing after the error.
    errors = of_type(events, "error")
    assert errors == [{"type": "error", "errorClass": "diverging_loss",
                       "message": "DivergingLoss: loss is NaN at epoch 1, step 5"}]
    assert events[-1] == errors[0]
    assert events[-2]["type"] == "epoch" and events[-2]["loss"] == "NaN" and events[-2]["step"] == 5
    assert [e["step"] for e in of_type(events, "step")] == [2, 4]  # ArchonTrainer's, logged before the NaN
    assert of_type(events, "checkpoint") == []
    assert not os.path.exists(tmp_path / "ckpt") or os.listdir(tmp_path / "ckpt") == []  # no scratch left
