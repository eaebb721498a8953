"""Tests of archon_trainer: run with `python3 -m pytest -q clients/python`."""

import json
import math
import os
import subprocess
import sys
import textwrap

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import archon_trainer as at  # noqa: E402


def run_script(tmp_path, body, config=None, env_extra=None, events_fd=True, timeout=30):
    """Run `body` (Python using archon_trainer) in a subprocess with a real pipe on fd 3.

    Returns (returncode, event dicts, stdout, stderr).
    """
    script = tmp_path / "script.py"
    script.write_text("import sys\nsys.path.insert(0, %r)\nimport archon_trainer\n" % HERE + textwrap.dedent(body))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHON_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if config is not None:
        cfg = tmp_path / "config.json"
        cfg.write_text(json.dumps(config))
        env["ARCHON_CONFIG"] = str(cfg)
    env["ARCHON_CHECKPOINT_DIR"] = str(tmp_path / "ckpt")
    env.update(env_extra or {})
    if not events_fd:
        proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=timeout)
        return proc.returncode, [], proc.stdout, proc.stderr
    r, w = os.pipe()
    try:
        env["ARCHON_EVENTS_FD"] = "3"
        # The child gets the pipe's write end as fd 3 (dup2 clears close-on-exec), like the agent does it.
        proc = subprocess.Popen(
            [sys.executable, str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            close_fds=False, preexec_fn=lambda: os.dup2(w, 3),
        )
        os.close(w)
        w = -1
        with os.fdopen(r, "r", encoding="utf-8") as events:
            r = -1
            lines = events.read().splitlines()
        out, err = proc.communicate(timeout=timeout)
    finally:
        for fd in (r, w):
            if fd >= 0:
                os.close(fd)
    return proc.returncode, [json.loads(line) for line in lines], out, err


# --------------------------------------------------------------------------- encoding and config


def test_non_finite_numbers_are_strings():
    line = at.encode_event({"type": "epoch", "loss": float("nan"), "a": float("inf"), "b": -math.inf, "c": 1.5})
    assert json.loads(line) == {"type": "epoch", "loss": "NaN", "a": "Infinity", "b": "-Infinity", "c": 1.5}
    assert "NaN," not in line and "\n" not in line


def test_numeric_scalar_types_are_plain_numbers():
    class Scalar:
        def __float__(self):
            return 0.25

    assert json.loads(at.encode_event({"x": Scalar(), "n": True})) == {"x": 0.25, "n": True}


def test_config_defaults_and_nested_merge(tmp_path):
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"batchSize": 8, "checkpoint": {"everyEpochs": 2},
                             "hyperparameters": {"hidden": 128, "fault": "nan"}}))
    cfg = at.load_config(str(p))
    assert cfg["batchSize"] == 8
    assert cfg["learningRate"] == 0.01
    assert cfg["checkpoint"] == {"everyEpochs": 2, "everySteps": 0, "keepLast": 3}
    assert cfg["hyperparameters"] == {"hidden": "128", "fault": "nan"}
    assert at.load_config(None)["epochs"] == at.DEFAULT_CONFIG["epochs"]
    with pytest.raises(FileNotFoundError):
        at.load_config(str(tmp_path / "missing.json"))


def test_run_from_environment(tmp_path):
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"epochs": 4, "hyperparameters": {"hidden": "32", "on": "true"}}))
    run = at.Run({"ARCHON_JOB_ID": "j1", "ARCHON_ATTEMPT": "2", "ARCHON_CONFIG": str(p),
                  "ARCHON_CHECKPOINT_DIR": str(tmp_path / "ck"), "ARCHON_RESUME_FROM": "",
                  "ARCHON_DATASET_PATH": "/data/x"})
    assert (run.job_id, run.attempt, run.config["epochs"]) == ("j1", 2, 4)
    assert run.resume_path() is None
    assert run.dataset_path == "/data/x"
    assert run.hyperparameter("hidden", 64, int) == 32
    assert run.hyperparameter("missing", 7, int) == 7
    assert run.hyperparameter("on", False, bool) is True
    assert run.checkpoint_path(3, suffix=".npz") == str(tmp_path / "ck" / "ckpt-epoch-0003.npz")
    assert not run.events_to_fd  # no ARCHON_EVENTS_FD: stderr fallback


