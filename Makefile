# m5dev: `make up` sets the host up and boots the guest; `make test` sets the host up and runs every test.
SHELL := /bin/bash
export M5DEV_FIXTURE_CACHE ?= $(HOME)/.cache/m5dev-fixtures

.PHONY: all setup setup-tests deps build lint schema mutation docs test test-unit test-concurrent test-repro test-remote-kernel test-arm64-image up up-offline fixture bench soak clean

all: build

setup:
	bash scripts/setup-host.sh

# setup, and what the tests' engines and registry need (installed before any test runs).
setup-tests:
	bash scripts/setup-host.sh --tests

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

deps: node_modules/.package-lock.json

build: deps
	npm run --silent build
	chmod +x dist/cli/main.js

lint: deps
	npm run --silent lint

# The arm64 cloud-image fixture the end-to-end tests boot (cached outside the checkout).
fixture: setup
	bash scripts/build-test-image.sh >/dev/null

# Cheap tiers first (a unit failure stops the run before any image is built or guest booted); the
# fixture image builds in the background from the start, while scripts/run-tests.sh builds and lints.
test: setup-tests
	bash scripts/run-tests.sh

test-unit: build
	npx vitest run test/unit

up: setup build
	@node dist/cli/main.js up || { rc=$$?; if [ $$rc -eq 5 ]; then echo "make: the cloud image could not be downloaded; offline, \`make up-offline\` boots the locally built fixture image instead" >&2; fi; exit $$rc; }

# No internet: boot the locally built arm64 fixture cloud image instead of Ubuntu's.
up-offline: setup build fixture
	dir="$$(bash scripts/build-test-image.sh)"; img="$$(cd "$$dir" && ls *.img)"; \
	node dist/cli/main.js up --image-url "file://$$dir/$$img" --image-sha256 "$$(cut -d' ' -f1 "$$dir/SHA256SUMS")"

# The reproducibility checks: a second toolchain image build from nothing, a second full kernel build.
test-repro: setup-tests build fixture
	M5DEV_TEST_REPRO=1 npx vitest run test/integration/image.test.ts -t "locked package|clean rebuild"
	M5DEV_TEST_REPRO=1 npx vitest run test/e2e/kernel-build.test.ts

# Two runs of guest lane B at once must both pass (no shared port, name or state; results in docs/testing.md).
test-concurrent: setup-tests build fixture
	bash scripts/concurrent-lanes.sh

# A second full kernel build, on a remote engine's volume, bit-identical to the local one (results in docs/any-engine.md).
test-remote-kernel: setup-tests build fixture
	M5DEV_TEST_REMOTE_KERNEL=1 M5DEV_FIXTURE_DIR="$$(bash scripts/build-test-image.sh)" npx vitest run test/e2e/remote-engine.test.ts -t 'gets the toolchain|module loop on a remote engine'

# The toolchain image built and used for linux/arm64 under emulation (slow; results in docs/arm64-image.md).
test-arm64-image: setup
	bash scripts/arm64-image-check.sh

bench: setup build fixture
	npx tsc -p bench/tsconfig.json
	M5DEV_FIXTURE_DIR="$$(bash scripts/build-test-image.sh)" node dist-bench/bench/run.js

# suspend → resume cycles under guest memory load (SOAK_CYCLES=30, SOAK_UP_ARGS=--no-ram-file)
soak: setup build fixture
	bash bench/resume-soak.sh

# The charts of docs/benchmarks.md, drawn from docs/data (bench/charts.ts): make test runs by phase, bench groups.
docs: build
	npx tsc -p bench/tsconfig.json
	node dist-bench/bench/charts.js
	bash scripts/dependency-graph.sh

# StrykerJS on the unit tier: the mutation score of the modules whose job is a decision (stryker.config.mjs;
# results in docs/testing.md). Slow (both cores for a quarter of an hour): not part of `make test`.
mutation: deps
	npx stryker run

# m5dev.json's JSON Schema, from src/config-schema.ts (a unit test fails when the published file differs).
schema: build
	node --input-type=module -e "import('./dist/config-schema.js').then((m) => process.stdout.write(JSON.stringify(m.configSchema(), null, 2) + '\\n'))" > m5dev.schema.json

clean:
	rm -rf dist
