"""Prometheus metrics, one registry for the process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

registry = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=registry)  # process_resident_memory_bytes, process_cpu_seconds_total, …

messages_sent = Counter(
    "pigeon_messages_sent", "Messages accepted and committed", registry=registry
)
sends_in_transaction = Counter(
    "pigeon_sends_in_transaction",
    "PostgreSQL sends made in a transaction after the write at once could not be made"
    " (a turn taken, the members changed, a repeated client_msg_id, Redis away)",
    registry=registry,
)
messaging_enabled = Gauge(
    "pigeon_messaging_enabled", "1 when the messaging switch is on", registry=registry
)
live_connections = Gauge(
    "pigeon_live_connections", "WebSocket connections held by this process", registry=registry
)
events_delivered = Counter(
    "pigeon_events_delivered",
    "Events handed to WebSocket connections",
    ["type"],
    registry=registry,
)
delivery_latency = Histogram(
    "pigeon_delivery_latency_seconds",
    "From commit of a message to its hand-off to a recipient's connection",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=registry,
)
slow_consumers = Counter(
    "pigeon_slow_consumers_disconnected",
    "Connections closed because they fell behind",
    registry=registry,
)
publish_failures = Counter(
    "pigeon_publish_failures",
    "Events committed but not published (the broker failed); clients catch up on resume",
    registry=registry,
)
emails_delivered = Counter(
    "pigeon_emails_delivered",
    "Outbox delivery attempts by result: sent, failed (to be retried) or dead (given up)",
    ["result"],
    registry=registry,
)
request_duration = Histogram(
    "pigeon_http_request_duration_seconds",
    "HTTP requests by route template, method and status class, until the answer is sent",
    ["method", "route", "status"],
    buckets=(0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
    registry=registry,
)
errors = Counter(
    "pigeon_errors",
    "Error answers by their code (the envelope's error.code)",
    ["code"],
    registry=registry,
)
queue_depth = Gauge(
    "pigeon_queue_depth",
    "Work waiting: sends for the SQLite writer, frames in live connections' queues, emails "
    "pending and dead in the outbox (read when scraped)",
    ["queue"],
    registry=registry,
)
db_connections = Gauge(
    "pigeon_db_connections_in_use",
    "Database connections checked out of each pool",
    ["database"],
    registry=registry,
)
job_runs = Counter(
    "pigeon_job_runs",
    "Background task runs by task (retention, email, digest, push) and result (ok, failed)",
    ["task", "result"],
    registry=registry,
)
job_last_success = Gauge(
    "pigeon_job_last_success_timestamp_seconds",
    "When each background task last finished without error (Unix time)",
    ["task"],
    registry=registry,
)
last_backup = Gauge(
    "pigeon_last_backup_timestamp_seconds",
    "When `pigeon backup` last finished (Unix time; 0: never), read when scraped",
    registry=registry,
)


def job_done(job: str, ok: bool, at: float) -> None:
    job_runs.labels(job, "ok" if ok else "failed").inc()
    if ok:
        job_last_success.labels(job).set(at)


pushes_sent = Counter(
    "pigeon_pushes_sent", "Web Push messages a push service accepted", registry=registry
)
push_failures = Counter(
    "pigeon_push_failures",
    "Web Push messages not accepted: gone (the device unsubscribed; it is forgotten), "
    "unreachable, status_4xx / status_5xx, error",
    ["reason"],
    registry=registry,
)
