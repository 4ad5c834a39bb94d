"""Running an install: backups and restores."""
