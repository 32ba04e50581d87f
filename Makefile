# tcpgo -- build, test, demo, bench, install.
#
#   make            build build/lib/libtcpserver.so (+ compatibility names)
#   make test       build and run every test (Go, C, C++, Python)
#   make demo       build, then run a mutual-TLS echo demo on loopback
#   make bench      echo benchmarks, side by side with their baselines
#   make install PREFIX=/usr/local
#
# Each part of the project keeps its rules in mk/<part>.mk; this file holds
# the library build and the top-level targets that tie them together.

PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include
GO      ?= go
CC      ?= cc
CXX     ?= c++

BUILD   := build
LIBOUT  := $(BUILD)/lib
VERSION := $(shell sed -n 's/^\#define TCPGO_VERSION "\(.*\)"/\1/p' include/tcpgo.h)
SOMAJOR := $(firstword $(subst ., ,$(VERSION)))
SONAME  := libtcpserver.so.$(SOMAJOR)
LIB     := $(LIBOUT)/$(SONAME)
LIBLINK := $(LIBOUT)/libtcpserver.so
COMPAT_NAMES := libtcpclient.so libtlsserver.so libtlsclient.so

GO_SOURCES := go.mod $(wildcard go.sum) $(shell find libtcp \( -name '*.go' ! -name '*_test.go' \) -o -name '*.c' -o -name '*.h' -o -name '*.map') include/tcpgo.h

CFLAGS_COMMON := -Wall -Wextra -Werror -O2 -g -Iinclude
LDFLAGS_LIB   := -L$(LIBOUT) -Wl,-rpath,$(abspath $(LIBOUT)) -ltcpserver -pthread

.PHONY: all lib test test-go demo bench install install-lib uninstall clean
all: lib

lib: $(LIBLINK)

# One c-shared library; the generated cgo header stays in build/internal.
$(LIB): $(GO_SOURCES)
	@mkdir -p $(LIBOUT) $(BUILD)/internal
	CGO_ENABLED=1 $(GO) build -buildmode=c-shared -trimpath \
	  -ldflags '-s -w -extldflags "-Wl,-soname,$(SONAME) -Wl,--version-script=$(abspath libtcp/capi/exports.map)"' \
	  -o $@ ./libtcp/capi
	@mv -f $(LIBOUT)/libtcpserver.so.h $(BUILD)/internal/libtcpserver_cgo.h 2>/dev/null || \
	 mv -f $(LIBOUT)/$(SONAME:.so.$(SOMAJOR)=).h $(BUILD)/internal/libtcpserver_cgo.h 2>/dev/null || true

$(LIBLINK): $(LIB)
	cd $(LIBOUT) && ln -sf $(SONAME) libtcpserver.so && \
	  for n in $(COMPAT_NAMES); do ln -sf $(SONAME) $$n; done
	@touch -h $@

test-go:
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...
	# Stack sizes are larger under -race: the tests about them run without it.
	$(GO) test -count=1 -run 'StackShrinks' ./libtcp/engine

include $(sort $(wildcard mk/*.mk))

# Each mk/*.mk adds its parts to these lists.
test: lib test-go $(TEST_TARGETS)
	@echo "make test: all test suites passed"

demo: lib $(DEMO_TARGETS)

bench: lib $(BENCH_TARGETS)

# The library goes first: everything in INSTALL_TARGETS (headers, CMake and
# pkg-config files, the Python package) refers to it, and a part that fails
# must not leave the others without it.
install: install-lib $(INSTALL_TARGETS)
$(INSTALL_TARGETS): install-lib

install-lib: lib
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR)
	install -m 0755 $(LIB) $(DESTDIR)$(LIBDIR)/$(SONAME)
	cd $(DESTDIR)$(LIBDIR) && ln -sf $(SONAME) libtcpserver.so && \
	  for n in $(COMPAT_NAMES); do ln -sf $(SONAME) $$n; done
	install -m 0644 include/tcpgo.h $(DESTDIR)$(INCDIR)/tcpgo.h
	@[ -n "$(DESTDIR)" ] || [ "$$(id -u)" != 0 ] || ! command -v ldconfig >/dev/null || ldconfig
	@[ -n "$(DESTDIR)" ] || ldconfig -p 2>/dev/null | grep -qF "=> $(LIBDIR)/$(SONAME)" || \
	 { echo "tcpgo: note: $(LIBDIR) is not on the dynamic linker's search path. Programs"; \
	   echo "  linked with -ltcpserver need LD_LIBRARY_PATH=$(LIBDIR) at run time, or link"; \
	   echo "  them with -Wl,-rpath,$(LIBDIR) (= \$$(pkg-config --variable=rpath tcpgo))."; \
	   echo "  pkg-config finds tcpgo with PKG_CONFIG_PATH=$(LIBDIR)/pkgconfig."; }

uninstall: $(UNINSTALL_TARGETS)
	rm -f $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libtcpserver.so \
	  $(addprefix $(DESTDIR)$(LIBDIR)/,$(COMPAT_NAMES)) $(DESTDIR)$(INCDIR)/tcpgo.h

clean:
	rm -rf $(BUILD)
