"""The ``when:`` grammar: what each operator means, and how a bad spec is reported."""

from __future__ import annotations

from typing import Any

import pytest

from workflows.condition_values import normalize_key
from workflows.conditions import compile_condition, index_terms
from workflows.errors import ConfigError
from workflows.model import Lead


def check(spec: Any, **lead: Any) -> bool:
    """Compile ``spec`` and evaluate it against a lead built from keyword arguments."""
    return compile_condition(spec, "when")(Lead(id="1", **lead))


def config_error(spec: Any, path: str = "flow[1].when") -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        compile_condition(spec, path)
    return caught.value


# --- no condition --------------------------------------------------------------------------------


def test_none_and_empty_mapping_are_always_true() -> None:
    assert check(None)
    assert check({})


# --- equality ------------------------------------------------------------------------------------


def test_scalar_means_equality() -> None:
    assert check({"country": "US"}, country="US")
    assert not check({"country": "US"}, country="CA")


def test_equality_is_case_insensitive_and_ignores_surrounding_whitespace() -> None:
    assert check({"country": " us "}, country="US\n")
    assert check({"industry": "Straße"}, industry="STRASSE")  # casefold, not just lower


def test_eq_operator_is_the_same_as_a_scalar() -> None:
    assert check({"country": {"eq": "us"}}, country="US")
    assert not check({"country": {"eq": "us"}}, country="CA")


def test_number_in_rule_equals_number_or_numeric_text_in_lead() -> None:
    spec = {"employees": 50}
    assert check(spec, employees=50)
    assert check(spec, employees=50.0)
    assert check({"raw.headcount": 50}, raw={"headcount": "50"})
    assert check({"raw.headcount": "50"}, raw={"headcount": 50.0})
    assert check({"raw.headcount": 1000}, raw={"headcount": "1,000"})
    assert not check(spec, employees=51)


def test_text_with_leading_zero_is_not_a_number() -> None:
    assert check({"postal_code": "02134"}, postal_code="02134")
    assert not check({"postal_code": 2134}, postal_code="02134")


def test_boolean_rule_matches_boolean_or_its_text() -> None:
    assert check({"raw.is_partner": True}, raw={"is_partner": True})
    assert check({"raw.is_partner": True}, raw={"is_partner": "TRUE"})
    assert not check({"raw.is_partner": True}, raw={"is_partner": 1})
    assert not check({"raw.is_partner": True}, raw={"is_partner": False})


def test_none_value_never_matches_equality() -> None:
    assert not check({"country": "US"})
    assert not check({"country": {"eq": "US"}})


def test_list_valued_property_never_equals_a_scalar() -> None:
    assert not check({"raw.tags": "vip"}, raw={"tags": ["vip"]})


def test_ne() -> None:
    assert check({"country": {"ne": "US"}}, country="CA")
    assert not check({"country": {"ne": "US"}}, country="us")


def test_ne_matches_a_missing_value() -> None:
    # "Everyone except the US" includes leads whose country is unknown.
    assert check({"country": {"ne": "US"}})


# --- in / not_in ---------------------------------------------------------------------------------


def test_list_means_in() -> None:
    assert check({"state": ["CA", "OR"]}, state="OR")
    assert not check({"state": ["CA", "OR"]}, state="WA")


def test_in_is_case_insensitive() -> None:
    assert check({"state": {"in": ["ca", "or"]}}, state=" CA ")


def test_in_mixes_numbers_and_numeric_text() -> None:
    assert check({"raw.tier": {"in": [1, "2"]}}, raw={"tier": "1"})
    assert check({"raw.tier": {"in": [1, "2"]}}, raw={"tier": 2})


def test_in_never_matches_a_missing_value() -> None:
    assert not check({"state": {"in": ["CA"]}})


def test_not_in() -> None:
    assert check({"state": {"not_in": ["CA", "OR"]}}, state="WA")
    assert not check({"state": {"not_in": ["CA", "OR"]}}, state="ca")


def test_not_in_matches_a_missing_value() -> None:
    assert check({"state": {"not_in": ["CA"]}})


# --- text operators ------------------------------------------------------------------------------


def test_contains_on_text_is_a_case_insensitive_substring() -> None:
    assert check({"company": {"contains": "ACME"}}, company="The Acme Corp")
    assert not check({"company": {"contains": "acme"}}, company="Globex")


def test_contains_on_a_list_property_checks_membership() -> None:
    assert check({"raw.tags": {"contains": "VIP"}}, raw={"tags": ["vip", "beta"]})
    assert check({"raw.ids": {"contains": "7"}}, raw={"ids": [7, 8]})
    assert not check({"raw.tags": {"contains": "vi"}}, raw={"tags": ["vip"]})


