"""The synthetic series the demo trains on, and the repository's holdout and smoke files cut from it.

One seeded split serves everything: the demo trains on ``train``; ``load_tests/holdout.csv`` (the
quality gate's and the load test's data) is the whole holdout; ``endpoints/batch/smoke/`` holds its
first weeks, which follow the training data directly, so the batch script's first origins get their
context from the model's stored training tail. ``write_sample_files`` regenerates the files, and a
test checks the committed ones still match.
"""

from __future__ import annotations

from pathlib import Path

SEED = 0
DAYS = 1095
HOLDOUT_DAYS = 120
SMOKE_DAYS = 42
HOLDOUT_FILE = Path("load_tests/holdout.csv")
SMOKE_FILE = Path("endpoints/batch/smoke/dau-smoke.csv")


def demo_split():
    """``(train, holdout)`` frames of the seeded synthetic DAU series."""
    from mlops.forecasting.synthetic import generate_dau, train_holdout_split

    return train_holdout_split(generate_dau(DAYS, seed=SEED), HOLDOUT_DAYS)


def _csv(frame) -> str:
    out = frame.copy()
    out["date"] = out["date"].dt.strftime("%Y-%m-%d")
    return out.to_csv(index=False, float_format="%.1f")


def sample_files() -> dict[Path, str]:
    """Relative path -> the content it must have."""
    _train, holdout = demo_split()
    return {HOLDOUT_FILE: _csv(holdout), SMOKE_FILE: _csv(holdout.iloc[:SMOKE_DAYS])}


def write_sample_files(root: Path) -> list[Path]:
    written = []
    for relative, content in sample_files().items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        written.append(path)
    return written
