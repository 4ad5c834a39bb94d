-- The messaging database beside the primary one (compose.yaml creates "pigeon"); the same
-- owner. Runs once, when the PostgreSQL volume is first created.
CREATE DATABASE pigeon_messages OWNER pigeon;
