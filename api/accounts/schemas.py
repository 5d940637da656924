"""Wire models of the accounts API (camelCase on the wire, like the rest of the studio)."""

from __future__ import annotations

from datetime import datetime

from warmpool.api.schemas import Out


class AuthConfigOut(Out):
    mode: str
    login_url: str | None = None


class SessionOut(Out):
    id: int
    created: datetime
    last_seen: datetime
    expires: datetime
    address: str
    user_agent: str
    current: bool


class AccountOut(Out):
    name: str
    admin: bool
    auth: str
    email: str = ""
    groups: list[str] = []
    issuer: str = ""
    created: datetime | None = None
    sessions: list[SessionOut] = []
