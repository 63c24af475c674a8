"""Turning local model files into a ready estimator, safely.

The default format is skops, which builds objects from an explicit list of trusted types instead of
running pickled code; its SHA-256 is checked against the manifest first. Pickle and joblib files run
arbitrary code when loaded, so they load only when the operator opts in.
"""

import dataclasses
import logging
import pathlib
import warnings

from model import baked, imports
from model import examples as example_rows
from model import manifest as manifests
from model.errors import ModelIntegrityError, ModelNotFound, ModelUnreadable, ModelUnsafe, ModelVersionMismatch
from model.schema import Schema, SchemaError, derive
from model.timeline import Timeline

log = logging.getLogger("model")

# Types beyond skops' own defaults that plain scikit-learn models need: tree structures of the
# forest and boosting estimators, and numpy.dtype (an imputer or encoder fitted on a DataFrame keeps
# the dtype it saw; skops rebuilds it from an empty .npy array read with allow_pickle=False, so it
# runs no code). Anything else must be named in MODEL_TRUSTED_TYPES.
TRUSTED_TYPES = (
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "numpy.dtype",
)


_PICKLE_HINT = "set MODEL_ALLOW_PICKLE=true only if you trust it"


@dataclasses.dataclass(frozen=True)
class LoadPolicy:
    allow_pickle: bool = False
    allow_version_mismatch: bool = False
    trusted_types: tuple[str, ...] = ()
    name: str | None = None
    version: str | None = None


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    estimator: object
    name: str
    version: str
    schema: Schema
    features: list  # the schema's feature names, in order
    classes: list | None
    task: str
    format: str
    sha256: str
    trained_with: dict
    has_proba: bool
    examples: list = dataclasses.field(default_factory=list)  # a few request-ready rows (warm-up, checks)

    @property
    def allow_nan(self) -> bool:
        """Every feature takes a missing value."""
        return all(f.nullable for f in self.schema.features)


def load(path: pathlib.Path, policy: LoadPolicy, timeline: Timeline | None = None, builtin: bool = False) -> LoadedModel:
    """Loads the model at a local path: a directory, a manifest, or a bare artifact file.

    `timeline` (if given) gets the seconds spent importing libraries, verifying and deserializing.
    `builtin`: the path is the function's own model directory, whose baked form (model.baked) may be used.
    """
    timeline = timeline or Timeline()
    manifest_path, bare = _locate(path)
    if bare is not None:
        return _load_bare(bare, policy, timeline)
    manifest = manifests.read(manifest_path)
    if manifest.get("runtime") == "onnx":
        return _load_onnx(manifest_path, manifest, timeline)
    info = manifest["artifact"]
    artifact = manifest_path.parent / info["file"]
    fmt = info.get("format", "skops")
    if fmt in manifests.PICKLE_FORMATS and not policy.allow_pickle:
        raise ModelUnsafe(f"{artifact} is a {fmt} artifact, which runs code when loaded; {_PICKLE_HINT}")
    actual = info["sha256"]
    estimator = _read_baked(manifest_path.parent, manifest, timeline) if builtin else None
    if estimator is None:
        with timeline.step("import"):
            _import_libraries(fmt)
        with timeline.step("verify"):
            actual = _checked_sha256(artifact, info["sha256"], manifest_path)
            _check_version(manifest["framework"]["scikit-learn"], policy, artifact)
            trusted = _trusted_skops_types(artifact, policy) if fmt == "skops" else None
        with timeline.step("load"):
            estimator = _read_skops(artifact, trusted) if fmt == "skops" else _read_pickle(artifact, policy)
    with timeline.step("load"):
        features = list(manifest["features"]["names"])
        n_in = getattr(estimator, "n_features_in_", len(features))
        if n_in != len(features):
            raise ModelIntegrityError(f"{manifest_path} lists {len(features)} features but the estimator takes {n_in}")
        if "schema" in manifest:
            schema = Schema.from_dict(manifest["schema"])  # checked by manifests.read
        else:  # written before manifests had schemas: the estimator tells
            schema = _derived(estimator, artifact, features)
    return _describe(estimator, manifest.get("name") or policy.name or artifact.stem,
                     str(manifest.get("version") or policy.version or actual[:12]), schema, fmt, actual,
                     manifest["framework"], _examples(manifest_path, manifest))


def _read_baked(model_dir: pathlib.Path, manifest: dict, timeline: Timeline):
    """The estimator from the built-in directory's baked form, or None to load the artifact the full way."""
    with timeline.step("import"):
        imports.import_sklearn()
    return baked.read(model_dir, manifest, timeline)


