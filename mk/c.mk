# C tests (tests/c/) and the C demo (examples/c/).
#
#   make test-c             ABI checks, then every C test (each in its own process)
#   make demo-c             the mutual-TLS echo demo
#   make test-c-cgocheck2   the C tests against a GOEXPERIMENT=cgocheck2 library
#                           (slow; not part of `make test`, see below)
#
#   build/tests/c/tcpgo_c_tests -l         list the tests
#   build/tests/c/tcpgo_c_tests WORD...    run the tests whose name holds a WORD

CT_DIR    := $(BUILD)/tests/c
CT_BIN    := $(CT_DIR)/tcpgo_c_tests
CT_COMPAT := $(CT_DIR)/compat_link
CT_DEMO   := $(BUILD)/examples/c/demo
CT_SRCS   := $(filter-out tests/c/compat_link.c,$(wildcard tests/c/*.c))
CT_OBJS   := $(patsubst tests/c/%.c,$(CT_DIR)/obj/%.o,$(CT_SRCS))
# C99 plus the POSIX calls the tests use (mkdtemp, nftw, posix_spawn...).
CT_CFLAGS := $(CFLAGS_COMMON) -std=c99 -D_XOPEN_SOURCE=700

TEST_TARGETS += test-c
DEMO_TARGETS += demo-c

.PHONY: test-c demo-c check-c-abi test-c-cgocheck2

$(CT_DIR)/obj/%.o: tests/c/%.c $(wildcard tests/c/*.h) include/tcpgo.h
	@mkdir -p $(@D)
	$(CC) $(CT_CFLAGS) -c -o $@ $<

$(CT_BIN): $(CT_OBJS) $(LIBLINK)
	$(CC) -o $@ $(CT_OBJS) $(LDFLAGS_LIB)

# Linked with the four names TCP_ServerClient v2 users link with.
$(CT_COMPAT): tests/c/compat_link.c include/tcpgo.h $(LIBLINK)
	@mkdir -p $(@D)
	$(CC) $(CT_CFLAGS) -o $@ $< -L$(LIBOUT) -Wl,-rpath,$(abspath $(LIBOUT)) \
	  -ltcpserver -ltcpclient -ltlsserver -ltlsclient -pthread

$(CT_DEMO): examples/c/demo.c include/tcpgo.h $(LIBLINK)
	@mkdir -p $(@D)
	$(CC) $(CT_CFLAGS) -o $@ $< $(LDFLAGS_LIB)

test-c: check-c-abi $(CT_BIN)
	$(CT_BIN)

demo-c: $(CT_DEMO)
	$(CT_DEMO)

# What a C user relies on besides behaviour: the header is plain C99, the
# library exports exactly the header's functions (the four named by the
# issue among them), carries its SONAME, and the compatibility names link
# to one library -- one Go runtime -- in the process.
CT_REQUIRED_SYMS := tcp_server_start tls_server_start tcp_send_msg get_subj_part

check-c-abi: $(LIBLINK) $(CT_COMPAT)
	@echo '#include "tcpgo.h"' | $(CC) -std=c99 -pedantic-errors -Wall -Wextra -Werror \
	  -Iinclude -fsyntax-only -x c - || { echo "check-c-abi: tcpgo.h is not clean C99"; exit 1; }
	@nm -D --defined-only $(LIB) | awk '$$2 == "T" {print $$3}' | sort -u > $(CT_DIR)/exported.txt
	@for sym in $(CT_REQUIRED_SYMS); do \
	  grep -qx "$$sym" $(CT_DIR)/exported.txt || { echo "check-c-abi: $(LIB) does not export $$sym"; exit 1; }; \
	done
	@$(CC) -E -P -Iinclude include/tcpgo.h | grep -oE '\b(tcp_[a-z0-9_]+|tls_[a-z0-9_]+|get_subj_part) *\(' \
	  | tr -d ' (' | sort -u > $(CT_DIR)/declared.txt
	@diff -u $(CT_DIR)/declared.txt $(CT_DIR)/exported.txt > $(CT_DIR)/exports.diff || \
	  { echo "check-c-abi: header functions (-) vs exported symbols (+) differ:"; cat $(CT_DIR)/exports.diff; exit 1; }
	@readelf -d $(LIB) | grep -q 'SONAME.*\[$(SONAME)\]' || \
	  { echo "check-c-abi: SONAME of $(LIB) is not $(SONAME)"; readelf -d $(LIB) | grep SONAME; exit 1; }
	@$(CT_COMPAT)
	@n=$$(ldd $(CT_COMPAT) | grep -cE 'lib(tcp|tls)(server|client)'); test "$$n" = 1 || \
	  { echo "check-c-abi: $(CT_COMPAT) loads $$n tcpgo libraries, want 1:"; ldd $(CT_COMPAT); exit 1; }
	@echo "check-c-abi: ok ($$(wc -l < $(CT_DIR)/exported.txt) exported functions, SONAME $(SONAME), one runtime)"

# GOEXPERIMENT=cgocheck2 makes the Go runtime check every pointer store
# against the cgo pointer-passing rules (see shared/engineering-notes.md).
# It must be compiled into the library, so this builds a second copy into
# build/cgocheck2/ (no version script: only the checks matter here) and runs
# the same test binary against it through LD_LIBRARY_PATH, which overrides
# the binary's RUNPATH. It costs a full Go build, hence not in TEST_TARGETS.
CT_CGOCHECK2 := $(BUILD)/cgocheck2

test-c-cgocheck2: $(CT_BIN)
	@mkdir -p $(CT_CGOCHECK2)
	CGO_ENABLED=1 GOEXPERIMENT=cgocheck2 $(GO) build -buildmode=c-shared -trimpath \
	  -ldflags '-extldflags "-Wl,-soname,$(SONAME)"' -o $(CT_CGOCHECK2)/$(SONAME) ./libtcp/capi
	@LD_LIBRARY_PATH=$(abspath $(CT_CGOCHECK2)) ldd $(CT_BIN) | grep -q '$(abspath $(CT_CGOCHECK2))/' || \
	  { echo "test-c-cgocheck2: the tests would not load $(CT_CGOCHECK2)/$(SONAME)"; exit 1; }
	LD_LIBRARY_PATH=$(abspath $(CT_CGOCHECK2)) $(CT_BIN)
