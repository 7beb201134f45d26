"""The ops console under attack: an unauthenticated caller probing paths and methods, a CRM
delivery carrying HTML, a script fuzzing every query parameter, a careless admin's
environment. Each test names what an attacker tries and what must happen instead."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml
from click.testing import CliRunner
from conftest import config_data
from fakes.hubspot_requests import (
    SECRET,
    action_body,
    hubspot_app,  # noqa: F401 (fixture)
    post_action,
    with_properties,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ops_helpers import (
    BEARER,
    TOKEN,
    csrf_of,
    make_ops_app,  # noqa: F401 (fixture)
    ops_app,  # noqa: F401 (fixture)
    ops_env,  # noqa: F401 (fixture)
    sign_in,
)
from werkzeug.datastructures import MultiDict

from connector.app import create_app
from connector.cli import main
from connector.ops_filters import PARAMETERS
from connector.sandbox.run import Secrets, server_env

PUBLIC = {"ops.sign_in", "ops.sign_out", "ops.static"}
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")
# What a client asks for, and what Flask would route to a console view if it normalised it.
PATH_TRICKS = (
    "{path}",
    "{path}/",
    "/{path}",
    "{path}?",
    "{path}%2f",
    "{path};x",
    "{path}/..;/",
    "/ops/%2e%2e{path}",
    "/ops/static/..{path}",
    "/OPS{path_after_ops}",
)
# The pages and APIs, each with the parameters it reads.
LOG_PARAMETERS = PARAMETERS
QUERY_ROUTES = {
    "/ops": LOG_PARAMETERS,
    "/ops/assignments": LOG_PARAMETERS,
    "/api/assignments": LOG_PARAMETERS,
    "/api/assignments.csv": LOG_PARAMETERS,
    "/api/stats": ("since", "window"),
    "/ops/sla": ("since",),
    "/ops/health": ("since",),
    "/ops/outcomes": ("since", "window", "group"),
    "/ops/distribution": ("period",),
    "/api/reps": (),
    "/ops/reps": (),
    "/ops/rules": (),
}
EXTREMES = (
    "0001-01-01", "9999-12-31", "9999-12-31T23:59:59+14:00", "0001-01-01T00:00-14:00",
    "1969-12-31T23:59:59Z", "1970-01-01", "2999-12-31T23:59-12:00", "in 99999d", "99999d ago",
    "1000000000000000000000d", "0d", "-1d", "366d", "٣d", "１d", "７", "²", "1e3", "-1", "0",
    str(2**62), str(2**62 + 1), str(2**63), "00000000000000000001", "\x00", "%ED%A0%80",
    "a" * 5000, "now", "week", "month", "rep", "<script>",
)  # fmt: skip
# Secret values of one deployment, none of which any answer or log line may carry.
PASSWORD = "correct horse battery staple"
PASSWORD_HASH = "scrypt:32768:8:1$qsY0bL3m2T3KqJ8v$" + "0" * 128
HTML = '<x-xss onload="alert(1)">\'"'


def console_routes(app):
    """Every console page and API path (the ones anyone may reach left out)."""
    paths = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC or not rule.rule.startswith(("/ops", "/api")):
            continue
        built = rule.build(dict.fromkeys(rule.arguments, "1"))
        paths.add(built[1])
    return sorted(paths | {"/metrics"})


# --- auth bypasses -----------------------------------------------------------------------------


def test_no_method_path_trick_or_trailing_slash_reaches_a_console_view_without_the_token(
    ops_app,
):
    client = ops_app.test_client()
    leaked = []
    for path in console_routes(ops_app):
        for trick in PATH_TRICKS:
            asked = trick.format(path=path, path_after_ops=path.removeprefix("/ops"))
            for method in METHODS:
                answer = client.open(asked, method=method)
                body = answer.get_data(as_text=True)
                if answer.status_code in (401, 404, 405) or (
                    answer.status_code in (302, 308) and "/sign-in" in answer.location
                ):
                    continue
                if method == "OPTIONS" and answer.status_code == 200 and not body:
                    continue  # Flask's automatic answer: the allowed methods, no data
                if answer.status_code == 308 and answer.location.endswith(path):
                    continue  # werkzeug's merge of // : the guarded path, asked again
                leaked.append((method, asked, answer.status_code, body[:80]))
    assert leaked == []


def test_a_head_request_for_the_sign_in_page_is_not_a_refused_sign_in(ops_app, caplog):
    client = ops_app.test_client()
    with caplog.at_level(logging.WARNING):
        answer = client.head("/ops/sign-in")
    assert answer.status_code == 200
    assert "sign-in was refused" not in caplog.text


def test_a_head_request_carrying_the_token_opens_no_session_without_a_csrf_token(ops_app):
    # HEAD is exempt from CSRF checks: it must never be taken for the form being posted.
    client = ops_app.test_client()
    client.head("/ops/sign-in", data={"token": TOKEN})
    assert client.get("/api/reps").status_code == 401


def test_a_session_planted_before_sign_in_is_not_the_one_signed_in(ops_app):
    planted = ops_app.test_client()
    planted.get("/ops/sign-in")  # the attacker's own cookie, with its CSRF token
    cookie = planted.get_cookie("leadrelay_ops").value
    victim = ops_app.test_client()
    victim.set_cookie("leadrelay_ops", cookie)
    assert sign_in(victim).status_code == 302
    assert victim.get_cookie("leadrelay_ops").value != cookie
    assert planted.get("/api/reps").status_code == 401


@pytest.mark.parametrize(
    "next_",
    [
        "//evil.example/ops", "https://evil.example/ops", "/\\evil.example", "\\\\evil.example",
        "/ops/../..//evil.example", "/ops\r\nLocation: https://evil.example", "javascript:alert(1)",
        "/%2f%2fevil.example", "http:/ops", "///evil.example", "/ops@evil.example",
    ],
)  # fmt: skip
def test_signing_in_never_redirects_off_the_console(ops_app, next_):
    client = ops_app.test_client()
    page = client.get("/ops/sign-in", query_string={"next": next_})
    answer = client.post(
        "/ops/sign-in", data={"csrf_token": csrf_of(page.text), "token": TOKEN, "next": next_}
    )
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith("/ops") and not location.startswith("//"), location
    assert "\n" not in location and "\\" not in location


@pytest.mark.parametrize("blank", ["", " ", "   ", "\t", "\n"])
def test_a_blank_ops_token_leaves_the_console_off(ops_env, make_ops_app, blank):
    ops_env.setenv("LEADRELAY_OPS_TOKEN", blank)
    client = make_ops_app().test_client()
    assert client.get("/ops/sign-in").status_code == 404
    assert client.post("/ops/sign-in", data={"token": blank}).status_code == 404
    bearer = {"Authorization": f"Bearer {blank.strip()}"}
    assert client.get("/api/reps", headers=bearer).status_code == 404
    assert client.get("/metrics").status_code == 404


def test_a_guessable_ops_token_leaves_the_console_off_and_check_says_why(
    ops_env, make_ops_app, tmp_path
):
    ops_env.setenv("LEADRELAY_OPS_TOKEN", "admin")
    client = make_ops_app().test_client()
    assert client.get("/api/reps", headers={"Authorization": "Bearer admin"}).status_code == 404
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(config_data(store="sqlite:///state.sqlite")))
    result = CliRunner().invoke(main, ["--config", str(path), "check"])
    line = next(text for text in result.output.splitlines() if text.startswith("ops console"))
    assert "off" in line and "shorter than 16 characters" in line
    assert "admin" not in result.output


def test_check_says_the_console_is_off_when_the_token_is_blank(ops_env, tmp_path):
    ops_env.setenv("LEADRELAY_OPS_TOKEN", "   ")
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(config_data(store="sqlite:///state.sqlite")))
    result = CliRunner().invoke(main, ["--config", str(path), "check"])
    assert "ops console: off (set LEADRELAY_OPS_TOKEN" in result.output


def test_a_blank_cookie_secret_is_not_used_as_the_signing_key(ops_env, make_ops_app):
    ops_env.setenv("LEADRELAY_OPS_SECRET", " ")
    app = make_ops_app()
    assert app.secret_key != b" "
    client = app.test_client()
    assert sign_in(client).status_code == 302
    assert client.get("/api/reps").status_code == 200


# --- framing, caching, sniffing -------------------------------------------------------------


@pytest.mark.parametrize("path", ["/ops", "/ops/rules", "/api/assignments", "/ops/sign-in"])
def test_console_answers_cannot_be_framed_sniffed_or_cached(ops_app, path):
    answer = ops_app.test_client().get(path, headers=BEARER)
    assert answer.status_code == 200
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"


def test_a_refused_request_is_not_cacheable_either(ops_app):
    answer = ops_app.test_client().get("/api/assignments")
    assert answer.status_code == 401 and answer.headers["Cache-Control"] == "no-store"


# --- query parameters ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/ops", "/api/assignments", "/api/assignments.csv"])
def test_a_log_filter_given_twice_is_400_naming_it(ops_app, path):
    answer = ops_app.test_client().get(f"{path}?rep=alice&rep=bob", headers=BEARER)
    assert answer.status_code == 400
    assert "rep: given 2 times" in answer.get_data(as_text=True)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_no_query_makes_a_server_error_and_a_refusal_names_the_parameter(delivered, data):
    path = data.draw(st.sampled_from(sorted(QUERY_ROUTES)), label="path")
    names = st.sampled_from([*QUERY_ROUTES[path], "unknown"])
    value = st.one_of(
        st.sampled_from(EXTREMES), st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
    )
    query = data.draw(st.lists(st.tuples(names, value), max_size=4), label="query")
    answer = delivered.get(path, query_string=MultiDict(query), headers=BEARER)
    text = answer.get_data(as_text=True)
    assert answer.status_code in (200, 400), (answer.status_code, text[:300])
    if answer.status_code == 400 and path.startswith("/api"):
        assert any(name in answer.json["error"] for name, _ in query), answer.json


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_no_try_a_lead_form_makes_a_server_error(delivered, data):
    client = delivered.application.test_client()
    sign_in(client)
    fields = ("id", "crm", "object_type", "email", "employees", "annual_revenue", "score", "at")
    value = st.one_of(
        st.sampled_from(EXTREMES), st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
    )
    form = data.draw(st.lists(st.tuples(st.sampled_from((*fields, "raw")), value), max_size=4))
    token = csrf_of(client.get("/ops/rules").text)
    answer = client.post("/ops/rules", data=MultiDict([("csrf_token", token), *form]))
    assert answer.status_code in (200, 400), answer.get_data(as_text=True)[-300:]


# --- what a CRM sends, shown to an operator --------------------------------------------------


@pytest.fixture
def delivered(ops_env, hubspot_app):
    """An app with the console on that took one signed HubSpot execution full of HTML."""
    ops_env.setenv("LEADRELAY_OPS_USER", "ops")
    ops_env.setenv("LEADRELAY_OPS_PASSWORD_HASH", PASSWORD_HASH)
    client = hubspot_app()
    body = with_properties(
        action_body(),
        firstname=HTML,
        lastname=HTML,
        email=HTML,
        company=HTML,
        country=HTML,
        hubspot_owner_id=HTML,
    )
    answer = post_action(client, body)
    assert answer.status_code == 200, answer.json
    return client


def every_answer(client):
    """The text of every console page, API answer and the metrics, as the operator reads them."""
    app = client.application
    texts = {}
    for path in console_routes(app):
        for query in ("", "?since=3000d%20ago", "?group=rule&since=3000d%20ago"):
            answer = client.get(path + query, headers=BEARER)
            if answer.status_code == 200:
                texts[path + query] = answer.get_data(as_text=True)
    return texts


def test_html_sent_in_a_signed_hubspot_execution_is_shown_as_text_everywhere(delivered):
    texts = every_answer(delivered)
    assert "/ops" in texts and "/api/assignments.csv" in texts
    assert "&lt;x-xss" in texts["/ops"]  # it is there, as text
    for path, text in texts.items():
        assert "<x-xss" not in text or not path.startswith("/ops"), path
    # The JSON API carries it as data, served as JSON, never as a page.
    assert json.loads(texts["/api/assignments"])["assignments"][0]["lead_id"]


def test_no_answer_carries_a_secret_of_the_deployment(delivered, caplog):
    with caplog.at_level(logging.DEBUG):
        texts = every_answer(delivered)
        refused = delivered.get("/api/reps", headers={"Authorization": "Bearer x"}).text
        page = delivered.get("/ops/sign-in").text
        wrong = delivered.post(
            "/ops/sign-in", data={"csrf_token": csrf_of(page), "user": "ops", "password": "no"}
        ).text
    everything = "\n".join([*texts.values(), refused, wrong, caplog.text])
    for secret in (TOKEN, SECRET, PASSWORD_HASH, PASSWORD_HASH.split("$")[1]):
        assert secret not in everything
    assert not re.search(r"scrypt:\d+", everything)


# --- /healthz under load ---------------------------------------------------------------------


def test_a_health_check_asked_while_another_runs_is_not_told_the_store_is_down(make_config, store):
    # A decision holds the routing lock for a moment (normal), and two load balancers (or a
    # flood of anonymous callers) ask at once: none of them may be told the store is down.
    client = create_app(make_config(), store).test_client()
    holding, release = threading.Event(), threading.Event()

    def deciding() -> None:
        with store.transaction():
            holding.set()
            release.wait(5)

    decider = threading.Thread(target=deciding)
    decider.start()
    holding.wait(5)
    with ThreadPoolExecutor(max_workers=4) as pool:
        asked = [pool.submit(client.get, "/healthz") for _ in range(4)]
        time.sleep(0.3)
        release.set()
        statuses = [answer.result().status_code for answer in asked]
    decider.join()
    assert statuses == [200, 200, 200, 200]


def test_a_flood_of_anonymous_health_checks_never_reports_a_healthy_store_down(make_config, store):
    client = create_app(make_config(), store).test_client()
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda _: client.get("/healthz").status_code, range(200)))
    assert set(statuses) == {200}


def test_an_anonymous_password_sign_in_costs_no_hash_when_no_user_is_configured(
    ops_app, monkeypatch
):
    hashed = []
    monkeypatch.setattr(
        "connector.ops_auth.check_password_hash", lambda *args: hashed.append(args) or False
    )
    client = ops_app.test_client()
    for _ in range(3):
        assert sign_in(client, user="admin", password="guess").status_code == 401
    assert hashed == []


# --- the demo ----------------------------------------------------------------------------------


def test_the_demo_server_never_empties_the_real_servers_metrics_directory(tmp_path):
    # serve empties PROMETHEUS_MULTIPROC_DIR at start: the demo must not get the real one.
    real = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prod-metrics"), "PATH": "/usr/bin"}
    env = server_env(
        real, "http://127.0.0.1:1", "https://127.0.0.1:2", Secrets.generate(), tmp_path
    )
    assert "PROMETHEUS_MULTIPROC_DIR" not in env