def test_checkpoint_names_sort_by_progress(tmp_path):
    run = at.Run({"ARCHON_CHECKPOINT_DIR": str(tmp_path)})
    names = [run.checkpoint_path(10), run.checkpoint_path(2), run.checkpoint_path(3, step=250),
             run.checkpoint_path(3), run.checkpoint_path(3, step=1000), run.checkpoint_path(2, step=5)]
    order = sorted(names)
    assert order == [run.checkpoint_path(2, step=5), run.checkpoint_path(2), run.checkpoint_path(3, step=250),
                     run.checkpoint_path(3, step=1000), run.checkpoint_path(3), run.checkpoint_path(10)]


def test_should_checkpoint():
    run = at.Run({})
    run.config["checkpoint"]["everyEpochs"] = 2
    assert [e for e in range(1, 6) if run.should_checkpoint(e)] == [2, 4]
    assert [e for e in range(1, 6) if run.should_checkpoint(e, final_epoch=5)] == [2, 4, 5]
    run.config["checkpoint"]["everyEpochs"] = 0
    assert not any(run.should_checkpoint(e, final_epoch=5) for e in range(1, 6))


def test_classification():
    cases = {
        FileNotFoundError(2, "x"): "dataset_not_found",
        PermissionError(13, "x"): "permission_denied",
        MemoryError(): "out_of_memory",
        RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"): "out_of_memory",
        at.DivergingLoss("NaN"): "diverging_loss",
        at.DataCorruption("bad"): "data_corruption",
        ValueError("x"): "crash",
        KeyError("x"): "crash",
    }
    for exc, cls in cases.items():
        assert at.classify_exception(exc) == cls, exc


def test_check_finite():
    assert at.Run.check_finite(0.5) == 0.5
    with pytest.raises(at.DivergingLoss, match="NaN at epoch 2, step 7"):
        at.Run.check_finite(float("nan"), epoch=2, step=7)
    with pytest.raises(at.DivergingLoss, match="Infinity"):
        at.Run.check_finite(float("inf"))


# --------------------------------------------------------------------------- events on a real pipe


def test_events_on_fd3(tmp_path):
    rc, events, out, err = run_script(tmp_path, """
        run = archon_trainer.init()
        run.heartbeat()
        run.step(100, 2, 0.4, 0.01, 900)
        run.epoch(1, 5, 0.53, 0.01, 1.2, 57, validation={"loss": 0.6, "accuracy": 0.9})
        run.epoch(2, 5, float("nan"), 0.01, 1.0, 114)
        run.checkpoint("rel/ckpt-epoch-0003.npz", 3, 171)
        run.error("diverging_loss", "loss is NaN")
        run.error("no_such_class", "x")
    """, config={"epochs": 5})
    assert rc == 0, err
    assert "archon-event" not in err
    assert events[0] == {"type": "heartbeat"}
    assert events[1] == {"type": "step", "step": 100, "epoch": 2, "loss": 0.4, "learningRate": 0.01,
                         "samplesPerSecond": 900.0}
    assert events[2] == {"type": "epoch", "epoch": 1, "totalEpochs": 5, "loss": 0.53, "learningRate": 0.01,
                         "durationSeconds": 1.2, "step": 57, "validation": {"loss": 0.6, "accuracy": 0.9}}
    assert events[3]["loss"] == "NaN" and "validation" not in events[3]
    assert events[4]["type"] == "checkpoint" and os.path.isabs(events[4]["path"])
    assert events[4]["path"].endswith("rel/ckpt-epoch-0003.npz") and (events[4]["epoch"], events[4]["step"]) == (3, 171)
    assert events[5] == {"type": "error", "errorClass": "diverging_loss", "message": "loss is NaN"}
    assert events[6]["errorClass"] == "crash"


def test_fallback_to_stderr_when_fd_not_open(tmp_path):
    rc, _, out, err = run_script(tmp_path, """
        run = archon_trainer.init()
        assert not run.events_to_fd
        run.epoch(1, 1, float("inf"), 0.1, 0.5, 3)
        print("ok")
    """, config={}, env_extra={"ARCHON_EVENTS_FD": "3"}, events_fd=False)
    assert rc == 0, err
    assert out.strip() == "ok"
    line = [x for x in err.splitlines() if x.startswith("archon-event: ")][0]
    assert json.loads(line[len("archon-event: "):])["loss"] == "Infinity"


