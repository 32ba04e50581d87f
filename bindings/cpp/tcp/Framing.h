// tcp/Framing.h -- tcp::Framing, how messages are cut on the wire (tcpgo
// extension).
//
// nilshenrich v2 knows two framings, chosen by the constructor: continuous
// (bytes as they arrive) and fragmented (messages ended by one delimiter
// byte). tcpgo adds length prefixes, multi-byte ends of line, text lines
// ended by CR, LF or CRLF, and fixed-length records. Pass a Framing to the
// constructor of TcpServer, TlsServer, TcpClient or TlsClient:
//
//     tcp::TcpServer server{tcp::Framing::LengthPrefixed(4, tcp::ByteOrder::BigEndian)};
//     tcp::TlsClient client{tcp::Framing::Tutorial()};
//     tcp::TcpServer lines{tcp::Framing::Lines(1024, tcp::Overlong::Parts)};
//
// The framing applies in both directions: sendMsg() frames what it sends
// (appends the end of line, puts the length in front) and the message
// worker gets whole messages without their framing. Both ends of a
// connection must use the same framing.
//
// Included by every class header; may also be included alone.
#ifndef TCPGO_CPP_FRAMING_H
#define TCPGO_CPP_FRAMING_H

#include <cstddef>
#include <string>

#if __has_include("../tcpgo.h")
#include "../tcpgo.h"
#else
#include <tcpgo.h>
#endif

namespace tcp {

/// Byte order of a length prefix.
enum class ByteOrder : int {
  BigEndian = TCP_BIG_ENDIAN,       ///< network order, most significant byte first
  LittleEndian = TCP_LITTLE_ENDIAN  ///< least significant byte first (x86 DWORD)
};

/// What a line framing (Eol, Lines) does with a received line longer than
/// its maximum length.
enum class Overlong : int {
  /// Close the connection (CloseReason::MessageTooLong; the error worker
  /// gets TCP_ERR_MESSAGE_TOO_LONG first).
  Close = TCP_OVERLONG_CLOSE,
  /// Deliver it in parts of maxLen bytes to the worker of
  /// setWorkOnMessageEx with complete == false, the last part with
  /// complete == true. (The v2 message worker gets every part as if it
  /// were a message.)
  Parts = TCP_OVERLONG_PARTS
};

/// The framing of a server or client, chosen at construction. A small
/// value type: copy it freely; the factories below are the only way to make
/// one. Arguments are checked when the server or client is constructed
/// (a bad one makes the constructor throw std::invalid_argument).
class Framing {
 public:
  /// The kind of framing.
  enum class Kind { Continuous, Delimiter, LengthPrefixed, Eol, Lines, Records };

  /// Bytes as they arrive, sent as given (v2's continuous mode, the
  /// default constructor's).
  static Framing Continuous() { return Framing(Kind::Continuous); }

  /// Messages ended by one delimiter byte (v2's fragmented mode, the
  /// (delimiter, messageMaxLen) constructor's). maxLen 0 = 16 MiB.
  static Framing Delimiter(const char delimiter, const std::size_t maxLen = 0) {
    Framing f(Kind::Delimiter);
    f.eol_.assign(1, delimiter);
    f.maxLen_ = maxLen;
    return f;
  }

  /// Each message preceded by its length (the message only, not the
  /// prefix) as an unsigned integer of prefixBytes (1, 2, 4 or 8) bytes in
  /// the given byte order. A received length over maxLen closes the
  /// connection before anything of the message is buffered
  /// (CloseReason::MessageTooLong). maxLen 0 = 16 MiB, or what the prefix
  /// can count when that is less (255 for 1 byte, 65535 for 2).
  static Framing LengthPrefixed(const int prefixBytes = 4,
                                const ByteOrder order = ByteOrder::BigEndian,
                                const std::size_t maxLen = 0) {
    Framing f(Kind::LengthPrefixed);
    f.prefixBytes_ = prefixBytes;
    f.order_ = order;
    f.maxLen_ = maxLen;
    if (maxLen == 0 && (prefixBytes == 1 || prefixBytes == 2))
      f.maxLen_ = prefixBytes == 1 ? 0xFFu : 0xFFFFu;
    return f;
  }

  /// The length prefix of the TLS tutorials tcpgo was specified from:
  /// 4 bytes, little-endian (TCP_TUTORIAL_PREFIX_BYTES,
  /// TCP_TUTORIAL_BYTE_ORDER).
  static Framing Tutorial(const std::size_t maxLen = 0) {
    return LengthPrefixed(TCP_TUTORIAL_PREFIX_BYTES,
                          static_cast<ByteOrder>(TCP_TUTORIAL_BYTE_ORDER), maxLen);
  }

