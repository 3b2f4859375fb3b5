# MyMONIT — the commands of the README.
#   make run    start (or reuse) MariaDB and RabbitMQ, migrate, run ingest and api, feed demo measures
#   make test   everything the project checks, against the real servers
#   make bench  the benchmarks, printed as ratios to baselines measured in the same run

SHELL   := bash
GO      ?= go
MODULES := pkg services/ingest services/api adapters deploy
BIN     := bin
# Integration tests reach these servers (scripts/services.sh starts them).
export MYMONIT_TEST_MYSQL_DSN ?= root@tcp(127.0.0.1:3306)/
export MYMONIT_TEST_AMQP_URL  ?= amqp://guest:guest@127.0.0.1:5672/
# The crash tests may restart the local RabbitMQ and MariaDB.
export MYMONIT_TEST_RESTART_SERVERS ?= 1

.PHONY: all build vet fmt-check test test-short bench run services firebase helm migrate fuzz clean tidy

all: build

build:
	@mkdir -p $(BIN)
	cd services/ingest && $(GO) build -o ../../$(BIN)/ingest .
	cd services/api && $(GO) build -o ../../$(BIN)/api .
	cd adapters && $(GO) build ./...

services:
	bash scripts/services.sh

# The api tests run the real Firebase Auth Emulator (npm firebase-tools, pinned
# by services/api/firebase/package-lock.json); this installs it when missing.
firebase:
	bash scripts/firebase-emulator.sh ensure

# The chart checks (deploy/helmcheck) run the pinned helm, built with go
# install into .tools/ once (about 3.5 minutes cold, then nothing to do).
HELM_VERSION := v3.21.4
HELM         := $(CURDIR)/.tools/helm-$(HELM_VERSION)/helm
helm: $(HELM)
$(HELM):
	GOBIN=$(dir $(HELM)) $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

fmt-check:
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	@set -e; for m in $(MODULES); do echo "go vet $$m"; (cd $$m && $(GO) vet ./...); done

# The full suite: formatting, vet, unit and integration tests (race detector
# on), fuzz seed corpora, the end-to-end and crash tests of ingest. The tests
# of a module run one package at a time (-p 1: they share the servers, and
# some restart them); its test binaries are first built in parallel
# (-exec true links them and runs nothing), which -p 1 would serialize too.
test: export MYMONIT_HELM := $(HELM)
test: services firebase helm fmt-check vet build
	@set -e; for m in $(MODULES); do echo "go test $$m"; (cd $$m && $(GO) test -race -count=1 -exec true ./... >/dev/null && $(GO) test -race -count=1 -p 1 -timeout 15m ./...); done

# Everything but the slow crash/restart tests.
test-short: fmt-check vet
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) test -short -count=1 ./...); done

bench: services firebase build
	cd services/ingest && $(GO) run ./cmd/ingestbench
	cd services/api && $(GO) run ./cmd/apibench -keep
	cd adapters && $(GO) run ./cmd/adapterbench
	cd pkg && $(GO) test -run '^$$' -bench . ./logging/ ./measure/ ./storage/ ./queue/

migrate: services build
	$(BIN)/ingest migrate

run: services build
	bash scripts/run.sh

# Each target fuzzes for FUZZTIME; `make test` runs their seed corpora.
FUZZTIME ?= 60s
fuzz:
	cd pkg && $(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME) ./measure/
	cd pkg && $(GO) test -run '^$$' -fuzz FuzzScrub -fuzztime $(FUZZTIME) ./logging/
	cd adapters && $(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) ./lineproto/
	cd adapters && $(GO) test -run '^$$' -fuzz FuzzSources -fuzztime $(FUZZTIME) ./backfill/
	cd adapters && $(GO) test -run '^$$' -fuzz FuzzMapText -fuzztime $(FUZZTIME) ./promscrape/
	cd adapters && $(GO) test -run '^$$' -fuzz FuzzMapOpenMetrics -fuzztime $(FUZZTIME) ./promscrape/
	cd services/api && $(GO) test -run '^$$' -fuzz FuzzParsing -fuzztime $(FUZZTIME) ./internal/httpapi/

tidy:
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) mod tidy); done

clean:
	rm -rf $(BIN)
