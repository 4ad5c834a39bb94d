"""Attachments: where their bytes are kept, a local folder or an S3 bucket."""
