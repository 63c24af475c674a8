"""Training the default model: deterministic, from the iris data set that ships with scikit-learn."""

import pathlib

from model import examples
from model import manifest as manifests
from model.files import atomic_path
from model.schema import derive

ESTIMATORS = ("logreg", "forest")
RUNTIMES = ("sklearn", "onnx")
ARTIFACT_NAME = "model.skops"
SEED = 0


def _estimator(kind: str):
    if kind == "logreg":
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=SEED))
    if kind == "forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(n_estimators=100, random_state=SEED, n_jobs=None)
    raise ValueError(f"unknown estimator {kind!r}; choose one of {', '.join(ESTIMATORS)}")


def train(out: pathlib.Path, *, kind: str = "logreg", name: str = "iris", version: str = "1",
          runtime: str = "sklearn") -> dict:
    """Fits the model, writes `model.skops` (and `model.onnx` for the onnx runtime), `examples.jsonl`
    and `manifest.json`.

    A fixed, stratified fifth of the data is held out: it measures the model, becomes the examples
    beside the manifest, and, for the onnx runtime, checks that the compiled model gives the same
    labels before it may be used.
    """
    import skops.io
    from sklearn.datasets import load_iris
    from sklearn.model_selection import train_test_split

    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    data = load_iris()
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.2, stratify=data.target, random_state=SEED)
    estimator = _estimator(kind).fit(x_train, y_train)
    out.mkdir(parents=True, exist_ok=True)
    artifact = out / ARTIFACT_NAME
    with atomic_path(artifact) as tmp:
        skops.io.dump(estimator, tmp)
    schema = derive(estimator, feature_names=data.feature_names)
    compiled = None
    if runtime == "onnx":
        from model.compiled import compile_onnx

        compiled = compile_onnx(estimator, out, x_test, schema)
    manifest = manifests.build(
        name=name, version=version, estimator=estimator, features=schema.names,
        classes=estimator.classes_.tolist(), task="classification", artifact=artifact,
        evaluation={"held_out_rows": len(x_test), "accuracy": float(estimator.score(x_test, y_test))},
        runtime=runtime, compiled=compiled, schema=schema,
        examples=examples.write(examples.records(x_test, schema), out),
    )
    manifests.write(manifest, out)
    return manifest
