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

# Fails when the contracts break buf lint, when a change breaks the wire
# contract against the branch main, or when gen/ differs from what
# `make gen` would write. The freshness check generates into a temporary
# folder, so gen/ is left as it was.
lint: $(NODE_MODULES) typecheck
	$(BUF) lint
	@if git rev-parse --verify -q main >/dev/null; then \
	  $(BUF) breaking --against '.git#branch=main'; \
	else echo "no local branch main: skipping buf breaking (run 'git fetch origin main:main' to enable it)"; fi
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(BUF) generate -o "$$tmp" && \
	$(BUF) build --as-file-descriptor-set -o "$$tmp/gen/descriptors.binpb" || exit 1; \
	if ! diff -r "$$tmp/gen" gen >"$$tmp/diff.txt"; then \
	  head -n 20 "$$tmp/diff.txt"; \
	  echo "gen/ is stale: run 'make gen' and commit the result"; exit 1; fi

typecheck: $(NODE_MODULES)
	node_modules/.bin/tsc --noEmit

bench: $(NODE_MODULES)
	node --import tsx bench/run.ts $(BENCH_ARGS)
