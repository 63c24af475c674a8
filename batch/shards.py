"""Which part of the input each task scores, and the output file each part becomes.

Every task lists the same input and computes the same plan, so they agree without talking. Each file
is cut into equal byte ranges ("shards") no larger than `min(shard_bytes, total input / tasks)`, so a
single large file is spread over every task; shards are dealt to tasks in turn (shard k to task
k mod count), in file-name order. A shard holds every line that *starts* in its range: the reader
finishes the line it is in at the end, and the next shard skips to the first line start after its
own beginning, so every line belongs to exactly one shard whatever the byte boundaries.

A shard's output is OUTPUT/<file's path without its data suffix>-<shard>-of-<shards>.jsonl, a name
that depends only on the input and the plan: a retried task writes the same names again.
"""

import dataclasses
import math

from batch.errors import BatchError
from batch.files import InputFile

DATA_SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv")


@dataclasses.dataclass(frozen=True)
class Shard:
    file: InputFile
    index: int  # which part of its file
    count: int  # how many parts its file has
    start: int  # byte range [start, end) in which its lines start
    end: int

    @property
    def output_name(self) -> str:
        return f"{stem(self.file.relative)}-{self.index:05d}-of-{self.count:05d}.jsonl"


def stem(relative: str) -> str:
    for suffix in DATA_SUFFIXES:
        if relative.lower().endswith(suffix):
            return relative[: -len(suffix)]
    return relative


def plan(files: list[InputFile], task_count: int, shard_bytes: int) -> list[Shard]:
    """Every shard of the input, in order; the same for every task given the same listing."""
    _refuse_clashing_names(files)
    total = sum(f.size for f in files)
    piece = max(1, min(shard_bytes, math.ceil(total / task_count)))
    shards = []
    for file in files:
        count = max(1, math.ceil(file.size / piece))
        shards += [Shard(file, k, count, file.size * k // count, file.size * (k + 1) // count) for k in range(count)]
    return shards


def for_task(shards: list[Shard], index: int, count: int) -> list[Shard]:
    return shards[index::count]


def _refuse_clashing_names(files: list[InputFile]) -> None:
    seen = {}
    for file in files:
        other = seen.setdefault(stem(file.relative), file.relative)
        if other != file.relative:
            raise BatchError(f"inputs {other} and {file.relative} would write the same output files "
                             f"({stem(file.relative)}-*.jsonl); rename one of them")
