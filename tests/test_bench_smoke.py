"""Short real runs of the benchmark's tools, so they do not rot.

`python -m bench --quick` starts every system for real (our function, FastAPI, MLServer, the
in-process floor), drives them with wrk for a second each, and checks that the JSON has every system,
model and metric and that every answer seen was the right prediction. `python -m bench.overhead`
times a few hundred requests per layer of our function. No figure is compared with a target: those
of a short run on a shared machine mean nothing.
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
        ("rps_c16", "forest"), ("rps_c16", "logreg"), ("rps_c16", "churn"),
        *((metric, model) for metric in ("cold_start_s", "p50_ms", "pss_mb") for model in plan.MODELS),
    }
    assert "req/s c=16" in done.stdout

    chart = ElementTree.parse(svg).getroot()
    assert chart.tag.endswith("svg")
    assert len(chart.findall(".//{http://www.w3.org/2000/svg}rect")) > len(ALL_SYSTEMS) * len(plan.MODELS)


def test_overhead_times_every_layer_of_a_request(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "bench.overhead", "--seconds", "0", "--calls", "300", "--work", str(tmp_path)],
        cwd=plan.REPO_DIR, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    header, *lines = done.stdout.splitlines()
    assert header.startswith("logreg: median per single-row call, microseconds")
    rows = [re.fullmatch(r"\s+(\d+)\s+(.+?)\s+\(\+(-?\d+)\)", line) for line in lines]
    assert all(rows), done.stdout
    micros = {row[2]: int(row[1]) for row in rows}
    assert list(micros) == ["estimator.predict", "input built, predict", "predictor (thread, batcher)",
                            "router (read, parse, validate, log)", "ASGI app (functions-framework)"]
    assert all(0 < value < 1_000_000 for value in micros.values()), micros
    # Each layer wraps the one before it; the whole app cannot cost less than the model call inside it.
    assert micros["ASGI app (functions-framework)"] > micros["estimator.predict"], micros


# The committed runs: results (the iris models) and results-churn (the DataFrame pipeline).
COMMITTED = ["results", "results-churn"]


@pytest.mark.parametrize("name", COMMITTED)
def test_committed_chart_is_drawn_from_the_committed_results(tmp_path, name):
    done = subprocess.run([sys.executable, "-m", "bench.chart", str(plan.BENCH_DIR / f"{name}.json"), str(tmp_path / "c.svg")],
                          cwd=plan.REPO_DIR, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "c.svg").read_text() == (plan.BENCH_DIR / f"{name}.svg").read_text()


@pytest.mark.parametrize("name", COMMITTED)
def test_chart_legend_stays_inside_the_picture(name):
    chart = ElementTree.parse(plan.BENCH_DIR / f"{name}.svg").getroot()
    width = float(chart.get("width"))
    ns = "{http://www.w3.org/2000/svg}"
    swatches = [r for r in chart.findall(f"{ns}rect") if r.get("width") == "12" and r.get("height") == "12"]
    assert len(swatches) == len(json.loads((plan.BENCH_DIR / f"{name}.json").read_text())["systems"])
    labels = {(t.get("x"), t.get("y")): t.text for t in chart.findall(f"{ns}text")}
    for swatch in swatches:
        x, y = float(swatch.get("x")), float(swatch.get("y"))
        label = labels[(f"{x + 16:.0f}", f"{y + 10:.0f}")]
        # 12 px sans-serif averages under 7 px a character.
        assert 0 <= x and x + 16 + 7 * len(label) <= width, (label, x)


def test_the_benchmark_runs_our_function_with_the_images_settings():
    dockerfile = (plan.REPO_DIR / "Dockerfile").read_text()
    runtime = dockerfile.split("AS runtime-base", 1)[1].split("\nFROM ", 1)[0]
    env = dict(re.findall(r"^\s*(?:ENV\s+)?([A-Z_]+)=(\S+?)\s*\\?$", runtime, re.MULTILINE))
    for name, value in systems.IMAGE_ENV.items():
        assert env.get(name) == value, name
    assert set(plan.APP_FILES) == set(re.findall(r"^COPY (\S+?)/? \S+$", dockerfile.split("AS build\n", 1)[1]
                                                 .split("\nFROM ", 1)[0], re.MULTILINE)) - {
        "${REQUIREMENTS}", "${MODEL_DIR:-main.py}"}  # a lock file and an optional model: build arguments