  /// Messages ended by an end-of-line sequence of 1..256 bytes of any value,
  /// NUL included (std::string("\0\0", 2)). sendMsg appends it and refuses a
  /// message that contains it (SendResult::ContainsDelimiter). maxLen 0 =
  /// 16 MiB.
  static Framing Eol(std::string eol, const std::size_t maxLen = 0,
                     const Overlong overlong = Overlong::Close) {
    Framing f(Kind::Eol);
    f.eol_ = std::move(eol);
    f.maxLen_ = maxLen;
    f.overlong_ = overlong;
    return f;
  }

  /// Text lines: a received line ends at CR, LF or CRLF (also when the CR
  /// and the LF arrive in different reads); sendMsg appends sendEol
  /// (default "\r\n") and refuses a line holding CR or LF. maxLen 0 =
  /// 16 MiB.
  static Framing Lines(const std::size_t maxLen = 0, const Overlong overlong = Overlong::Close,
                       std::string sendEol = "\r\n") {
    Framing f(Kind::Lines);
    f.eol_ = std::move(sendEol);
    f.maxLen_ = maxLen;
    f.overlong_ = overlong;
    return f;
  }

  /// Fixed-length records of recordLen bytes (0 = bytes as they arrive, in
  /// pieces of at most maxLen). Changeable per connection while it runs
  /// (TcpServer::setRecordLength, TcpClient::setRecordLength). Sending is
  /// not framed: what you send goes out as given. recordLen may not exceed
  /// maxLen (0 = 16 MiB).
  static Framing Records(const std::size_t recordLen, const std::size_t maxLen = 0) {
    Framing f(Kind::Records);
    f.recordLen_ = recordLen;
    f.maxLen_ = maxLen;
    return f;
  }

  Kind kind() const noexcept { return kind_; }
  /// Maximum message length (0 = the library's default, 16 MiB).
  std::size_t maxLength() const noexcept { return maxLen_; }
  /// LengthPrefixed: 1, 2, 4 or 8.
  int prefixBytes() const noexcept { return prefixBytes_; }
  ByteOrder byteOrder() const noexcept { return order_; }
  /// Delimiter: the byte; Eol: the sequence; Lines: what sending appends.
  const std::string &endOfLine() const noexcept { return eol_; }
  Overlong overlong() const noexcept { return overlong_; }
  /// Records: the initial record length.
  std::size_t recordLength() const noexcept { return recordLen_; }

  /// A new C server handle with this framing, or nullptr (tcp_errcode()).
  tcp_server *newServer() const {
    switch (kind_) {
      case Kind::Continuous: return ::tcp_server_new();
      case Kind::Delimiter: return ::tcp_server_new_fragmented(eol_[0], maxLen_);
      case Kind::LengthPrefixed:
        return ::tcp_server_new_length_prefixed(prefixBytes_, static_cast<int>(order_), maxLen_);
      case Kind::Eol:
        return ::tcp_server_new_eol(eol_.data(), eol_.size(), maxLen_, static_cast<int>(overlong_));
      case Kind::Lines:
        return ::tcp_server_new_lines(eol_.c_str(), maxLen_, static_cast<int>(overlong_));
      case Kind::Records: return ::tcp_server_new_records(recordLen_, maxLen_);
    }
    return nullptr;
  }
  /// A new C client handle with this framing, or nullptr (tcp_errcode()).
  tcp_client *newClient() const {
    switch (kind_) {
      case Kind::Continuous: return ::tcp_client_new();
      case Kind::Delimiter: return ::tcp_client_new_fragmented(eol_[0], maxLen_);
      case Kind::LengthPrefixed:
        return ::tcp_client_new_length_prefixed(prefixBytes_, static_cast<int>(order_), maxLen_);
      case Kind::Eol:
        return ::tcp_client_new_eol(eol_.data(), eol_.size(), maxLen_, static_cast<int>(overlong_));
      case Kind::Lines:
        return ::tcp_client_new_lines(eol_.c_str(), maxLen_, static_cast<int>(overlong_));
      case Kind::Records: return ::tcp_client_new_records(recordLen_, maxLen_);
    }
    return nullptr;
  }

 private:
  explicit Framing(const Kind kind) noexcept : kind_(kind) {}

  Kind kind_;
  std::size_t maxLen_ = 0;
  int prefixBytes_ = 0;
  ByteOrder order_ = ByteOrder::BigEndian;
  std::string eol_;
  Overlong overlong_ = Overlong::Close;
  std::size_t recordLen_ = 0;
};

}  // namespace tcp

#endif  // TCPGO_CPP_FRAMING_H
