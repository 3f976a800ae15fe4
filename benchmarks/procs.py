"""CPU time and resident memory of a process, read from /proc (no psutil needed)."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path

_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading of a process: CPU seconds used so far (user + system) and RSS in bytes."""

    cpu_s: float
    rss: int


def read_sample(pid: int) -> Sample:
    """CPU and RSS of `pid` and its live descendants (a supervisor and its workers)."""
    total = _own_sample(pid)
    for child in _children(pid):
        try:
            sample = read_sample(child)
        except (FileNotFoundError, ProcessLookupError):
            continue  # exited between the listing and the read
        total = Sample(cpu_s=total.cpu_s + sample.cpu_s, rss=total.rss + sample.rss)
    return total


def _children(pid: int) -> list[int]:
    children: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            children += [int(c) for c in (task / "children").read_text().split()]
    except (FileNotFoundError, ProcessLookupError):
        return []
    return children


def _own_sample(pid: int) -> Sample:
    """Read /proc/<pid>/stat (utime, stime) and /proc/<pid>/status (VmRSS)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # the command name may contain spaces and parentheses: split after the last ')'
    fields = stat[stat.rindex(")") + 2 :].split()
    cpu_s = (int(fields[11]) + int(fields[12])) * _TICK_S
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
            break
    return Sample(cpu_s=cpu_s, rss=rss)


def read_samples(pids: dict[str, int]) -> dict[str, Sample]:
    """`read_sample` of every named process."""
    return {name: read_sample(pid) for name, pid in pids.items()}


@dataclass(slots=True)
class Timeline:
    """Periodic samples of several processes while a scenario runs (peak RSS, mean CPU use)."""

    pids: dict[str, int]
    interval_s: float = 0.25
    points: list[tuple[float, dict[str, Sample]]] = field(default_factory=list)

    async def run(self) -> None:
        """Sample until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            self.points.append((loop.time(), read_samples(self.pids)))
            await asyncio.sleep(self.interval_s)

    def close(self) -> None:
        """Take the last sample (call after cancelling `run`)."""
        self.points.append((asyncio.get_running_loop().time(), read_samples(self.pids)))

    def summary(self) -> dict[str, dict[str, float]]:
        """Per process: peak RSS (MiB), CPU seconds and mean CPU use (cores) over the span."""
        out: dict[str, dict[str, float]] = {}
        if len(self.points) < 2:
            return out
        (t0, first), (t1, last) = self.points[0], self.points[-1]
        span = max(t1 - t0, 1e-9)
        for name in self.pids:
            peak = max(p[name].rss for _, p in self.points)
            cpu_s = last[name].cpu_s - first[name].cpu_s
            out[name] = {
                "peak_rss_mib": round(peak / 2**20, 1),
                "cpu_s": round(cpu_s, 3),
                "cpu_cores": round(cpu_s / span, 3),
            }
        return out
