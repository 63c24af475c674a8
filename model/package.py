"""`python -m model package SOURCE --out DIR`: turns a fitted model file into a served model directory.

SOURCE is a joblib or pickle file (loaded only with --allow-pickle, since unpickling runs code) or a
skops file (loaded with the server's own allow-list: skops' defaults, the types built into
model.artifact and MODEL_TRUSTED_TYPES). The command derives the model's input schema from the
estimator, refined by --sample rows (CSV with a header, or JSON lines of objects) when given; writes
model.skops, examples.jsonl and manifest.json (and model.onnx with --runtime onnx); then loads the
written directory exactly as the server does and checks that it predicts what the source model
predicts on the sample, or on rows generated from the schema. Only a verified directory appears at
DIR. It prints what it found and a final JSON line; a refusal is one line on stderr and exit status 1.
"""

import argparse
import dataclasses
import json
import os
import pathlib
import shutil
import sys
import warnings

import numpy as np

from model import artifact, examples, rows
from model import manifest as manifests
from model.compiled import CompileError
from model.errors import ModelLoadError
from model.rows import SampleError
from model.schema import Schema, SchemaError, derive
from model.training import ARTIFACT_NAME

SKOPS_SUFFIX = ".skops"


class PackageError(Exception):
    """A refusal: what is wrong, and what to do about it, in one line."""


