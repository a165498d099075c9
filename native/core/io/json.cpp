// Strict JSON pull reader (core/io). See json.hpp.
#include "io/json.hpp"

#include <cstdio>

namespace vlk {
namespace core {

namespace {

// Printable description of the character at p[i] for messages.
std::string describe_char(const char* p, size_t n, size_t i) {
  if (i >= n) return "the end of the text";
  const unsigned c = static_cast<unsigned char>(p[i]);
  char buf[32];
  if (c >= 0x20 && c < 0x7f) {
    std::snprintf(buf, sizeof(buf), "'%c'", char(c));
  } else {
    std::snprintf(buf, sizeof(buf), "byte 0x%02x", c);
  }
  return buf;
}

// Length of the valid UTF-8 sequence at p[0 .. n), or 0 if it is invalid.
size_t utf8_sequence(const uint8_t* p, size_t n) {
  const uint8_t c = p[0];
  if (c < 0x80) return 1;
  auto cont = [&](size_t k) { return k < n && (p[k] & 0xC0) == 0x80; };
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && p[1] < 0xA0) return 0;   // overlong
    if (c == 0xED && p[1] >= 0xA0) return 0;  // UTF-16 surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && p[1] < 0x90) return 0;   // overlong
    if (c == 0xF4 && p[1] >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;  // continuation byte, 0xC0/0xC1 (overlong) or 0xF5..0xFF
}


inline bool is_digit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

size_t utf8_invalid_at(const uint8_t* data, size_t len) {
  size_t i = 0;
  while (i < len) {
    if (data[i] < 0x80) {
      ++i;
      continue;
    }
    const size_t k = utf8_sequence(data + i, len - i);
    if (k == 0) return i;
    i += k;
  }
  return len;
}

void json_append_quoted(std::string* out, std::string_view s) {
  out->push_back('"');
  for (const char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\b': out->append("\\b"); break;
      case '\f': out->append("\\f"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out->append(buf);
        } else {
          out->push_back(ch);
        }
    }
  }
  out->push_back('"');
}

// ---- JsonReader ------------------------------------------------------------------------------
void JsonReader::skip_ws() {
  while (i_ < n_) {
    const char c = p_[i_];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    ++i_;
  }
}

Status JsonReader::error_at(size_t at, const std::string& what) const {
  return Status(Code::kCorrupt, "at byte " + std::to_string(at) + ": " + what);
}

Status JsonReader::error(const std::string& what) const { return error_at(i_, what); }

Status JsonReader::peek(Kind* kind) {
  skip_ws();
  if (i_ >= n_) return error("expected a value, found the end of the text");
  switch (p_[i_]) {
    case '{': *kind = Kind::kObject; return Status::Ok();
    case '[': *kind = Kind::kArray; return Status::Ok();
    case '"': *kind = Kind::kString; return Status::Ok();
    case 't':
    case 'f': *kind = Kind::kBool; return Status::Ok();
    case 'n': *kind = Kind::kNull; return Status::Ok();
    default:
      if (p_[i_] == '-' || is_digit(p_[i_])) {
        *kind = Kind::kNumber;
        return Status::Ok();
      }
      return error("expected a value, found " + describe_char(p_, n_, i_));
  }
}

Status JsonReader::expect_value_start(char c, const char* what) {
  skip_ws();
  if (i_ >= n_ || p_[i_] != c) {
    return error(std::string("expected ") + what + ", found " + describe_char(p_, n_, i_));
  }
  return Status::Ok();
}

Status JsonReader::begin_object() {
  VLK_RETURN_IF_ERROR(expect_value_start('{', "an object"));
  if (first_.size() >= size_t(kMaxDepth)) return error("nesting deeper than " + std::to_string(kMaxDepth));
  ++i_;
  first_.push_back(true);
  is_object_.push_back(true);
  return Status::Ok();
}

Status JsonReader::begin_array() {
  VLK_RETURN_IF_ERROR(expect_value_start('[', "an array"));
  if (first_.size() >= size_t(kMaxDepth)) return error("nesting deeper than " + std::to_string(kMaxDepth));
  ++i_;
  first_.push_back(true);
  is_object_.push_back(false);
  return Status::Ok();
}

Status JsonReader::next_member(bool* has, std::string* key) {
  if (first_.empty() || !is_object_.back()) return Status(Code::kInternal, "json: next_member outside an object");
  skip_ws();
  if (i_ < n_ && p_[i_] == '}') {
    ++i_;
    first_.pop_back();
    is_object_.pop_back();
    *has = false;
    return Status::Ok();
  }
  if (!first_.back()) {
    if (i_ >= n_ || p_[i_] != ',') return error("expected ',' or '}' in an object, found " + describe_char(p_, n_, i_));
    ++i_;
    skip_ws();
    if (i_ >= n_ || p_[i_] != '"') {
      return error("expected a string key after ',' (no trailing commas), found " + describe_char(p_, n_, i_));
    }
  } else if (i_ >= n_ || p_[i_] != '"') {
    return error("expected a string key or '}', found " + describe_char(p_, n_, i_));
  }
  VLK_RETURN_IF_ERROR(read_string(key));
  skip_ws();
  if (i_ >= n_ || p_[i_] != ':') return error("expected ':' after an object key, found " + describe_char(p_, n_, i_));
  ++i_;
  first_.back() = false;
  *has = true;
  return Status::Ok();
}

Status JsonReader::next_element(bool* has) {
  if (first_.empty() || is_object_.back()) return Status(Code::kInternal, "json: next_element outside an array");
  skip_ws();
  if (i_ < n_ && p_[i_] == ']') {
    ++i_;
    first_.pop_back();
    is_object_.pop_back();
    *has = false;
    return Status::Ok();
  }
  if (!first_.back()) {
    if (i_ >= n_ || p_[i_] != ',') return error("expected ',' or ']' in an array, found " + describe_char(p_, n_, i_));
    ++i_;
    skip_ws();
    if (i_ < n_ && p_[i_] == ']') return error("expected a value after ',' (no trailing commas), found ']'");
  }
  first_.back() = false;
  *has = true;
  return Status::Ok();
}

Status JsonReader::read_hex4(uint32_t* out) {
  if (n_ - i_ < 4) return error("truncated \\u escape");
  uint32_t v = 0;
  for (int k = 0; k < 4; ++k) {
    const char c = p_[i_ + k];
    uint32_t d;
    if (c >= '0' && c <= '9') {
      d = uint32_t(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      d = uint32_t(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      d = uint32_t(c - 'A' + 10);
    } else {
      return error_at(i_ + k, "invalid hex digit " + describe_char(p_, n_, i_ + k) + " in a \\u escape");
    }
    v = v << 4 | d;
  }
  i_ += 4;
  *out = v;
  return Status::Ok();
}

Status JsonReader::read_string(std::string* out) {
  VLK_RETURN_IF_ERROR(expect_value_start('"', "a string"));
  const size_t start = i_;
  ++i_;
  out->clear();
  const uint8_t* u = reinterpret_cast<const uint8_t*>(p_);
  while (true) {
    // Copy a run of plain characters at once.
    size_t j = i_;
    while (j < n_ && u[j] != '"' && u[j] != '\\' && u[j] >= 0x20 && u[j] < 0x80) ++j;
    out->append(p_ + i_, j - i_);
    i_ = j;
    if (i_ >= n_) return error_at(start, "unterminated string");
    const uint8_t c = u[i_];
    if (c == '"') {
      ++i_;
      return Status::Ok();
    }
    if (c < 0x20) return error("control character " + describe_char(p_, n_, i_) + " in a string (must be escaped)");
    if (c >= 0x80) {
      const size_t k = utf8_sequence(u + i_, n_ - i_);
      if (k == 0) return error("invalid UTF-8 in a string");
      out->append(p_ + i_, k);
      i_ += k;
      continue;
    }
    // Backslash.
    if (i_ + 1 >= n_) return error_at(start, "unterminated string");
    const char e = p_[i_ + 1];
    const size_t esc_at = i_;
    i_ += 2;
    switch (e) {
      case '"': out->push_back('"'); break;
      case '\\': out->push_back('\\'); break;
      case '/': out->push_back('/'); break;
      case 'b': out->push_back('\b'); break;
      case 'f': out->push_back('\f'); break;
      case 'n': out->push_back('\n'); break;
      case 'r': out->push_back('\r'); break;
      case 't': out->push_back('\t'); break;
      case 'u': {
        uint32_t cp = 0;
        VLK_RETURN_IF_ERROR(read_hex4(&cp));
        if (cp >= 0xDC00 && cp <= 0xDFFF) return error_at(esc_at, "lone low surrogate \\u escape");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          if (n_ - i_ < 2 || p_[i_] != '\\' || p_[i_ + 1] != 'u') {
            return error_at(esc_at, "high surrogate \\u escape not followed by a low surrogate");
          }
          i_ += 2;
          uint32_t lo = 0;
          VLK_RETURN_IF_ERROR(read_hex4(&lo));
          if (lo < 0xDC00 || lo > 0xDFFF) {
            return error_at(esc_at, "high surrogate \\u escape not followed by a low surrogate");
          }
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        append_utf8(out, cp);
        break;
      }
      default:
        return error_at(esc_at, "invalid escape \\" + (e >= 0x20 && e < 0x7f ? std::string(1, e) : describe_char(p_, n_, esc_at + 1)));
    }
  }
}

Status JsonReader::read_number(Number* out) {
  skip_ws();
  const size_t start = i_;
  Number num;
  if (i_ < n_ && p_[i_] == '-') {
    num.negative = true;
    ++i_;
  }
  if (i_ >= n_ || !is_digit(p_[i_])) return error("expected a digit, found " + describe_char(p_, n_, i_));
  if (p_[i_] == '0') {
    ++i_;
    if (i_ < n_ && is_digit(p_[i_])) return error_at(start, "number with a leading zero");
  } else {
    while (i_ < n_ && is_digit(p_[i_])) {
      const uint64_t d = uint64_t(p_[i_] - '0');
      if (num.magnitude > (UINT64_MAX - d) / 10) num.overflow = true;
      if (!num.overflow) num.magnitude = num.magnitude * 10 + d;
      ++i_;
    }
  }
  if (i_ < n_ && p_[i_] == '.') {
    num.integer = false;
    ++i_;
    if (i_ >= n_ || !is_digit(p_[i_])) return error("expected a digit after '.', found " + describe_char(p_, n_, i_));
    while (i_ < n_ && is_digit(p_[i_])) ++i_;
  }
  if (i_ < n_ && (p_[i_] == 'e' || p_[i_] == 'E')) {
    num.integer = false;
    ++i_;
    if (i_ < n_ && (p_[i_] == '+' || p_[i_] == '-')) ++i_;
    if (i_ >= n_ || !is_digit(p_[i_])) return error("expected a digit in the exponent, found " + describe_char(p_, n_, i_));
    while (i_ < n_ && is_digit(p_[i_])) ++i_;
  }
  if (!num.integer) {
    num.overflow = false;
    num.magnitude = 0;
  }
  num.text.assign(p_ + start, i_ - start);
  *out = std::move(num);
  return Status::Ok();
}

Status JsonReader::read_bool(bool* out) {
  skip_ws();
  if (n_ - i_ >= 4 && std::string_view(p_ + i_, 4) == "true") {
    i_ += 4;
    *out = true;
    return Status::Ok();
  }
  if (n_ - i_ >= 5 && std::string_view(p_ + i_, 5) == "false") {
    i_ += 5;
    *out = false;
    return Status::Ok();
  }
  return error("expected true or false");
}

Status JsonReader::read_null() {
  skip_ws();
  if (n_ - i_ >= 4 && std::string_view(p_ + i_, 4) == "null") {
    i_ += 4;
    return Status::Ok();
  }
  return error("expected null");
}

Status JsonReader::skip_value() { return skip_value_at(0); }

Status JsonReader::skip_value_at(int depth) {
  Kind kind;
  VLK_RETURN_IF_ERROR(peek(&kind));
  switch (kind) {
    case Kind::kNull: return read_null();
    case Kind::kBool: {
      bool b;
      return read_bool(&b);
    }
    case Kind::kNumber: {
      Number num;
      return read_number(&num);
    }
    case Kind::kString: {
      std::string s;
      return read_string(&s);
    }
    case Kind::kArray: {
      VLK_RETURN_IF_ERROR(begin_array());
      bool has = true;
      while (true) {
        VLK_RETURN_IF_ERROR(next_element(&has));
        if (!has) return Status::Ok();
        VLK_RETURN_IF_ERROR(skip_value_at(depth + 1));
      }
    }
    case Kind::kObject: {
      VLK_RETURN_IF_ERROR(begin_object());
      bool has = true;
      std::string key;
      while (true) {
        VLK_RETURN_IF_ERROR(next_member(&has, &key));
        if (!has) return Status::Ok();
        VLK_RETURN_IF_ERROR(skip_value_at(depth + 1));
      }
    }
  }
  return Status(Code::kInternal, "json: unknown kind");
}

Status JsonReader::finish() {
  skip_ws();
  if (i_ < n_) return error("unexpected " + describe_char(p_, n_, i_) + " after the end of the value");
  return Status::Ok();
}

Status json_validate(const char* text, size_t len) {
  JsonReader r(text, len);
  VLK_RETURN_IF_ERROR(r.skip_value());
  return r.finish();
}

void append_utf8(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    out->push_back(char(cp));
  } else if (cp < 0x800) {
    out->push_back(char(0xC0 | (cp >> 6)));
    out->push_back(char(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(char(0xE0 | (cp >> 12)));
    out->push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(char(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(char(0xF0 | (cp >> 18)));
    out->push_back(char(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(char(0x80 | (cp & 0x3F)));
  }
}

}  // namespace core
}  // namespace vlk