def test_contains_on_a_number_looks_at_its_digits() -> None:
    assert check({"raw.code": {"contains": 41}}, raw={"code": 94107})


def test_starts_with() -> None:
    assert check({"email": {"starts_with": "Sales@"}}, email="  sales@acme.com")
    assert not check({"email": {"starts_with": "info@"}}, email="sales@acme.com")


def test_starts_with_accepts_a_bare_number_as_a_prefix() -> None:
    # YAML reads `starts_with: 94` as an int; postal-code prefixes are written that way.
    assert check({"postal_code": {"starts_with": 94}}, postal_code="94107")
    assert not check({"postal_code": {"starts_with": 94}}, postal_code="10001")


def test_ends_with() -> None:
    assert check({"email": {"ends_with": "@ACME.com"}}, email="jo@acme.com ")
    assert not check({"email": {"ends_with": ".org"}}, email="jo@acme.com")


def test_matches_uses_search_and_ignores_case() -> None:
    assert check({"email": {"matches": r"@acme\.(com|io)$"}}, email="Jo@ACME.io")
    assert not check({"email": {"matches": r"^acme"}}, email="jo@acme.com")


def test_text_operators_never_match_a_missing_value() -> None:
    for op in ("contains", "starts_with", "ends_with", "matches"):
        assert not check({"company": {op: "a"}}), op


# --- numbers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "bound", "true_for", "false_for"),
    [("gt", 100, 101, 100), ("gte", 100, 100, 99), ("lt", 100, 99, 100), ("lte", 100, 100, 101)],
)
def test_ordering_operators(op: str, bound: int, true_for: int, false_for: int) -> None:
    assert check({"employees": {op: bound}}, employees=true_for)
    assert not check({"employees": {op: bound}}, employees=false_for)


def test_ordering_coerces_numeric_text() -> None:
    assert check({"raw.headcount": {"gte": 1000}}, raw={"headcount": "1,000"})
    assert check({"raw.headcount": {"gt": 200}}, raw={"headcount": " 250 "})
    assert check({"raw.arr": {"lt": 1}}, raw={"arr": "0.5"})


def test_ordering_on_non_numbers_is_false_not_an_error() -> None:
    for value in ("lots", "", True, ["1"], {"n": 1}, None, "nan", "inf"):
        assert not check({"raw.n": {"gt": 0}}, raw={"n": value}), value
        assert not check({"raw.n": {"lt": 10**9}}, raw={"n": value}), value


def test_bound_may_be_written_as_numeric_text() -> None:
    assert check({"employees": {"gte": "1,000"}}, employees=1000)


def test_between_is_inclusive() -> None:
    spec = {"score": {"between": [10, 20]}}
    assert check(spec, score=10)
    assert check(spec, score=20)
    assert check(spec, score=15.5)
    assert not check(spec, score=9.99)
    assert not check(spec, score=21)
    assert not check(spec)


def test_several_operators_on_one_field_are_anded() -> None:
    spec = {"employees": {"gte": 100, "lt": 1000}}
    assert check(spec, employees=500)
    assert not check(spec, employees=1000)
    assert not check(spec, employees=99)


# --- exists / missing ----------------------------------------------------------------------------


def test_exists() -> None:
    assert check({"email": {"exists": True}}, email="a@b.c")
    assert not check({"email": {"exists": True}})
    assert check({"email": {"exists": False}})
    assert not check({"email": {"exists": False}}, email="a@b.c")


def test_missing() -> None:
    assert check({"raw.phone": {"missing": True}})
    assert not check({"raw.phone": {"missing": True}}, raw={"phone": "555"})
    assert check({"raw.phone": {"missing": False}}, raw={"phone": "555"})


def test_blank_text_and_empty_lists_count_as_missing() -> None:
    assert check({"raw.phone": {"missing": True}}, raw={"phone": ""})
    assert check({"raw.phone": {"missing": True}}, raw={"phone": "   "})
    assert check({"raw.tags": {"missing": True}}, raw={"tags": []})
    assert check({"raw.count": {"exists": True}}, raw={"count": 0})


# --- raw properties ------------------------------------------------------------------------------


def test_raw_property_reads_the_crm_payload() -> None:
    assert check({"raw.lifecycle": "lead"}, raw={"lifecycle": "Lead"})
    assert not check({"raw.lifecycle": "lead"}, raw={"other": "lead"})


# --- combinators ---------------------------------------------------------------------------------


