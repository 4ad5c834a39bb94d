"""Attachments over real HTTP: photo uploads, large-file upload throughput and memory, and
thumbnail and photo downloads.

Starts `pigeon serve` on the embedded default (SQLite files and the local media store in a
temporary data folder, rate limits off, size limits and quota raised), registers a sender and a
recipient in one conversation, then measures, one client, sequential, keep-alive:

  - photo upload: a generated ~5 MB 4000x3000 JPEG (quality 92, EXIF orientation 1), then the
    same pixels with orientation 6, uploaded `--photos` times each; the whole request, which
    includes re-encoding and the thumbnail. Also the server's CPU time per upload.
  - large upload: a file of `--large-mb` MiB (`%PDF-1.4` then random bytes: stored as
    uploaded, not decoded) and one of `--small-mb` MiB, streamed from disk, `--runs` times
    each, alternating; MiB/s of the whole request, and the server's RSS before, at its peak
    during (sampled every 50 ms, and the kernel's high-water mark when it can be reset) and
    after. Each upload is deleted again to spare the disk.
  - downloads, as the recipient, after the photo is attached to a message: its thumbnail
    (`--downloads` times), the full photo, and the thumbnail again with If-None-Match (304).

    .venv/bin/python benchmarks/media.py [--runs 3] [--large-mb 200] [--small-mb 50]
      [--photos 30] [--downloads 500] [--server-cpu 0 --client-cpu 1] [--keep]

A reference line, GET /api/v1/auth/me, shows what any authenticated request costs the same
server. Prints the tables and then one JSON line with every figure. The machine's load average
and the CPU time the rest of the machine used during the measurements (every core's busy time
less the server's and this client's; it includes kernel work no process is charged for, such
as disk writeback) are printed too: run it a few times and report the median of the runs.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
from media_processing import noisy  # the same photo-like picture as that benchmark
from PIL import Image

from pigeon.bench.scenarios import pct
from pigeon.bench.server import free_port

ROOT = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024
PASSWORD = "benchmark password"


# --- the files -------------------------------------------------------------------------------


def photos(folder: Path) -> dict[str, Path]:
    """A ~5 MB phone photo, upright (orientation 1) and turned (orientation 6). Fine noise over
    gradients (what costs a JPEG its bytes) mixed with detail about 8 pixels across, which
    survives into the thumbnail (~15 KB, like a real photo's, where noise alone averages out
    to a flat one of under 1 KB)."""
    width, height = 4000, 3000
    coarse = [Image.effect_noise((width // 8, height // 8), 64) for _ in range(3)]
    picture = Image.blend(
        noisy(width, height, 32),
        Image.merge("RGB", coarse).resize((width, height), Image.Resampling.BILINEAR),
        0.5,
    )
    found = {}
    for orientation in (1, 6):
        exif = Image.Exif()
        exif[0x0112] = orientation
        path = folder / f"photo-orientation-{orientation}.jpg"
        picture.save(path, "JPEG", quality=92, exif=exif)
        found[f"orientation {orientation}"] = path
    return found


def large_file(path: Path, mib: int) -> Path:
    """A PDF by its first bytes, then random bytes: the server stores it as uploaded."""
    with path.open("wb") as out:
        out.write(b"%PDF-1.4\n")
        for _ in range(mib):
            out.write(os.urandom(MiB))
    return path


class TimedFile(io.FileIO):
    """A file httpx streams from disk (it reads 64 KiB at a time); notes when the last byte
    was handed over, so the request splits into sending and what the server does after."""

    sent_at = 0.0

    def read(self, size: int = -1) -> bytes:  # type: ignore[override]
        data = super().read(size)
        if not data:
            self.sent_at = time.perf_counter()
        return data


# --- the server ------------------------------------------------------------------------------


def server_env(data: Path, largest: int) -> dict[str, str]:
    env = {
        **os.environ,
        "PIGEON_DATA_DIR": str(data),
        "PIGEON_RATE_LIMITS_ENABLED": "false",
        "PIGEON_REGISTRATION": "open",  # it registers its sender through the API
        "PIGEON_LOG_LEVEL": "warning",
        "PIGEON_SECRET_KEY": "bench-secret-key-that-is-long-enough-for-hs256",
        "PIGEON_ACCESS_TOKEN_MINUTES": "120",
        "PIGEON_MEDIA_MAX_BYTES_FREE": str(largest),
        "PIGEON_MEDIA_MAX_BYTES_PRIVILEGED": str(largest),
        "PIGEON_MEDIA_QUOTA_BYTES_FREE": str(1 << 50),
        "PIGEON_MEDIA_QUOTA_BYTES_PRIVILEGED": str(1 << 50),
    }
    for var in (
        "PIGEON_DATABASE_URL",
        "PIGEON_MESSAGING_DATABASE_URL",
        "PIGEON_REDIS_URL",
        "PIGEON_MEDIA_S3_BUCKET",
    ):
        env.pop(var, None)
    return env


def start_server(env: dict[str, str], port: int, cpu: str | None) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "pigeon.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if cpu and shutil.which("taskset"):
        cmd = ["taskset", "-c", cpu, *cmd]  # taskset execs: the pid is the server's
    return subprocess.Popen(cmd, env=env, cwd=ROOT)


def cli(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pigeon.cli", *args],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        cwd=ROOT,
    )


def wait_ready(base: str, server: subprocess.Popen[bytes]) -> None:
    with httpx.Client() as c:
        for _ in range(300):
            if server.poll() is not None:
                raise SystemExit("server exited")
            try:
                if c.get(f"{base}/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    raise SystemExit("server did not start")


def setup(c: httpx.Client, env: dict[str, str]) -> tuple[dict[str, str], dict[str, str], int]:
    """A sender (privileged, so it may start a conversation) and a recipient, and their
    conversation. Returns both auth headers and the conversation id."""
    tokens, ids = [], []
    for name in ("sender", "recipient"):
        r = c.post(
            "/api/v1/auth/register",
            json={"email": f"{name}@example.com", "username": name, "password": PASSWORD},
        )
        r.raise_for_status()
        tokens.append({"Authorization": f"Bearer {r.json()['access_token']}"})
        ids.append(r.json()["user"]["id"])
    cli(env, "users", "set-tier", "sender", "privileged")
    cli(env, "messaging", "enable")
    # without Redis a CLI change reaches the server when its caches lapse (1 s, 10 s)
    for _ in range(60):
        r = c.post("/api/v1/conversations", json={"participant_ids": [ids[1]]}, headers=tokens[0])
        if r.status_code in (200, 201):
            return tokens[0], tokens[1], r.json()["id"]
        time.sleep(0.25)
    raise SystemExit(f"could not start the conversation: {r.status_code} {r.text}")


# --- measuring -------------------------------------------------------------------------------


class RssWatch:
    """The server's RSS sampled every 50 ms in a thread, and the kernel's high-water mark
    (VmHWM, reset through /proc/<pid>/clear_refs where that is allowed)."""

    def __init__(self, proc: psutil.Process) -> None:
        self.proc = proc
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.hwm_reset = _reset_hwm(proc.pid)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            self._stop.wait(0.05)

    def __enter__(self) -> RssWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)

    def kernel_peak(self) -> int | None:
        if not self.hwm_reset:
            return None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return None


def _reset_hwm(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def server_cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def upload(c: httpx.Client, h: dict[str, str], path: Path, content_type: str) -> dict[str, Any]:
    with TimedFile(path, "rb") as fh:
        r = c.post("/api/v1/media/upload", files={"file": (path.name, fh, content_type)}, headers=h)
    assert r.status_code == 201, r.text
    return r.json()


def large_uploads(
    c: httpx.Client, h: dict[str, str], proc: psutil.Process, files: dict[int, Path], runs: int
) -> dict[int, list[dict[str, float]]]:
    results: dict[int, list[dict[str, float]]] = {mib: [] for mib in files}
    warm = min(files)
    c.delete(f"/api/v1/media/{upload(c, h, files[warm], 'application/pdf')['id']}", headers=h)
    time.sleep(0.5)
    for _ in range(runs):
        for mib, path in files.items():
            before = proc.memory_info().rss
            with RssWatch(proc) as watch, TimedFile(path, "rb") as fh:
                start = time.perf_counter()
                r = c.post(
                    "/api/v1/media/upload",
                    files={"file": (path.name, fh, "application/pdf")},
                    headers=h,
                )
                elapsed = time.perf_counter() - start
                sent = fh.sent_at - start
            assert r.status_code == 201, r.text
            assert r.json()["size"] == path.stat().st_size, r.json()
            kernel = watch.kernel_peak()
            time.sleep(0.3)  # let the worker threads settle before "after"
            after = proc.memory_info().rss
            results[mib].append(
                {
                    "seconds": elapsed,
                    "mib_s": path.stat().st_size / MiB / elapsed,
                    "after_send_ms": (elapsed - sent) * 1000,
                    "rss_before": before / MiB,
                    "rss_peak": watch.peak / MiB,
                    "rss_peak_kernel": kernel / MiB if kernel else 0.0,
                    "rss_after": after / MiB,
                }
            )
            d = c.delete(f"/api/v1/media/{r.json()['id']}", headers=h)
            assert d.status_code == 204, d.text
    return results


def photo_uploads(
    c: httpx.Client, h: dict[str, str], proc: psutil.Process, files: dict[str, Path], n: int
) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, dict[str, Any]]]:
    """Each photo uploaded `n` times, taking turns (so a busy spell on the machine hits both
    alike): milliseconds of each upload, the server's CPU milliseconds, the last reply."""
    wall: dict[str, list[float]] = {name: [] for name in files}
    cpu: dict[str, list[float]] = {name: [] for name in files}
    last = {name: upload(c, h, path, "image/jpeg") for name, path in files.items()}  # warm-up
    for _ in range(n):
        for name, path in files.items():
            cpu0, start = server_cpu(proc), time.perf_counter()
            last[name] = upload(c, h, path, "image/jpeg")
            wall[name].append((time.perf_counter() - start) * 1000)
            cpu[name].append((server_cpu(proc) - cpu0) * 1000)
    return wall, cpu, last


