"""Who may read the ops console: the bearer token, or a session from the sign-in form; CSRF
on every form; the console off without a token; the CRM endpoints untouched by all of it."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
import yaml
from click.testing import CliRunner
from conftest import TUESDAY_10AM, config_data
from flask import Flask
from itsdangerous import URLSafeTimedSerializer
from ops_helpers import (
    BEARER,
    TOKEN,
    csrf_of,
    make_ops_app,  # noqa: F401 (fixture)
    ops_app,  # noqa: F401 (fixture)
    ops_env,  # noqa: F401 (fixture)
    sign_in,
    signed_in,  # noqa: F401 (fixture)
)
from werkzeug.security import generate_password_hash

from connector.cli import main

PUBLIC = {"ops.sign_in", "ops.sign_out", "ops.static"}


def console_routes(app: Flask) -> list[tuple[str, str, str]]:
    """(method, path, endpoint) of every console page and API, whoever's module added it."""
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC or not rule.rule.startswith(("/ops", "/api")):
            continue
        built = rule.build(dict.fromkeys(rule.arguments, "1"))
        assert built is not None, rule.rule
        path = built[1]
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            routes.append((method, path, rule.endpoint))
    return routes


def foreign_cookie(app: Flask, secret: str, data: dict[str, str]) -> str:
    """A session cookie signed as Flask signs them, with ``secret``."""
    serializer = URLSafeTimedSerializer(
        secret,
        salt="cookie-session",
        serializer=app.session_interface.serializer,  # type: ignore[attr-defined]
        signer_kwargs={"key_derivation": "hmac", "digest_method": __import__("hashlib").sha1},
    )
    return serializer.dumps(data)


def carry_cookie(source, target):
    """``target`` with ``source``'s session cookie: the same browser, another worker."""
    cookie = source.get_cookie("leadrelay_ops")
    assert cookie is not None
    target.set_cookie("leadrelay_ops", cookie.value)
    return target


def test_the_console_has_pages_and_apis_to_guard(ops_app):
    paths = {path for _, path, _ in console_routes(ops_app)}
    assert {"/ops", "/ops/reps", "/ops/rules", "/api/assignments", "/api/reps"} <= paths


REFUSALS = {
    "no credentials": {},
    "wrong token": {"headers": {"Authorization": "Bearer not-the-token"}},
    "token under another scheme": {"headers": {"Authorization": f"Basic {TOKEN}"}},
    "token with a byte more": {"headers": {"Authorization": f"Bearer {TOKEN}x"}},
}


@pytest.mark.parametrize("how", REFUSALS)
def test_no_console_page_or_api_answers_without_the_token_or_a_session(ops_app, how):
    client = ops_app.test_client()
    bearer = how.startswith(("wrong", "token with"))
    for method, path, endpoint in console_routes(ops_app):
        answer = client.open(path, method=method, **REFUSALS[how])
        assert_refused(answer, method, endpoint, path, bearer=bearer)


def assert_refused(answer, method, endpoint, path, bearer=False):
    """A browser reading a page is sent to sign in; anything else (a script's wrong
    Authorization header, the API, a form) is answered 401 in JSON."""
    if endpoint.startswith("ops.") and method == "GET" and not bearer:
        assert answer.status_code == 302, (method, path, answer.status_code)
        assert answer.headers["Location"].startswith("/ops/sign-in?next=")
    else:
        assert answer.status_code == 401, (method, path, answer.status_code)
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert set(answer.json) == {"error"}


@pytest.mark.parametrize("secret", ["some-other-secret", TOKEN])
def test_a_forged_session_cookie_opens_nothing(ops_app, secret):
    # Signed with a key that is not the console's (the token itself is not the key either).
    client = ops_app.test_client()
    forged = foreign_cookie(ops_app, secret, {"ops_who": "token", "ops_mark": "0" * 64})
    client.set_cookie("leadrelay_ops", forged)
    for method, path, endpoint in console_routes(ops_app):
        assert_refused(client.open(path, method=method), method, endpoint, path)


def test_a_cookie_with_the_right_key_but_no_credential_mark_opens_nothing(ops_app):
    client = ops_app.test_client()
    key = ops_app.secret_key
    forged = foreign_cookie(ops_app, key, {"ops_who": "token", "ops_mark": "0" * 64})
    client.set_cookie("leadrelay_ops", forged)
    assert client.get("/api/reps").status_code == 401


