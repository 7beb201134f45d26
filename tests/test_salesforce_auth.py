"""Signing in to Salesforce from the environment: the modes, their order, and their failures."""

from __future__ import annotations

import logging

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fakes import salesforce_api
from fakes.salesforce_api import (
    CONSUMER_SECRET,
    DIRECT_TOKEN,
    INSTANCE_URL,
    REP_USERS,
)

from adapters.salesforce.api import owner_writer
from adapters.salesforce.auth import SalesforceConnection, auth_mode, connect
from workflows.errors import CrmError
from workflows.model import Decision, Lead

fake_salesforce = salesforce_api.fake_salesforce  # the fixture, requested by name below


LEAD = "00Q5g0000000001EAA"


def one_write() -> list[tuple[Lead, Decision]]:
    owner = REP_USERS["alice"]
    decision = Decision(LEAD, "alice", "assigned", "r", "why", owner_crm_id=owner)
    return [(Lead(id=LEAD, crm="salesforce"), decision)]


@pytest.fixture
def jwt_env(fake_salesforce, tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "server.key"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    fake_salesforce.public_key = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {
        "SALESFORCE_USERNAME": "integration@acme.example",
        "SALESFORCE_CONSUMER_KEY": "3MVG9-fake-consumer-key",
        "SALESFORCE_PRIVATE_KEY_FILE": str(path),
    }


def test_access_token_mode_calls_the_instance_without_signing_in(fake_salesforce):
    sf = connect(fake_salesforce.direct_env(), "59.0")
    assert sf.sf_instance == INSTANCE_URL.removeprefix("https://")
    assert fake_salesforce.token_requests == []


def test_jwt_bearer_signs_in_with_a_signed_assertion(fake_salesforce, jwt_env):
    write = owner_writer(SalesforceConnection("59.0", env=jwt_env))
    assert write(one_write()) == {LEAD: None}
    (form,) = fake_salesforce.token_requests
    assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    assert fake_salesforce.writes[0].headers["Sforce-Auto-Assign"] == "FALSE"


def test_jwt_bearer_signs_in_again_after_expiry(fake_salesforce, jwt_env):
    write = owner_writer(SalesforceConnection("59.0", env=jwt_env))
    write(one_write())
    fake_salesforce.expire_tokens()
    assert write(one_write()) == {LEAD: None}
    assert len(fake_salesforce.token_requests) == 2


def test_client_credentials_send_the_key_and_secret_as_basic_auth(fake_salesforce):
    sf = connect(fake_salesforce.client_credentials_env(), "59.0")
    assert sf.session_id.endswith("token-1")


def test_the_modes_are_tried_in_the_documented_order(fake_salesforce, jwt_env):
    everything = {
        **fake_salesforce.legacy_env(),
        **fake_salesforce.client_credentials_env(),
        **jwt_env,
        **fake_salesforce.direct_env(),
    }
    assert auth_mode(everything).name == "access token"
    del everything["SALESFORCE_ACCESS_TOKEN"]
    assert auth_mode(everything).name == "JWT bearer"
    del everything["SALESFORCE_PRIVATE_KEY_FILE"]
    assert auth_mode(everything).name == "client credentials"
    del everything["SALESFORCE_CONSUMER_SECRET"]
    assert auth_mode(everything).legacy
    assert auth_mode({}) is None


def test_legacy_password_login_works_and_warns(fake_salesforce, caplog):
    with caplog.at_level(logging.WARNING):
        sf = connect(fake_salesforce.legacy_env(), "59.0")
    assert sf.session_id.endswith("token-1")
    assert "legacy" in caplog.text
    assert "pa55word" not in caplog.text and "sectoken" not in caplog.text


def test_legacy_login_is_refused_from_api_65(fake_salesforce):
    with pytest.raises(CrmError, match="v65.0"):
        connect(fake_salesforce.legacy_env(), "65.0")
    assert fake_salesforce.token_requests == []


def test_no_credentials_names_what_is_missing():
    with pytest.raises(CrmError) as raised:
        connect({"SALESFORCE_INSTANCE_URL": INSTANCE_URL}, "59.0")
    assert "SALESFORCE_ACCESS_TOKEN" in str(raised.value)
    assert not raised.value.retryable


def test_a_refused_sign_in_is_logged_loudly_without_secrets(fake_salesforce, caplog):
    env = {**fake_salesforce.client_credentials_env(), "SALESFORCE_CONSUMER_SECRET": "wrong!"}
    with pytest.raises(CrmError) as raised:
        connect(env, "59.0")
    assert raised.value.status == 401 and not raised.value.retryable
    assert "invalid_client" in str(raised.value)
    error = next(r for r in caplog.records if r.levelname == "ERROR")
    assert "client credentials" in error.getMessage()
    assert "wrong!" not in caplog.text and CONSUMER_SECRET not in caplog.text


def test_a_missing_key_file_is_a_clear_error(fake_salesforce, jwt_env, tmp_path):
    env = {**jwt_env, "SALESFORCE_PRIVATE_KEY_FILE": str(tmp_path / "nope.key")}
    with pytest.raises(CrmError, match="SALESFORCE_PRIVATE_KEY_FILE"):
        connect(env, "59.0")


def test_an_invalid_key_file_is_a_clear_error(fake_salesforce, jwt_env, tmp_path):
    bad = tmp_path / "bad.key"
    bad.write_text("not a key")
    with pytest.raises(CrmError, match="SALESFORCE_PRIVATE_KEY_FILE"):
        connect({**jwt_env, "SALESFORCE_PRIVATE_KEY_FILE": str(bad)}, "59.0")
    assert fake_salesforce.token_requests == []


def test_a_failed_sign_in_is_tried_again_on_the_next_write(fake_salesforce):
    env = {**fake_salesforce.client_credentials_env(), "SALESFORCE_CONSUMER_SECRET": "wrong!"}
    connection = SalesforceConnection("59.0", env=env)
    write = owner_writer(connection)
    with pytest.raises(CrmError):
        write(one_write())  # deliver() turns this into a failed batch, retried later
    env["SALESFORCE_CONSUMER_SECRET"] = CONSUMER_SECRET  # the admin fixes the environment
    assert write(one_write()) == {LEAD: None}


def test_the_access_token_never_reaches_the_logs(fake_salesforce, caplog):
    fake_salesforce.expire_tokens()
    write = owner_writer(SalesforceConnection("59.0", env=fake_salesforce.direct_env()))
    with caplog.at_level(logging.DEBUG):
        (error,) = write(one_write()).values()
    assert error is not None
    assert DIRECT_TOKEN not in caplog.text and DIRECT_TOKEN not in str(error)
