"""`python -m batch INPUT OUTPUT [--batch-size N] [--format auto|jsonl|csv]`: one task of a batch job.

Exit status: 0 done (rows that fail validation are error lines, not failures), 1 the task could not
run (input missing or unusable, model not loadable, storage failing), 2 bad arguments or settings,
143 stopped by SIGTERM (Cloud Run's task timeout or cancellation).
"""

import signal
import sys

from batch import config as batch_config
from batch import job, progress
from batch.errors import BatchError
from service.config import ConfigError


def _stop(signum, frame):
    # Unwinds like Ctrl-C, so the shard being written leaves no partial output file behind.
    raise SystemExit(128 + signum)


def main(argv: list[str]) -> int:
    try:
        config = batch_config.from_args(argv)
    except ConfigError as e:
        print(f"batch: {e}", file=sys.stderr)
        return 2
    progress.configure(config.settings.log_level, config.job)
    signal.signal(signal.SIGTERM, _stop)
    try:
        job.run(config)
    except BatchError as e:
        progress.log.error(f"batch task failed: {e}", extra={"event": "batch_failed"})
        print(f"batch: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
