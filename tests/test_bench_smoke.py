"""A short real run of the benchmark harness (`python -m bench --quick`), so it does not rot.

It starts every system for real (our function, FastAPI, MLServer, the in-process floor), drives them
with wrk for a second each, and checks that the JSON has every system, model and metric and that
every answer seen was the right prediction. No timing is asserted: the figures of a one-second run
on a shared machine mean nothing.
"""

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import pytest

from bench import plan, report, systems

ALL_SYSTEMS = [*systems.SERVERS, systems.FLOOR]


@pytest.mark.timeout(900)  # the first run installs the peers' virtual environments
def test_bench_quick_run_reports_every_system_and_metric(tmp_path):
    out, svg = tmp_path / "bench.json", tmp_path / "bench.svg"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--json", str(out), "--chart", str(svg)],
        cwd=plan.REPO_DIR, capture_output=True, text=True, timeout=840, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(out.read_text())

    assert result["systems"] == ALL_SYSTEMS
    for system in ALL_SYSTEMS:
        for model in plan.MODELS:
            cell = result["summary"][system][model]
            assert cell["failures"] == [], (system, model)
            assert cell["correct"] is True, (system, model)
            assert cell["load_errors"] == 0, (system, model)
            assert set(report.METRICS) <= set(cell["metrics"]), (system, model)
            for metric in report.METRICS:
                assert cell["metrics"][metric]["median"] > 0, (system, model, metric)
    # Every target compares our function with a peer, per model where the target applies to all.
    assert {(t["metric"], t["model"]) for t in result["targets"]} == {
        ("rps_c16", "forest"), ("rps_c16", "logreg"),
        *((metric, model) for metric in ("cold_start_s", "p50_ms", "pss_mb") for model in plan.MODELS),
    }
    assert "req/s c=16" in done.stdout

    chart = ElementTree.parse(svg).getroot()
    assert chart.tag.endswith("svg")
    assert len(chart.findall(".//{http://www.w3.org/2000/svg}rect")) > len(ALL_SYSTEMS) * len(plan.MODELS)


def test_the_benchmark_runs_our_function_with_the_images_settings():
    dockerfile = (plan.REPO_DIR / "Dockerfile").read_text()
    runtime = dockerfile.split("AS runtime-base", 1)[1].split("\nFROM ", 1)[0]
    env = dict(re.findall(r"^\s*(?:ENV\s+)?([A-Z_]+)=(\S+?)\s*\\?$", runtime, re.MULTILINE))
    for name, value in systems.IMAGE_ENV.items():
        assert env.get(name) == value, name
    assert set(plan.APP_FILES) == set(re.findall(r"^COPY (\S+?)/? \S+$", dockerfile.split("AS build\n", 1)[1]
                                                 .split("\nFROM ", 1)[0], re.MULTILINE)) - {"${REQUIREMENTS}"}
