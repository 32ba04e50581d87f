# tcpgo behind load balancers (issue 12): real HAProxy and nginx in front of
# tcpgo backends, PROXY protocol, SO_REUSEPORT rolling restarts.
#
#   make test-deploy    tests/deploy/test_deploy.py (part of `make test`):
#                       HAProxy (plain, TLS passed through, TLS terminated)
#                       and nginx in front of two backends, a tcpgo client's
#                       own PROXY header through HAProxy, rolling restarts of
#                       examples/deploy/worker.c. Skips the balancer tests when
#                       haproxy / nginx-light / libnginx-mod-stream are missing.
#   make bench-deploy   bench/deploy/run.py (part of `make bench`): messages/s and
#                       connections/s through HAProxy to 1 and 2 backends, next
#                       to direct; BENCH_DEPLOY_ARGS="--duration 5 --rounds 3"
#
# Programs: $(BUILD)/deploy/{backend,client,worker}.

DEPLOY_BIN := $(BUILD)/deploy
DEPLOY_PROGS := $(DEPLOY_BIN)/backend $(DEPLOY_BIN)/client $(DEPLOY_BIN)/worker
DEPLOY_CFLAGS := $(CFLAGS_COMMON) -std=gnu11
BENCH_DEPLOY_ARGS ?=

TEST_TARGETS += test-deploy
BENCH_TARGETS += bench-deploy

.PHONY: test-deploy bench-deploy deploy-build

deploy-build: $(DEPLOY_PROGS)

$(DEPLOY_BIN)/%: tests/deploy/%.c include/tcpgo.h $(LIBLINK)
	@mkdir -p $(@D)
	$(CC) $(DEPLOY_CFLAGS) -o $@ $< $(LDFLAGS_LIB)

$(DEPLOY_BIN)/worker: examples/deploy/worker.c include/tcpgo.h $(LIBLINK)
	@mkdir -p $(@D)
	$(CC) $(DEPLOY_CFLAGS) -o $@ $< $(LDFLAGS_LIB)

test-deploy: $(DEPLOY_PROGS)
	DEPLOY_BIN=$(abspath $(DEPLOY_BIN)) $(PYTHON) tests/deploy/test_deploy.py

bench-deploy: $(DEPLOY_PROGS) $(BENCH_BIN)/loadgen
	DEPLOY_BIN=$(abspath $(DEPLOY_BIN)) $(PYTHON) bench/deploy/run.py \
	  --loadgen $(BENCH_BIN)/loadgen --json $(BUILD)/bench/deploy.json $(BENCH_DEPLOY_ARGS)