def test_mapping_keys_are_anded() -> None:
    spec = {"country": "US", "employees": {"gte": 100}}
    assert check(spec, country="US", employees=100)
    assert not check(spec, country="US", employees=10)
    assert not check(spec, country="CA", employees=100)


def test_all() -> None:
    spec = {"all": [{"country": "US"}, {"state": "CA"}, {"employees": {"gt": 1}}]}
    assert check(spec, country="US", state="CA", employees=2)
    assert not check(spec, country="US", state="OR", employees=2)


def test_any() -> None:
    spec = {"any": [{"source": "webinar"}, {"score": {"gt": 80}}]}
    assert check(spec, source="Webinar")
    assert check(spec, score=90)
    assert not check(spec, source="ads", score=10)


def test_not() -> None:
    assert check({"not": {"status": "disqualified"}}, status="open")
    assert not check({"not": {"status": "disqualified"}}, status="Disqualified")


def test_nesting_all_any_not() -> None:
    spec = {
        "all": [
            {"any": [{"country": "US"}, {"country": "CA"}]},
            {"not": {"any": [{"industry": "government"}, {"raw.do_not_route": True}]}},
        ],
        "employees": {"between": [50, 5000]},
    }
    assert check(spec, country="CA", industry="retail", employees=60)
    assert not check(spec, country="CA", industry="Government", employees=60)
    assert not check(spec, country="CA", raw={"do_not_route": "true"}, employees=60)
    assert not check(spec, country="MX", employees=60)
    assert not check(spec, country="US", employees=6000)


def test_empty_mapping_inside_any_is_true() -> None:
    assert check({"any": [{}, {"country": "US"}]}, country="CA")


# --- configuration errors ------------------------------------------------------------------------


def test_ordering_bound_must_be_a_number() -> None:
    error = config_error({"employees": {"gte": "x"}})
    assert error.path == "flow[1].when.employees.gte"
    assert error.message == "expected a number, got 'x'"


def test_unknown_field_inside_any_names_its_position() -> None:
    error = config_error({"any": [{}, {"bogus": 1}]})
    assert error.path == "flow[1].when.any[1].bogus"
    assert "unknown field 'bogus'" in error.message
    assert "country" in error.message and "raw.<property>" in error.message
    assert str(error).startswith("flow[1].when.any[1].bogus: unknown field 'bogus'")


def test_unknown_field_suggests_a_close_name() -> None:
    assert "did you mean 'country'" in config_error({"contry": "US"}).message


def test_operator_at_field_level_is_explained() -> None:
    error = config_error({"gte": 5})
    assert error.path == "flow[1].when.gte"
    assert "is an operator" in error.message


def test_bare_raw_prefix_is_not_a_field() -> None:
    assert config_error({"raw.": 1}).path == "flow[1].when.raw."


def test_unknown_operator_lists_valid_operators() -> None:
    error = config_error({"country": {"equals": "US"}})
    assert error.path == "flow[1].when.country.equals"
    assert "unknown operator 'equals'" in error.message
    assert "starts_with" in error.message and "between" in error.message


def test_field_needs_at_least_one_operator() -> None:
    assert config_error({"country": {}}).path == "flow[1].when.country"


def test_bad_regex_is_named() -> None:
    error = config_error({"all": [{"email": {"matches": "(unclosed"}}]})
    assert error.path == "flow[1].when.all[0].email.matches"
    assert "'(unclosed'" in error.message


def test_regex_must_be_text() -> None:
    assert config_error({"email": {"matches": 5}}).path == "flow[1].when.email.matches"


@pytest.mark.parametrize(
    ("between", "path"),
    [
        ([1], "flow[1].when.score.between"),
        ([1, 2, 3], "flow[1].when.score.between"),
        ("1-2", "flow[1].when.score.between"),
        ([1, "x"], "flow[1].when.score.between[1]"),
        ([True, 2], "flow[1].when.score.between[0]"),
        ([5, 1], "flow[1].when.score.between"),
    ],
)
def test_between_needs_two_ordered_numbers(between: Any, path: str) -> None:
    assert config_error({"score": {"between": between}}).path == path


@pytest.mark.parametrize("op", ["exists", "missing"])
def test_exists_and_missing_must_be_booleans(op: str) -> None:
    error = config_error({"email": {op: "yes"}})
    assert error.path == f"flow[1].when.email.{op}"
    assert error.message == "expected true or false, got 'yes'"


def test_null_or_blank_value_points_to_missing() -> None:
    error = config_error({"country": None})
    assert error.path == "flow[1].when.country"
    assert "missing: true" in error.message
    assert config_error({"country": {"eq": " "}}).path == "flow[1].when.country.eq"


