"""Shared by the benchmark scripts: where the data is, a model to benchmark, the real inference server."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parent.parent
DAU_DIR = REPO.parent / "shared" / "data" / "github_dau"

sys.path.insert(0, str(REPO))

from mlops.forecasting.data import load_series_csv  # noqa: E402
from mlops.forecasting.synthetic import generate_dau, train_holdout_split  # noqa: E402
from mlops.forecasting.train_config import MAX_IMPUTED_GAP  # noqa: E402
from mlops.packaging import stage_scoring_code  # noqa: E402
from mlops.processes import stop_process_group  # noqa: E402


def load_data(data_dir: Path | None) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(train, test, label): the GitHub DAU files when present, else a synthetic stand-in of the same shape."""
    folder = data_dir or DAU_DIR
    if (folder / "train.csv").is_file() and (folder / "test.csv").is_file():
        return (load_series_csv(folder / "train.csv", fill_gaps=MAX_IMPUTED_GAP),
                load_series_csv(folder / "test.csv"), f"GitHub DAU ({folder})")
    train, test = train_holdout_split(generate_dau(2285 + 454, start="2011-03-01"), 454)
    return train, test, "synthetic (GitHub DAU files not found)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def inference_server(model_dir: Path, code: Path | None = None) -> Iterator[str]:
    """The real ``azmlinfsrv`` serving ``endpoints/online/score.py`` from a staged snapshot (or from
    ``code``, a folder laid out like one); yields its URL."""
    with tempfile.TemporaryDirectory(prefix="mlops-bench-") as tmp:
        code = code or stage_scoring_code(REPO / "endpoints" / "online", Path(tmp) / "code")
        log = Path(tmp) / "azmlinfsrv.log"
        port, health = free_port(), free_port()
        server = Path(sys.executable).parent / "azmlinfsrv"
        with log.open("wb") as handle:
            proc = subprocess.Popen([str(server), "--entry_script", "score.py", "--model_dir", str(model_dir),  # noqa: S603 - our own server binary
                                     "--port", str(port), "--health_port", str(health)], cwd=code,
                                    stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"azmlinfsrv exited:\n{log.read_text()[-3000:]}")
                try:
                    with urllib.request.urlopen(url + "/", timeout=2):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"azmlinfsrv not ready:\n{log.read_text()[-3000:]}") from None
                    time.sleep(0.3)
            yield url
        finally:
            stop_process_group(proc, grace=10)