@dataclasses.dataclass(frozen=True)
class Report:
    out: pathlib.Path
    manifest: dict
    schema: Schema
    rows: int
    rows_from: str
    ignored_columns: list
    left_out: int = 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", type=pathlib.Path, metavar="SOURCE", help="a fitted model: .joblib, .pkl, .pickle or .skops")
    parser.add_argument("--out", type=pathlib.Path, required=True, help="directory to write the served model to")
    parser.add_argument("--sample", type=pathlib.Path, help="input rows: CSV with a header, or JSON lines of objects")
    parser.add_argument("--name", help="model name (default: SOURCE's file name without its suffix)")
    parser.add_argument("--version", default="1", help="model version (default: %(default)s)")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="load a joblib/pickle SOURCE; this runs code from the file, so only for files you trust")
    parser.add_argument("--runtime", choices=("sklearn", "onnx"), default="sklearn",
                        help="onnx: also compile to ONNX, verify it on the same rows, and serve that (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    trusted = tuple(t.strip() for t in os.environ.get("MODEL_TRUSTED_TYPES", "").split(",") if t.strip())
    try:
        report = package(args.source, args.out, sample=args.sample, name=args.name, version=args.version,
                         allow_pickle=args.allow_pickle, runtime=args.runtime, trusted_types=trusted)
    except (PackageError, SampleError, SchemaError, CompileError, ModelLoadError, OSError) as e:
        hint = "; keep --runtime sklearn for this model" if isinstance(e, CompileError) else ""
        print(f"python -m model package: {' '.join(str(e).split())}{hint}", file=sys.stderr)
        return 1
    print(summary(report))
    manifest = report.manifest
    print(json.dumps({"out": str(report.out), "name": manifest["name"], "version": manifest["version"],
                      "estimator": manifest["estimator"], "task": manifest["task"], "classes": manifest["classes"],
                      "layout": report.schema.layout, "features": report.schema.names, "runtime": manifest["runtime"],
                      "sha256": manifest["artifact"]["sha256"], "verified": manifest["verified"]}))
    return 0


def package(source: pathlib.Path, out: pathlib.Path, *, sample: pathlib.Path | None = None, name: str | None = None,
            version: str = "1", allow_pickle: bool = False, runtime: str = "sklearn",
            trusted_types: tuple[str, ...] = ()) -> Report:
    """Packages and verifies; raises PackageError (or SchemaError, CompileError) naming what is wrong."""
    source, out = pathlib.Path(source), pathlib.Path(out)
    estimator = _load_source(source, allow_pickle, trusted_types)
    prepared = _prepare(estimator, None if sample is None else pathlib.Path(sample), runtime)
    try:
        expected = _predict(estimator, prepared.source_input, f"on the {prepared.source} rows")
    except PackageError as e:
        if prepared.source != "generated":
            raise
        # Generated rows span each kind's whole range (negatives, zero, gaps); a model fitted on a
        # narrower one may fail on them where its real inputs would not.
        raise PackageError(f"{e} (rows generated from the schema; pass --sample FILE with rows the model "
                           "takes)") from None
    staged = out.parent / f".{out.name}.package-{os.getpid()}"
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir(parents=True)
    try:
        manifest = _write(estimator, staged, prepared, runtime, name=name or source.stem, version=str(version))
        manifest["packaged_from"] = {"file": source.name, "sha256": manifests.sha256_of(source)}
        manifests.write(manifest, staged)
        manifest["verified"] = _verify(staged, manifest, prepared, expected, trusted_types)
        manifests.write(manifest, staged)
        _move_into(staged, out)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return Report(out, manifest, prepared.served, len(prepared.records), prepared.source, prepared.ignored, prepared.left_out)


@dataclasses.dataclass(frozen=True)
class _Prepared:
    schema: Schema        # derived from the estimator, refined by the sample
    served: Schema        # what the written model serves: the compiled model's, for onnx
    records: list         # JSON rows: the examples, and what verification sends the packaged model
    source_input: object  # the same rows as the source model is called with
    source: str           # "sample" or "generated"
    ignored: list         # sample columns the model does not take
    left_out: int         # sample rows the compiled model cannot take


def _prepare(estimator, sample: pathlib.Path | None, runtime: str) -> _Prepared:
    schema = derive(estimator)
    if sample is None:
        served = _compiled_schema(schema) if runtime == "onnx" else schema
        records = rows.generate(served)
        return _Prepared(schema, served, records, rows.model_input(records, schema), "generated", [], 0)
    frame = rows.read_sample(sample, schema)
    ignored = [str(c) for c in frame.columns if str(c) not in schema.names]
    if schema.layout != "text":
        schema = derive(estimator, frame)
    served = _compiled_schema(schema) if runtime == "onnx" else schema
    frame = frame[schema.names]
    records = examples.records(frame, schema)
    # Only the compiled model refuses rows: scikit-learn is checked on every sample row.
    kept = [i for i, r in enumerate(records) if _accepted(r, served)]
    if not kept:
        raise PackageError("no sample row has a value in every column the ONNX model requires (strings, integers, booleans)")
    frame = frame.iloc[kept]
    source_input = frame[schema.names[0]].tolist() if schema.layout == "text" else frame
    return _Prepared(schema, served, [records[i] for i in kept], source_input, "sample", ignored, len(records) - len(kept))


def _write(estimator, staged: pathlib.Path, prepared: _Prepared, runtime: str, *, name: str, version: str) -> dict:
    """Writes the artifact, the compiled model (for onnx) and the examples; returns the manifest."""
    import skops.io

    try:
        skops.io.dump(estimator, staged / ARTIFACT_NAME)
    except Exception as e:  # an object skops has no way to save (a lambda, an open file)
        raise PackageError(f"skops cannot save this model: {type(e).__name__}: {e}") from None
    compiled = None
    if runtime == "onnx":
        from model.compiled import compile_onnx

        compiled = compile_onnx(estimator, staged, rows.model_input(prepared.records, prepared.schema), prepared.served)
    manifest = manifests.build(
        name=name, version=version, estimator=estimator, features=prepared.schema.names, classes=_classes(estimator),
        task=artifact.task_of(estimator), artifact=staged / ARTIFACT_NAME, runtime=runtime, compiled=compiled,
        schema=prepared.served, examples=examples.write(prepared.records, staged))
    manifest["framework"].update(_library_versions())
    return manifest


def _load_source(source: pathlib.Path, allow_pickle: bool, trusted_types: tuple[str, ...]):
    if not source.is_file():
        raise PackageError(f"{source} does not exist or is not a file")
    if source.suffix == SKOPS_SUFFIX:
        estimator = _load_skops(source, trusted_types)
    elif source.suffix in manifests.PICKLE_SUFFIXES:
        if not allow_pickle:
            raise PackageError(f"{source} is a {source.suffix[1:]} file, and loading it runs code from the file: "
                               "pass --allow-pickle only if you trust where it came from")
        estimator = _load_pickle(source)
    else:
        raise PackageError(f"{source}: unknown model format {source.suffix or '(no suffix)'!r} "
                           "(expected .joblib, .pkl, .pickle or .skops)")
    if not hasattr(estimator, "predict"):
        raise PackageError(f"{source} holds a {type(estimator).__name__}, which is not a model (it has no predict method)")
    return estimator


def _load_skops(source: pathlib.Path, trusted_types: tuple[str, ...]):
    import skops.io

    try:
        untrusted = skops.io.get_untrusted_types(file=source)
    except Exception as e:  # skops raises a variety of errors on a file that is not a skops archive
        raise PackageError(f"{source} is not a readable skops file ({type(e).__name__})") from None
    refused = [t for t in untrusted if t not in set(artifact.TRUSTED_TYPES) | set(trusted_types)]
    if refused:
        raise PackageError(f"{source} holds types outside the server's trusted list: {', '.join(refused)}; set "
                           f"MODEL_TRUSTED_TYPES={','.join(refused)} here and on the server only if you trust its author")
    try:
        return skops.io.load(source, trusted=list(untrusted))
    except Exception as e:
        raise PackageError(f"{source} could not be loaded by skops: {type(e).__name__}: {e}") from None


def _load_pickle(source: pathlib.Path):
    import joblib
    import sklearn
    from sklearn.exceptions import InconsistentVersionWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InconsistentVersionWarning)
        try:
            estimator = joblib.load(source)
        except Exception as e:
            raise PackageError(f"{source} could not be unpickled: {type(e).__name__}: {e}") from None
    for w in caught:
        if isinstance(w.message, InconsistentVersionWarning):
            raise PackageError(f"{source} was pickled with scikit-learn {w.message.original_sklearn_version} but "
                               f"{sklearn.__version__} is running: package it where it was fitted, or refit it here")
    return estimator


