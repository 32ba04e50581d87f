# mk/cpp.mk -- the C++ binding: header-only classes in namespace tcp
# (bindings/cpp/tcp/*.h), their GoogleTest suite, examples and packaging.
#
#   make examples-cpp   build/examples/cpp/server and client (part of `make`)
#   make test-cpp       configure CMake in build/cmake with the library the
#                       Makefile built, build the tests, run ctest (GoogleTest
#                       cases, README examples, install + consumer tests)
#   make install-cpp    (part of `make install`) include/tcp/*.h, the CMake
#                       package (tcpgoConfig.cmake, tcpgoConfigVersion.cmake)
#                       and tcpgo.pc under $(DESTDIR)$(PREFIX)

CMAKE        ?= cmake
CTEST        ?= ctest
CPP_BUILD    := $(BUILD)/cmake
CPP_HEADERS  := $(wildcard bindings/cpp/tcp/*.h bindings/cpp/tcp/detail/*.h)
CPP_CXXFLAGS := -std=c++17 $(CFLAGS_COMMON) -Ibindings/cpp
CPP_EXAMPLES := $(BUILD)/examples/cpp/server $(BUILD)/examples/cpp/client
CPP_CFGDIR    = $(LIBDIR)/cmake/tcpgo
CPP_JOBS     ?= 2

TEST_TARGETS      += test-cpp
INSTALL_TARGETS   += install-cpp
UNINSTALL_TARGETS += uninstall-cpp

.PHONY: examples-cpp test-cpp install-cpp uninstall-cpp

# `make` builds the C++ examples too.
all: examples-cpp

examples-cpp: $(CPP_EXAMPLES)

$(BUILD)/examples/cpp/%: examples/cpp/%.cpp $(CPP_HEADERS) include/tcpgo.h | $(LIBLINK)
	@mkdir -p $(@D)
	$(CXX) $(CPP_CXXFLAGS) $< -o $@ $(LDFLAGS_LIB)

# CMake reuses the library built above (TCPGO_PREBUILT_LIBRARY), so the Go
# library is never built twice at the same time.
test-cpp: $(LIBLINK)
	$(CMAKE) -S . -B $(CPP_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DTCPGO_PREBUILT_LIBRARY=$(abspath $(LIB)) -DCMAKE_CXX_COMPILER=$(shell command -v $(CXX))
	$(CMAKE) --build $(CPP_BUILD) -j$(CPP_JOBS)
	cd $(CPP_BUILD) && $(CTEST) --output-on-failure -j$(CPP_JOBS)

# The package files say where the library and headers are relative to the
# config file's own directory, so an installed tree can be moved.
install-cpp:
	install -d $(DESTDIR)$(INCDIR)/tcp/detail $(DESTDIR)$(CPP_CFGDIR) $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 0644 $(wildcard bindings/cpp/tcp/*.h) $(DESTDIR)$(INCDIR)/tcp/
	install -m 0644 $(wildcard bindings/cpp/tcp/detail/*.h) $(DESTDIR)$(INCDIR)/tcp/detail/
	@prefix=$$(realpath -m "$(PREFIX)"); libdir=$$(realpath -m "$(LIBDIR)"); \
	 incdir=$$(realpath -m "$(INCDIR)"); cfgdir=$$(realpath -m "$(CPP_CFGDIR)"); \
	 toprefix=$$(realpath -m --relative-to="$$cfgdir" "$$prefix"); \
	 rellib=$$(realpath -m --relative-base="$$prefix" "$$libdir"); \
	 relinc=$$(realpath -m --relative-base="$$prefix" "$$incdir"); \
	 subst="s|@TCPGO_CONFIG_TO_PREFIX@|$$toprefix|g; s|@TCPGO_LIBDIR@|$$rellib|g; \
	   s|@TCPGO_INCDIR@|$$relinc|g; s|@TCPGO_SONAME@|$(SONAME)|g; s|@VERSION@|$(VERSION)|g; \
	   s|@prefix@|$$prefix|g; s|@libdir@|$$libdir|g; s|@includedir@|$$incdir|g"; \
	 echo "install $(DESTDIR)$(CPP_CFGDIR)/tcpgoConfig.cmake tcpgoConfigVersion.cmake"; \
	 sed -e "$$subst" cmake/tcpgoConfig.cmake.in > $(DESTDIR)$(CPP_CFGDIR)/tcpgoConfig.cmake && \
	 sed -e "$$subst" cmake/tcpgoConfigVersion.cmake.in > $(DESTDIR)$(CPP_CFGDIR)/tcpgoConfigVersion.cmake && \
	 echo "install $(DESTDIR)$(LIBDIR)/pkgconfig/tcpgo.pc" && \
	 sed -e "$$subst" tcpgo.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/tcpgo.pc

uninstall-cpp:
	rm -f $(addprefix $(DESTDIR)$(INCDIR)/tcp/,$(notdir $(wildcard bindings/cpp/tcp/*.h))) \
	  $(addprefix $(DESTDIR)$(INCDIR)/tcp/detail/,$(notdir $(wildcard bindings/cpp/tcp/detail/*.h))) \
	  $(DESTDIR)$(CPP_CFGDIR)/tcpgoConfig.cmake $(DESTDIR)$(CPP_CFGDIR)/tcpgoConfigVersion.cmake \
	  $(DESTDIR)$(LIBDIR)/pkgconfig/tcpgo.pc
	-rmdir $(DESTDIR)$(INCDIR)/tcp/detail $(DESTDIR)$(INCDIR)/tcp $(DESTDIR)$(CPP_CFGDIR) \
	  $(DESTDIR)$(LIBDIR)/cmake $(DESTDIR)$(LIBDIR)/pkgconfig 2>/dev/null
