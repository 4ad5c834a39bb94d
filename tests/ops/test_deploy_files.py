"""The container, compose and systemd files, checked as CI can here: parsed and held to what
an operator relies on (a non-root image with a health check, both databases and Redis wired,
the proxy trusted and nothing else, every setting one Pigeon reads). Where hadolint or
`docker compose` is installed, they lint the files too."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from pigeon.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
FIELDS = {f"PIGEON_{name.upper()}" for name in Settings.model_fields}


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of the final stage, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    steps = [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]
    last_from = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    return [(op, args) for op, args in steps[last_from:]]


def test_the_image_is_small_non_root_and_checks_its_health() -> None:
    steps = dockerfile()
    ops = [op for op, _ in steps]
    assert re.fullmatch(r"python:3\.11-slim-\w+", steps[0][1]), "a pinned slim base"
    user = next(args for op, args in steps if op == "USER")
    assert user not in ("root", "0")
    assert ops.index("USER") < ops.index("CMD")  # it runs as that user
    health = next(args for op, args in steps if op == "HEALTHCHECK")
    assert "/readyz" in health
    assert ("EXPOSE", "8000") in steps
    assert not any(op == "ADD" for op in ops)  # nothing fetched from a URL at build time
    text = (ROOT / "Dockerfile").read_text()
    assert "--require-hashes -r requirements.lock" in text  # the locked dependencies only
    for name in re.findall(r"\b(PIGEON_[A-Z_]+)=", text):
        assert name in FIELDS, name
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "data", ".env"} <= set(ignored)


def test_compose_wires_two_processes_behind_the_proxy() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "pigeon-1", "pigeon-2", "proxy"} <= set(services)
    proxy_ip = services["proxy"]["networks"]["pigeon"]["ipv4_address"]
    for name in ("pigeon-1", "pigeon-2"):
        env = services[name]["environment"]
        for key in env:
            assert key in FIELDS, f"{name}: {key} is not a setting"
        assert env["PIGEON_DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert env["PIGEON_MESSAGING_DATABASE_URL"].endswith("/pigeon_messages")
        assert env["PIGEON_DATABASE_URL"] != env["PIGEON_MESSAGING_DATABASE_URL"]
        assert env["PIGEON_REDIS_URL"].startswith("redis://redis:")
        assert env["PIGEON_TRUSTED_PROXIES"] == proxy_ip  # the proxy, and nobody else
        assert "${PIGEON_SECRET_KEY:?" in env["PIGEON_SECRET_KEY"]  # no default secret
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert services[name]["ulimits"]["nofile"]["soft"] >= 20000
    Settings(  # the values, as compose fills them, are ones Pigeon accepts
        trusted_proxies=proxy_ip, public_url="https://chat.example.org", _env_file=None
    )
    init = (ROOT / "deploy/postgres-init.sql").read_text()
    assert "CREATE DATABASE pigeon_messages" in init
    caddy = (ROOT / "deploy/Caddyfile").read_text()
    assert "reverse_proxy pigeon-1:8000 pigeon-2:8000" in caddy and "/readyz" in caddy
    mounted = {v.split(":")[0] for v in services["proxy"]["volumes"]}
    assert "./deploy/Caddyfile" in mounted
    for line in (ROOT / "deploy/compose.env.example").read_text().splitlines():
        key = line.split("=", 1)[0]
        if key.startswith("PIGEON_") and key != "PIGEON_DOMAIN":
            assert key in FIELDS, key


def test_the_systemd_unit_runs_unprivileged_with_room_for_connections() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(ROOT / "deploy/pigeon@.service")
    service = unit["Service"]
    assert service["User"] == "pigeon"
    assert service["ExecStart"].endswith("pigeon serve --host 127.0.0.1 --port %i")
    assert int(service["LimitNOFILE"]) >= 20000
    assert service["Restart"] == "on-failure" and service["NoNewPrivileges"] == "true"
    assert service["ReadWritePaths"] == "/var/lib/pigeon"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.skipif(not shutil.which("hadolint"), reason="hadolint is not installed")
def test_hadolint_finds_nothing() -> None:
    done = subprocess.run(["hadolint", str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def _compose_available() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _compose_available(), reason="docker compose is not installed")
def test_docker_compose_accepts_the_file() -> None:
    env = {"POSTGRES_PASSWORD": "x", "PIGEON_SECRET_KEY": "y" * 40, "PIGEON_DOMAIN": "a.example"}
    done = subprocess.run(
        ["docker", "compose", "-f", str(ROOT / "compose.yaml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        env={**env, "PATH": "/usr/bin:/bin:/usr/local/bin"},
    )
    assert done.returncode == 0, done.stderr
