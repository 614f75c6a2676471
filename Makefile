# The two commands: `make run` (set up + serve on 127.0.0.1:8000) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat setup.py | sha256sum | cut -c1-12)
DEBIAN_TOOLS := poppler-utils zbar-tools libnss3-tools softhsm2 chromium

.PHONY: run init test test-fast lint bench install debian-tools clean bench-digilocker bench-overlap \
	bench-bulk bench-qr bench-load

run: init
	$(BIN)/pramaan serve

init: install
	$(BIN)/pramaan init

# The verify page's QR decoder for cameras without BarcodeDetector: zxing-wasm's reader from the
# npm registry, checked against its published sha512 integrity, served by us (never a CDN).
ZXING_WASM = 3.1.6
ZXING_WASM_SHA512 = 994ed436ebe5fa1393fa79523904cc1d9dad33c95132c6e30c8a7920effe1e6065fc53aaefbab439264f277726e3603d73530a53a52f7baec588676486cad3f6
DECODER = templates/web/vendor/zxing_reader.wasm

install: $(STAMP) $(DECODER)

$(STAMP): setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

$(DECODER):
	mkdir -p var/npm templates/web/vendor
	$(PYTHON) -c 'import sys, urllib.request; urllib.request.urlretrieve(*sys.argv[1:])' \
		https://registry.npmjs.org/zxing-wasm/-/zxing-wasm-$(ZXING_WASM).tgz var/npm/zxing-wasm.tgz
	echo "$(ZXING_WASM_SHA512)  var/npm/zxing-wasm.tgz" | sha512sum -c --quiet
	rm -rf var/npm/package && tar -xzf var/npm/zxing-wasm.tgz -C var/npm
	cp var/npm/package/dist/iife/reader/index.js templates/web/vendor/zxing-reader.js
	cp var/npm/package/LICENSE templates/web/vendor/zxing-wasm-LICENSE.txt
	cp var/npm/package/dist/reader/zxing_reader.wasm $@

# Tools the tests use to check our output independently (pdfsig, zbarimg, pdftotext, certutil),
# and SoftHSM2, the PKCS#11 token the HSM backend is tested against.
debian-tools:
	@if ! command -v pdfsig >/dev/null || ! command -v zbarimg >/dev/null || ! command -v certutil >/dev/null || ! command -v softhsm2-util >/dev/null || ! command -v chromium >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBIAN_TOOLS); \
	  else echo "please install: sudo apt-get install $(DEBIAN_TOOLS)"; exit 1; fi; fi

test: install debian-tools
	$(BIN)/pytest -q --durations=15

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

# Known vulnerabilities in every package installed in the venv (setup.py's pins and what they pull
# in), with pip-audit's dependency source and auditor (pinned in the dev extras) and PyPI's
# vulnerability data (the PyPA advisories, from OSV): tests/dependency_audit.py. Each package is
# asked by release (/pypi/NAME/VERSION/json) and, where the index serves no release pages (these
# machines' index), by project, which lists the latest release's advisories only: a package below
# its latest release is then "NOT audited". Our own editable package is not on PyPI and is left
# out. A vulnerability found fails; a package not audited (or the index not answering) fails too,
# unless AUDIT_OFFLINE=warn (CI, whose index lacks release pages) says to print it and go on.
# AUDIT_IGNORE: vulnerability ids to accept, each with its reason in a comment here (none now).
AUDIT_OFFLINE ?= fail
AUDIT_IGNORE ?=
.PHONY: audit secrets-scan
audit: install
	$(BIN)/python -m tests.dependency_audit $(if $(filter warn,$(AUDIT_OFFLINE)),--unaudited-warn) \
	  $(AUDIT_IGNORE:%=--ignore-vuln %)

# Keys, tokens and passwords in the tracked files and in every version of every file in the git
# history (detect-secrets; tests/secrets_scan.py). What is not a secret is listed, each with its
# reason, in tests/secrets_allowlist.json. About 3 min (the history).
secrets-scan: install
	$(BIN)/python -m tests.secrets_scan --jobs 0

bench: install
	$(BIN)/python bench/pipeline.py --count 200
	$(BIN)/python bench/signature_levels.py --count 40
	$(BIN)/python bench/tsa_overlap.py --count 24 --processes 2 --threads 1 8 --repeats 1
	$(BIN)/python bench/types.py --count 100
	$(BIN)/python bench/seal_refusal.py
	$(BIN)/python bench/digilocker_pull.py --concurrency 50 --seconds 20
	$(BIN)/python bench/bulk.py --rows 300 --floor-count 40
	$(BIN)/python bench/store.py --objects 100 --count 40
	$(BIN)/python bench/load.py --seconds 15

