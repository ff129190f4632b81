from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onex_actors.core import (
    ContractError,
    JsonPath,
    MissingValue,
    compile_named_sql,
    parse_contract,
)


def test_named_parameters_become_positional() -> None:
    compiled = compile_named_sql("select * from t where a = :a and b = :b or a2 = :a")
    assert compiled.text == "select * from t where a = $1 and b = $2 or a2 = $1"
    assert compiled.names == ("a", "b")


@pytest.mark.parametrize(
    "sql",
    [
        "select ':not_a_param'",
        "select 'it''s :quoted'",
        'select ":ident" from t',
        "select 1 -- :comment",
        "select 1 /* :comment */",
        "select $$ :dollar $$",
        "select $tag$ :dollar $tag$",
        "select x::int, y::text",
    ],
)
def test_literals_comments_and_casts_are_left_alone(sql: str) -> None:
    compiled = compile_named_sql(sql)
    assert compiled.text == sql
    assert compiled.names == ()


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("select 'open", "unterminated string literal"),
        ('select "open', "unterminated quoted identifier"),
        ("select /* open", "unterminated /\\* comment"),
        ("select $x$ open", "unterminated dollar-quoted string"),
        ("select $1", "positional placeholder"),
    ],
)
def test_bad_sql_is_refused(sql: str, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        compile_named_sql(sql)


@given(st.lists(st.sampled_from(["a", "b", "user_id", "x1"]), min_size=1, max_size=6))
def test_every_occurrence_is_numbered_by_first_appearance(names: list[str]) -> None:
    sql = " and ".join(f"c = :{n}" for n in names)
    compiled = compile_named_sql(sql)
    assert list(compiled.names) == list(dict.fromkeys(names))
    numbers = [int(m) for m in re.findall(r"\$(\d+)", compiled.text)]
    assert [compiled.names[i - 1] for i in numbers] == names


def test_json_path_steps() -> None:
    document = {"payload": {"items": [{"sku": "A"}, {"sku": "B"}], "odd key": 1}, "tenant_id": "t"}
    assert JsonPath("$.payload.items[1].sku").resolve(document) == "B"
    assert JsonPath("$.payload.items[-1]['sku']").resolve(document) == "B"
    assert JsonPath('$.payload["odd key"]').resolve(document) == 1
    assert JsonPath("$.tenant_id").resolve(document) == "t"
    assert JsonPath("$").resolve(document) == document
    with pytest.raises(MissingValue, match=r"no value at \$.payload.user_id \(missing 'user_id'\)"):
        JsonPath("$.payload.user_id").resolve(document)
    with pytest.raises(MissingValue):
        JsonPath("$.payload.items[5]").resolve(document)


@pytest.mark.parametrize("path", ["payload.x", "$.payload..x", "$[x]", "$.a b"])
def test_bad_json_paths(path: str) -> None:
    with pytest.raises(ValueError, match="JSONPath"):
        JsonPath(path)


def db_node(sql: str, params: dict[str, str]) -> object:
    return parse_contract(
        {
            "kind": "effect",
            "node_id": "q",
            "version": "0.1.0",
            "effect_type": "db",
            "db": {"sql": sql, "params": params},
        },
        source="contracts/nodes/q.yaml",
    )


@pytest.mark.parametrize(
    ("sql", "params", "expected"),
    [
        (
            "select :a, :b",
            {"a": "$.payload.a"},
            'uses :b with no entry in db.params; add b: "$.payload.b"',
        ),
        (
            "select :a",
            {"a": "$.payload.a", "c": "$.payload.c"},
            "db.params maps c, which db.sql never uses",
        ),
        ("select :a", {"a": "payload.a"}, "db.params.a: JSONPath 'payload.a' must start with '$'"),
        ("select $1", {}, "positional placeholder"),
    ],
)
def test_db_contract_errors(sql: str, params: dict[str, str], expected: str) -> None:
    with pytest.raises(ContractError) as info:
        db_node(sql, params)
    (problem,) = info.value.problems
    assert problem.startswith("contracts/nodes/q.yaml: key 'db': ")
    assert expected in problem
