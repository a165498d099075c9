// A small strict JSON reader and writer helpers (core/io), for file headers such as safetensors'.
// RFC 8259 and nothing more: no comments, no trailing commas, no leading zeros, no NaN, no
// single quotes, no control characters inside strings, whitespace only space/tab/LF/CR; strings
// must be valid UTF-8 and \u escapes must pair surrogates. Plain C++17; no Node-API.
//
// JsonReader is a pull reader (no document tree): the caller walks the text value by value, so
// memory is only what the caller keeps (a hostile document cannot make the reader allocate more
// than the longest string in it), and nesting is capped at kMaxDepth (no deep recursion).
// Errors are kCorrupt with the byte offset: "at byte 17: expected ':' after an object key".
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"

namespace vlk {
namespace core {

class JsonReader {
 public:
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };

  /// A number as written: sign, whether it is an integer (no fraction, no exponent), its
  /// magnitude when it is an integer that fits in uint64 (overflow set otherwise), and its text.
  struct Number {
    bool negative = false;
    bool integer = true;
    bool overflow = false;
    uint64_t magnitude = 0;
    std::string text;
  };

  /// Deepest nesting of arrays and objects accepted.
  static constexpr int kMaxDepth = 128;

  /// Reads text[0 .. len). The text must stay alive and unchanged while the reader is used.
  JsonReader(const char* text, size_t len) : p_(text), n_(len) {}

  /// Skips whitespace and says what the next value is. kCorrupt at the end of the text or on a
  /// character that starts no value.
  Status peek(Kind* kind);

  /// '{' / '['. kCorrupt when the next value is something else, or nesting exceeds kMaxDepth.
  Status begin_object();
  Status begin_array();
  /// Object members: call after begin_object() until *has is false (the '}' is then consumed);
  /// after each member the caller reads (or skips) exactly one value. Handles the commas.
  Status next_member(bool* has, std::string* key);
  /// Array elements: as next_member, for arrays.
  Status next_element(bool* has);

  Status read_string(std::string* out);
  Status read_number(Number* out);
  Status read_bool(bool* out);
  Status read_null();
  /// Reads and discards one value of any kind (checked as strictly as the rest).
  Status skip_value();
  /// Only whitespace may remain.
  Status finish();

  /// Byte offset of the next unread character.
  size_t offset() const { return i_; }

 private:
  void skip_ws();
  Status error(const std::string& what) const;
  Status error_at(size_t at, const std::string& what) const;
  Status expect_value_start(char c, const char* what);
  Status read_hex4(uint32_t* out);
  Status skip_value_at(int depth);

  const char* p_;
  size_t n_;
  size_t i_ = 0;
  // One entry per open array/object: true while no member/element has been read yet.
  std::vector<bool> first_;
  std::vector<bool> is_object_;
};

/// Checks that text[0 .. len) is exactly one JSON value (plus whitespace) under JsonReader's rules.
Status json_validate(const char* text, size_t len);

/// Position of the first byte of data[0 .. len) that is not part of a valid UTF-8 sequence
/// (overlong forms, surrogates and code points above U+10FFFF are invalid), or len if all is valid.
size_t utf8_invalid_at(const uint8_t* data, size_t len);

/// Appends code point `cp` (<= U+10FFFF) encoded as UTF-8.
void append_utf8(std::string* out, uint32_t cp);

/// Appends `s` as a JSON string literal, escaped the way serde_json (the safetensors reference
/// implementation) does: \" \\ \b \f \n \r \t, other control characters as \u00xx, everything
/// else (including non-ASCII UTF-8 and '/') as is.
void json_append_quoted(std::string* out, std::string_view s);

}  // namespace core
}  // namespace vlk
