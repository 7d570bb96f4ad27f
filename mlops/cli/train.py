"""CLI commands: train. (Filled in by its area; registers nothing yet.)"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this area's commands."""
