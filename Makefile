# One script per chore. `make demo` and `make test` set everything up on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MOSQUITTO := $(shell command -v mosquitto || ls /usr/sbin/mosquitto 2>/dev/null)
CHROMIUM := $(shell ls /usr/bin/chromium 2>/dev/null)
PDFTOPPM := $(shell command -v pdftoppm)
PANGO := $(shell ls /usr/lib/*/libpangoft2-1.0.so.0 2>/dev/null)
HARFBUZZ_SUBSET := $(shell ls /usr/lib/*/libharfbuzz-subset.so.0 2>/dev/null)
DEJAVU := $(shell ls /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf 2>/dev/null)

.PHONY: demo test lint bench serve clean system-packages pdf-packages

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP) pdf-packages
	$(BIN)/python -m telemon.app.demo

serve: $(STAMP)
	$(BIN)/telemon serve

# System packages the tests need: mosquitto (tests that start a private broker: ACL, crash) and Debian's
# chromium (the dashboard's browser tests); WeasyPrint's Pango and HarfBuzz and a font with French accents (the
# PDF report), and poppler-utils (pdftoppm, pdftotext: the report's tests read the PDF). Installed when missing,
# as root.
SYSTEM_PACKAGES := $(if $(MOSQUITTO),,mosquitto) $(if $(CHROMIUM),,chromium) \
	$(if $(PANGO),,libpango-1.0-0 libpangoft2-1.0-0) $(if $(HARFBUZZ_SUBSET),,libharfbuzz-subset0) \
	$(if $(DEJAVU),,fonts-dejavu-core) $(if $(PDFTOPPM),,poppler-utils)
# What the demo needs of them: the PDF report's libraries and font. Installed when missing and root; otherwise
# the demo runs all the same and says what its PDF report lacks.
PDF_PACKAGES := $(if $(PANGO),,libpango-1.0-0 libpangoft2-1.0-0) $(if $(HARFBUZZ_SUBSET),,libharfbuzz-subset0) \
	$(if $(DEJAVU),,fonts-dejavu-core)
pdf-packages:
ifneq ($(strip $(PDF_PACKAGES)),)
	@if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(PDF_PACKAGES) >/dev/null; \
	else echo "the PDF report needs: sudo apt-get install $(PDF_PACKAGES) (the demo runs without it)" >&2; fi
endif

system-packages:
ifneq ($(strip $(SYSTEM_PACKAGES)),)
	@if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; \
	else echo "make test needs: sudo apt-get install $(SYSTEM_PACKAGES)" >&2; exit 1; fi
endif

test: $(STAMP) system-packages
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.engine
	$(BIN)/python -m bench.dashboard
	$(BIN)/python -m bench.latency
	$(BIN)/python -m bench.report
	$(BIN)/python -m bench.fhir
	$(BIN)/python -m bench.webhooks
	$(BIN)/python -m bench.scale --quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