def test_bad_item_in_a_list_names_its_index() -> None:
    assert config_error({"state": ["CA", None]}).path == "flow[1].when.state[1]"
    assert config_error({"state": {"in": ["CA", ["OR"]]}}).path == "flow[1].when.state.in[1]"


def test_in_needs_a_non_empty_list() -> None:
    assert config_error({"state": {"in": "CA"}}).path == "flow[1].when.state.in"
    assert config_error({"state": {"not_in": []}}).path == "flow[1].when.state.not_in"


def test_eq_needs_a_scalar() -> None:
    assert config_error({"state": {"eq": ["CA"]}}).path == "flow[1].when.state.eq"
    assert config_error({"state": {"ne": {"x": 1}}}).path == "flow[1].when.state.ne"


def test_text_operators_need_text() -> None:
    for op in ("contains", "starts_with", "ends_with"):
        assert config_error({"email": {op: True}}).path == f"flow[1].when.email.{op}"
        assert config_error({"email": {op: ""}}).path == f"flow[1].when.email.{op}"


def test_combinators_need_the_right_shape() -> None:
    assert config_error({"all": {"country": "US"}}).path == "flow[1].when.all"
    assert config_error({"any": []}).path == "flow[1].when.any"
    assert config_error({"any": ["US"]}).path == "flow[1].when.any[0]"
    assert config_error({"not": [{"country": "US"}]}).path == "flow[1].when.not"
    assert config_error({"not": {"x": 1}}).path == "flow[1].when.not.x"


def test_spec_must_be_a_mapping() -> None:
    assert config_error(["country"]).path == "flow[1].when"


def test_empty_base_path_gives_a_bare_key() -> None:
    assert config_error({"bogus": 1}, path="").path == "bogus"


# --- normalize_key and index_terms ---------------------------------------------------------------


def test_normalize_key_collides_equal_values() -> None:
    assert normalize_key("50") == normalize_key(50) == normalize_key(50.0) == normalize_key(" 50 ")
    assert normalize_key(" US ") == normalize_key("us")
    assert normalize_key("1,000") == normalize_key(1000)
    assert normalize_key("02134") != normalize_key(2134)
    assert normalize_key(True) == normalize_key("true") != normalize_key(1)
    assert normalize_key(None) is None


def test_normalize_key_is_hashable_for_any_value() -> None:
    for value in (["a", ["b"]], {"a": 1}, {"a"}, object()):
        hash(normalize_key(value))


def test_normalize_key_keeps_long_numeric_ids_exact() -> None:
    assert normalize_key("12345678901234567890") != normalize_key("12345678901234567891")


def test_index_terms_for_scalar_list_eq_and_in() -> None:
    assert index_terms({"country": "US"}) == ("country", frozenset({"us"}))
    assert index_terms({"state": ["CA", "or"]}) == ("state", frozenset({"ca", "or"}))
    assert index_terms({"employees": {"eq": "50"}}) == ("employees", frozenset({50}))
    assert index_terms({"raw.tier": {"in": [1, "A"]}}) == ("raw.tier", frozenset({1, "a"}))


def test_index_terms_prefers_the_first_equality_field() -> None:
    spec = {"employees": {"gt": 5}, "country": "US", "state": "CA"}
    assert index_terms(spec) == ("country", frozenset({"us"}))


def test_index_terms_looks_inside_all() -> None:
    spec = {"all": [{"score": {"gt": 1}}, {"all": [{"country": ["US", "CA"]}]}]}
    assert index_terms(spec) == ("country", frozenset({"us", "ca"}))


def test_index_terms_is_none_without_a_necessary_equality() -> None:
    assert index_terms(None) is None
    assert index_terms({}) is None
    assert index_terms({"employees": {"gte": 5}}) is None
    assert index_terms({"country": {"ne": "US"}}) is None
    assert index_terms({"country": {"not_in": ["US"]}}) is None
    assert index_terms({"any": [{"country": "US"}, {"state": "CA"}]}) is None
    assert index_terms({"not": {"country": "US"}}) is None


def test_index_terms_keys_match_what_the_condition_accepts() -> None:
    spec = {"raw.size": ["50", "Big"]}
    field, keys = index_terms(spec)  # type: ignore[misc]
    condition = compile_condition(spec, "when")
    for value in (50, 50.0, "50", " big ", "BIG", "small", None, 51):
        lead = Lead(id="1", raw={"size": value})
        assert condition(lead) == (normalize_key(lead.value(field)) in keys), value
