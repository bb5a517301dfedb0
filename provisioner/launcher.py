"""The `provision` console script's first stop: a Ctrl-C while the CLI is still loading exits 130 quietly."""

from __future__ import annotations

import sys


def run() -> None:
    try:
        from provisioner.cli import entry
    except KeyboardInterrupt:
        sys.exit(130)
    entry()
