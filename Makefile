# Turnout: `make run` starts the gateway; `make test` installs everything and runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Python processes (the suite starts dozens) import compiled modules instead of compiling every
# import from source again: `turnout.app` took 6.2 s to import that way here, 2.2 s compiled.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run test test-ui ui-docs install lint typecheck bench bench-sync bench-models bench-gateway bench-feedback bench-routing bench-replay clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check uv
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -e '.[dev,classifier]'
	@touch $(STAMP)

install: $(STAMP)

test-ui: $(STAMP)  # the web UI in Debian's chromium (make test runs these too)
	$(BIN)/pytest -q -p no:cacheprovider tests/ui

ui-docs: $(STAMP)  # refresh the screenshots of docs/ui.md from the browser walkthrough
	TURNOUT_UI_DOCS=1 $(BIN)/pytest -q -p no:cacheprovider tests/ui/test_walkthrough.py

run: $(STAMP)
	$(BIN)/turnout serve

test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -q -p no:cacheprovider -n 2 --dist loadfile --durations=15

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

bench: bench-sync bench-models

bench-sync: $(STAMP)
	$(BIN)/python bench/sync_catalog.py

bench-models: $(STAMP)
	$(BIN)/python bench/list_models.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

bench-gateway: $(STAMP)
	$(BIN)/python bench/gateway.py --json

bench-feedback: $(STAMP)
	$(BIN)/python bench/feedback.py
	$(BIN)/python bench/feedback.py --db postgres

bench-routing: $(STAMP)
	$(BIN)/python bench/routing.py
	$(BIN)/python bench/task_detection.py

# issue 21's evaluation: 5-fold cross-validation by prompt, shuffled, 20 seeds, bandit mode; the router
# beside baselines fitted on the same warm-up rows, with the task given, detected, and on two models
# (RouteLLM's APGR/CPT, the router's from a sweep of its price of cost); the router with exploration
# off beside it; then the same seeds with the prompt memory. About 35 minutes on 2 cores (14 of them
# the two-model curve); not part of `make test`.
REPLAY_ARGS := --outcomes data/routing/outcomes-train.jsonl --prices data/routing/models.json \
	--folds 5 --shuffle --seeds 20 --mode bandit --workers $(or $(REPLAY_WORKERS),2)

bench-replay: $(STAMP)
	$(BIN)/turnout eval replay $(REPLAY_ARGS) --task-hint
	$(BIN)/turnout eval replay $(REPLAY_ARGS) --detect
	$(BIN)/turnout eval replay $(REPLAY_ARGS) --task-hint --two-model --curve
	$(BIN)/turnout eval replay $(REPLAY_ARGS) --task-hint --prompt-memory
