"""Scheduled jobs of the alert engine (time-driven rules); the engine issue adds them here."""

from __future__ import annotations

from telemon.jobs import Job

JOBS: tuple[Job, ...] = ()
