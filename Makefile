# The two commands a new user needs: `make demo` and `make test`. Both create .venv when missing
# and are safe to re-run. Everything else here is a helper for them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.luskit-installed
# Debian packages the tests and the pipeline call out to (OCR for the de-identification proof,
# chromium for the Label Studio browser test).
SYSPKGS := tesseract-ocr chromium
# Label Studio lives in its own venv (its Django stack must not share a resolver with torch).
LS_VENV := .ls-venv
LS_STAMP := $(LS_VENV)/.luskit-installed

export DVC_NO_ANALYTICS := 1
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: demo test env sysdeps lock clean-artifacts .ls-venv

demo: env sysdeps
	$(VENV)/bin/luskit demo

test: env sysdeps .ls-venv
	$(PY) -m pytest

env: $(STAMP)

# The venv is (re)installed when pyproject.toml or the lock change. pip is told about the lock with -c,
# so nothing newer than the tested tree (torch above all) can slip in.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt -e '.[test]'
	@touch $(STAMP)

# `luskit label serve` and the Label Studio tests run label-studio from here (pinned by its own lock).
.ls-venv: $(LS_STAMP)

$(LS_STAMP): labeling/ls/constraints.txt
	@test -x $(LS_VENV)/bin/python || $(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/pip install -q -c labeling/ls/constraints.txt label-studio==1.23.2
	@touch $(LS_STAMP)

sysdeps:
	@missing=""; for p in $(SYSPKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "missing Debian packages:$$missing -- run: sudo apt-get install$$missing"; exit 1; fi; \
	fi

# Refresh the lock after changing pyproject.toml (review the diff before committing).
lock: env
	$(PY) -m pip freeze --exclude-editable | grep -v '^luskit' \
	  | sed '1i # Lock: the whole resolved dependency tree (pip freeze of a working .venv).\n# Regenerate with `make lock` after changing pyproject.toml.' > constraints.txt.tmp
	mv constraints.txt.tmp constraints.txt

# Derived outputs only; data/ is never touched.
clean-artifacts:
	rm -rf artifacts
