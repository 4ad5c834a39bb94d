"""Pigeon beside the bare reference server (`../shared/bench/`), in one run: sends/s and
server CPU per send with 16 connections, history latency; the medians and Pigeon ÷ reference.

    .venv/bin/python benchmarks/versus_reference.py [--rounds 3] [--seconds 15]
        [--server-cpu 0 --client-cpu 1] [--reference-dir ../shared/bench]

The same as `pigeon bench --reference ../shared/bench`; see `pigeon/bench/reference.py`.
"""

from pigeon.bench.reference import main

if __name__ == "__main__":
    main()
