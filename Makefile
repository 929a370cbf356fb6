# tributary: `make test` installs and starts what the tests need, then runs them all.
# .ci/run calls exactly `make test`.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.ONESHELL:
# Go lives here on the project's machines even when a login shell did not set PATH.
export PATH := $(PATH):/usr/local/go/bin

SERVICES_ENV := /tmp/tributary-services/env.sh
BIN := $(CURDIR)/bin/tributary
TEST_LOG := $(CURDIR)/bin/test.log
FUZZ_LOG := $(CURDIR)/bin/fuzz.log
# Fuzz targets run for a bounded time by `make test`, as "dir target":
# the embedded broker's request framing and parsing (through a live broker),
# the registry's HTTP handlers and the pipeline file parser.
FUZZ_TARGETS := third_party/kfake:FuzzTributaryParseRequest \
	third_party/kfake:FuzzTributaryBrokerFrame \
	schema/registry:FuzzRegistryHTTP \
	config:FuzzParse
FUZZ_TIME := 20s

.PHONY: test bench chaos quickstart services-up services-down build

services-up:
	bash integration/services/up.sh

services-down:
	bash integration/services/down.sh

build:
	go build -o $(BIN) ./cmd/tributary

# The closing line counts packages as `packages: N passed, N failed`, read from
# go test's own ok/FAIL lines, so a run that tested nothing shows 0 passed.
test:
	@bash integration/services/up.sh
	source $(SERVICES_ENV)
	export TRIBUTARY_BIN=$(BIN)
	echo "== go build -o bin/tributary ./cmd/tributary"
	go build -o $(BIN) ./cmd/tributary
	echo "== go vet ./..."
	go vet ./...
	echo "== staticcheck ./..."
	go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
	echo "== go mod tidy -diff"
	go mod tidy -diff
	# -p 1: packages share the test servers (the MySQL tests purge binlogs, the
	# e2e tests kill workers), so they run one after another.
	echo "== go test -p 1 -count=1 -timeout 50m ./..."
	mkdir -p $(dir $(TEST_LOG))
	rc=0
	# The embedded log's patched kfake is its own module (./... skips it):
	# its compaction and persistence tests, upstream's and ours, run here.
	echo "== third_party/kfake: go test -run 'TestTributary|Compact|Persist'"
	(cd third_party/kfake && go test -count=1 -timeout 10m -run 'TestTributary|Compact|Persist' .) 2>&1 | tee $(TEST_LOG) || rc=$$?
	go test -p 1 -count=1 -timeout 50m ./... 2>&1 | tee -a $(TEST_LOG) || rc=$$?
	# Fuzzing: each target for $(FUZZ_TIME); a crash fails make test and
	# leaves its input under <dir>/testdata/fuzz/<target>/ to commit as a
	# regression seed. Its own log, so the package count stays go test's.
	: > $(FUZZ_LOG)
	fuzzfailed=0
	for ft in $(FUZZ_TARGETS); do
		echo "== fuzz $${ft#*:} in ./$${ft%%:*} for $(FUZZ_TIME)"
		(cd $${ft%%:*} && go test -run '^$$' -fuzz "^$${ft#*:}\$$" -fuzztime=$(FUZZ_TIME) .) 2>&1 | tee -a $(FUZZ_LOG) | tail -n 3 || { rc=1; fuzzfailed=$$((fuzzfailed+1)); }
	done
	passed=$$(grep -c '^ok ' $(TEST_LOG) || true)
	failed=$$(grep -cE '^FAIL[[:space:]]' $(TEST_LOG) || true)
	if [[ $$rc -eq 0 ]]; then
		echo "make test: PASS (go test exit 0)"
	else
		echo "make test: FAIL (go test exit $$rc; full output in $(TEST_LOG))"
	fi
	echo "packages: $$passed passed, $$failed failed"
	echo "fuzz targets: $$fuzzfailed of $(words $(FUZZ_TARGETS)) failed (output in $(FUZZ_LOG))"
	exit $$rc

bench:
	@bash integration/services/up.sh
	source $(SERVICES_ENV)
	export TRIBUTARY_BIN=$(BIN)
	go build -o $(BIN) ./cmd/tributary
	# Each suite prints its figures and ratios and appends them to bin/bench-results.md.
	go run ./integration/bench
	go run ./integration/bench/sinks
	go run ./integration/bench/mysql

# The chaos test of make test with larger numbers, for a person to run:
# 100 kill -9 of the worker and a 60 s outage of the sink's database.
chaos:
	@bash integration/services/up.sh
	source $(SERVICES_ENV)
	export TRIBUTARY_BIN=$(BIN)
	go build -o $(BIN) ./cmd/tributary
	TRIBUTARY_CHAOS_KILLS=100 TRIBUTARY_CHAOS_OUTAGE_S=60 go test -count=1 -v -timeout 60m -run 'TestSelfHealing' ./integration/

quickstart:
	bash integration/quickstart.sh
