# Python binding (bindings/python/tcpgo), its tests (tests/python/) and its
# benchmark (bench/python*).
#
#   make test-python          unittest suite against build/lib (what `make test` runs)
#   make install-python       pip-install the package into $(PYTHON)'s site-packages
#                             (under $(PREFIX) when PREFIX is not /usr/local),
#                             recording $(LIBDIR)/$(SONAME) as the library to load
#                             (part of `make install`; offline, no build download)
#   make uninstall-python     pip uninstall tcpgo (part of `make uninstall`)
#   make bench-python         tcpgo vs asyncio (vs uvloop) echo servers, one run
#                             (part of `make bench`); PY_BENCH_DURATION=5 PY_BENCH_TLS=1
#
# PYTHON is the interpreter to test and install for (default: python3 on PATH).
# The package itself needs no build step; without installing it, use
#   PYTHONPATH=bindings/python TCPGO_LIBRARY=build/lib/libtcpserver.so python3 ...

PYTHON ?= python3
PY_BENCH_DURATION ?= 5
PY_BENCH_TLS ?=
PY_TEST_ENV := TCPGO_LIBRARY=$(abspath $(LIB))

.PHONY: test-python install-python uninstall-python bench-python

test-python: $(LIBLINK)
	$(PY_TEST_ENV) $(PYTHON) -m unittest discover -s tests/python -t tests/python

# pip builds the wheel with the package's own standard-library backend
# (bindings/python/_build), so nothing is downloaded. TCPGO_BUNDLE_LIBRARY=0:
# the package loads the installed library (recorded in tcpgo/_install.py)
# instead of carrying a copy of its own.
# With the default PREFIX the package goes into $(PYTHON)'s own site-packages,
# so that `import tcpgo` works at once; with any other PREFIX it goes under
# that prefix (lib/pythonX.Y/site-packages) and never touches the system.
PY_PREFIX_FLAG = $(if $(filter /usr/local,$(PREFIX)),,--prefix $(PREFIX) --ignore-installed)
install-python: $(LIBLINK)
	TCPGO_BUNDLE_LIBRARY=0 TCPGO_INSTALL_LIBRARY=$(LIBDIR)/$(SONAME) \
	  $(PYTHON) -m pip install --no-deps --no-index --no-build-isolation --force-reinstall \
	  --root-user-action=ignore --disable-pip-version-check --no-warn-script-location \
	  $(if $(DESTDIR),--root $(DESTDIR)) $(PY_PREFIX_FLAG) ./bindings/python

uninstall-python:
	-$(PYTHON) -m pip uninstall -y --root-user-action=ignore --disable-pip-version-check tcpgo

bench-python: $(LIBLINK) $(BUILD)/bench/loadgen
	TCPGO_LIBRARY=$(abspath $(LIB)) $(PYTHON) bench/python_bench.py \
	  --loadgen $(BUILD)/bench/loadgen --duration $(PY_BENCH_DURATION) $(if $(PY_BENCH_TLS),--tls)

TEST_TARGETS += test-python
INSTALL_TARGETS += install-python
UNINSTALL_TARGETS += uninstall-python
BENCH_TARGETS += bench-python
