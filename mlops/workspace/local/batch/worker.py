"""One batch worker: runs a batch scoring script's ``init()`` once, then ``run(mini_batch)`` per request.

This file is run BY PATH with the deployment environment's interpreter (``python worker.py
CONFIG_JSON``), which does not have the ``mlops`` package installed. So it is self-contained: the
standard library only, plus pandas when (and only when) ``run()`` returns a pandas object.
Running a file by path puts its folder (``batch/``) first on ``sys.path`` until the worker removes
it, so no sibling module may be named like a standard-library module.

Why a long-lived worker fed over a pipe (and not one process per mini-batch): Azure ML batch
deployments call ``init()`` once per worker and then ``run()`` many times; a model that takes ten
seconds to load must not be loaded once per mini-batch, and a scoring script that keeps state in
globals must see the same lifecycle here as in Azure.

Protocol (one JSON object per line). The job process (``runner.py``) writes
requests to this process's stdin; replies go to the ORIGINAL stdout, which is moved to a private
file descriptor first, so that anything the scoring script prints (to stdout or stderr) lands in
the worker log instead of corrupting the protocol:

    worker -> job   {"event": "ready", "pid": 123}                    after init() returned
                    {"event": "init_failed", "error": "<traceback>"}   then the worker exits
    job -> worker   {"id": "mb00003-0-1", "files": ["/in/a.csv", ...], "part": "/job/tmp/x.csv" | null}
    worker -> job   {"id": ..., "event": "done", "rows": 12, "columns": ["a", "b"] | null}
                    {"id": ..., "event": "failed", "error": "<traceback>"}

``part`` is where the worker writes the mini-batch's output rows as CSV WITHOUT a header (the job
process owns the header and the single ``append_row`` output file); ``null`` for ``summary_only``.
``columns`` is the DataFrame's header, or ``null`` when ``run()`` returned a list without dicts.

The worker exits when stdin closes, and on its own if the job process disappears (its parent pid
changes): a ``kill -9`` of the job process must not leave scoring processes behind.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, TextIO

_PARENT_POLL_SECONDS = 0.5


def _reply(channel: TextIO, message: dict[str, Any]) -> None:
    channel.write(json.dumps(message) + "\n")
    channel.flush()


def _take_protocol_channel() -> TextIO:
    """Keep the real stdout for the protocol; point fd 1 (and ``sys.stdout``) at the log (stderr)."""
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return channel


def _exit_when_orphaned(parent: int) -> None:
    """Exit at once if the job process dies (we are re-parented); a hung ``run()`` is no obstacle."""
    while True:
        time.sleep(_PARENT_POLL_SECONDS)
        if os.getppid() != parent:
            sys.stderr.write("batch worker: the job process is gone; exiting\n")
            sys.stderr.flush()
            os._exit(3)


def _load_scoring_module(code_dir: str, scoring_script: str) -> Any:
    """Import the scoring script by path, the way Azure ML does: cwd and ``sys.path`` get ``code_dir``."""
    script_dir = str(Path(__file__).resolve().parent)
    # Running a script by path prepends its folder to sys.path; our siblings must not shadow user modules.
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or ".") != script_dir]
    os.chdir(code_dir)
    sys.path.insert(0, code_dir)
    path = Path(code_dir) / scoring_script
    module_name = path.stem
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import the scoring script {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    if not callable(getattr(module, "run", None)):
        raise AttributeError(f"the scoring script {path} defines no run(mini_batch) function")
    return module


def _write_rows(result: Any, part: str | None) -> tuple[int, list[str] | None]:
    """Write ``run()``'s result as header-less CSV rows to ``part``; return (rows, columns or None).

    A DataFrame (or Series) gives one row per DataFrame row and its columns as the header. A list
    gives one row per element: dicts become DataFrame rows (keys = columns), lists/tuples become a
    row of values, anything else a one-value row.
    """
    module = type(result).__module__ or ""
    if module.startswith("pandas"):
        import pandas as pd

        frame = result.to_frame() if isinstance(result, pd.Series) else result
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"run() must return a pandas DataFrame or a list, got {type(result).__name__}")
        if part is not None:
            frame.to_csv(part, header=False, index=False, lineterminator="\n")
        return len(frame), [str(column) for column in frame.columns]
    if isinstance(result, (list, tuple)):
        if result and all(isinstance(item, dict) for item in result):
            import pandas as pd

            return _write_rows(pd.DataFrame(list(result)), part)
        if part is not None:
            with open(part, "w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle, lineterminator="\n")
                for item in result:
                    writer.writerow(list(item) if isinstance(item, (list, tuple)) else [item])
        return len(result), None
    raise TypeError(f"run() must return a pandas DataFrame or a list, got {type(result).__name__}")


def main(argv: list[str]) -> int:
    config = json.loads(argv[1])
    channel = _take_protocol_channel()
    parent = os.getppid()
    threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()
    sys.stderr.write(f"=== batch worker {config.get('slot', '?')} (pid {os.getpid()}) starting ===\n")
    sys.stderr.flush()
    try:
        module = _load_scoring_module(config["code_dir"], config["scoring_script"])
        init = getattr(module, "init", None)
        if callable(init):
            init()
    except BaseException:  # any failure of user code is reported, not raised
        error = traceback.format_exc()
        sys.stderr.write(error)
        sys.stderr.flush()
        _reply(channel, {"event": "init_failed", "error": error})
        return 1
    _reply(channel, {"event": "ready", "pid": os.getpid()})

    while line := sys.stdin.readline():
        if not line.strip():
            continue
        request = json.loads(line)
        try:
            result = module.run(list(request["files"]))
            rows, columns = _write_rows(result, request.get("part"))
        except BaseException:  # report the mini-batch failure, keep the worker alive
            error = traceback.format_exc()
            sys.stderr.write(f"mini-batch {request['id']} failed:\n{error}")
            sys.stderr.flush()
            _reply(channel, {"id": request["id"], "event": "failed", "error": error})
            continue
        _reply(channel, {"id": request["id"], "event": "done", "rows": rows, "columns": columns})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
