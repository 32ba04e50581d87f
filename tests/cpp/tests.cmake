# C++ tests (included from the top-level CMakeLists.txt when
# TCPGO_BUILD_TESTS is ON). Every GoogleTest case is its own ctest test with
# a time limit; the v2-style certificates are made once by a ctest fixture
# and removed at the end.
set(_t "${CMAKE_CURRENT_SOURCE_DIR}/tests/cpp")

# GoogleTest: the installed package (Debian libgtest-dev), else its sources.
find_package(GTest CONFIG QUIET)
if(NOT TARGET GTest::gtest)
  find_package(GTest QUIET)
endif()
if(NOT TARGET GTest::gtest)
  if(EXISTS /usr/src/googletest/CMakeLists.txt)
    set(INSTALL_GTEST OFF CACHE BOOL "" FORCE)
    set(BUILD_GMOCK OFF CACHE BOOL "" FORCE)
    add_subdirectory(/usr/src/googletest "${CMAKE_CURRENT_BINARY_DIR}/googletest" EXCLUDE_FROM_ALL)
    add_library(GTest::gtest ALIAS gtest)
  else()
    message(FATAL_ERROR "GoogleTest not found: install libgtest-dev or set TCPGO_BUILD_TESTS=OFF")
  endif()
endif()
include(GoogleTest)
find_package(OpenSSL QUIET)

set(_warnings -Wall -Wextra -Werror)

# v2 users include the headers as "TcpServer.h" with <prefix>/include/tcp on
# the path: compile that form with exactly those directories.
add_library(tcpgo_cpp_include_quoted OBJECT "${_t}/include_quoted.cpp")
target_include_directories(tcpgo_cpp_include_quoted PRIVATE
  "${CMAKE_CURRENT_SOURCE_DIR}/bindings/cpp/tcp" "${CMAKE_CURRENT_SOURCE_DIR}/include")
target_compile_features(tcpgo_cpp_include_quoted PRIVATE cxx_std_17)
target_compile_options(tcpgo_cpp_include_quoted PRIVATE ${_warnings})

# Users' strict warning flags, in C++17 and C++20.
foreach(_std 17 20)
  add_library(tcpgo_cpp_strict${_std} OBJECT "${_t}/include_strict.cpp")
  target_link_libraries(tcpgo_cpp_strict${_std} PRIVATE tcpgo::tcpgo)
  set_target_properties(tcpgo_cpp_strict${_std} PROPERTIES CXX_STANDARD ${_std}
                        CXX_STANDARD_REQUIRED ON CXX_EXTENSIONS OFF)
  target_compile_options(tcpgo_cpp_strict${_std} PRIVATE ${_warnings} -Wpedantic -Wshadow
    -Wconversion -Wsign-conversion -Wold-style-cast -Wnon-virtual-dtor -Woverloaded-virtual
    -Wcast-qual -Wzero-as-null-pointer-constant)
endforeach()

set(_sources
  "${_t}/main.cpp" "${_t}/test_api.cpp" "${_t}/test_transport.cpp" "${_t}/test_tls.cpp"
  "${_t}/test_robust.cpp" "${_t}/test_control.cpp" "${_t}/test_wire.cpp"
  "${_t}/test_tls_features.cpp" "${_t}/test_view.cpp")

# Each class header alone compiles and brings v2's standard headers.
set(_alone_objects)
foreach(_h TcpServer TlsServer TcpClient TlsClient)
  add_library(tcpgo_cpp_alone_${_h} OBJECT "${_t}/include_alone.cpp")
  target_link_libraries(tcpgo_cpp_alone_${_h} PRIVATE tcpgo::tcpgo)
  target_compile_features(tcpgo_cpp_alone_${_h} PRIVATE cxx_std_17)
  target_compile_options(tcpgo_cpp_alone_${_h} PRIVATE ${_warnings})
  target_compile_definitions(tcpgo_cpp_alone_${_h} PRIVATE TCPGO_ALONE=${_h})
  if(_h MATCHES "Server$")
    target_compile_definitions(tcpgo_cpp_alone_${_h} PRIVATE TCPGO_ALONE_SERVER)
  endif()
  if(_h STREQUAL "TlsServer")
    target_compile_definitions(tcpgo_cpp_alone_${_h} PRIVATE TCPGO_ALONE_TLS_SERVER)
  endif()
  list(APPEND _alone_objects $<TARGET_OBJECTS:tcpgo_cpp_alone_${_h}>)
