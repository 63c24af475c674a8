"""The lines of one shard, read in blocks and handed out in batches, with reading done ahead.

A shard holds every line that starts in its byte range [start, end). Unless the range begins at a
known line start (the file's first byte, or a CSV file's first data line), the line under `start` is
the previous shard's: reading begins one byte early and skips through the next newline (which may be
that very byte). The line that crosses `end` is read to its finish. Lines keep their bytes as read
(the parsers strip `\\r` and blanks); a batch knows the index of its first line in the shard, which
is how an error line names the row.
"""

import dataclasses
import queue
import threading
from collections.abc import Iterator

BLOCK_BYTES = 8 << 20


@dataclasses.dataclass
class Lines:
    first: int  # the shard-relative index of lines[0]
    lines: list[bytes]


def batches(read, start: int, end: int, batch_lines: int, at_line_start: bool,
            block_bytes: int = BLOCK_BYTES) -> Iterator[Lines]:
    """Batches of at most `batch_lines` lines starting in [start, end), read with `read(offset, size)`."""
    pending: list[bytes] = []
    index = 0
    for lines in _complete_lines(read, start, end, at_line_start, block_bytes):
        lines = pending + lines if pending else lines
        whole = len(lines) - len(lines) % batch_lines
        for first in range(0, whole, batch_lines):
            yield Lines(index, lines[first:first + batch_lines])
            index += batch_lines
        pending = lines[whole:]
    if pending:
        yield Lines(index, pending)


def _complete_lines(read, start: int, end: int, at_line_start: bool, block_bytes: int) -> Iterator[list[bytes]]:
    at_line_start = at_line_start or start == 0
    offset = start if at_line_start else start - 1  # file offset of buffer[0]
    buffer = b""
    skipping = not at_line_start
    while offset < end:
        data = read(offset + len(buffer), block_bytes)
        at_eof = len(data) < block_bytes
        buffer += data
        if skipping:
            cut = buffer.find(b"\n")
            if cut < 0:
                if at_eof:
                    return
                continue
            offset, buffer, skipping = offset + cut + 1, buffer[cut + 1:], False
            if offset >= end:
                return
        cut = buffer.rfind(b"\n")
        if at_eof:
            cut = len(buffer) - 1  # the last line needs no newline
        elif cut < 0:
            continue  # one line longer than a block: read on
        complete, buffer = buffer[:cut + 1], buffer[cut + 1:]
        if not complete:
            return
        lines = complete.split(b"\n")
        if complete.endswith(b"\n"):
            lines.pop()
        if offset + len(complete) > end:  # the range ends in here: keep the lines that start before it
            lines, reached = _starting_before(lines, offset, end), True
        else:
            reached = at_eof
        if lines:
            yield lines
        offset += len(complete)
        if reached or at_eof:
            return


def _starting_before(lines: list[bytes], offset: int, end: int) -> list[bytes]:
    for i, line in enumerate(lines):
        if offset >= end:
            return lines[:i]
        offset += len(line) + 1
    return lines


def newlines_before(read, offset: int, block_bytes: int = BLOCK_BYTES) -> int:
    """How many lines end before `offset`: the index, in its file, of the line starting there."""
    count, position = 0, 0
    while position < offset:
        data = read(position, min(block_bytes, offset - position))
        if not data:
            break
        count += data.count(b"\n")
        position += len(data)
    return count


def read_ahead(items: Iterator, depth: int = 2) -> Iterator:
    """The same items, produced by a thread that stays up to `depth` items ahead (I/O overlaps the work)."""
    slots: queue.Queue = queue.Queue(depth)
    done = object()
    stop = threading.Event()

    def produce():
        try:
            for item in items:
                if stop.is_set():
                    return
                slots.put((item, None))
            slots.put((done, None))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, which raises it
            slots.put((done, e))

    thread = threading.Thread(target=produce, name="batch-reader", daemon=True)
    thread.start()
    try:
        while True:
            item, error = slots.get()
            if error is not None:
                raise error
            if item is done:
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting for room, so it sees `stop`
            try:
                slots.get(timeout=0.1)
            except queue.Empty:
                pass
