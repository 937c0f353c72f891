# Two commands set up everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

BROWSER_PACKAGES = chromium chromium-driver fonts-noto-cjk
IMAGE_TOOLS = podman runc debootstrap
CHROMIUM = /usr/bin/chromium
CJK_FONT = /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc
SDK_DIR  = tests/sdk
SDK_STAMP = $(SDK_DIR)/node_modules/.package-lock.json
TYPED_PACKAGES = app alerts dashboard bench

.PHONY: demo test install browser sdks image-tools lint bench clean

$(STAMP): pyproject.toml
	@echo "==> creating virtualenv $(VENV) and installing promo-warroom"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/warroom demo

# The wall display tests drive Debian's chromium (and need CJK fonts for the zh screenshots): installed here,
# never skipped, so CI runs them everywhere.
browser:
	@if [ ! -x $(CHROMIUM) ] || [ ! -e $(CJK_FONT) ]; then \
		echo "==> installing $(BROWSER_PACKAGES) for the wall display tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROWSER_PACKAGES); \
	fi

# The real JavaScript SDKs the Segment-compatibility tests run (pinned by tests/sdk/package-lock.json; about 10 s).
$(SDK_STAMP): $(SDK_DIR)/package-lock.json
	@echo "==> installing the JavaScript SDKs for the Segment-compatibility tests"
	cd $(SDK_DIR) && npm ci --no-audit --no-fund --ignore-scripts
	touch $(SDK_STAMP)

sdks: $(SDK_STAMP)

# tests/test_image.py builds the Dockerfile with Debian's podman and runs the image (see that file for why runc
# and debootstrap): installed here, like the browser.
image-tools:
	@if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v debootstrap >/dev/null; then \
		echo "==> installing $(IMAGE_TOOLS) for the container image test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(IMAGE_TOOLS); \
	fi

# Lint, types and the import contracts ([tool.ruff], [tool.mypy], [tool.importlinter] in pyproject.toml): `make test`
# runs them first, so a finding fails the build before the suite starts.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(TYPED_PACKAGES)
	$(BIN)/lint-imports

# The four-minute outage test waits on real time: it runs in a pytest of its own (with its own embedded PostgreSQL)
# alongside the rest of the suite, so `make test` takes the longer of the two, not their sum. Exit 5: not selected.
OUTAGE_MARK = four_minute_outage
OUTAGE_LOG = test-artifacts/four-minute-outage.log
# The rest runs in pytest-xdist workers, whole files each (a file's fixtures are set up once); every worker starts its
# own embedded PostgreSQL. Much of the suite waits on servers and the database, so 3 workers overlap well on 2 cores
# (durations per worker count: bench/RESULTS.md, "Test suite").
TEST_WORKERS ?= 3

test: $(STAMP) lint browser sdks image-tools
	@mkdir -p test-artifacts
	@$(BIN)/python -m pytest -ra -p no:cacheprovider -m $(OUTAGE_MARK) $(PYTEST_ARGS) > $(OUTAGE_LOG) 2>&1 & outage=$$!; \
	$(BIN)/python -m pytest -ra -n $(TEST_WORKERS) --dist loadfile -m "not $(OUTAGE_MARK)" $(PYTEST_ARGS); suite=$$?; \
	wait $$outage; alongside=$$?; echo "==> alongside: the four-minute outage test ($(OUTAGE_LOG))"; \
	tail -n 1 $(OUTAGE_LOG); [ $$suite -eq 0 ] && { [ $$alongside -eq 0 ] || [ $$alongside -eq 5 ]; }

bench: $(STAMP)
	$(BIN)/warroom bench ingest

clean:
	rm -rf $(VENV) .warroom test-artifacts $(SDK_DIR)/node_modules
