"""`cpu`: the server's CPU time per completed request, over every process of the server."""

from __future__ import annotations

from harness.measures.measure import Measure, Probe, WireRound, per_request
from harness.measures.server_cpu import cpu_probe
from harness.serving.servers import RunningServer


class ServerCpu(Measure):
    name: str = "cpu"
    title: str = "server CPU time per request"
    short: str = "CPU"
    blind_to: str = (
        "the load generator's side; and on a shared machine it moves with the neighbours "
        "(another process's cache misses, the hypervisor's wake-ups are paid as CPU time)"
    )

    def probe(self, server: RunningServer) -> Probe:
        return cpu_probe(server)

    def read(self, wire: WireRound) -> float | None:
        seconds = per_request(wire.peak.extra.get("server_cpu_s"), wire.peak.requests)
        return None if seconds is None else 1e6 * seconds
