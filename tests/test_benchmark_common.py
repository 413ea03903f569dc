"""benchmarks/common.py: every benchmark's results carry the commit, the settings and the machine,
as JSON and as a CSV of the same rows, and the arguments every script shares parse the same way."""

from __future__ import annotations

import csv
import importlib.util
import json
import subprocess
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_common():
    spec = importlib.util.spec_from_file_location("benchmarks_common", BENCHMARKS / "common.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_results_carry_the_commit_settings_machine_and_rows(tmp_path):
    common = load_common()
    args = common.argument_parser("a benchmark", "demo").parse_args(
        ["--threads", "1", "--results-dir", str(tmp_path), "--name", "demo_run"])
    settings = {**common.start(args), "levels": 50}
    rows = [{"table": "timings", "backend": "native", "atoms": 8, "median_ms": 1.5},
            {"table": "recovery", "case": "Si", "hits": [3, 4]}]
    path = common.write_results(args.name, settings, rows, args.results_dir)

    assert path == tmp_path / "demo_run.json"
    record = json.loads(path.read_text())
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=BENCHMARKS, capture_output=True, text=True)
    assert record["commit"] == head.stdout.strip() and isinstance(record["dirty"], bool)
    assert record["settings"]["levels"] == 50 and record["settings"]["torch_threads"] == 1
    assert record["settings"]["openblas_threads"] and "results_dir" not in record["settings"]
    assert record["machine"]["cpus"] >= 1 and record["machine"]["torch"] and record["date"][:2] == "20"
    assert record["rows"] == rows
    with open(tmp_path / "demo_run.csv", newline="") as stream:
        table = list(csv.DictReader(stream))
    assert list(table[0]) == ["table", "backend", "atoms", "median_ms", "case", "hits"]  # every key, first-seen order
    assert table[0]["median_ms"] == "1.5" and table[1]["hits"] == "[3, 4]" and table[1]["backend"] == ""
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left behind


def test_every_benchmark_script_uses_the_shared_setup():
    scripts = [p for p in BENCHMARKS.glob("*.py") if p.name not in ("common.py", "timed_model.py")]
    assert len(scripts) >= 10
    for script in scripts:
        text = script.read_text()
        assert "import common" in text and "common.write_results(" in text, script.name
        assert "argparse.ArgumentParser(" not in text and "set_num_threads(" not in text, script.name
