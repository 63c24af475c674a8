"""Training the default model: deterministic, from the iris data set that ships with scikit-learn."""

import pathlib

from model import manifest as manifests

ESTIMATORS = ("logreg", "forest")
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


def train(out: pathlib.Path, *, kind: str = "logreg", name: str = "iris", version: str = "1") -> dict:
    """Fits the model, writes `model.skops` and `manifest.json` into `out`, returns the manifest."""
    import skops.io
    from sklearn.datasets import load_iris

    data = load_iris()
    estimator = _estimator(kind).fit(data.data, data.target)
    out.mkdir(parents=True, exist_ok=True)
    artifact = out / ARTIFACT_NAME
    tmp = artifact.with_suffix(".tmp")
    skops.io.dump(estimator, tmp)
    tmp.replace(artifact)
    manifest = manifests.build(
        name=name, version=version, estimator=estimator, features=data.feature_names,
        classes=estimator.classes_.tolist(), task="classification", artifact=artifact,
    )
    manifests.write(manifest, out)
    return manifest
