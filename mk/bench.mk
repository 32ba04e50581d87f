# Benchmarks (bench/README.md): the load generators, the baseline servers (C
# epoll, Go stdlib), the servers on tcpgo (C on the ABI, C++ classes; the
# Python ones are in mk/python.mk's part), and the drivers:
#
#   make bench        everything: bench-c, bench-scale, then bench-goals (+ other parts' BENCH_TARGETS)
#   make bench-c      bench/run.py: every bench/*.bench.sh entry, side by side, in the
#                     configurations d16, d1, 16k, connect (+ Python round trips)
#   make bench-scale  bench/scale.py: 19,000 idle connections per server, memory per connection
#   make bench-goals  bench-c, bench-scale, then bench/goals.py: issue 10's goals against their figures
#   make bench-report bench/goals.py alone, on the results the last runs left in $(BUILD)/bench
#   make bench-profile   perf profile of the C-on-ABI server (unstripped library), 64 B depth 16;
#                     BENCH_PROFILE_ARGS="--config d1 --transport tls --entry cpp" for others
#
# Knobs (environment or make variables):
#   BENCH_ROUNDS=3 BENCH_DURATION=2s BENCH_WARMUP=1s BENCH_ONLY=c-abi,c-epoll
#   BENCH_CONFIGS=d16,d1,16k,connect BENCH_TRANSPORTS=tcp,tls
#   BENCH_MAX_STEAL=10 BENCH_MAX_OTHER=25 BENCH_RETRIES=2 BENCH_RETRY_BUDGET=120
#                     (repeat disturbed runs, at most that many seconds of repeats in all)
#   BENCH_SCALE_CONNS=19000 BENCH_SCALE_ONLY=c-abi
#   e.g. a longer, steadier run: make bench BENCH_ROUNDS=5 BENCH_DURATION=5s
#
# Other parts add prerequisites of the run with `bench-c: their-target`.

BENCH_BIN := $(BUILD)/bench
BENCH_GO_DEPS := go.mod $(wildcard go.sum) $(wildcard bench/internal/*/*.go)
BENCH_CPP_HEADERS := $(wildcard bindings/cpp/tcp/*.h bindings/cpp/tcp/detail/*.h)

BENCH_ROUNDS ?=
BENCH_DURATION ?=
BENCH_WARMUP ?=
BENCH_ONLY ?=
BENCH_CONFIGS ?=
BENCH_TRANSPORTS ?=
BENCH_MAX_STEAL ?=
BENCH_MAX_OTHER ?=
BENCH_RETRIES ?=
BENCH_RETRY_BUDGET ?=
BENCH_SCALE_CONNS ?=
BENCH_SCALE_ONLY ?=
BENCH_ENV = BENCH_ROUNDS="$(BENCH_ROUNDS)" BENCH_DURATION="$(BENCH_DURATION)" \
  BENCH_WARMUP="$(BENCH_WARMUP)" BENCH_ONLY="$(BENCH_ONLY)" BENCH_CONFIGS="$(BENCH_CONFIGS)" \
  BENCH_TRANSPORTS="$(BENCH_TRANSPORTS)" BENCH_MAX_STEAL="$(BENCH_MAX_STEAL)" \
  BENCH_MAX_OTHER="$(BENCH_MAX_OTHER)" BENCH_RETRIES="$(BENCH_RETRIES)" \
  BENCH_RETRY_BUDGET="$(BENCH_RETRY_BUDGET)" \
  BENCH_SCALE_CONNS="$(BENCH_SCALE_CONNS)" BENCH_SCALE_ONLY="$(BENCH_SCALE_ONLY)" \
  BENCH_BUILD="$(abspath $(BUILD))" GO="$(GO)"

.PHONY: bench-c bench-scale bench-goals bench-report bench-build bench-profile

bench-build: $(BENCH_BIN)/loadgen $(BENCH_BIN)/goecho $(BENCH_BIN)/idleconns \
  $(BENCH_BIN)/c_echo_server $(BENCH_BIN)/epoll_echo_server $(BENCH_BIN)/cpp_echo_server

$(BENCH_BIN)/loadgen: $(wildcard bench/loadgen/*.go) $(BENCH_GO_DEPS)
	@mkdir -p $(BENCH_BIN)
	$(GO) build -trimpath -o $@ ./bench/loadgen

$(BENCH_BIN)/goecho: $(wildcard bench/goecho/*.go) $(BENCH_GO_DEPS)
	@mkdir -p $(BENCH_BIN)
	$(GO) build -trimpath -o $@ ./bench/goecho

$(BENCH_BIN)/idleconns: $(wildcard bench/idleconns/*.go) $(BENCH_GO_DEPS)
	@mkdir -p $(BENCH_BIN)
	$(GO) build -trimpath -o $@ ./bench/idleconns

$(BENCH_BIN)/c_echo_server: bench/c_echo_server.c include/tcpgo.h $(LIBLINK)
	@mkdir -p $(BENCH_BIN)
	$(CC) $(CFLAGS_COMMON) -o $@ $< $(LDFLAGS_LIB)

$(BENCH_BIN)/epoll_echo_server: bench/epoll_echo_server.c
	@mkdir -p $(BENCH_BIN)
	$(CC) $(CFLAGS_COMMON) -o $@ $<

$(BENCH_BIN)/cpp_echo_server: bench/cpp_echo_server.cpp $(BENCH_CPP_HEADERS) include/tcpgo.h $(LIBLINK)
	@mkdir -p $(BENCH_BIN)
	$(CXX) -std=c++17 $(CFLAGS_COMMON) -Ibindings/cpp -o $@ $< $(LDFLAGS_LIB)

bench-c: lib bench-build
	$(BENCH_ENV) python3 bench/run.py

bench-scale: lib bench-build
	$(BENCH_ENV) python3 bench/scale.py

# After both runs (make bench runs each once).
bench-goals: bench-c bench-scale
	python3 bench/goals.py --build $(BUILD)

bench-report:
	python3 bench/goals.py --build $(BUILD)

BENCH_TARGETS += bench-c bench-scale bench-goals

# The same library with symbols (no -s -w), for perf; bench/profile.py runs
# the C server against it through LD_LIBRARY_PATH.
BENCH_PROF_LIB := $(BENCH_BIN)/prof/lib/$(SONAME)
$(BENCH_PROF_LIB): $(GO_SOURCES)
	@mkdir -p $(@D)
	CGO_ENABLED=1 $(GO) build -buildmode=c-shared -trimpath \
	  -ldflags '-extldflags "-Wl,-soname,$(SONAME) -Wl,--version-script=$(abspath libtcp/capi/exports.map)"' \
	  -o $@ ./libtcp/capi
	@rm -f $(@D)/*.h

bench-profile: bench-build $(BENCH_PROF_LIB)
	BENCH_PROF_LIBDIR="$(abspath $(dir $(BENCH_PROF_LIB)))" $(BENCH_ENV) python3 bench/profile.py $(BENCH_PROFILE_ARGS)
