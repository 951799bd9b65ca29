"""Every way a reading comes in, funnelled into one ingest service."""
