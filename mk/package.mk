# mk/package.mk -- packages users install with their usual tools, and the
# tests of every way to install tcpgo (README.md, "Install").
#
#   make deb            $(BUILD)/dist/tcpgo_VERSION_ARCH.deb with CPack (see the
#                       end of CMakeLists.txt): library, tcpgo.h, C++ headers,
#                       CMake and pkg-config files, the Python package for
#                       Debian's python3 and /usr/bin/tcpgo; ldconfig trigger.
#                       Needs cmake and dpkg-dev (dpkg-shlibdeps); without them
#                       test-deb says it skipped.
#   make wheel          $(BUILD)/dist/tcpgo-VERSION-py3-none-PLATFORM.whl that
#                       carries the library (the stdlib build backend in
#                       bindings/python/_build; no network)
#   make test-install   tests/package/install.sh: `make install` into temporary
#                       prefixes with Debian's /usr/bin/python3; C via pkg-config
#                       (LD_LIBRARY_PATH / rpath), bin/tcpgo, import, uninstall
#   make test-deb       tests/package/deb.sh: dpkg -i in a throw-away overlay of
#                       this machine's root, then C, C++ and Python against it
#   make test-wheel     tests/package/wheel.sh: the wheel in a fresh venv, offline
#
# All three tests are part of `make test`.

DIST       := $(BUILD)/dist
DEB_BUILD  := $(BUILD)/deb
DEB_PYTHON ?= /usr/bin/python3
DEB_ARCH    = $(shell dpkg --print-architecture)
DEB         = $(DIST)/tcpgo_$(VERSION)_$(DEB_ARCH).deb

TEST_TARGETS += test-install test-deb test-wheel

.PHONY: deb wheel test-install test-deb test-wheel

# CMake packages the library the Makefile built (TCPGO_PREBUILT_LIBRARY).
deb: $(LIBLINK)
	@command -v dpkg-shlibdeps >/dev/null || \
	  { echo "make deb: dpkg-shlibdeps missing: apt-get install dpkg-dev"; exit 1; }
	$(CMAKE) -S . -B $(DEB_BUILD) -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
	  -DTCPGO_BUILD_TESTS=OFF -DTCPGO_BUILD_EXAMPLES=OFF \
	  -DTCPGO_PREBUILT_LIBRARY=$(abspath $(LIB)) -DCMAKE_CXX_COMPILER=$(shell command -v $(CXX)) \
	  $(if $(wildcard $(DEB_PYTHON)),-DTCPGO_INSTALL_PYTHON=ON -DTCPGO_PYTHON=$(DEB_PYTHON),-DTCPGO_INSTALL_PYTHON=OFF) \
	  > $(DEB_BUILD).log || { cat $(DEB_BUILD).log; exit 1; }
	@rm -f $(DEB_BUILD)/*.deb
	cd $(DEB_BUILD) && cpack -G DEB
	@mkdir -p $(DIST) && mv -f $(DEB_BUILD)/tcpgo_*.deb $(DIST)/
	@echo "make deb: $(DEB)"

wheel: $(LIBLINK)
	@mkdir -p $(DIST) && rm -f $(DIST)/tcpgo-*.whl
	@TCPGO_BUNDLE_LIBRARY=$(abspath $(LIB)) $(PYTHON) -c 'import sys; \
	  sys.path.insert(0, "bindings/python/_build"); import tcpgo_build; \
	  print("make wheel: $(DIST)/" + tcpgo_build.build_wheel(sys.argv[1]))' $(DIST)

test-install: $(LIBLINK)
	sh tests/package/install.sh . $(BUILD)

# Skipped, saying so, only on a machine without the tools (.ci/run installs them).
DEB_MISSING = $(strip $(foreach t,$(CMAKE) cpack dpkg-deb dpkg-shlibdeps,\
                $(if $(shell command -v $(t)),,$(t))))

test-deb: $(if $(DEB_MISSING),,deb)
	@if [ -n "$(DEB_MISSING)" ]; then \
	  echo "test-deb: SKIPPED: no $(DEB_MISSING) (Debian packages cmake, dpkg-dev)"; \
	else sh tests/package/deb.sh $(DEB) .; fi

test-wheel: wheel
	sh tests/package/wheel.sh $(wildcard $(DIST)/tcpgo-*.whl) $(PYTHON)
