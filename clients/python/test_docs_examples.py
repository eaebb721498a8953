"""The complete examples in docs/trainers.md, run as they are written: a trainer per framework, as the agent runs it.

Each ```python block of the document that calls `run.main(train)` is written to a file and run twice, with a real
pipe on fd 3: attempt 1 for two epochs with a checkpoint after each, then attempt 2 resuming from the first checkpoint
with a learning rate ten times lower. A block whose framework is not installed is skipped.
"""

import json
import os
import re
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
DOC = os.path.join(HERE, "..", "..", "docs", "trainers.md")


def _examples():
    text = open(DOC, encoding="utf-8").read()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    return [b for b in blocks if "run.main(train)" in b]


def _framework(code):
    for module in ("pytorch_lightning", "transformers", "torch"):
        if re.search(rf"^import {module}\b", code, flags=re.M):
            return module
    return None


def _attempt(tmp_path, script, attempt, config, resume=""):
    cfg = tmp_path / f"config-{attempt}.json"
    cfg.write_text(json.dumps(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHON_")}
    env.update({"PYTHONPATH": HERE, "HF_HUB_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1", "ARCHON_JOB_ID": "doc",
                "ARCHON_ATTEMPT": str(attempt), "ARCHON_CONFIG": str(cfg), "ARCHON_CHECKPOINT_DIR": str(tmp_path / f"ckpt-{attempt}"),
                "ARCHON_RESUME_FROM": resume, "ARCHON_EVENTS_FD": "3"})
    r, w = os.pipe()
    proc = subprocess.Popen([sys.executable, str(script)], cwd=str(tmp_path), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, close_fds=False,
                            preexec_fn=lambda: os.dup2(w, 3))  # dup2 clears close-on-exec: fd 3 survives exec
    os.close(w)
    with os.fdopen(r, "rb") as events:
        lines = events.read().decode().splitlines()
    out, err = proc.communicate(timeout=240)
    return proc.returncode, [json.loads(line) for line in lines], err


@pytest.mark.parametrize("index", range(3))
def test_the_documented_example_trains_checkpoints_and_resumes(tmp_path, index):
    examples = _examples()
    assert len(examples) == 3, "docs/trainers.md should hold one complete example per framework"
    code = examples[index]
    framework = _framework(code)
    pytest.importorskip(framework)
    script = tmp_path / "train.py"
    script.write_text(code)
    config = {"epochs": 2, "batchSize": 64, "learningRate": 0.05, "seed": 1, "checkpoint": {"everyEpochs": 1}}
    rc, events, err = _attempt(tmp_path, script, 1, config)
    assert rc == 0, err[-3000:]
    epochs = [e for e in events if e["type"] == "epoch"]
    checkpoints = [e for e in events if e["type"] == "checkpoint"]
    assert [e["epoch"] for e in epochs] == [1, 2], events
    assert [c["epoch"] for c in checkpoints] == [1, 2] and all(os.path.isfile(c["path"]) for c in checkpoints)

    rc, events, err = _attempt(tmp_path, script, 2, dict(config, learningRate=0.005), resume=checkpoints[0]["path"])
    assert rc == 0, err[-3000:]
    resumed = [e for e in events if e["type"] == "epoch"]
    assert [e["epoch"] for e in resumed] == [2], events
    assert resumed[0]["learningRate"] == pytest.approx(0.005)
