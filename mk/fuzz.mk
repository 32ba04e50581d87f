# Short fuzz runs of the framing decoders (libtcp/engine/framing*_test.go).
#
#   make test-fuzz                      each target for FUZZ_TIME (part of `make test`)
#   make test-fuzz FUZZ_TIME=5m         a longer run
#
# The seed corpus is committed in libtcp/engine/testdata/fuzz/<target>/ and
# runs with every plain `go test`; a failing input the fuzzer finds is
# written there too -- commit it with the fix. Targets run one after the
# other: `go test -fuzz` takes one target per run.

FUZZ_TIME    ?= 5s
FUZZ_PKG     := ./libtcp/engine
FUZZ_TARGETS := FuzzDelimitedDecode FuzzLengthPrefixedDecode FuzzEOLLinesDecode \
                FuzzTextLinesDecode FuzzRecordsDecode

TEST_TARGETS += test-fuzz

.PHONY: test-fuzz

test-fuzz:
	@mkdir -p $(BUILD)
	@set -e; for t in $(FUZZ_TARGETS); do \
	  echo "fuzz $$t ($(FUZZ_TIME))"; \
	  $(GO) test -run='^$$' -fuzz="^$$t\$$" -fuzztime=$(FUZZ_TIME) $(FUZZ_PKG) > $(BUILD)/fuzz-$$t.log 2>&1 \
	    || { tail -40 $(BUILD)/fuzz-$$t.log; exit 1; }; \
	done
	@echo "test-fuzz: $(words $(FUZZ_TARGETS)) targets, $(FUZZ_TIME) each: ok"