def _import_libraries(fmt: str) -> None:
    """Imports what deserializing needs up front, so the timeline tells imports from loading."""
    try:
        imports.import_sklearn()

        if fmt == "skops":
            import skops.io  # noqa: F401
        else:
            import joblib  # noqa: F401
    except ImportError as e:  # the compiled image: ONNX Runtime only
        raise ModelUnreadable(f"this model is served by scikit-learn, and {e.name} is not installed here: the "
                              "compiled image serves only models built with `--runtime onnx`") from None


def _examples(manifest_path: pathlib.Path, manifest: dict, limit: int = 8) -> list:
    """The first few example rows the manifest names (checked against its SHA-256), for the first prediction."""
    if "examples" not in manifest:
        return []
    try:
        return example_rows.read(manifest_path.parent, manifest["examples"])[:limit]
    except FileNotFoundError:
        raise ModelNotFound(f"{manifest_path.parent / manifest['examples']['file']} named by {manifest_path} "
                            "does not exist") from None
    except ValueError as e:
        raise ModelIntegrityError(f"examples named by {manifest_path} do not parse: {e}") from None


def _checked_sha256(artifact: pathlib.Path, expected: str, manifest_path: pathlib.Path) -> str:
    try:
        actual = manifests.sha256_of(artifact)
    except FileNotFoundError:
        raise ModelNotFound(f"artifact {artifact} named by {manifest_path} does not exist") from None
    except OSError as e:
        raise ModelUnreadable(f"artifact {artifact} cannot be read: {e.strerror or e}") from None
    if actual != expected:
        raise ModelIntegrityError(f"artifact {artifact} has SHA-256 {actual}, but {manifest_path} expects {expected}")
    return actual


def _load_onnx(manifest_path: pathlib.Path, manifest: dict, timeline: Timeline) -> LoadedModel:
    """The compiled form: checked like the skops artifact, run without importing scikit-learn."""
    with timeline.step("import"):
        from model.compiled import OnnxEstimator
    info = manifest["compiled"]
    path = manifest_path.parent / info["file"]
    with timeline.step("verify"):
        sha = _checked_sha256(path, info["sha256"], manifest_path)
    features = list(manifest["features"]["names"])
    with timeline.step("load"):
        # The compiled schema says where the converted model was verified on missing values; an older
        # manifest without one gets none.
        schema = Schema.from_dict(manifest["schema"]) if "schema" in manifest else Schema.numbers(features)
        estimator = OnnxEstimator(path, manifest.get("classes"), schema)
        if estimator.n_features_in_ not in (len(features), None, "N"):
            raise ModelIntegrityError(f"{manifest_path} lists {len(features)} features "
                                      f"but {path} takes {estimator.n_features_in_}")
    return LoadedModel(
        estimator=estimator, name=str(manifest.get("name") or path.stem), version=str(manifest.get("version") or sha[:12]),
        schema=schema, features=schema.names, classes=manifest.get("classes"),
        task=manifest.get("task", "classification"), format="onnx", sha256=sha, trained_with=dict(manifest["framework"]),
        has_proba=estimator.has_proba, examples=_examples(manifest_path, manifest))


def _locate(path: pathlib.Path) -> tuple[pathlib.Path | None, pathlib.Path | None]:
    """(manifest, None) for a model with a manifest, (None, file) for a bare artifact."""
    if path.is_dir():
        if (path / manifests.MANIFEST_NAME).is_file():
            return path / manifests.MANIFEST_NAME, None
        bare = sorted(p for p in path.iterdir() if p.suffix in manifests.PICKLE_SUFFIXES)
        if len(bare) > 1:
            raise ModelIntegrityError(f"{path} holds several pickle files ({', '.join(p.name for p in bare)}) and no "
                                      f"{manifests.MANIFEST_NAME}; point MODEL_URI at the one to serve")
        if bare:
            return None, bare[0]
        raise ModelNotFound(f"{path} holds neither {manifests.MANIFEST_NAME} nor a model.joblib/model.pkl file")
    if path.suffix == ".json":
        return path, None
    if path.suffix in manifests.PICKLE_SUFFIXES:
        return None, path
    beside = path.parent / manifests.MANIFEST_NAME
    if beside.is_file():
        return beside, None
    raise ModelIntegrityError(f"{path} has no {manifests.MANIFEST_NAME} beside it, so its SHA-256 cannot be checked")


