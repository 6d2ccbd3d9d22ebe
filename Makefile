# Ewii developer commands. `make run` and `make test` do all the set-up.
SHELL := /bin/bash
NODE_MODULES := node_modules/.package-lock.json
BUF := node_modules/.bin/buf

.PHONY: run test gen lint bench typecheck install descriptors

$(NODE_MODULES): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

install: $(NODE_MODULES)

# Starts every operator service and a demo client on embedded defaults.
run: $(NODE_MODULES)
	node --import tsx services/cli/main.ts dev --data-dir .ewii/dev

TEST_SPEC ?= 'test/**/*.test.ts'

test: $(NODE_MODULES)
	node_modules/.bin/mocha $(MOCHA_ARGS) $(TEST_SPEC)

gen: $(NODE_MODULES)
	rm -rf gen/ewii gen/google
	$(BUF) generate
	$(BUF) build --as-file-descriptor-set -o gen/descriptors.binpb

# Fails when gen/ is stale, the contracts break buf lint, or a change breaks
# the wire contract against main.
lint: $(NODE_MODULES) typecheck
	$(BUF) lint
	@if git rev-parse --verify -q main >/dev/null; then \
	  $(BUF) breaking --against '.git#branch=main'; fi
	@tmp=$$(mktemp -d); cp -r gen "$$tmp/before"; $(MAKE) -s gen >/dev/null; \
	if ! diff -r "$$tmp/before" gen >/dev/null; then \
	  echo "gen/ is stale: run 'make gen' and commit the result"; rm -rf "$$tmp"; exit 1; fi; rm -rf "$$tmp"

typecheck: $(NODE_MODULES)
	node_modules/.bin/tsc --noEmit

bench: $(NODE_MODULES)
	node --import tsx bench/run.ts $(BENCH_ARGS)
