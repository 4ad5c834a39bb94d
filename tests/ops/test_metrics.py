"""The metrics an operator alerts on: request latency by route, errors by code, queue depths,
database connections, the process's memory and CPU, background jobs, the last backup."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from httpx import ASGITransport, AsyncClient
from prometheus_client.parser import text_string_to_metric_families

from pigeon.ops import backup as backups
from tests.support.people import dm, send

SEND_ROUTE = "/api/v1/conversations/{conversation_id}/messages"


async def scrape(app) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:  # type: ignore[no-untyped-def]
    transport = ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with AsyncClient(transport=transport, base_url="http://testserver") as c:
        r = await c.get("/metrics")
    assert r.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(r.text)
        for sample in family.samples
    }


def value(found, name: str, **labels: str) -> float:  # type: ignore[no-untyped-def]
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_what_an_operator_alerts_on_is_in_metrics(
    app, client, people, settings, tmp_path: Path
) -> None:
    before = await scrape(app)
    conv = await dm(client, people.priv, people.plus)
    for n in range(3):
        assert (await send(client, people.priv, conv["id"], f"hello {n}")).status_code == 201
    r = await client.get("/api/v1/conversations/999999", headers=people.priv.headers)
    code = r.json()["error"]["code"]
    assert (await client.post("/api/v1/auth/login", json={})).status_code == 422
    await backups.backup(settings, tmp_path / "backup", say=lambda _: None)

    after = await scrape(app)
    sends = {"method": "POST", "route": SEND_ROUTE, "status": "2xx"}
    count = "pigeon_http_request_duration_seconds_count"
    assert value(after, count, **sends) - value(before, count, **sends) == 3
    assert value(after, "pigeon_http_request_duration_seconds_bucket", **sends, le="+Inf") >= 3
    assert value(after, "pigeon_errors_total", code=code) > value(
        before, "pigeon_errors_total", code=code
    )
    assert value(after, "pigeon_errors_total", code="validation_error") >= 1
    for queue in ("writer", "connections", "outbox_pending", "outbox_dead"):
        assert ("pigeon_queue_depth", (("queue", queue),)) in after, queue
    for db in ("app", "messaging"):
        assert ("pigeon_db_connections_in_use", (("database", db),)) in after
    assert value(after, "process_resident_memory_bytes") > 10 * 1024 * 1024
    assert value(after, "process_cpu_seconds_total") > 0
    assert value(before, "pigeon_last_backup_timestamp_seconds") == 0
    assert value(after, "pigeon_last_backup_timestamp_seconds") > 1.7e9


def metric_names() -> set[str]:
    """Every series name the registry can produce (counters as _total, histograms' parts)."""
    from pigeon.core import metrics

    names: set[str] = set()
    for family in metrics.registry.collect():
        names.add(family.name)
        names |= {sample.name for sample in family.samples}
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names |= {family.name + part for part in ("_bucket", "_count", "_sum")}
    return names


def named_in(expr: str) -> set[str]:
    return {n for n in re.findall(r"\b((?:pigeon|process)_[a-z_]+)", expr)}


def test_the_alert_rules_and_the_dashboard_name_real_metrics() -> None:
    known = metric_names()
    docs = Path(__file__).resolve().parents[2] / "docs"
    rules = yaml.safe_load((docs / "prometheus-alerts.yml").read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert len(exprs) >= 10
    for rule in (r for g in rules["groups"] for r in g["rules"]):
        assert rule["alert"] and rule["labels"]["severity"] in ("warning", "critical")
    dashboard = json.loads((docs / "grafana-dashboard.json").read_text())
    exprs += [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    for expr in exprs:
        for name in named_in(expr):
            assert name in known, f"{name} in {expr!r} is not a metric Pigeon exports"
