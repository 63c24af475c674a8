"""One server process: spawned on the server CPU, timed to its first correct prediction, measured, stopped."""

import http.client
import json
import os
import pathlib
import signal
import socket
import subprocess
import time

from bench.plan import SERVER_CPU
from bench.systems import Launch

_POLL_S = 0.005


class ServerFailed(RuntimeError):
    """The server did not come up, answered wrongly, or died."""


def _post(port: int, path: str, body: bytes, timeout: float = 10.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _correct(launch: Launch, status: int, payload: bytes, expected: list) -> bool:
    if status != 200:
        return False
    try:
        return launch.predictions(json.loads(payload)) == expected
    except (ValueError, KeyError, IndexError, TypeError):
        return False


class Server:
    def __init__(self, launch: Launch, log_path: pathlib.Path):
        self.launch = launch
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self, expected_row: list, timeout_s: float) -> dict:
        """Spawns the server and polls every ~5 ms until a prediction is right; returns the timings."""
        log = self.log_path.open("ab")
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            ["taskset", "-c", str(SERVER_CPU), *self.launch.cmd],
            env=self.launch.env, cwd=self.launch.cwd, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stop() reaches every child
        )
        log.close()
        marks: dict[str, float] = {}
        while time.perf_counter() - started < timeout_s:
            if self.proc.poll() is not None:
                raise ServerFailed(f"exited with {self.proc.returncode}; see {self.log_path}")
            try:
                if "port_open_s" not in marks:
                    # A bare connect: the port is bound (a server may accept long before it answers).
                    socket.create_connection(("127.0.0.1", self.launch.port), timeout=1.0).close()
                    marks["port_open_s"] = time.perf_counter() - started
                status, payload = _post(self.launch.port, self.launch.path, self.launch.row_body, 30.0)
            except OSError:
                time.sleep(_POLL_S)
                continue
            marks.setdefault("first_response_s", time.perf_counter() - started)
            if _correct(self.launch, status, payload, expected_row):
                return {"cold_start_s": time.perf_counter() - started, **marks}
            time.sleep(_POLL_S)
        raise ServerFailed(f"no correct prediction within {timeout_s:.0f} s; see {self.log_path}")

    def check(self, body: bytes, expected: list) -> bool:
        """One request outside the load run: is the answer right?"""
        status, payload = _post(self.launch.port, self.launch.path, body)
        return _correct(self.launch, status, payload, expected)

    def memory(self) -> dict:
        """RSS and PSS (shared pages split between processes) of the whole process tree, in MB."""
        pids = _tree(self.proc.pid)
        return {"rss_mb": sum(_rss_kb(p) for p in pids) / 1024, "pss_mb": sum(_pss_kb(p) for p in pids) / 1024,
                "processes": len(pids)}

    def cpu_seconds(self) -> float:
        """User and system CPU time used so far by the whole process tree (every thread), in seconds.

        Unlike requests/s, CPU time per request hardly moves when others' work takes turns on the
        server's CPU, so it tells a busy machine from a slow server."""
        return sum(_cpu_s(p) for p in _tree(self.proc.pid))

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        # Children that outlived their parent (MLServer's workers) are still in our process group.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                # The field after the ")" that closes the command name: state, then ppid.
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _tree(root: int) -> list[int]:
    children, pids, todo = _children(), [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(children.get(pid, []))
    return pids


def _cpu_s(pid: int) -> float:
    try:
        # After the ")" that closes the command name: utime and stime are the 12th and 13th fields.
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _field_kb(path: str, field: str) -> int:
    try:
        for line in pathlib.Path(path).read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _rss_kb(pid: int) -> int:
    return _field_kb(f"/proc/{pid}/status", "VmRSS")


def _pss_kb(pid: int) -> int:
    return _field_kb(f"/proc/{pid}/smaps_rollup", "Pss")
