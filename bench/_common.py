"""What the benchmark scripts share: where results go, the bundled candidates, the envelope every
result file carries (machine and versions, and the load where it is asked for), the atomic write
and the plot set-up.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from damoc.io import read_json, write_json_atomic

__all__ = ["BUNDLED", "RESULTS", "ROOT", "RUNS", "RUN_SEEDS", "envelope", "locked", "pyplot", "read_json",
           "route_flops", "save_figure", "write_json_atomic"]

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
RUNS = ROOT.parent / "runs"
BUNDLED = ["bundled:smollm2-135m-instruct", "bundled:gemma3-270m"]
RUN_SEEDS = (1, 2, 3, 4, 5, 6, 7)  # the zoo runs damoc's defaults again at these run seeds: rows `headline-seedN`


def route_flops(flops: dict) -> float:
    """A zoo row's compressed route without evaluation: training, the data stage and pruning's passes."""
    return flops["train"] + flops.get("data_stage", 0.0) + flops.get("prune", 0.0)


def envelope(load: bool = False, **fields) -> dict:
    """`fields`, then the machine and the library versions (and the 1-minute load average with
    `load`): what makes a result file's figures comparable with another's."""
    from damoc.runinfo import machine, versions

    return {**fields, **({"load_average": os.getloadavg()[0]} if load else {}),
            "machine": machine(), "versions": versions()}


@contextmanager
def locked(lock: Path) -> Iterator[None]:
    """Hold an exclusive lock (on the file `lock`, made if missing) for a read-modify-write of a shared
    result file: two jobs saving rows of one file would otherwise lose one's change. The lock goes with
    the file handle, so a killed job releases it."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def pyplot():
    """matplotlib's pyplot, drawing to files only."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path, tight: bool = True) -> None:
    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot().close(fig)
