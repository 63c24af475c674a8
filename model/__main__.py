"""Command line: `python -m model train` builds the default model; `package` turns a fitted model file into a
served model directory; `bake` stores the built-in one in a form that loads faster (an image build step);
`publish` uploads one to Cloud Storage."""

import argparse
import json
import pathlib
import sys

from model import DEFAULT_MODEL_DIR


def _train(args) -> int:
    from model import training
    from model.compiled import CompileError

    try:
        manifest = training.train(args.out, kind=args.estimator, name=args.name, version=args.version, runtime=args.runtime)
    except CompileError as e:
        print(f"python -m model train: {e}; keep --runtime sklearn for this model", file=sys.stderr)
        return 1
    print(json.dumps({"out": str(args.out), "name": manifest["name"], "version": manifest["version"],
                      "estimator": manifest["estimator"], "runtime": manifest["runtime"],
                      "sha256": manifest["artifact"]["sha256"], "evaluation": manifest["evaluation"]}))
    return 0


def _add_train(commands) -> None:
    train = commands.add_parser("train", help="fit the default model and write its artifact and manifest")
    train.add_argument("--out", type=pathlib.Path, default=DEFAULT_MODEL_DIR, help="output directory (default: %(default)s)")
    train.add_argument("--estimator", choices=("logreg", "forest"), default="logreg", help="default: %(default)s")
    train.add_argument("--runtime", choices=("sklearn", "onnx"), default="sklearn",
                       help="onnx: also compile to ONNX, verify it on held-out rows, and serve that (default: %(default)s)")
    train.add_argument("--name", default="iris")
    train.add_argument("--version", default="1")
    train.set_defaults(run=_train)


def _add_package(commands) -> None:
    from model import package

    parser = commands.add_parser(
        "package", help="turn a fitted model file (joblib, pickle, skops) into a verified served model directory",
        description=package.__doc__)
    package.add_arguments(parser)
    parser.set_defaults(run=package.run)


def _bake(args) -> int:
    from model import artifact, baked
    from model import manifest as manifests
    from model.errors import ModelLoadError

    manifest = manifests.read(args.model_dir / manifests.MANIFEST_NAME)
    if manifest.get("runtime") == "onnx" or manifest["artifact"].get("format", "skops") != "skops":
        print(f"python -m model bake: {args.model_dir} is not a skops model served by scikit-learn; nothing to bake",
              file=sys.stderr)
        return 1
    try:
        # The full safe path, with the default policy: SHA-256, skops' allow-list, the version check.
        loaded = artifact.load(args.model_dir, artifact.LoadPolicy(trusted_types=tuple(args.trusted_type)))
    except ModelLoadError as e:
        print(f"python -m model bake: {e}", file=sys.stderr)
        return 1
    record = baked.write(args.model_dir, loaded.estimator, manifest)
    print(json.dumps({"model_dir": str(args.model_dir), **record}))
    return 0


def _baked_doc() -> str:
    from model import baked  # light: no scikit-learn until a model is baked

    return baked.__doc__


def _add_bake(commands) -> None:
    bake = commands.add_parser("bake", help="verify the model fully and store a form the built-in directory loads faster",
                               description=_baked_doc(),
                               formatter_class=argparse.RawDescriptionHelpFormatter)
    bake.add_argument("--model-dir", type=pathlib.Path, default=DEFAULT_MODEL_DIR, help="default: %(default)s")
    bake.add_argument("--trusted-type", action="append", default=[],
                      help="a type beyond the built-in allow-list the artifact may hold (as MODEL_TRUSTED_TYPES)")
    bake.set_defaults(run=_bake)


def _add_publish(commands) -> None:
    from model import publish  # its arguments are its own; google-cloud-storage loads only when it runs

    parser = commands.add_parser("publish", help="upload a model directory to gs://BUCKET/PATH",
                                 description=publish.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    publish.add_arguments(parser)
    parser.set_defaults(run=publish.run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    _add_train(commands)
    _add_package(commands)
    _add_bake(commands)
    _add_publish(commands)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
