"""Command line: `python -m model train` builds the default model; `package` turns a fitted model file into a
served model directory; `publish` uploads one to Cloud Storage."""

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
    _add_publish(commands)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
