# Every target creates the venv and installs requirements.txt by itself (stamped, so only once per change).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export DIALOGHUB_BASE_DIR ?= $(CURDIR)/.dialoghub
HUB_PORT ?= 8765
INFERENCE_PORT ?= 8766
PYTEST_ARGS ?=

.PHONY: setup venv hub pipeline test bench style demo clean

$(VENV)/.installed: requirements.txt requirements-nodeps.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --upgrade pip
	$(VENV)/bin/pip install -r requirements.txt
	$(VENV)/bin/pip install --no-deps -r requirements-nodeps.txt
	$(VENV)/bin/pip install --no-deps --no-build-isolation -e .
	touch $@

venv: $(VENV)/.installed

## setup: venv + requirements + the offline base model converted once from GGUF to safetensors
setup: venv
	$(PY) scripts/prepare_base_models.py convert --config models_repo/SmolLM2-135M-Instruct-q4_1/recipe.yaml

## hub: the embedded Hub (API and web pages) on $(HUB_PORT) and the inference server its model pages call on
## $(INFERENCE_PORT), in the foreground; Ctrl-C (or any stop signal) stops both
hub: venv
	$(PY) -m dialoghub.inference with-hub --root $(DIALOGHUB_BASE_DIR)/hub --hub-port $(HUB_PORT) --port $(INFERENCE_PORT)

## pipeline: the main job on the embedded defaults (scripts/pipeline.py, read it top to bottom)
pipeline: setup
	$(PY) scripts/pipeline.py --config scripts/pipeline.yaml

## test: the test suite (starts its own Hub on a free port; never touches .dialoghub/)
test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

## bench: speed and memory figures, each against a baseline measured in the same run
bench: setup
	for bench in benchmarks/*_bench.py; do $(PY) $$bench || exit 1; done

## demo: the Gradio demo on http://127.0.0.1:7860, published as a Space repo on the embedded Hub first;
## `make demo DIALOGHUB_INFERENCE_URL=http://127.0.0.1:$(INFERENCE_PORT)` runs its models on `make hub`'s endpoint
demo: setup
	$(PY) scripts/demo.py --config spaces/dialoghub-demo/recipe.yaml --publish true \
		$(if $(DIALOGHUB_INFERENCE_URL),--inference_url $(DIALOGHUB_INFERENCE_URL))

style: venv
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean:
	rm -rf $(DIALOGHUB_BASE_DIR)
