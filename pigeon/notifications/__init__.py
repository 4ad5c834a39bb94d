"""Notifications for people who are away: the email digest of unread messages (who wrote, how
many, never what), sent by a background job one process at a time."""
