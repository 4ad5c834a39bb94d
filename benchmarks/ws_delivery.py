"""Live delivery under load: the same runs as `pigeon bench`, for those who browse benchmarks/.

    .venv/bin/python benchmarks/ws_delivery.py [latency|load|throughput|idle ...]
      [--clients N] [--conversations M] [--rate R] [--senders K] [--duration S] [--idle N]
      [--server-cpu 0] [--client-cpu 1]

See `pigeon/bench.py` for what is measured and how.
"""

from __future__ import annotations

import argparse

from pigeon import bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="*", help=" | ".join(bench.SCENARIOS))
    for name, kind in (
        ("clients", int),
        ("conversations", int),
        ("rate", float),
        ("senders", int),
        ("duration", float),
        ("idle", int),
    ):
        parser.add_argument(f"--{name}", type=kind)
    parser.add_argument("--server-cpu", default="0")
    parser.add_argument("--client-cpu", default="1")
    args = parser.parse_args()
    unknown = [n for n in args.scenario if n not in bench.SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {unknown[0]!r}")
    overrides = {
        k: getattr(args, k)
        for k in ("clients", "conversations", "rate", "senders", "duration", "idle")
    }
    bench.main(
        args.scenario or list(bench.SCENARIOS),
        server_cpu=args.server_cpu or None,
        client_cpu=args.client_cpu or None,
        overrides=overrides,
    )


if __name__ == "__main__":
    main()