# How often the printed QR reads (a phone's video frame, a 150 dpi scan, a stained scan; zxing-cpp
# and zbar), before and after the compact seal and the 55 mm print, for every type (about 2 min).
bench-qr: install
	$(BIN)/python bench/qr_conditions.py --frames 30

# A batch of 10,000 birth certificates from one CSV through PostgreSQL, Redis and RQ worker
# processes at B-B, with 1 worker and with 2: certificates/s, the scaling, peak and drift of
# each worker's RSS, waits on the audit head, against the single-process stage floors (about
# 20 min; PostgreSQL and Redis as for the tests).
bench-bulk: install
	$(BIN)/python bench/bulk.py --rows 10000 --workers 1 2

# Issuing through RQ while the TSA is 100 ms away, B-B against B-LTA with 1, 2 and 4 worker
# processes of 1 and 8 threads, each three times, the median counted (about 15 min;
# PostgreSQL and Redis as for the tests).
bench-overlap: install
	$(BIN)/python bench/tsa_overlap.py --count 200 --processes 1 2 4 --threads 1 8 --repeats 3

# DigiLocker Pull Doc under 50 concurrent clients against gunicorn on PostgreSQL (about 35 s with
# issuing, so `make bench` runs it too; PRAMAAN_BENCH_POSTGRES or PRAMAAN_TEST_POSTGRES names the
# server).
bench-digilocker: install
	$(BIN)/python bench/digilocker_pull.py --concurrency 50 --seconds 20
	$(BIN)/python bench/digilocker_pull.py --concurrency 50 --seconds 20 --rate 300

# Downloads, verify, the status list and Pull Doc, 5 clients each, while certificates are
# submitted, approved and issued at 4/s: gunicorn, 2 RQ worker processes, PostgreSQL, Redis, all
# on loopback (bench/load.py; 60 s measured, about 1.5 min; `make bench` runs 15 s). Exits 1 if
# any answer was not 2xx or not right, or any certificate was not issued.
bench-load: install
	$(BIN)/python bench/load.py --seconds 60

# The container image built with podman and run here: init, API, worker and a dev TSA against
# PostgreSQL and Redis on 127.0.0.1, a certificate issued and verified, non-root checked, the
# compose file accepted (.ci/container; about a minute after the first build). Needs root.
# Schemathesis over the whole API against its OpenAPI document (/api/v1/openapi.json): a live
# server on SQLite, a token per role, FUZZ_EXAMPLES cases per operation and generation mode
# (valid and invalid): no 5xx, every error problem+json, every answer as documented. Prints
# the number of generated cases. The test suite runs the quick form (6 per operation and mode).
.PHONY: schemathesis
FUZZ_EXAMPLES ?= 100
schemathesis: install
	PRAMAAN_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) CI=true $(BIN)/python -m pytest -q -s -p no:cacheprovider \
	    --show-capture=no tests/test_openapi_fuzz.py

.PHONY: container-check
container-check: install
	.ci/container

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache

# Mutation testing of the trust-critical code (signing/, issuer/verify.py, tokens, audit, store,
# the issue job, api.py's department check), one worker, SQLite only: tests/mutation_testing.py.
# `make mutation` runs every mutant (hours on 2 cores; FILES="signing/pades.py ..." narrows it,
# MUTATION_CHILDREN=2 runs two at once; MUTATION_ARGS=--unchecked-only resumes from the verdicts
# kept in mutation/verdicts/, --survivors-only re-runs last time's survivors);
# `make mutation-changed` only those in functions changed since the merge base with origin/main
# (else HEAD~1; MUTATION_BASE=<rev> overrides), at most MUTATION_MAX of them, for CI. mutmut's stats
# and clean-test passes run only the test files of pyproject.toml's list that can reach the mutated
# files (tests/mutation_reach.py; MUTATION_ARGS=--all-tests runs all): 10-11 min on 2 busy cores
# for most samples (their functions are reached from the live server: nearly every file), 20 s for
# a file only its own tests reach (signing/dev_ocsp.py).
MUTATION_MAX ?= 40
MUTATION_TIME_LIMIT ?= 900
.PHONY: mutation mutation-changed

mutation: install debian-tools
	$(BIN)/python -m tests.mutation_testing $(MUTATION_ARGS) $(FILES)

mutation-changed: install debian-tools
	$(BIN)/python -m tests.mutation_testing --changed --max $(MUTATION_MAX) \
	  --time-limit $(MUTATION_TIME_LIMIT)
