"""Resident memory of this process, for benchmarks and the GUI bench report."""

from __future__ import annotations

import os


def rss_mb() -> float:
    """Resident set size of this process, from /proc (Linux) or peak RSS elsewhere."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
