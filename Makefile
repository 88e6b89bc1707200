# m5dev: `make up` sets the host up and boots the guest; `make test` sets the host up and runs every test.
SHELL := /bin/bash
export M5DEV_FIXTURE_CACHE ?= $(HOME)/.cache/m5dev-fixtures

.PHONY: all setup deps build lint test test-unit up fixture bench clean

all: build

setup:
	bash scripts/setup-host.sh

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

test: setup build lint fixture
	M5DEV_FIXTURE_DIR="$$(bash scripts/build-test-image.sh)" npx vitest run

test-unit: build
	npx vitest run test/unit

up: setup build
	node dist/cli/main.js up

bench: setup build fixture
	M5DEV_FIXTURE_DIR="$$(bash scripts/build-test-image.sh)" node --experimental-strip-types bench/run.ts

clean:
	rm -rf dist
