"""`qps`: 1e6 / peak QPS, times the cores the server can keep busy: what a client sees."""

from __future__ import annotations

from harness.measures.measure import Measure, WireRound
from harness.measures.server_cpu import server_cores


class InverseQps(Measure):
    name: str = "qps"
    title: str = "1e6/QPS per server core"
    short: str = "1/QPS"
    blind_to: str = (
        "a closed loop's limits: it moves with anything that slows wrk or the scheduler, "
        "and on gunicorn's sync worker with the TCP handshake of every request"
    )

    def read(self, wire: WireRound) -> float | None:
        if wire.peak.qps <= 0:
            return None
        return 1e6 * server_cores(wire.serve.cpus, wire.serve.workers) / wire.peak.qps