def test_fallback_when_reader_is_gone(tmp_path):
    rc, _, out, err = run_script(tmp_path, """
        import os
        r, w = os.pipe()
        os.close(r)  # nobody reads: EPIPE
        run = archon_trainer.Run({"ARCHON_EVENTS_FD": str(w)})
        assert run.events_to_fd
        run.heartbeat()
        run.heartbeat()
        assert not run.events_to_fd
        print("alive")
    """, events_fd=False)
    assert rc == 0, err
    assert out.strip() == "alive"
    assert err.count('archon-event: {"type":"heartbeat"}') == 2


def test_guard_reports_and_main_exit_codes(tmp_path):
    cases = [
        ("open('/nonexistent/archon/data.bin')", 1, "dataset_not_found", "FileNotFoundError"),
        ("raise MemoryError('Unable to allocate 96.0 MiB')", 1, "out_of_memory", "MemoryError"),
        ("raise archon_trainer.DivergingLoss('loss is NaN')", 3, "diverging_loss", "NaN"),
        ("raise archon_trainer.DataCorruption('bad rows')", 4, "data_corruption", "DataCorruption"),
        ("raise RuntimeError('boom')", 1, "crash", "RuntimeError: boom"),
        ("pass", 0, None, None),
    ]
    for code, want_rc, want_cls, want_err in cases:
        rc, events, out, err = run_script(tmp_path, f"""
            def train():
                {code}
            archon_trainer.init().main(train)
        """)
        assert rc == want_rc, (code, err)
        if want_cls is None:
            assert events == [], events
        else:
            assert [e["errorClass"] for e in events if e["type"] == "error"] == [want_cls]
            assert want_err in err and "Traceback" in err
            assert f"archon_trainer: {want_cls} (" in err.splitlines()[-1]


def test_guard_propagates(tmp_path):
    rc, events, out, err = run_script(tmp_path, """
        run = archon_trainer.init()
        with run.guard():
            raise PermissionError(13, "Permission denied", "/data/secret")
    """)
    assert rc == 1
    assert events == [{"type": "error", "errorClass": "permission_denied",
                       "message": "PermissionError: [Errno 13] Permission denied: '/data/secret'"}]
    assert "PermissionError" in err


def test_save_checkpoint_is_atomic(tmp_path):
    rc, events, out, err = run_script(tmp_path, """
        import os
        run = archon_trainer.init()
        def write(tmp):
            assert os.path.basename(tmp).startswith(".") and not os.path.exists(run.checkpoint_path(1, suffix=".bin"))
            with open(tmp, "wb") as f:
                f.write(b"weights")
        path = run.save_checkpoint(1, 10, write, suffix=".bin")
        def broken(tmp):
            with open(tmp, "wb") as f:
                f.write(b"half")
            raise RuntimeError("disk went away")
        try:
            run.save_checkpoint(2, 20, broken, suffix=".bin")
        except RuntimeError:
            pass
        print(sorted(os.listdir(run.checkpoint_dir)))
    """, config={})
    assert rc == 0, err
    assert out.strip() == "['ckpt-epoch-0001.bin']"
    assert (tmp_path / "ckpt" / "ckpt-epoch-0001.bin").read_bytes() == b"weights"
    assert events == [{"type": "checkpoint", "path": str(tmp_path / "ckpt" / "ckpt-epoch-0001.bin"),
                       "epoch": 1, "step": 10}]


def test_the_package_installs_with_pip_and_carries_its_adapters(tmp_path):
    """`pip install ./clients/python` (from a copy: setuptools builds in the source tree) gives a package that
    imports from where pip put it, with the framework adapters as modules."""
    import shutil
    source = tmp_path / "src"
    shutil.copytree(HERE, source, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info", ".pytest_cache"))
    target = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                           "--target", str(target), str(source)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    probe = ("import archon_trainer, importlib.util as u; print(archon_trainer.__file__); "
             "print(*[bool(u.find_spec('archon_trainer.' + m)) for m in ('pytorch', 'lightning', 'transformers')])")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHON_")}
    env["PYTHONPATH"] = str(target)
    out = subprocess.run([sys.executable, "-c", probe], cwd=str(tmp_path), env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    location, found = out.stdout.splitlines()
    assert location.startswith(str(target)), location
    assert found == "True True True"
