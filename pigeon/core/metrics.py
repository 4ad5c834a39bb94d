"""Prometheus metrics, one registry for the process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

registry = CollectorRegistry(auto_describe=True)

messages_sent = Counter(
    "pigeon_messages_sent", "Messages accepted and committed", registry=registry
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