def downloads(
    c: httpx.Client,
    proc: psutil.Process,
    cases: dict[str, tuple[str, dict[str, str], int, int]],
    rounds: int = 5,
) -> dict[str, dict[str, Any]]:
    """GETs of each case (url, headers, expected status, count), in `rounds` turns so that a
    busy spell on the machine hits every case alike. Milliseconds of each GET, the server's
    mean CPU milliseconds per GET, and the bytes of the last body."""
    results: dict[str, dict[str, Any]] = {}
    for name, (url, h, expect, _) in cases.items():
        for _ in range(20):
            r = c.get(url, headers=h)
            assert r.status_code == expect, (name, r.status_code, r.text[:200])
        results[name] = {"wall": [], "cpu": 0.0, "bytes": len(r.content)}
    for turn in range(rounds):
        for name, (url, h, expect, count) in cases.items():
            share = count // rounds + (1 if turn < count % rounds else 0)
            cpu0 = server_cpu(proc)
            for _ in range(share):
                start = time.perf_counter()
                r = c.get(url, headers=h)
                results[name]["wall"].append((time.perf_counter() - start) * 1000)
                assert r.status_code == expect, (name, r.status_code)
            results[name]["cpu"] += server_cpu(proc) - cpu0
    for name, (*_, count) in cases.items():
        results[name]["cpu"] = results[name]["cpu"] * 1000 / count
    return results