def _load_bare(artifact: pathlib.Path, policy: LoadPolicy, timeline: Timeline) -> LoadedModel:
    if not policy.allow_pickle:
        raise ModelUnsafe(f"{artifact} is a pickle/joblib file, which runs code when loaded; {_PICKLE_HINT}")
    with timeline.step("import"):
        _import_libraries("joblib")
    with timeline.step("verify"):
        sha = manifests.sha256_of(artifact)
    with timeline.step("load"):
        estimator = _read_pickle(artifact, policy)
        schema = _derived(estimator, artifact)
    import sklearn

    return _describe(estimator, policy.name or artifact.stem, policy.version or sha[:12], schema, "joblib", sha,
                     {"scikit-learn": sklearn.__version__, "source": "unknown (no manifest)"}, [])


def _derived(estimator, artifact: pathlib.Path, features=None) -> Schema:
    try:
        schema = derive(estimator, feature_names=features)
    except SchemaError as e:
        raise ModelUnreadable(f"{artifact} holds a {type(estimator).__name__} that is not a fitted scikit-learn "
                              f"estimator: {e}") from None
    if features is not None and schema.names != features:
        raise ModelIntegrityError(f"the manifest of {artifact} lists features {', '.join(features)} but the estimator "
                                  f"was fitted on {', '.join(schema.names)}")
    return schema


def _check_version(trained: str, policy: LoadPolicy, artifact: pathlib.Path) -> None:
    import sklearn

    if trained == sklearn.__version__:
        return
    message = (f"{artifact} was trained with scikit-learn {trained} but {sklearn.__version__} is running; "
               "retrain it, or set MODEL_ALLOW_VERSION_MISMATCH=true to load it anyway")
    if not policy.allow_version_mismatch:
        raise ModelVersionMismatch(message)
    log.warning(message, extra={"event": "version_mismatch"})


def _trusted_skops_types(artifact: pathlib.Path, policy: LoadPolicy) -> list[str]:
    """The types the file would create, if all are on the server's allow-list (built in plus MODEL_TRUSTED_TYPES)."""
    import skops.io

    try:
        untrusted = skops.io.get_untrusted_types(file=artifact)
    except Exception as e:  # skops raises a variety of errors on a file that is not a skops archive
        raise ModelUnreadable(f"{artifact} is not a readable skops file: {type(e).__name__}") from None
    allowed = set(TRUSTED_TYPES) | set(policy.trusted_types)
    refused = [t for t in untrusted if t not in allowed]
    if refused:
        raise ModelUnsafe(f"{artifact} holds types outside the trusted list: {', '.join(refused)}; "
                          "add them to MODEL_TRUSTED_TYPES only if you trust the artifact's author")
    return list(untrusted)


def _read_skops(artifact: pathlib.Path, trusted: list[str]):
    import skops.io

    try:
        return skops.io.load(artifact, trusted=trusted)
    except Exception as e:
        raise ModelUnreadable(f"{artifact} could not be loaded by skops: {type(e).__name__}: {e}") from None


def _read_pickle(artifact: pathlib.Path, policy: LoadPolicy):
    import joblib
    from sklearn.exceptions import InconsistentVersionWarning

    log.warning(f"loading {artifact} with pickle because MODEL_ALLOW_PICKLE=true", extra={"event": "pickle_opt_in"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InconsistentVersionWarning)
        try:
            estimator = joblib.load(artifact)
        except Exception as e:
            raise ModelUnreadable(f"{artifact} could not be unpickled: {type(e).__name__}: {e}") from None
    for w in caught:
        if isinstance(w.message, InconsistentVersionWarning):
            _check_version(w.message.original_sklearn_version, policy, artifact)
            break
    if not hasattr(estimator, "predict"):
        raise ModelUnreadable(f"{artifact} holds a {type(estimator).__name__}, which has no predict method")
    return estimator


def task_of(estimator) -> str:
    """"classification", "regression", or scikit-learn's own word for another kind (e.g. "clusterer")."""
    from sklearn.utils import get_tags

    kind = get_tags(estimator).estimator_type
    return {"classifier": "classification", "regressor": "regression"}.get(kind, kind or "regression")


def _describe(estimator, name, version, schema: Schema, fmt, sha, trained_with, examples) -> LoadedModel:
    classes = getattr(estimator, "classes_", None)
    return LoadedModel(
        estimator=estimator,
        name=str(name),
        version=str(version),
        schema=schema,
        features=schema.names,
        classes=classes.tolist() if classes is not None else None,
        task=task_of(estimator),
        format=fmt,
        sha256=sha,
        trained_with=dict(trained_with),
        has_proba=hasattr(estimator, "predict_proba"),
        examples=examples,
    )
