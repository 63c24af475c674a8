"""What one batch task does, from its arguments and environment variables, read once at start.

Every knob is a flag and an env var with a default; Cloud Run sets the task's place in the execution
(CLOUD_RUN_TASK_INDEX, CLOUD_RUN_TASK_COUNT, CLOUD_RUN_TASK_ATTEMPT); the model settings (MODEL_URI and
the rest) are the function's own (`service.config.Settings`).
"""

import argparse
import dataclasses
import os

from service.config import ConfigError, Settings

FORMATS = ("auto", "jsonl", "csv")

# (flag, env var, default, meaning)
OPTIONS = (
    ("--batch-size", "BATCH_SIZE", "10000", "rows per model call"),
    ("--format", "BATCH_FORMAT", "auto", "jsonl, csv, or auto: CSV for *.csv files, JSON lines for the others"),
    ("--shard-mb", "BATCH_SHARD_MB", "64", "most input bytes one output file covers (a retry redoes at most this)"),
    ("--io-timeout-s", "BATCH_IO_TIMEOUT_S", "120", "deadline of each Cloud Storage call, retries included"),
    ("--progress-s", "BATCH_PROGRESS_S", "10", "seconds between progress log lines"),
)


@dataclasses.dataclass(frozen=True)
class Config:
    input: str
    output: str
    batch_size: int
    format: str
    shard_bytes: int
    io_timeout_s: float
    progress_s: float
    task_index: int
    task_count: int
    attempt: int
    job: dict  # Cloud Run's names for this task, added to every log line
    settings: Settings


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise ConfigError(f"usage: python -m batch INPUT OUTPUT [options]: {message}")


def parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m batch", description="Scores INPUT (a file, or every file under a directory "
                     "or gs:// prefix; JSON lines or CSV with a header) into JSON lines files under OUTPUT.")
    parser.add_argument("input", metavar="INPUT", help="a local path or gs://BUCKET/PATH")
    parser.add_argument("output", metavar="OUTPUT", help="a local directory or gs://BUCKET/PREFIX")
    for flag, env, default, meaning in OPTIONS:
        parser.add_argument(flag, default=os.environ.get(env) or default, help=f"{meaning} (env {env}, default {default})")
    return parser


def _number(name: str, raw, kind, minimum):
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={raw!r} is not a {kind.__name__}") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} must be at least {minimum}")
    return value


def from_args(argv, env=None) -> Config:
    """The task's configuration; raises ConfigError naming the argument or variable that is wrong."""
    env = os.environ if env is None else env
    args = parser().parse_args(argv)
    if args.format not in FORMATS:
        raise ConfigError(f"--format/BATCH_FORMAT={args.format!r} is not one of {', '.join(FORMATS)}")
    count = _number("CLOUD_RUN_TASK_COUNT", env.get("CLOUD_RUN_TASK_COUNT") or "1", int, 1)
    index = _number("CLOUD_RUN_TASK_INDEX", env.get("CLOUD_RUN_TASK_INDEX") or "0", int, 0)
    if index >= count:
        raise ConfigError(f"CLOUD_RUN_TASK_INDEX={index} must be below CLOUD_RUN_TASK_COUNT={count}")
    job = {key: env[name] for key, name in (("job", "CLOUD_RUN_JOB"), ("execution", "CLOUD_RUN_EXECUTION"))
           if env.get(name)}
    return Config(
        input=args.input,
        output=args.output,
        batch_size=_number("--batch-size/BATCH_SIZE", args.batch_size, int, 1),
        format=args.format,
        shard_bytes=int(_number("--shard-mb/BATCH_SHARD_MB", args.shard_mb, float, 0.001) * 2**20),
        io_timeout_s=_number("--io-timeout-s/BATCH_IO_TIMEOUT_S", args.io_timeout_s, float, 0.1),
        progress_s=_number("--progress-s/BATCH_PROGRESS_S", args.progress_s, float, 0),
        task_index=index,
        task_count=count,
        attempt=_number("CLOUD_RUN_TASK_ATTEMPT", env.get("CLOUD_RUN_TASK_ATTEMPT") or "0", int, 0),
        job={**job, "task": index, "tasks": count},
        settings=Settings.from_env(env),
    )