def _predict(estimator, inputs, where: str, proba: bool | None = None):
    """Labels (or values) and, where the model gives them, probabilities."""
    proba = hasattr(estimator, "predict_proba") if proba is None else proba
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            labels = estimator.predict(inputs)
            probabilities = estimator.predict_proba(inputs) if proba else None
        except Exception as e:
            raise PackageError(f"the model fails {where}: {type(e).__name__}: {e}") from None
    return np.asarray(labels), probabilities


def _compiled_schema(schema: Schema) -> Schema:
    """ONNX string, integer and boolean inputs have no missing value; only numbers keep theirs (NaN)."""
    return dataclasses.replace(schema, features=tuple(
        f if f.kind == "number" else dataclasses.replace(f, nullable=False) for f in schema.features))


def _accepted(record: dict, schema: Schema) -> bool:
    return all(record[f.name] is not None for f in schema.features if not f.nullable)


# scikit-learn's own answers on a float matrix and on the DataFrame it was fitted on can differ in the
# last bits (the two reach BLAS in different memory orders, so sums run in another order): labels must
# be equal, probabilities and regression values within this (relative to values over 1).
FLOAT_TOLERANCE = 1e-12


def _verify(staged: pathlib.Path, manifest: dict, prepared: _Prepared, expected, trusted_types) -> dict:
    """Loads the staged directory as the server does and compares its answers with the source model's."""
    from model.compiled import PROBABILITY_TOLERANCE, VALUE_TOLERANCE, inputs_for

    labels, proba = expected
    try:
        loaded = artifact.load(staged, artifact.LoadPolicy(trusted_types=tuple(trusted_types)))
    except ModelLoadError as e:
        raise PackageError(f"the packaged model would not load on the server: {e}") from None
    onnx = manifest["runtime"] == "onnx"
    model_input = rows.model_input(prepared.records, prepared.served)
    got, got_proba = _predict(loaded.estimator, inputs_for(model_input, prepared.served) if onnx else model_input,
                              "after packaging", proba=loaded.has_proba)
    relative = None
    if loaded.classes is not None:
        differing = int(np.sum(got != labels))
    else:
        relative = np.abs(got.astype(float) - labels.astype(float)) / np.maximum(1.0, np.abs(labels.astype(float)))
        differing = int(np.sum(relative > (VALUE_TOLERANCE if onnx else FLOAT_TOLERANCE)))
    if differing:
        raise PackageError(f"the packaged model predicts differently from the source on {differing} of "
                           f"{len(prepared.records)} {prepared.source} rows")
    verified = {"rows": len(prepared.records), "rows_from": prepared.source, "predictions_equal": True}
    if relative is not None and len(relative):
        verified["max_value_diff"] = float(np.max(relative))
    if proba is not None and got_proba is not None:
        diff = float(np.max(np.abs(got_proba - proba)))
        if diff > (PROBABILITY_TOLERANCE if onnx else FLOAT_TOLERANCE):
            raise PackageError(f"the packaged model's probabilities differ from the source's by up to {diff:.3g}")
        verified["max_probability_diff"] = diff
    return verified


