"""The team administration's pages, mounted together: the team and its invitations, a person's own account (the
invitation and reset links, the password change), the API keys and the audit log."""

from __future__ import annotations

from fastapi import APIRouter

from clinician_ui import account, api_keys_page, audit_page, team

ROUTERS: tuple[APIRouter, ...] = (team.router, account.router, api_keys_page.router, audit_page.router)
