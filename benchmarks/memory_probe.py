"""Peak anonymous and file-backed resident memory of this process, sampled from /proc.

``ru_maxrss`` counts the pages of memory-mapped files too (a merged ``.npy`` being written or
streamed), which the kernel can write back and drop; the anonymous part is what a job really
holds. A daemon thread samples ``RssAnon`` and ``RssFile`` of /proc/self/status every 20 ms.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

STATUS = Path("/proc/self/status")


def _read() -> dict[str, int]:
    """Current RssAnon and RssFile in KiB (empty where /proc is missing)."""
    if not STATUS.exists():
        return {}
    fields = {}
    for line in STATUS.read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("RssAnon", "RssFile"):
            fields[key] = int(value.split()[0])
    return fields


class MemoryProbe:
    """Start on construction; ``peaks()`` gives the largest RssAnon and RssFile seen, in MiB."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peak: dict[str, int] = _read()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for key, value in _read().items():
                self.peak[key] = max(self.peak.get(key, 0), value)
            time.sleep(self.interval)

    def peaks(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        for key, value in _read().items():
            self.peak[key] = max(self.peak.get(key, 0), value)
        return {"peak_anon_mib": self.peak.get("RssAnon", 0) / 1024,
                "peak_file_mib": self.peak.get("RssFile", 0) / 1024}