def _move_into(staged: pathlib.Path, out: pathlib.Path) -> None:
    """Files first, the manifest last: a reader never finds a manifest naming files not yet there."""
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(staged.iterdir(), key=lambda p: p.name == manifests.MANIFEST_NAME):
        os.replace(path, out / path.name)


def _classes(estimator):
    classes = getattr(estimator, "classes_", None)
    return None if classes is None else np.asarray(classes).tolist()


def _library_versions() -> dict:
    import pandas
    import skops

    return {"pandas": pandas.__version__, "skops": skops.__version__}


def summary(report: Report) -> str:
    """What was found and done, for a person reading the terminal."""
    manifest, schema = report.manifest, report.schema
    what = manifest["task"] + (f" of {', '.join(map(str, manifest['classes']))}" if manifest["classes"] else "")
    layouts = {"matrix": "a matrix of numbers", "frame": "a DataFrame with these columns", "text": "one string per row"}
    lines = [f"Packaged {manifest['name']} {manifest['version']} from {manifest['packaged_from']['file']}: "
             f"{manifest['estimator']}, {what}",
             f"Inputs ({schema.layout}: {layouts[schema.layout]}):"]
    width = max(len(n) for n in schema.names)
    for f in schema.features:
        notes = [f"{f.kind:<7}", "nullable" if f.nullable else "required"]
        if f.categories:
            shown = ", ".join(map(str, f.categories[:8])) + (", ..." if len(f.categories) > 8 else "")
            notes.append(f"one of {shown} ({'others answered' if f.unknown == 'accept' else 'others refused'})")
        if f.dtype:
            notes.append(f"dtype {f.dtype}")
        notes.append({"sample": "(from the sample)", "estimator": "(from the estimator)",
                      "default": "(assumed: nothing in the model says)"}[f.kind_source])
        lines.append(f"  {f.name:<{width}}  {'  '.join(notes)}")
    if report.left_out:
        lines.append(f"Left out {report.left_out} sample rows with a missing string, integer or boolean: "
                     "the ONNX model cannot take them")
    if report.ignored_columns:
        lines.append(f"Sample columns the model does not take (ignored): {', '.join(report.ignored_columns)}")
    verified = manifest["verified"]
    drift = [f"{what} within {verified[key]:.1g}" for key, what in (("max_value_diff", "values"),
                                                                       ("max_probability_diff", "probabilities"))
             if verified.get(key)]
    lines.append(f"Verified: the packaged model predicts what the source predicts on {verified['rows']} "
                 f"{verified['rows_from']} rows" + (" (probabilities too)" if "max_probability_diff" in verified else "")
                 + (f"; {', '.join(drift)}" if drift else ""))
    if manifest["runtime"] == "onnx":
        lines.append(f"Compiled to ONNX and verified on {manifest['compiled']['verified']['held_out_rows']} rows; "
                     "missing values are taken in number columns only")
    files = sorted(p.name for p in report.out.iterdir() if p.name in (manifests.MANIFEST_NAME, ARTIFACT_NAME,
                                                                        examples.EXAMPLES_NAME, "model.onnx"))
    lines.append(f"Wrote {report.out}: {', '.join(files)} ({manifest['examples']['rows']} example rows)")
    return "\n".join(lines)
