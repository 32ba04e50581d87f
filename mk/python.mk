# Python binding (bindings/python/tcpgo), its tests (tests/python/) and its
# benchmark (bench/python*).
#
#   make test-python          unittest suite against build/lib (what `make test` runs)
#   make install-python       the package for $(PYTHON), where that interpreter
#                             looks for the system packages of $(PREFIX)
#                             (Debian's python3: /usr/local/lib/python3.X/dist-packages
#                             for /usr/local), and $(BINDIR)/tcpgo; loads
#                             $(LIBDIR)/$(SONAME). Part of `make install`; no pip,
#                             so PEP 668 does not apply (see _build/tcpgo_install.py)
#   make uninstall-python     removes what install-python wrote (part of `make uninstall`)
#   make bench-python         tcpgo vs asyncio (vs uvloop) echo servers, one run
#                             (part of `make bench`); PY_BENCH_DURATION=5 PY_BENCH_TLS=1
#
# PYTHON is the interpreter to test and install for (default: python3 on PATH;
# PYTHON=/usr/bin/python3 for Debian's). The package itself needs no build
# step; without installing it, use
#   PYTHONPATH=bindings/python TCPGO_LIBRARY=build/lib/libtcpserver.so python3 ...

PYTHON ?= python3
PY_BENCH_DURATION ?= 5
PY_BENCH_TLS ?=
PY_TEST_ENV := TCPGO_LIBRARY=$(abspath $(LIB))

.PHONY: test-python install-python uninstall-python bench-python

test-python: $(LIBLINK)
	$(PY_TEST_ENV) $(PYTHON) -m unittest discover -s tests/python -t tests/python

# With no usable $(PYTHON), the rest of `make install` still happens and the
# one command to install the package later is printed.
BINDIR ?= $(PREFIX)/bin
PY_INSTALLER := bindings/python/_build/tcpgo_install.py
PY_OK = $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 8))' 2>/dev/null

install-python: $(LIBLINK)
	@if $(PY_OK); then \
	  $(PYTHON) $(PY_INSTALLER) install --prefix "$(PREFIX)" --bindir "$(BINDIR)" \
	    --library "$(abspath $(LIBDIR))/$(SONAME)" $(if $(DESTDIR),--destdir "$(DESTDIR)"); \
	else \
	  echo "tcpgo: no Python 3.8 or later as PYTHON=$(PYTHON): the Python package was not"; \
	  echo "  installed. To install it: make install-python PYTHON=/path/to/python3 PREFIX=$(PREFIX)"; \
	fi

uninstall-python:
	-@if $(PY_OK); then $(PYTHON) $(PY_INSTALLER) uninstall --prefix "$(PREFIX)" \
	  $(if $(DESTDIR),--destdir "$(DESTDIR)"); fi

bench-python: $(LIBLINK) $(BUILD)/bench/loadgen
	TCPGO_LIBRARY=$(abspath $(LIB)) $(PYTHON) bench/python_bench.py \
	  --loadgen $(BUILD)/bench/loadgen --duration $(PY_BENCH_DURATION) $(if $(PY_BENCH_TLS),--tls)

TEST_TARGETS += test-python
INSTALL_TARGETS += install-python
UNINSTALL_TARGETS += uninstall-python
BENCH_TARGETS += bench-python