def test_an_expired_session_signs_in_again(ops_app):
    client = ops_app.test_client()
    with time_machine.travel(TUESDAY_10AM, tick=False):
        assert sign_in(client).status_code == 302
        assert client.get("/api/reps").status_code == 200
    with time_machine.travel(TUESDAY_10AM + timedelta(hours=11), tick=False):
        assert client.get("/api/reps").status_code == 200  # and the cookie is renewed
    with time_machine.travel(TUESDAY_10AM + timedelta(hours=11 + 12, minutes=1), tick=False):
        for method, path, endpoint in console_routes(ops_app):
            assert_refused(client.open(path, method=method), method, endpoint, path)


def test_the_bearer_token_opens_the_api_and_the_pages(ops_app):
    client = ops_app.test_client()
    assert client.get("/api/reps", headers=BEARER).status_code == 200
    assert client.get("/ops/reps", headers=BEARER).status_code == 200
    assert client.get("/api/reps", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200


def test_a_proxys_basic_credentials_leave_the_session_to_decide(signed_in):
    basic = {"Authorization": "Basic b3BzOnByb3h5LXBhc3N3b3Jk"}
    assert signed_in.get("/api/reps", headers=basic).status_code == 200
    assert signed_in.get("/ops/reps", headers=basic).status_code == 200


def test_signing_in_with_the_token_gives_an_httponly_lax_session_cookie(ops_app):
    client = ops_app.test_client()
    answer = sign_in(client, token=TOKEN, next="/ops/rules")
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/ops/rules"
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith("leadrelay_ops=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http: a browser would drop a Secure cookie
    assert TOKEN not in cookie
    assert client.get("/ops/reps").status_code == 200
    assert client.get("/api/reps").status_code == 200


@pytest.mark.parametrize(
    ("base", "headers"),
    [("https://ops.example.com", {}), ("http://ops.example.com", {"X-Forwarded-Proto": "https"})],
)
def test_the_session_cookie_is_secure_when_the_request_came_over_https(ops_app, base, headers):
    client = ops_app.test_client()
    page = client.get("/ops/sign-in", base_url=base, headers=headers)
    answer = client.post(
        "/ops/sign-in",
        base_url=base,
        data={"csrf_token": csrf_of(page.text), "token": TOKEN},
        headers={"Referer": f"{base}/ops/sign-in", **headers},
    )
    assert answer.status_code == 302
    assert "; Secure" in answer.headers["Set-Cookie"]


def test_signing_in_with_the_user_and_password_hash_from_the_environment(ops_env, make_ops_app):
    ops_env.setenv("LEADRELAY_OPS_USER", "ops")
    ops_env.setenv("LEADRELAY_OPS_PASSWORD_HASH", generate_password_hash("correct horse"))
    client = make_ops_app().test_client()
    assert 'name="password"' in client.get("/ops/sign-in").text
    refused = sign_in(client, user="ops", password="wrong horse")
    assert refused.status_code == 401
    assert "not right" in refused.text
    assert client.get("/api/reps").status_code == 401
    assert sign_in(client, user="nobody", password="correct horse").status_code == 401
    assert sign_in(client, user="ops", password="correct horse").status_code == 302
    assert client.get("/api/reps").status_code == 200


def test_a_new_password_hash_ends_the_sessions_the_old_one_opened(ops_env, make_ops_app):
    ops_env.setenv("LEADRELAY_OPS_USER", "ops")
    ops_env.setenv("LEADRELAY_OPS_PASSWORD_HASH", generate_password_hash("first"))
    client = make_ops_app().test_client()
    assert sign_in(client, user="ops", password="first").status_code == 302
    ops_env.setenv("LEADRELAY_OPS_PASSWORD_HASH", generate_password_hash("second"))
    restarted = make_ops_app()
    assert carry_cookie(client, restarted.test_client()).get("/api/reps").status_code == 401


def test_a_new_token_signs_everyone_out(ops_env, make_ops_app):
    client = make_ops_app().test_client()
    assert sign_in(client).status_code == 302
    ops_env.setenv("LEADRELAY_OPS_TOKEN", "a-brand-new-token-77")
    restarted = carry_cookie(client, make_ops_app().test_client())
    assert restarted.get("/api/reps").status_code == 401


def test_every_worker_accepts_the_cookie_another_worker_signed(make_ops_app):
    first, second = make_ops_app().test_client(), make_ops_app().test_client()
    assert sign_in(first).status_code == 302
    assert carry_cookie(first, second).get("/api/reps").status_code == 200


def test_LEADRELAY_OPS_SECRET_keys_the_cookie_so_a_token_change_keeps_user_sessions(
    ops_env, make_ops_app
):
    ops_env.setenv("LEADRELAY_OPS_SECRET", "a-long-shared-secret-for-cookies")
    ops_env.setenv("LEADRELAY_OPS_USER", "ops")
    ops_env.setenv("LEADRELAY_OPS_PASSWORD_HASH", generate_password_hash("pw"))
    client = make_ops_app().test_client()
    assert sign_in(client, user="ops", password="pw").status_code == 302
    ops_env.setenv("LEADRELAY_OPS_TOKEN", "a-brand-new-token-77")
    restarted = carry_cookie(client, make_ops_app().test_client())
    assert restarted.get("/api/reps").status_code == 200


@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("/ops/sign-in", {"token": TOKEN}),
        ("/ops/rules", {"country": "US"}),
        ("/ops/sign-out", {}),
    ],
)
def test_a_form_posted_without_its_csrf_token_is_refused(signed_in, path, form):
    for token in (None, "forged-csrf-token"):
        data = form if token is None else {**form, "csrf_token": token}
        answer = signed_in.post(path, data=data)
        assert answer.status_code == 400, (path, token)
        assert "CSRF" in answer.text
    assert signed_in.get("/api/reps").status_code == 200  # still signed in
    if path == "/ops/sign-out":
        assert 'href="/ops/sign-in">Start again' in answer.text


