"""The credential generation's trust window: an authenticator relies on a generation read for
`CREDENTIAL_TRUST_SECONDS` from the start of that read (no store read per request), and every
revocation returns only once that window has passed since its commit — so an authenticator that
read the generation just before a revocation committed still refuses the revoked credential as
soon as the revocation has returned, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from costplane.api.credentials import issue_token, new_user
from costplane.auth import Authenticator
from costplane.gateway.keys import create_key
from costplane.ledger.contracts_admin import CREDENTIAL_TRUST_SECONDS
from costplane.ledger.store import Store

BOTH = pytest.mark.parametrize("store_kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
                               indirect=True)


def test_a_read_is_relied_on_for_the_trust_window_and_no_longer(store: Store) -> None:
    secret, record = create_key(store, "k", {"team": "alpha"})
    now = [1000.0]
    auth = Authenticator(store, monotonic=lambda: now[0])
    assert auth.key(secret) == record and auth.generation_reads == 1
    for step in range(100):  # 100 resolutions inside the window: no further read
        now[0] = 1000.0 + CREDENTIAL_TRUST_SECONDS * step / 101
        assert auth.key(secret) == record
    assert auth.generation_reads == 1
    now[0] = 1000.0 + CREDENTIAL_TRUST_SECONDS  # the window is over: the next resolution reads again
    assert auth.key(secret) == record and auth.generation_reads == 2
    assert Authenticator(store, trust=0).generation_reads == 0
    untrusting = Authenticator(store, trust=0)
    for _ in range(3):
        untrusting.key(secret)
    assert untrusting.generation_reads == 3


def test_the_window_is_at_most_what_revocations_wait_for(store: Store) -> None:
    with pytest.raises(ValueError, match="trust: expected 0 to"):
        Authenticator(store, trust=CREDENTIAL_TRUST_SECONDS * 2)
    with pytest.raises(ValueError, match="trust: expected 0 to"):
        Authenticator(store, trust=-1)


@BOTH
def test_a_revocation_returns_only_once_no_cache_can_rely_on_an_older_read(store: Store) -> None:
    key, key_record = create_key(store, "k", {"team": "alpha"})
    user = new_user(store, "ana", "developer", ("alpha",))
    token, token_record = issue_token(store, user)
    other = new_user(store, "bo", "viewer", ("alpha",))
    other_token = issue_token(store, other)[0]
    auth, elsewhere = Authenticator(store), Authenticator(store)  # this process, and another one
    for cache in (auth, elsewhere):
        assert cache.key(key) == key_record
        assert cache.principal(token) is not None and cache.principal(other_token) is not None
    # each cache's last generation read started a moment ago, well inside its window: without the
    # revocation's wait, both would go on using it (and the cached key) after the revocation returned
    assert store.revoke_key(key_record.id, datetime.now(UTC))
    assert auth.key(key) is None and elsewhere.key(key) is None
    assert auth.principal(token) is not None and elsewhere.principal(token) is not None
    assert store.revoke_api_token(token_record.id, datetime.now(UTC))
    assert auth.principal(token) is None and elsewhere.principal(token) is None
    assert elsewhere.principal(other_token) is not None
    assert store.disable_user(other.id, datetime.now(UTC))
    assert auth.principal(other_token) is None and elsewhere.principal(other_token) is None

