"""Numeric models never import pandas; DataFrame models still get it when they need it."""

import json
import subprocess
import sys

from tests.conftest import REPO

PROBE = """
import json, pathlib, sys
from model import artifact
from inference.warmup import warm_up
model = artifact.load(pathlib.Path(sys.argv[1]), artifact.LoadPolicy())
warm_up(model)
after_numeric = "pandas" in sys.modules
import pandas as pd
from sklearn.linear_model import LogisticRegression
frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
fitted = LogisticRegression().fit(frame, [0, 1, 0, 1])
print(json.dumps({"pandas_after_numeric": after_numeric, "names": fitted.feature_names_in_.tolist(),
                  "labels": fitted.predict(frame).tolist()}))
"""


def test_a_numeric_model_loads_and_predicts_without_pandas_which_still_works_later(trained):
    done = subprocess.run([sys.executable, "-c", PROBE, str(trained("logreg"))], cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["pandas_after_numeric"] is False
    assert seen["names"] == ["a", "b"] and seen["labels"] == [0, 1, 0, 1]
