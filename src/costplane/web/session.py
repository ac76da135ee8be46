"""Dashboard sessions: local users log in with their password and get an HttpOnly cookie.

The cookie carries an ordinary API token (stored hashed, named "dashboard session", expiring),
so the dashboard and the API share one credential model, resolved by the store's one
authenticator (`costplane.auth`, one cache): logging out, revoking the token or disabling the
user ends the session at the very next request, on every server process sharing the store, and
`costplane users` lists it like any other token.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from starlette.requests import Request

from costplane.api.credentials import hash_password, issue_token, verify_password
from costplane.api.principal import Principal
from costplane.auth.authenticator import Authenticator
from costplane.ledger.store import Store

__all__ = ["COOKIE", "SESSION_HOURS", "end_session", "principal_of", "start_session"]

COOKIE = "costplane_session"
SESSION_HOURS = 12
# Checked against when the user name is unknown, so a wrong name costs the same time as a wrong password.
_DECOY = hash_password("costplane-decoy-password")


def start_session(store: Store, name: str, password: str, now: datetime) -> str | None:
    """The session secret for a valid login, None otherwise (never says which part was wrong)."""
    user = store.user_by_name(name)
    if user is None or not user.password_hash:
        verify_password(password, _DECOY)
        return None
    if not verify_password(password, user.password_hash) or not user.active:
        return None
    secret, _ = issue_token(store, user, name="dashboard session", expires_at=now + timedelta(hours=SESSION_HOURS))
    return secret


def principal_of(auth: Authenticator, request: Request) -> Principal | None:
    secret = request.cookies.get(COOKIE, "")
    return auth.session(secret) if secret else None


def end_session(store: Store, principal: Principal) -> None:
    store.revoke_api_token(principal.token_id, datetime.now(UTC))