def test_a_csrf_token_from_another_session_is_refused(make_ops_app, signed_in):
    stranger = make_ops_app().test_client()
    theirs = csrf_of(stranger.get("/ops/sign-in").text)
    assert signed_in.post("/ops/rules", data={"csrf_token": theirs}).status_code == 400


def test_signing_out_ends_the_session(signed_in):
    page = signed_in.get("/ops/reps")
    answer = signed_in.post("/ops/sign-out", data={"csrf_token": csrf_of(page.text)})
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/ops/sign-in"
    assert signed_in.get("/api/reps").status_code == 401
    assert signed_in.get("/ops/reps").status_code == 302


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/ops",
        "//evil.example/ops",
        "/hubspot/action",
        "ops",
        "/ops/\r\nSet-Cookie: x=1",
        "/ops/\\\\evil.example",
        "/ops/../hubspot/action",
        "/ops@evil.example",
        "",
    ],
)
def test_after_signing_in_the_browser_never_leaves_the_console(ops_app, target):
    answer = sign_in(ops_app.test_client(), token=TOKEN, next=target)
    assert answer.headers["Location"] == "/ops"


def test_a_page_asked_for_before_signing_in_is_where_the_sign_in_leads(ops_app):
    client = ops_app.test_client()
    asked = client.get("/ops/reps?x=1")
    assert asked.headers["Location"] == "/ops/sign-in?next=/ops/reps?x%3D1"
    form = client.get(asked.headers["Location"])
    assert 'name="next" value="/ops/reps?x=1"' in form.text
    answer = sign_in(client, token=TOKEN, next="/ops/reps?x=1")
    assert answer.headers["Location"] == "/ops/reps?x=1"


def test_without_a_token_the_console_is_off_and_says_so(ops_env, make_ops_app, caplog):
    ops_env.delenv("LEADRELAY_OPS_TOKEN")
    with caplog.at_level("WARNING", logger="leadrelay"):
        app = make_ops_app()
    assert "ops console: off (set LEADRELAY_OPS_TOKEN" in caplog.text
    client = app.test_client()
    for path in ("/ops", "/ops/reps", "/ops/sign-in", "/api/assignments", "/api/reps"):
        answer = client.get(path, headers=BEARER)
        assert answer.status_code == 404
        assert "LEADRELAY_OPS_TOKEN" in answer.json["error"]


