"""Conformance of `Credentials`: keys, users and API tokens round-trip; a revocation is visible at
once and raises the credentials generation in the same transaction."""

from __future__ import annotations

from datetime import timedelta

import pytest
from ledger_helpers import NOW

from costplane.ledger import KeyRecord, Store, StoreError

from .records import api_token, user


def test_keys(store: Store) -> None:
    key = KeyRecord(id="k1", secret_hash="a" * 64, prefix="cp_abc", name="ml team",
                    attributes={"team": "ml", "cost_center": "cc1"}, created_at=NOW)  # fmt: skip
    store.create_key(key)
    other = KeyRecord(id="k2", secret_hash="b" * 64, prefix="cp_def", name="web", attributes={},
                      created_at=NOW + timedelta(seconds=1), expires_at=NOW + timedelta(days=1))  # fmt: skip
    store.create_key(other)
    assert store.key_by_hash("a" * 64) == key
    assert store.key_by_hash("c" * 64) is None
    assert store.get_key("k2") == other
    assert [k.id for k in store.list_keys()] == ["k1", "k2"]
    with pytest.raises(StoreError):
        store.create_key(key)
    assert store.revoke_key("k1", NOW + timedelta(hours=1)) is True
    assert store.revoke_key("k1", NOW + timedelta(hours=2)) is False
    assert store.revoke_key("nope", NOW) is False
    revoked = store.get_key("k1")
    assert revoked is not None and revoked.revoked_at == NOW + timedelta(hours=1)
    assert not revoked.usable(NOW + timedelta(hours=3))

def test_users_and_api_tokens_round_trip(store: Store) -> None:
    ada = user("ada", teams=("ml", "web"))
    store.create_user(ada)
    assert store.get_user(ada.id) == ada and store.user_by_name("ada") == ada
    assert store.user_by_name("nobody") is None and store.get_user("nobody") is None
    bob = user("bob", role="finance", teams=())
    store.create_user(bob)
    assert {u.name for u in store.list_users()} == {"ada", "bob"}
    token = api_token(ada.id, secret_hash="f" * 64)
    store.create_api_token(token)
    assert store.api_token_by_hash("f" * 64) == token
    assert store.api_token_by_hash("0" * 64) is None
    assert store.list_api_tokens(ada.id) == [token] and store.list_api_tokens(bob.id) == []


def test_every_revocation_raises_the_generation(store: Store) -> None:
    ada = user("ada")
    store.create_user(ada)
    token = api_token(ada.id)
    store.create_api_token(token)
    k = KeyRecord(id="k1", secret_hash="a" * 64, prefix="cp_abc", name="k", attributes={}, created_at=NOW)
    store.create_key(k)
    seen = [store.credentials_generation()]
    for revoke in (lambda: store.revoke_key("k1", NOW), lambda: store.revoke_api_token(token.id, NOW),
                   lambda: store.disable_user(ada.id, NOW)):
        assert revoke() is True
        seen.append(store.credentials_generation())
    assert seen == sorted(set(seen)), seen  # strictly growing
    assert store.revoke_api_token(token.id, NOW) is False and store.disable_user(ada.id, NOW) is False
    disabled = store.get_user(ada.id)
    assert disabled is not None and not disabled.active
    revoked = store.api_token_by_hash(token.secret_hash)
    assert revoked is not None and not revoked.usable(NOW + timedelta(seconds=1))


def test_a_second_user_with_the_same_name_is_refused(store: Store) -> None:
    store.create_user(user("ada"))
    with pytest.raises(StoreError):
        store.create_user(user("ada"))
