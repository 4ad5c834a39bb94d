"""The scenarios `pigeon bench` runs, and a percentile helper."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class Scenario:
    name: str
    clients: int = 100
    conversations: int = 50
    rate: float = 50.0  # sends per second; 0 = closed loop with `senders`
    senders: int = 0
    duration: float = 20.0
    idle: int = 0


SCENARIOS = {
    "latency": Scenario("latency", clients=100, conversations=50, rate=50),
    "load": Scenario("load", clients=1000, conversations=500, rate=500),
    "throughput": Scenario(
        "throughput", clients=32, conversations=16, rate=0, senders=16, duration=10
    ),
    "idle": Scenario("idle", clients=0, conversations=0, rate=0, idle=10_000, duration=5),
}


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]