def test_the_console_says_at_start_up_that_it_is_on(make_ops_app, caplog):
    with caplog.at_level("INFO", logger="leadrelay"):
        make_ops_app()
    assert "ops console: on at /ops (sign in with LEADRELAY_OPS_TOKEN)" in caplog.text


@pytest.mark.parametrize(
    ("env", "line"),
    [
        ({}, "ops console: off (set LEADRELAY_OPS_TOKEN to serve /ops and /api)"),
        ({"LEADRELAY_OPS_TOKEN": TOKEN}, "ops console: on at /ops (sign in with"),
        (
            {"LEADRELAY_OPS_TOKEN": TOKEN, "LEADRELAY_OPS_USER": "ops"},
            "token sign-in only: LEADRELAY_OPS_USER is set but LEADRELAY_OPS_PASSWORD_HASH",
        ),
        (
            {
                "LEADRELAY_OPS_TOKEN": TOKEN,
                "LEADRELAY_OPS_USER": "ops",
                "LEADRELAY_OPS_PASSWORD_HASH": "plain-text",
            },
            "LEADRELAY_OPS_PASSWORD_HASH is not a werkzeug.security hash",
        ),
    ],
)
def test_leadrelay_check_says_in_one_line_whether_the_console_is_on(ops_env, tmp_path, env, line):
    ops_env.delenv("LEADRELAY_OPS_TOKEN")
    for name, value in env.items():
        ops_env.setenv(name, value)
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(config_data(store="sqlite:///state.sqlite")))
    result = CliRunner().invoke(main, ["--config", str(path), "check"])
    assert result.exit_code == 0, result.output
    console = [text for text in result.output.splitlines() if text.startswith("ops console")]
    assert len(console) == 1 and line in console[0]
    assert TOKEN not in result.output


def test_a_half_set_password_sign_in_is_ignored_and_the_token_still_works(ops_env, make_ops_app):
    ops_env.setenv("LEADRELAY_OPS_USER", "ops")
    ops_env.setenv("LEADRELAY_OPS_PASSWORD_HASH", "not-a-hash")
    client = make_ops_app().test_client()
    assert 'name="password"' not in client.get("/ops/sign-in").text
    assert sign_in(client, user="ops", password="not-a-hash").status_code == 401
    assert sign_in(client).status_code == 302


def test_the_crm_endpoints_keep_their_own_checks_and_no_csrf(signed_in, ops_app, monkeypatch):
    # A signed-in browser's cookie neither opens a CRM endpoint nor trips a CSRF check there.
    monkeypatch.setenv("LEADRELAY_FLOW_TOKEN", "flow-token-123456")
    body = {"lead": {"Id": "00Q000000000001AAA"}}
    with_cookie = signed_in.post("/salesforce/route", json=body)
    stranger = ops_app.test_client().post("/salesforce/route", json=body)
    assert with_cookie.status_code == stranger.status_code == 401
    assert "CSRF" not in with_cookie.text
    hubspot = signed_in.post("/hubspot/action", json={})
    assert hubspot.status_code != 400 or "CSRF" not in hubspot.text
    assert ops_app.test_client().get("/healthz", headers=BEARER).status_code == 200


@pytest.mark.parametrize("sandbox", [True, False])
def test_a_sandbox_shows_its_banner_on_every_page(ops_env, make_ops_app, sandbox):
    if sandbox:
        ops_env.setenv("LEADRELAY_SANDBOX", "1")
    client = make_ops_app().test_client()
    pages = ["/ops/sign-in", "/ops/reps", "/ops/rules"]
    for path in pages:
        text = client.get(path, headers=BEARER if path != "/ops/sign-in" else {}).text
        assert ('class="sandbox"' in text) is sandbox, path


def test_the_console_secrets_are_taken_out_of_every_log_line():
    from connector.log_redaction import SECRET_ENVS, Redactor

    env = {"LEADRELAY_OPS_TOKEN": TOKEN, "LEADRELAY_OPS_SECRET": "cookie-secret-123"}
    redact = Redactor.from_environment(SECRET_ENVS, env)
    assert redact(f"got {TOKEN} and cookie-secret-123") == "got [redacted] and [redacted]"
