"""benchmarks/gate_power.py's model of real releases: paired block resampling of real A/A load tests."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from mlops.settings.gates import read_gates
from tests.conftest import REPO


@pytest.fixture(scope="module")
def gate_power():
    spec = importlib.util.spec_from_file_location("gate_power", REPO / "benchmarks" / "gate_power.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gate_power"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("gate_power", None)


def _run(gate_power, seconds: int, latency) -> object:
    """A run of ``seconds`` whole seconds; ``latency(name, second)`` -> that second's latencies."""
    return gate_power.ReleaseRun("r", {name: {s: latency(name, s) for s in range(seconds)}
                                       for name in ("blue", "baseline", "green")}, "green")


def test_a_rebuilt_run_takes_the_same_seconds_on_both_sides_from_the_judged_part_only(gate_power) -> None:
    run = _run(gate_power, 40, lambda name, s: [float(s) + (100 if name == "baseline" else 0)] * 3)
    rng = np.random.default_rng(1)
    for first, length, block in ((10, 20, 5), (2, 8, 5), (0, 40, 1), (10, 30, 7)):
        candidate, baseline = gate_power.block_run(run, ("green", "baseline"), first, length, block, rng)
        assert len(candidate) == len(baseline) >= 3 * length
        assert np.array_equal(baseline - candidate, np.full(len(candidate), 100.0))  # paired second by second
        assert candidate.min() >= first and candidate.max() < min(first + length, 40)


def test_the_gate_pair_is_the_candidate_against_its_fresh_baseline(gate_power, tmp_path: Path) -> None:
    folder = tmp_path / "20261201T000000Z-abcdef"
    folder.mkdir()
    lines = ["1000.0,green,green,50.0,1,200", "1000.5,baseline,baseline,40.0,1,200", "1001.2,blue,blue,45.0,1,200",
             "1001.3,green,green,9999.0,0,500", "torn,line"]
    (folder / "loadtest-samples.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / f"{folder.name}.json").write_text(json.dumps({"loadtest": {"targets": ["green", "baseline", "blue"]}}))
    run = gate_power.read_release(folder / "loadtest-samples.csv")
    assert run.candidate == "green"
    assert run.seconds == {"green": {0: [50.0]}, "baseline": {0: [40.0]}, "blue": {1: [45.0]}}  # failures dropped
    assert run.pairs("gate") == [("green", "baseline")]
    assert len(run.pairs("all")) == 6 and ("blue", "green") in run.pairs("all")


def test_drift_in_time_is_what_the_gate_faces_and_what_the_model_keeps(gate_power) -> None:
    """Identical deployments whose share of the CPU drifts: green 15% slower for the first 30 s, then
    15% faster. Over the whole run they are equal, so a whole-run gate passes them; a rebuilt run
    made of a few blocks mostly from one phase shows the drift - which a real 60 s run can too."""
    rng = np.random.default_rng(3)
    noise = np.random.default_rng(4)

    def latency(name: str, second: int) -> list[float]:
        factor = 1.0 if name != "green" else (1.15 if second < 40 else 0.85)
        return list(100 * factor * (1 + 0.05 * noise.standard_normal(20)))

    run = _run(gate_power, 70, latency)
    gates = read_gates(REPO / "load_tests" / "gates.yml", REPO)
    failed = gate_power.release_power(gates, [run], 10, 60, 30, 100, rng, "gate")
    assert 10 < failed["A/A"] < 90  # 30 s blocks: two draws, each one phase or the other
    assert failed["+50%"] == 100
    steady = _run(gate_power, 70, lambda name, s: list(100 * (1 + 0.05 * noise.standard_normal(20))))
    failed = gate_power.release_power(gates, [steady], 10, 60, 5, 100, rng, "gate")
    assert failed["A/A"] == 0 and failed["+25%"] == 100


def test_the_slowed_aa_candidate_is_the_real_score_py_sleeping_first(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("aa_releases", REPO / "benchmarks" / "aa_releases.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    shutil.copytree(REPO / "endpoints", tmp_path / "endpoints")
    shutil.copy(REPO / "mlops.yaml", tmp_path / "mlops.yaml")
    same = module._candidate_config(tmp_path, "aa", 0.0)
    slow = module._candidate_config(tmp_path, "slow", 0.004)
    real = (REPO / "endpoints/online/score.py").read_text()
    assert (tmp_path / "score-aa/score.py").read_text().startswith(real)  # the same code, a new hash
    slowed = (tmp_path / "score-slow/score.py").read_text()
    compile(slowed, "score.py", "exec")
    assert module.RUN_HEAD + "    import time\n    time.sleep(0.004)\n    return _real_run(request)" in slowed
    assert slowed.count("@rawhttp") == real.count("@rawhttp")  # the server still sees one raw-HTTP run()
    for config, folder in ((same, "score-aa"), (slow, "score-slow")):
        deployment = tmp_path / yaml.safe_load(config.read_text())["online"]["deployment"]
        assert yaml.safe_load(deployment.read_text())["code_configuration"]["code"] == str(tmp_path / folder)
