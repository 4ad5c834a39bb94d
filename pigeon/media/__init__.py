"""Attachments' files: where they are stored and how an upload is checked and processed."""
