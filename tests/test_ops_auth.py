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

from connector import ops_sessions, ops_throttle
from connector.cli import main

PUBLIC = {"ops.sign_in", "ops.sign_out", "ops.static"}
CHALLENGE = 'Bearer realm="leadrelay ops"'  # RFC 6750


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
        assert answer.headers["WWW-Authenticate"] == CHALLENGE
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


# --- the 401 challenge (RFC 6750) -------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-the-token"}])
def test_metrics_refused_say_how_to_authenticate(ops_app, headers):
    answer = ops_app.test_client().get("/metrics", headers=headers)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == CHALLENGE


def test_a_refused_sign_in_says_how_to_authenticate(ops_app):
    answer = sign_in(ops_app.test_client(), token="not the token")
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == CHALLENGE


# --- the sign-in throttle ---------------------------------------------------------------------


def from_address(app: Flask, address: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def fail(client, times: int) -> None:
    for n in range(times):
        assert sign_in(client, token=f"guess {n}").status_code == 401, n


def test_the_eleventh_failed_sign_in_from_one_address_in_a_minute_waits(ops_app):
    client = from_address(ops_app, "203.0.113.9")
    fail(client, ops_throttle.PER_ADDRESS)
    answer = sign_in(client, token=TOKEN)  # even the right token, from the guessing address
    assert answer.status_code == 429
    assert 1 <= int(answer.headers["Retry-After"]) <= 60
    assert "Too many failed sign-ins from your address: try again in" in answer.text
    assert answer.headers["Cache-Control"] == "no-store"
    assert client.get("/api/reps").status_code == 401  # and no session came of it


def test_another_address_signs_in_while_one_is_throttled(ops_app):
    fail(from_address(ops_app, "203.0.113.9"), ops_throttle.PER_ADDRESS)
    assert sign_in(from_address(ops_app, "203.0.113.9"), token=TOKEN).status_code == 429
    assert sign_in(from_address(ops_app, "198.51.100.7"), token=TOKEN).status_code == 302


def test_a_throttled_address_signs_in_a_minute_after_its_first_failure(ops_app):
    client = from_address(ops_app, "203.0.113.9")
    with time_machine.travel(TUESDAY_10AM, tick=False):
        fail(client, ops_throttle.PER_ADDRESS)
    with time_machine.travel(TUESDAY_10AM + timedelta(seconds=45), tick=False):
        answer = sign_in(client, token=TOKEN)
        assert answer.status_code == 429
        assert answer.headers["Retry-After"] == "15"
    with time_machine.travel(TUESDAY_10AM + timedelta(seconds=61), tick=False):
        assert sign_in(client, token=TOKEN).status_code == 302


def test_right_sign_ins_never_count_against_an_address(ops_app):
    client = from_address(ops_app, "203.0.113.9")
    for _ in range(ops_throttle.PER_ADDRESS + 5):
        assert sign_in(client, token=TOKEN).status_code == 302
    fail(client, ops_throttle.PER_ADDRESS)  # all ten failures still allowed


def test_failed_sign_ins_from_everywhere_are_capped_overall(ops_app, store):
    addresses = ops_throttle.OVERALL // ops_throttle.PER_ADDRESS
    for n in range(addresses):
        fail(from_address(ops_app, f"198.51.100.{n + 1}"), ops_throttle.PER_ADDRESS)
    newcomer = from_address(ops_app, "192.0.2.200")
    answer = sign_in(newcomer, token=TOKEN)
    assert answer.status_code == 429
    assert "Too many failed sign-ins to this console from everywhere" in answer.text
    assert 1 <= int(answer.headers["Retry-After"]) <= 60
    # Nothing more is recorded once the cap is reached: the value stays small.
    for n in range(50):
        assert sign_in(from_address(ops_app, f"192.0.2.{n + 1}"), token="x").status_code == 429
    with store.shared_value(ops_throttle.FAILURES) as value:
        recorded = yaml.safe_load(value.read())
    assert sum(len(times) for times in recorded.values()) == ops_throttle.OVERALL
    assert "192.0.2.1" not in recorded


def test_ipv6_addresses_of_one_64_network_count_together(ops_app):
    for n in range(ops_throttle.PER_ADDRESS):
        fail(from_address(ops_app, f"2001:db8:1:2::{n + 1:x}"), 1)
    assert sign_in(from_address(ops_app, "2001:db8:1:2:ffff::9"), token=TOKEN).status_code == 429
    assert sign_in(from_address(ops_app, "2001:db8:1:3::1"), token=TOKEN).status_code == 302


def test_every_gunicorn_worker_counts_the_same_failed_sign_ins(tmp_path):
    import os

    import requests
    from served import serving

    config = tmp_path / "app.yaml"
    config.write_text(yaml.safe_dump(config_data(store="sqlite:///state.sqlite")))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADRELAY_")}
    env["LEADRELAY_OPS_TOKEN"] = TOKEN
    statuses = []
    with serving(config, env, workers=2) as served:
        for n in range(ops_throttle.PER_ADDRESS + 4):
            # A new connection each time: the two workers take turns answering.
            with requests.Session() as http:
                form = http.get(f"{served.base}/ops/sign-in", timeout=10)
                data = {"csrf_token": csrf_of(form.text), "token": f"guess {n}"}
                answer = http.post(f"{served.base}/ops/sign-in", data=data, timeout=10)
                statuses.append(answer.status_code)
    assert statuses == [401] * ops_throttle.PER_ADDRESS + [429] * 4


# --- signing out ------------------------------------------------------------------------------


def test_a_signed_out_cookie_replayed_opens_nothing(ops_app, signed_in):
    copy = carry_cookie(signed_in, ops_app.test_client())
    assert copy.get("/api/reps").status_code == 200
    page = signed_in.get("/ops/reps")
    assert (
        signed_in.post("/ops/sign-out", data={"csrf_token": csrf_of(page.text)}).status_code == 302
    )
    answer = copy.get("/api/reps")
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == CHALLENGE
    assert copy.get("/ops/reps").status_code == 302
    assert copy.get("/metrics").status_code == 401


def test_signing_out_leaves_other_sessions_signed_in(ops_app, signed_in):
    other = ops_app.test_client()
    assert sign_in(other).status_code == 302
    page = signed_in.get("/ops/reps")
    signed_in.post("/ops/sign-out", data={"csrf_token": csrf_of(page.text)})
    assert other.get("/api/reps").status_code == 200


def test_a_session_cookie_without_a_session_id_opens_nothing(ops_app):
    # Signed with the console's key and the right mark, but never given an id at sign-in.
    access = ops_app.extensions["leadrelay.ops_access"]
    data = {"ops_who": "token", "ops_mark": access.mark("token")}
    client = ops_app.test_client()
    client.set_cookie("leadrelay_ops", foreign_cookie(ops_app, ops_app.secret_key, data))
    assert client.get("/api/reps").status_code == 401


def sign_in_and_out(app: Flask):
    """A signed-in client signed out, and a copy of its cookie taken before."""
    client = app.test_client()
    assert sign_in(client).status_code == 302
    copy = carry_cookie(client, app.test_client())
    page = client.get("/ops/reps")
    client.post("/ops/sign-out", data={"csrf_token": csrf_of(page.text)})
    return copy


def test_the_signed_out_record_stays_small_and_still_ends_every_copy(ops_app, store, monkeypatch):
    monkeypatch.setattr(ops_sessions, "MAX_SIGNED_OUT", 3)
    still_on = ops_app.test_client()
    assert sign_in(still_on).status_code == 302
    copies = [sign_in_and_out(ops_app) for _ in range(7)]
    for copy in copies:
        assert copy.get("/api/reps").status_code == 401
    with store.shared_value(ops_sessions.SIGNED_OUT) as value:
        assert len(yaml.safe_load(value.read())["ids"]) <= 3
    # The overflow ends the sessions signed in before it (they sign in again) ...
    assert still_on.get("/api/reps").status_code == 401
    # ... and a new sign-in works.
    assert sign_in(ops_app.test_client()).status_code == 302


def test_a_signed_out_id_is_forgotten_once_no_copy_of_its_cookie_can_last(ops_app, store):
    with time_machine.travel(TUESDAY_10AM, tick=False):
        sign_in_and_out(ops_app)
    with time_machine.travel(TUESDAY_10AM + timedelta(hours=12, minutes=1), tick=False):
        sign_in_and_out(ops_app)
        with store.shared_value(ops_sessions.SIGNED_OUT) as value:
            assert len(yaml.safe_load(value.read())["ids"]) == 1


def test_a_damaged_signed_out_record_ends_cookie_sessions_until_the_next_sign_in(
    ops_app, signed_in, store
):
    with store.shared_value(ops_sessions.SIGNED_OUT) as value:
        value.write(b"\x00not json")
    assert signed_in.get("/api/reps").status_code == 401  # no signed-out id can be told apart
    fresh = ops_app.test_client()
    assert sign_in(fresh).status_code == 302
    assert fresh.get("/api/reps").status_code == 200
    assert signed_in.get("/api/reps").status_code == 401


@pytest.mark.parametrize("damage", [b"\x00not json", b"[1, 2]", b'{"203.0.113.9": "x"}'])
def test_a_damaged_failure_count_is_read_as_no_failures(ops_app, store, damage):
    with store.shared_value(ops_throttle.FAILURES) as value:
        value.write(damage)
    client = from_address(ops_app, "203.0.113.9")
    fail(client, ops_throttle.PER_ADDRESS)
    assert sign_in(client, token=TOKEN).status_code == 429
