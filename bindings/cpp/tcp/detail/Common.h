// tcp/detail/Common.h -- internal helpers of tcpgo's C++ classes.
//
// Not part of the public API: include <tcp/TcpServer.h>, <tcp/TlsServer.h>,
// <tcp/TcpClient.h> or <tcp/TlsClient.h> instead.
#ifndef TCPGO_CPP_DETAIL_COMMON_H
#define TCPGO_CPP_DETAIL_COMMON_H

#if __cplusplus < 201703L
#error "tcpgo's C++ classes need C++17 (-std=c++17 or later)"
#endif

// The C ABI. Installed as <prefix>/include/tcpgo.h next to <prefix>/include/tcp/,
// so "../tcpgo.h" finds it even when only <prefix>/include/tcp is on the
// include path (as v2 users with #include "TcpServer.h" have it).
#if __has_include("../../tcpgo.h")
#include "../../tcpgo.h"
#else
#include <tcpgo.h>
#endif

// What the headers of nilshenrich/TCP_ServerClient v2 pulled in; programs
// written for v2 rely on these transitively.
#include <atomic>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
// Used by tcpgo itself.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <new>
#include <string_view>
#include <utility>

// OpenSSL's SSL type, declared exactly as <openssl/types.h> does, so that v2's
// TlsServer::getSubjPartFromClientCert(int, const SSL *, int) keeps its
// signature and programs that also include OpenSSL compile (a repeated
// typedef of the same type is valid C++). tcpgo never dereferences it.
struct ssl_st;
typedef struct ssl_st SSL;

// OpenSSL's subject-field NIDs for getSubjPartFromClientCert, for programs
// that do not include OpenSSL. The replacement lists are token-for-token those
// of <openssl/obj_mac.h>, so including OpenSSL after this header is a valid
// identical redefinition, and including it before skips these.
#ifndef NID_commonName
#define NID_commonName          13
#endif
#ifndef NID_countryName
#define NID_countryName         14
#endif
#ifndef NID_localityName
#define NID_localityName                15
#endif
#ifndef NID_stateOrProvinceName
#define NID_stateOrProvinceName         16
#endif
#ifndef NID_organizationName
#define NID_organizationName            17
#endif
#ifndef NID_organizationalUnitName
#define NID_organizationalUnitName              18
#endif
#ifndef NID_pkcs9_emailAddress
#define NID_pkcs9_emailAddress          48
#endif
#ifndef NID_serialNumber
#define NID_serialNumber                105
#endif

namespace tcp {

// Called when a worker (or a forward-stream generator) throws. clientId is 0
// for client objects; worker names the worker: "established", "message",
// "closed", "error" or "forward stream". The default handler prints one
// line to std::cerr. A handler that throws is reported to std::cerr too.
using ExceptionHandler =
    std::function<void(const int clientId, const std::string &worker,
                       std::exception_ptr error)>;

// The version of the loaded library ("MAJOR.MINOR.PATCH"); compare with
// TCPGO_VERSION, the version of the headers.
inline std::string libraryVersion() { return ::tcp_version(); }

namespace detail {

// A worker slot: set from any thread, called from library threads. The
// callable lives in a shared_ptr so that a call in progress keeps it alive
// while another thread replaces it, and so that it is never copied per call
// (a stateful lambda keeps its state).
template <class Sig>
class Slot {
 public:
  using Fn = std::function<Sig>;
  void set(Fn fn) {
    std::shared_ptr<const Fn> next;
    if (fn) next = std::make_shared<const Fn>(std::move(fn));
    {
      std::lock_guard<std::mutex> lock(m_);
      cur_.swap(next);
    }
    // the previous callable (now in next) is destroyed outside the lock
  }
  std::shared_ptr<const Fn> get() const {
    std::lock_guard<std::mutex> lock(m_);
    return cur_;
  }

 private:
  mutable std::mutex m_;
  std::shared_ptr<const Fn> cur_;
};

// Last-resort report; never throws.
inline void printToStderr(const std::string &text) noexcept {
  try {
    std::cerr << text << std::endl;
  } catch (...) {
  }
}

inline std::string describe(std::exception_ptr e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception &x) {
    try {
      return x.what();
    } catch (...) {
    }
  } catch (...) {
  }
  return "unknown exception";
}

inline void defaultExceptionReport(int clientId, const char *worker,
                                   std::exception_ptr e) noexcept {
  try {
    std::string text = "tcpgo: the ";
    text += worker;
    text += " worker";
    if (clientId > 0) text += " of client " + std::to_string(clientId);
    text += " threw: ";
    text += describe(e);
    printToStderr(text);
  } catch (...) {
  }
}

// Runs fn and turns every exception into a report: nothing unwinds into the
// library.
template <class F>
void guarded(const Slot<void(const int, const std::string &,
                             std::exception_ptr)> &handler,
             int clientId, const char *worker, F &&fn) noexcept {
  try {
    fn();
    return;
  } catch (...) {
    std::exception_ptr e = std::current_exception();
    try {
      if (auto h = handler.get()) {
        (*h)(clientId, std::string(worker), e);
        return;
      }
    } catch (...) {
      printToStderr(std::string("tcpgo: the exception handler threw: ") +
                    describe(std::current_exception()));
    }
    defaultExceptionReport(clientId, worker, e);
  }
}

// Calls f(buf, buflen) -- a C function following the ABI's buffer
// convention -- with a buffer large enough for the whole string. A negative
// result is returned in *code with an empty string.
template <class F>
std::string fetchString(F &&f, int *code = nullptr) {
  char small[128];
  int n = f(small, sizeof small);
  if (code) *code = n < 0 ? n : 0;
  if (n < 0) return std::string();
  if (static_cast<size_t>(n) < sizeof small) return std::string(small, static_cast<size_t>(n));
  for (int tries = 0; tries < 4; tries++) {
    std::string s(static_cast<size_t>(n) + 1, '\0');
    int m = f(&s[0], s.size());
    if (m < 0) {
      if (code) *code = m;
      return std::string();
    }
    if (static_cast<size_t>(m) < s.size()) {
      s.resize(static_cast<size_t>(m));
      return s;
    }
    n = m;  // grew in between; try again
  }
  return std::string();
}

}  // namespace detail
}  // namespace tcp

#endif  // TCPGO_CPP_DETAIL_COMMON_H
