# onex-actors tasks. `just --list` shows them.

set shell := ["bash", "-euo", "pipefail", "-c"]
# A failing command's own error line is the last one printed, not just's "recipe failed".
set no-exit-message

venv := ".venv"
bin := venv / "bin"

# Show the available recipes.
default:
    @just --list

# (`python3 scripts/dev.py` does this by itself on first use.)
# Create .venv and install the package with its test and lint tools.
install:
    test -x {{bin}}/python || python3 -m venv {{venv}}
    {{bin}}/python -m pip install -q --upgrade pip
    {{bin}}/python -m pip install -q -e ".[dev]"

# Format check, lint, strict types on src/, and the import-layer contracts.
lint:
    {{bin}}/ruff format --check .
    {{bin}}/ruff check .
    {{bin}}/mypy
    {{bin}}/lint-imports

# Rewrite files to the project's format and apply safe lint fixes.
fmt:
    {{bin}}/ruff format .
    {{bin}}/ruff check --fix .

# Run the test suite, all tiers (pytest arguments may follow, e.g. `test -m unit`).
test *args:
    {{bin}}/python -m pytest --durations=25 {{args}}

# Run every code block of README.md top to bottom, as pasted (scripts/check_readme.py).
readme:
    {{bin}}/python scripts/check_readme.py

# Run the integration tier on a tansu broker instead of Apache Kafka.
test-tansu *args:
    ONEX_TEST_BROKER=tansu {{bin}}/python -m pytest -m integration --durations=25 {{args}}

# The integration tier (fault scenarios included) through confluent-kafka (librdkafka).
test-confluent *args:
    ONEX_TEST_KAFKA_CLIENT=confluent {{bin}}/python -m pytest -m integration --durations=25 {{args}}

# Minutes; needs `pip install -e '.[bench]'`. Figures go to docs/benchmarks.md by hand.
# Run every benchmark, record its medians and redraw docs/benchmarks.png.
bench:
    {{bin}}/python bench/inprocess_echo.py --record
    {{bin}}/python bench/scale.py --record
    {{bin}}/python bench/kafka_echo.py --record
    {{bin}}/python bench/db_handler.py --record
    {{bin}}/python bench/crash_isolation.py
    {{bin}}/python bench/plot.py

# E.g. `faults --only kill-9 broker`; `--commands N` sets the size.
# Run the fault scenarios against real processes and print the checker's table.
faults *args:
    {{bin}}/python bench/faults.py {{args}}

# Validate a contract tree (default: contracts/).
validate dir="contracts":
    {{bin}}/onex contracts validate {{dir}}

# config/local.yaml starts a local broker and an embedded PostgreSQL when none answers.
# Run a runtime host until Ctrl-C (default: runtime-dev with config/local.yaml).
run-host runtime="runtime-dev" config="config/local.yaml":
    {{bin}}/omninode-runtime-host --runtime-node-id {{runtime}} --config {{config}}

# Send a command to a node over Kafka and print its result event.
emit node payload="{}" *args:
    {{bin}}/onex emit {{node}} '{{payload}}' {{args}}

# Follow topics matching a pattern (default: every onex topic).
tail pattern="onex.#" *args:
    {{bin}}/onex tail {{pattern}} {{args}}

# kind: auto (Apache Kafka where Java runs, else tansu), kafka or tansu.
# Start a local broker on 127.0.0.1:9092 (idempotent).
broker-up kind="auto":
    {{bin}}/onex broker up --kind {{kind}}

# Stop the local broker (idempotent).
broker-down kind="auto":
    {{bin}}/onex broker down --kind {{kind}}
