"""Email: an outbox written in the transaction of the change that causes it, and a worker that
delivers it over SMTP (one process at a time, retries with backoff, dead letters for admins)."""
