"""Starting the model load in the background as soon as a server worker process starts.

functions-framework imports `main.py` in gunicorn's master, before the workers fork. The model must
not load there (it would load before the port opens, and in a process that serves nothing), so the
load starts from a fork hook in each worker: readiness turns true without waiting for traffic, and a
request that comes first waits for that same load. The same hook keeps the master's memory shared
with the workers (`gc.freeze()` before the fork).
"""

import gc
import os

_holder = None  # the newest holder: tests (and reloads) import main.py more than once per process
_hooked = False  # os.register_at_fork cannot unregister, so hook once and point at _holder


def install(holder, enabled: bool) -> None:
    """Starts `holder`'s background load in every child forked from now on (when enabled)."""
    global _holder, _hooked
    _holder = holder if enabled else None
    if not _hooked:
        # The master's objects go to the collector's permanent generation just before each fork: the
        # worker's collections then never write to the pages it shares with the master, which stay
        # shared instead of being copied (6 MB less in all, counted as PSS; see the README).
        os.register_at_fork(before=gc.freeze, after_in_child=_start)
        _hooked = True


def _start() -> None:
    if _holder is not None:
        _holder.start_background_load()
