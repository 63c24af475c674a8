"""One task of a batch job: list the input, take this task's shards, load the model, score each shard
into its output file, and say what was done.

Each output file is written whole or not at all, under a name that depends only on the input (see
`batch.shards`), so a task that is killed and run again neither loses nor duplicates rows: it writes
the same files again. On a retry (CLOUD_RUN_TASK_ATTEMPT above 0) a shard whose output file already
exists is skipped: an earlier attempt of this very task finished it, with the same input and model
settings. A new execution (attempt 0) always writes every file again.
"""

import collections
import concurrent.futures
import time

from batch import lines, scoring, shards, storage
from batch.csv_rows import Csv
from batch.errors import BatchError
from batch.json_lines import JsonLines
from batch.progress import Meter, log
from inference.warmup import warm_up
from model.errors import ModelLoadError
from model.loader import ModelHolder


def file_format(config, file) -> str:
    if config.format != "auto":
        return config.format
    return "csv" if file.relative.lower().endswith(".csv") else "jsonl"


def run(config) -> dict:
    """Scores this task's shards; returns the summary it logs. Raises BatchError when it cannot."""
    meter = Meter(config.progress_s)
    files = storage.list_inputs(config.input, config.io_timeout_s)
    plan = shards.plan(files, config.task_count, config.shard_bytes)
    mine = shards.for_task(plan, config.task_index, config.task_count)
    log.info(f"task {config.task_index} of {config.task_count}: {len(mine)} of {len(plan)} shards "
             f"from {len(files)} files", extra={"event": "batch_plan", "input": config.input, "output": config.output,
                                               "files": len(files), "shards": len(plan), "task_shards": len(mine)})
    written = skipped = 0
    if mine:
        try:
            model = ModelHolder(config.settings, warm_up=warm_up).get()
        except ModelLoadError as e:
            raise BatchError(f"the model cannot be loaded: {e}") from None
        for shard in mine:
            target = storage.join(config.output, shard.output_name)
            if config.attempt > 0 and storage.exists(target, config.io_timeout_s):
                log.info(f"{target} was written by an earlier attempt; skipped", extra={"event": "batch_shard_skipped"})
                skipped += 1
                continue
            _score_shard(shard, file_format(config, shard.file), model, target, config, meter)
            written += 1
    seconds = round(time.monotonic() - meter.started, 3)
    summary = {"event": "batch_summary", "task": config.task_index, "tasks": config.task_count,
               "shards_written": written, "shards_skipped": skipped, "rows": meter.rows, "errors": meter.errors,
               "seconds": seconds, "rows_per_s": meter.rate()}
    log.info(f"done: {meter.rows} rows ({meter.errors} errors) into {written} files in {seconds:.1f}s "
             f"({meter.rate():,.0f} rows/s)", extra=summary)
    return summary


def _first_line(read) -> tuple[bytes, int]:
    """The file's first line (a CSV header) and the offset just after it."""
    data = b""
    while b"\n" not in data:
        block = read(len(data), 1 << 16)
        if not block:
            return data, len(data)
        data += block
    cut = data.index(b"\n")
    return data[:cut], cut + 1


def _score_shard(shard, kind: str, model, target: str, config, meter: Meter) -> None:
    started, cpu, before, errors_before = time.monotonic(), time.process_time(), meter.rows, meter.errors
    with storage.reader(shard.file, config.io_timeout_s) as source, storage.output(target, config.io_timeout_s) as sink:
        start, header_lines = shard.start, 0
        if kind == "csv" and shard.file.size:
            header, header_end = _first_line(source.read)
            fmt = Csv(model.schema, header, shard.file.uri)
            start, header_lines = (max(start, header_end) if shard.index == 0 else start), 1
        else:
            fmt = JsonLines(model.schema)
        first_line = None

        def row_number(position: int) -> int:
            """The row's index among its file's data rows, counting from 0 (read on the first error only)."""
            nonlocal first_line
            if first_line is None:
                first_line = 0 if start == 0 else 1 + lines.newlines_before(source.read, start - 1)
            return first_line + position - header_lines

        def write(prepared, future) -> None:
            data, errors = scoring.encode(prepared, future.result(), row_number)
            sink.write(data)
            meter.add(len(prepared.parsed.echoes), errors, target)

        batches = lines.batches(source.read, start, shard.end, config.batch_size, at_line_start=shard.index == 0)
        # The model runs in a thread of its own, so the next batch is parsed while this one is scored
        # wherever the model keeps the GIL released. A forest does not (scikit-learn takes it back after
        # every tree): on two CPUs it scores no faster than on one, see the README's batch figures.
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="model") as pool:
            pending = collections.deque()
            for batch in lines.read_ahead(batches):
                prepared = scoring.prepare(model.schema, fmt, fmt.parse(batch))
                pending.append((prepared, pool.submit(scoring.predict, model, prepared)))
                if len(pending) > 1:
                    write(*pending.popleft())
            while pending:
                write(*pending.popleft())
    log.info(f"{target}: {meter.rows - before} rows, {meter.errors - errors_before} errors", extra={
        "event": "batch_shard_written", "input": shard.file.uri, "shard": shard.index, "of": shard.count,
        "byte_range": [shard.start, shard.end], "rows": meter.rows - before, "errors": meter.errors - errors_before,
        "seconds": round(time.monotonic() - started, 3), "cpu_seconds": round(time.process_time() - cpu, 3)})