def machine_busy() -> tuple[float, float]:
    """CPU seconds all cores spent busy so far, and this process's own (with its threads)."""
    t = psutil.cpu_times()
    busy = t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0)
    busy += getattr(t, "steal", 0)
    own = psutil.Process().cpu_times()
    return busy, own.user + own.system


# --- the run ---------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="large uploads of each size")
    ap.add_argument("--large-mb", type=int, default=200, help="MiB")
    ap.add_argument("--small-mb", type=int, default=50, help="MiB, to compare the RSS with")
    ap.add_argument("--photos", type=int, default=30, help="uploads of each photo")
    ap.add_argument("--downloads", type=int, default=500, help="thumbnail GETs (and 304s)")
    ap.add_argument("--full-downloads", type=int, default=50, help="full photo GETs")
    ap.add_argument("--server-cpu", default="0", help="core(s) for the server; '' for any")
    ap.add_argument("--client-cpu", default="1", help="core for this client; '' for any")
    ap.add_argument("--keep", action="store_true", help="keep the data folder")
    args = ap.parse_args()
    if args.client_cpu:
        os.sched_setaffinity(0, {int(args.client_cpu)})

    tmp = Path(tempfile.mkdtemp(prefix="pigeon-bench-media-"))
    data, samples = tmp / "data", tmp / "samples"
    samples.mkdir()
    print("making the sample files ...", flush=True)
    pictures = photos(samples)
    photo_mb = {name: path.stat().st_size / 1e6 for name, path in pictures.items()}
    sizes = sorted({args.small_mb, args.large_mb})
    bigs = {mib: large_file(samples / f"large-{mib}.pdf", mib) for mib in sizes}

    env = server_env(data, (max(sizes) + 1) * MiB)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cli(env, "db", "upgrade")
    server = start_server(env, port, args.server_cpu)
    try:
        wait_ready(base, server)
        proc = psutil.Process(server.pid)
        with httpx.Client(base_url=base, timeout=300) as c:
            sender, recipient, conv = setup(c, env)
            idle_rss = proc.memory_info().rss / MiB
            load_start = os.getloadavg()
            busy0, own0 = machine_busy()
            srv0, t0 = server_cpu(proc), time.perf_counter()

            print("large uploads ...", flush=True)
            large = large_uploads(c, sender, proc, bigs, args.runs)

            print("photo uploads ...", flush=True)
            wall, cpu, last = photo_uploads(c, sender, proc, pictures, args.photos)
            upright, turned = last["orientation 1"], last["orientation 6"]
            assert (upright["width"], upright["height"]) == (4000, 3000), upright
            assert (turned["width"], turned["height"]) == (3000, 4000), turned
            assert upright["thumbnail_url"], upright

            r = c.post(
                f"/api/v1/conversations/{conv}/messages",
                json={"body": "", "attachment_ids": [upright["id"]]},
                headers=sender,
            )
            assert r.status_code == 201, r.text

            print("downloads ...", flush=True)
            media = f"/api/v1/media/{upright['id']}"
            etag = c.get(f"{media}/thumbnail", headers=recipient).headers["etag"]
            gets = downloads(
                c,
                proc,
                {
                    "thumbnail": (f"{media}/thumbnail", recipient, 200, args.downloads),
                    "thumbnail 304": (
                        f"{media}/thumbnail",
                        {**recipient, "If-None-Match": etag},
                        304,
                        args.downloads,
                    ),
                    "full photo": (media, recipient, 200, args.full_downloads),
                    "auth/me": ("/api/v1/auth/me", recipient, 200, args.downloads),
                },
            )
            assert gets["full photo"]["bytes"] == upright["size"]

            elapsed = time.perf_counter() - t0
            busy1, own1 = machine_busy()
            srv = server_cpu(proc) - srv0
            others = (busy1 - busy0) - srv - (own1 - own0)
            load_end = os.getloadavg()
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    machine = {
        "loadavg_start": [round(x, 2) for x in load_start],
        "loadavg_end": [round(x, 2) for x in load_end],
        "seconds": round(elapsed, 1),
        "others_cpu_percent": round(others / elapsed * 100, 1),
        "server_cpu_percent": round(srv / elapsed * 100, 1),
        "cores": os.cpu_count(),
    }
    report(args, photo_mb, wall, cpu, large, gets, idle_rss, machine)


