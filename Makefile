# TA-aws-iam-error-spike: a newcomer needs only python3, make and the package registry.
#   make test   venv + lint + package + AppInspect gate + unit and contract tests
#   make demo   the main job on embedded defaults
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
APP := TA-aws-iam-error-spike
VERSION := $(shell sed -n 's/^version *= *//p' default/app.conf | head -n1)
TGZ := package/dist/$(APP)-$(VERSION).tgz

.PHONY: venv lint format package wheel chromium node appinspect unit contract test demo bench clean

$(VENV)/.stamp: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.stamp

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: venv
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

# The Configuration page (ui/configuration, @splunk/react-ui) bundled into appserver/static/build/
# by esbuild; node_modules from the npm registry exactly as ui/configuration/package-lock.json says.
UI := ui/configuration
UI_BUNDLE := appserver/static/build/configuration.js
$(UI)/node_modules/.package-lock.json: $(UI)/package.json $(UI)/package-lock.json | node
	cd $(UI) && npm ci --no-audit --no-fund --loglevel=error
# Node.js and npm build the page: Debian's packages when missing and apt-get can (as root).
node:
	@command -v npm >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && apt-get update -qq && apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; } \
	  || { echo "node: npm not found (apt-get install nodejs npm) to build the Configuration page"; exit 1; }
$(UI_BUNDLE): $(UI)/node_modules/.package-lock.json $(UI)/build.js $(wildcard $(UI)/src/*)
	cd $(UI) && node build.js

# The package is rebuilt whenever anything that ships or the build itself changes.
SHIPPED := app.manifest LICENSE README.md $(shell find default metadata README bin lookups appserver static -type f 2>/dev/null | grep -v -e __pycache__ -e '\.pyc$$')
$(TGZ): $(VENV)/.stamp $(SHIPPED) $(UI_BUNDLE) $(wildcard package/*.py package/*.txt)
	$(PY) package/build.py --output $(TGZ)

package: $(TGZ)

# The `iamspike` CLI as a wheel (pyproject.toml; numpy from the registry when installed). Built with
# the registry's hatchling in pip's isolated build environment; `pipx install .` does the same.
WHEEL := package/dist/ta_aws_iam_error_spike-$(VERSION)-py3-none-any.whl
$(WHEEL): $(VENV)/.stamp pyproject.toml lookups/iamspike_error_classes.csv $(shell find bin/iamspike -name '*.py')
	$(PY) -m pip wheel --quiet --no-deps --wheel-dir package/dist .

wheel: $(WHEEL)

# Headless Chromium opens the CLI's HTML report in tests/contract/test_cli_install.py and drives
# the Configuration page in tests/contract/test_config_page.py: Debian's
# package, installed when missing and apt-get can (as root); otherwise the test skips, or fails
# under CI=true.
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null \
	  || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	       && apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; } \
	  || echo "chromium: not installed (apt-get install chromium); the HTML report test will skip"

appinspect: $(TGZ)
	$(PY) package/appinspect_gate.py $(TGZ)

unit: venv
	$(PY) -m pytest tests/unit -q

contract: $(TGZ) $(WHEEL) chromium
	$(PY) -m pytest tests/contract -q

test: lint package wheel chromium appinspect
	$(PY) -m pytest -q

demo: $(TGZ)
	PYTHONPATH=bin $(PY) tests/demo.py --package $(TGZ)

bench: $(TGZ)
	$(PY) tests/bench/quality.py --group tuning
	$(PY) tests/bench/quality.py --group held-out
	$(PY) tests/bench/sensitivity.py --instances 3 --output docs/bench/sensitivity.md
	$(PY) tests/bench/sensitivity_spread.py --instances 6 --output docs/bench/sensitivity.md
	$(PY) tests/bench/speed.py --package $(TGZ)
	$(PY) tests/bench/scale.py
	$(PY) tests/bench/ingest.py --package $(TGZ)
	$(PY) tests/bench/lookup_rate.py --package $(TGZ)

clean:
	rm -rf package/dist package/build lib .pytest_cache .ruff_cache
