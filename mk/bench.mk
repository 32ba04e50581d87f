# Echo benchmark (bench/README.md): the load generator, the pure-Go baseline
# server, the C server on the ABI, and `bench-c`, which runs bench/run.py --
# every bench/*.bench.sh and bench/*/*.bench.sh entry, side by side.
#
#   make bench                          everything (lib + all BENCH_TARGETS)
#   make bench-c BENCH_ROUNDS=3 BENCH_DURATION=5s BENCH_ONLY=c-abi,go-stdlib
#
# Other parts add prerequisites of the run with `bench-c: their-target`.

BENCH_BIN := $(BUILD)/bench
BENCH_GO_DEPS := go.mod $(wildcard go.sum)

BENCH_ROUNDS ?=
BENCH_DURATION ?=
BENCH_ONLY ?=
BENCH_TRANSPORTS ?=

.PHONY: bench-c bench-build

bench-build: $(BENCH_BIN)/loadgen $(BENCH_BIN)/goecho $(BENCH_BIN)/c_echo_server

$(BENCH_BIN)/loadgen: $(wildcard bench/loadgen/*.go) $(BENCH_GO_DEPS)
	@mkdir -p $(BENCH_BIN)
	$(GO) build -trimpath -o $@ ./bench/loadgen

$(BENCH_BIN)/goecho: $(wildcard bench/goecho/*.go) $(BENCH_GO_DEPS)
	@mkdir -p $(BENCH_BIN)
	$(GO) build -trimpath -o $@ ./bench/goecho

$(BENCH_BIN)/c_echo_server: bench/c_echo_server.c include/tcpgo.h $(LIBLINK)
	@mkdir -p $(BENCH_BIN)
	$(CC) $(CFLAGS_COMMON) -o $@ $< $(LDFLAGS_LIB)

bench-c: lib bench-build
	BENCH_ROUNDS="$(BENCH_ROUNDS)" BENCH_DURATION="$(BENCH_DURATION)" \
	BENCH_ONLY="$(BENCH_ONLY)" BENCH_TRANSPORTS="$(BENCH_TRANSPORTS)" \
	GO="$(GO)" python3 bench/run.py

BENCH_TARGETS += bench-c