endforeach()
if(OPENSSL_FOUND)
  list(APPEND _sources "${_t}/test_openssl_interop.cpp"
       "${_t}/include_openssl_before.cpp" "${_t}/include_openssl_after.cpp")
else()
  message(STATUS "tcpgo: OpenSSL development files not found; skipping the OpenSSL interop tests")
endif()

add_executable(tcpgo_cpp_tests ${_sources} ${_alone_objects}
  $<TARGET_OBJECTS:tcpgo_cpp_include_quoted>)
# the strict-warning objects are only compiled (their symbols are unused)
add_dependencies(tcpgo_cpp_tests tcpgo_cpp_strict17 tcpgo_cpp_strict20)
target_link_libraries(tcpgo_cpp_tests PRIVATE tcpgo::tcpgo GTest::gtest)
if(OPENSSL_FOUND)
  target_link_libraries(tcpgo_cpp_tests PRIVATE OpenSSL::SSL OpenSSL::Crypto)
endif()
target_compile_features(tcpgo_cpp_tests PRIVATE cxx_std_17)
target_compile_options(tcpgo_cpp_tests PRIVATE ${_warnings})
target_compile_definitions(tcpgo_cpp_tests PRIVATE
  TCPGO_CERT_SCRIPT="${_t}/make_v2_certs.sh")

set(_certs "${CMAKE_CURRENT_BINARY_DIR}/test-certs")
add_test(NAME cpp_certs_setup COMMAND sh "${_t}/make_v2_certs.sh" "${_certs}")
set_tests_properties(cpp_certs_setup PROPERTIES FIXTURES_SETUP tcpgo_cpp_certs TIMEOUT 120)
add_test(NAME cpp_certs_cleanup COMMAND ${CMAKE_COMMAND} -E rm -rf "${_certs}")
set_tests_properties(cpp_certs_cleanup PROPERTIES FIXTURES_CLEANUP tcpgo_cpp_certs)

gtest_discover_tests(tcpgo_cpp_tests
  TEST_PREFIX "cpp."
  DISCOVERY_MODE PRE_TEST
  PROPERTIES TIMEOUT 120 FIXTURES_REQUIRED tcpgo_cpp_certs
             ENVIRONMENT "TCPGO_TEST_CERTS=${_certs}")

# The README's C++ examples (README.md, section "C++") compile as written.
add_test(NAME cpp_readme_examples
  COMMAND sh "${_t}/readme_examples.sh" "${CMAKE_CURRENT_SOURCE_DIR}/README.md"
          "${CMAKE_CURRENT_BINARY_DIR}/readme-examples" "${CMAKE_CXX_COMPILER}"
          "${CMAKE_CURRENT_SOURCE_DIR}/include" "${CMAKE_CURRENT_SOURCE_DIR}/bindings/cpp"
          "${TCPGO_LIBRARY_DIR}")
set_tests_properties(cpp_readme_examples PROPERTIES TIMEOUT 300)

# Packaging: `make install PREFIX=tmp` and `cmake --install`, then tiny
# out-of-tree consumers (find_package, pkg-config) and a v2-only program
# built with v2's link flags, all run.
add_test(NAME cpp_consumer
  COMMAND sh "${_t}/consumer/run.sh" "${CMAKE_CURRENT_SOURCE_DIR}" "${CMAKE_CURRENT_BINARY_DIR}"
          "${CMAKE_CXX_COMPILER}" "${CMAKE_COMMAND}")
set_tests_properties(cpp_consumer PROPERTIES TIMEOUT 600 COST 1000 FIXTURES_REQUIRED tcpgo_cpp_certs
  ENVIRONMENT "TCPGO_TEST_CERTS=${_certs}")

# C repros of library issues the C++ tests found (all fixed), kept as
# regression checks.
add_test(NAME cpp_library_repros
  COMMAND sh "${_t}/repro/run.sh" "${TCPGO_LIBRARY_DIR}" cc)
set_tests_properties(cpp_library_repros PROPERTIES TIMEOUT 300)
