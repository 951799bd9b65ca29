"""Guideline profiles, vectorised rules, the engine, the alert store and lifecycle, scheduled checks."""
