"""Luigi's central scheduler (``luigid``) started beside the lab: ``layerlab serve --luigid [PORT]``.

``python -m layerlab.pipelines.scheduler --port 8082`` is ``luigid`` itself; its visualiser (at
the port's root) shows each pipeline's graph while ``layerlab pipeline run --scheduler-url`` runs it.
"""

from __future__ import annotations

import sys
from pathlib import Path

DEFAULT_PORT = 8082


def luigid_command(*, host: str, port: int, state_path: str | Path) -> list[str]:
    """The command line of a luigid on ``host:port`` that keeps its state in ``state_path``."""
    return [
        sys.executable,
        "-m",
        "layerlab.pipelines.scheduler",
        "--address",
        host,
        "--port",
        str(port),
        "--state-path",
        str(state_path),
    ]


if __name__ == "__main__":
    from luigi.cmdline import luigid

    luigid(sys.argv[1:])