def report(
    args: argparse.Namespace,
    photo_mb: dict[str, float],
    wall: dict[str, list[float]],
    cpu: dict[str, list[float]],
    large: dict[int, list[dict[str, float]]],
    gets: dict[str, dict[str, Any]],
    idle_rss: float,
    machine: dict[str, Any],
) -> None:
    out: dict[str, Any] = {"photo_upload": {}, "large_upload": {}, "download": {}}
    print()
    print(f"{'upload, with thumbnail':34} {'p50':>8} {'p90':>8} {'server CPU p50':>15}")
    for name, times in wall.items():
        out["photo_upload"][name] = {
            "mb": round(photo_mb[name], 2),
            "p50_ms": round(statistics.median(times), 1),
            "p90_ms": round(pct(times, 0.9), 1),
            "server_cpu_p50_ms": round(statistics.median(cpu[name]), 1),
            "n": len(times),
        }
        f = out["photo_upload"][name]
        print(
            f"{f'{photo_mb[name]:.1f} MB photo, {name}':34} {f['p50_ms']:6.1f}ms "
            f"{f['p90_ms']:6.1f}ms {f['server_cpu_p50_ms']:13.1f}ms   (n={len(times)})"
        )
    print()
    print(f"{'GET, as the recipient':34} {'p50':>8} {'p99':>8} {'server CPU/req':>15}")
    for name, got in gets.items():
        times = got["wall"]
        out["download"][name] = {
            "bytes": got["bytes"],
            "p50_ms": round(statistics.median(times), 2),
            "p99_ms": round(pct(times, 0.99), 2),
            "server_cpu_mean_ms": round(got["cpu"], 2),
            "n": len(times),
        }
        f = out["download"][name]
        label = {
            "thumbnail": f"thumbnail ({got['bytes'] / 1024:.0f} KiB WebP)",
            "thumbnail 304": "thumbnail, If-None-Match (304)",
            "full photo": f"full photo ({got['bytes'] / 1e6:.1f} MB)",
            "auth/me": "reference: /api/v1/auth/me",
        }[name]
        print(
            f"{label:34} {f['p50_ms']:6.2f}ms {f['p99_ms']:6.2f}ms "
            f"{f['server_cpu_mean_ms']:13.2f}ms   (n={len(times)})"
        )
    print()
    print(
        f"{'large upload':14} {'MiB/s':>7} {'after send':>11} {'RSS before':>11} "
        f"{'peak':>7} {'(kernel)':>9} {'after':>7}   (MiB; medians of {args.runs}, peak: most)"
    )
    for mib, rows in large.items():

        def med(field: str, rows: list[dict[str, float]] = rows) -> float:
            return round(statistics.median(row[field] for row in rows), 1)

        out["large_upload"][str(mib)] = f = {
            "mib_s_median": med("mib_s"),
            "mib_s_each": [round(r["mib_s"], 1) for r in rows],
            "after_send_ms_median": med("after_send_ms"),
            "rss_before_mib": med("rss_before"),
            "rss_peak_mib": round(max(r["rss_peak"] for r in rows), 1),
            "rss_peak_kernel_mib": round(max(r["rss_peak_kernel"] for r in rows), 1) or None,
            "rss_after_mib": med("rss_after"),
        }
        kernel = f"{f['rss_peak_kernel_mib']:9.1f}" if f["rss_peak_kernel_mib"] else f"{'-':>9}"
        print(
            f"{f'{mib} MiB':14} {f['mib_s_median']:7.1f} {f['after_send_ms_median']:9.0f}ms "
            f"{f['rss_before_mib']:11.1f} {f['rss_peak_mib']:7.1f} {kernel} "
            f"{f['rss_after_mib']:7.1f}"
        )
    la, lb = machine["loadavg_start"], machine["loadavg_end"]
    print()
    print(
        f"server RSS after setup {idle_rss:.1f} MiB. Load average {la[0]:.2f} at the start, "
        f"{lb[0]:.2f} at the end; other processes used {machine['others_cpu_percent']:.0f}% "
        f"of a core over the {machine['seconds']:.0f} s measured "
        f"(the server {machine['server_cpu_percent']:.0f}%)."
    )
    out["server_rss_idle_mib"] = round(idle_rss, 1)
    out["machine"] = machine
    print(json.dumps({"benchmark": "media", **out}))


if __name__ == "__main__":
    main()
