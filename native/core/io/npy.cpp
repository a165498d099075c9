// The .npy header parser (core/io), see npy.hpp. The dict text is handled as UTF-16 code units
// (latin1 bytes one unit each; version 3's UTF-8 decoded with U+FFFD for invalid sequences), so
// that "at character N" positions and whitespace are what a JavaScript reader of the same bytes
// sees, and the messages stay the ones lib/vectors_io.ts documents.
#include "io/npy.hpp"

#include <cstring>
#include <new>
#include <stdexcept>
#include <string_view>
#include <unordered_set>
#include <utility>

#include "io/json.hpp"  // append_utf8

namespace vlk {
namespace core {

namespace {

using Units = std::u16string;
using npy_format::kMaxSafeInteger;

constexpr int32_t kEnd = -1;  // at(i) past the end of the text

bool host_big_endian() {
  const uint16_t one = 1;
  uint8_t first = 0;
  std::memcpy(&first, &one, 1);
  return first == 0;
}

uint32_t load_u16le(const uint8_t* p) { return uint32_t(p[0]) | (uint32_t(p[1]) << 8); }

uint32_t load_u32le(const uint8_t* p) {
  return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}

void push_code_point(Units* out, uint32_t cp) {
  if (cp < 0x10000) {
    out->push_back(char16_t(cp));
  } else {
    cp -= 0x10000;
    out->push_back(char16_t(0xD800 + (cp >> 10)));
    out->push_back(char16_t(0xDC00 + (cp & 0x3FF)));
  }
}

// The WHATWG UTF-8 decoder (what Node's Buffer#toString('utf8') implements): each maximal invalid
// subsequence becomes one U+FFFD.
void decode_utf8(const uint8_t* p, int64_t n, Units* out) {
  out->reserve(size_t(n));
  uint32_t cp = 0;
  int needed = 0, seen = 0;
  uint8_t lower = 0x80, upper = 0xBF;
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t b = p[i];
    if (needed == 0) {
      if (b <= 0x7F) {
        out->push_back(char16_t(b));
      } else if (b >= 0xC2 && b <= 0xDF) {
        needed = 1;
        cp = b & 0x1Fu;
      } else if (b >= 0xE0 && b <= 0xEF) {
        if (b == 0xE0) lower = 0xA0;
        if (b == 0xED) upper = 0x9F;
        needed = 2;
        cp = b & 0x0Fu;
      } else if (b >= 0xF0 && b <= 0xF4) {
        if (b == 0xF0) lower = 0x90;
        if (b == 0xF4) upper = 0x8F;
        needed = 3;
        cp = b & 0x07u;
      } else {
        out->push_back(u'\uFFFD');
      }
      continue;
    }
    if (b < lower || b > upper) {
      cp = 0;
      needed = seen = 0;
      lower = 0x80;
      upper = 0xBF;
      out->push_back(u'\uFFFD');
      --i;  // the byte starts over as the first of a sequence
      continue;
    }
    lower = 0x80;
    upper = 0xBF;
    cp = (cp << 6) | (b & 0x3Fu);
    if (++seen == needed) {
      push_code_point(out, cp);
      cp = 0;
      needed = seen = 0;
    }
  }
  if (needed != 0) out->push_back(u'\uFFFD');
}

// JavaScript's \s (WhiteSpace and LineTerminator), which String#trimEnd also trims.
bool is_js_space(int32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
         c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000 || c == 0xFEFF;
}

void append_u_escape(std::string* out, uint32_t unit) {
  static const char kHex[] = "0123456789abcdef";
  out->append("\\u");
  for (int shift = 12; shift >= 0; shift -= 4) out->push_back(kHex[(unit >> shift) & 0xF]);
}

// Appends s[b, e) as printable UTF-8: C0 and C1 controls (and DEL) escaped as JSON.stringify
// escapes C0 controls (\n, \t, \u0007), lone surrogates as \udXXX. With `json`, also '"' and
// '\\' escaped and the whole wrapped in double quotes: JSON.stringify's output for printable text.
void append_escaped(std::string* out, const Units& s, size_t b, size_t e, bool json) {
  if (json) out->push_back('"');
  for (size_t k = b; k < e; ++k) {
    const uint32_t c = s[k];
    if (c >= 0xD800 && c <= 0xDBFF && k + 1 < e && s[k + 1] >= 0xDC00 && s[k + 1] <= 0xDFFF) {
      append_utf8(out, 0x10000 + ((c - 0xD800) << 10) + (uint32_t(s[k + 1]) - 0xDC00));
      ++k;
      continue;
    }
    if (c >= 0xD800 && c <= 0xDFFF) {
      append_u_escape(out, c);
      continue;
    }
    switch (c) {
      case '\b': out->append("\\b"); continue;
      case '\t': out->append("\\t"); continue;
      case '\n': out->append("\\n"); continue;
      case '\f': out->append("\\f"); continue;
      case '\r': out->append("\\r"); continue;
      default: break;
    }
    if (c < 0x20 || (c >= 0x7F && c <= 0x9F)) {
      append_u_escape(out, c);
    } else if (json && (c == '"' || c == '\\')) {
      out->push_back('\\');
      out->push_back(char(c));
    } else {
      append_utf8(out, c);
    }
  }
  if (json) out->push_back('"');
}

// Quoted keys and descr values are cut after 256 characters (a hostile header can hold a key of
// megabytes).
std::string escaped(const Units& s, size_t b, size_t e) {
  constexpr size_t kQuoteMax = 256;
  std::string out;
  append_escaped(&out, s, b, e - b > kQuoteMax ? b + kQuoteMax : e, false);
  if (e - b > kQuoteMax) out += "... (" + std::to_string(e - b) + " characters)";
  return out;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t d = 0; d < shape.size(); ++d) {
    if (d > 0) s += ", ";
    s += std::to_string(shape[d]);
  }
  return s + ")";
}

bool equals_ascii(const Units& s, size_t b, size_t e, const char* lit) {
  const size_t n = std::strlen(lit);
  if (e - b != n) return false;
  for (size_t k = 0; k < n; ++k) {
    if (s[b + k] != char16_t(static_cast<unsigned char>(lit[k]))) return false;
  }
  return true;
}

enum class ValueType { kNone, kString, kBool, kTuple, kList };

struct Value {
  ValueType type = ValueType::kNone;
  size_t begin = 0, end = 0;  // kString: the text between the quotes
  bool flag = false;          // kBool
};

// The dict literal's parser: one pass, no recursion ([...] lists are skipped by a depth counter).
class DictParser {
 public:
  explicit DictParser(const Units& text) : t_(text), n_(text.size()) {}

  Status Parse() {
    SkipSpace();
    if (At(i_) != '{') return Bad("expected '{'");
    ++i_;
    std::unordered_set<std::u16string_view> keys;
    const std::u16string_view all(t_);
    for (;;) {
      SkipSpace();
      if (At(i_) == '}') break;
      size_t kb = 0, ke = 0;
      VLK_RETURN_IF_ERROR(QuotedString(&kb, &ke));
      SkipSpace();
      if (At(i_) != ':') return Bad("expected ':'");
      ++i_;
      SkipSpace();
      if (!keys.insert(all.substr(kb, ke - kb)).second) return Bad("duplicate key '" + escaped(t_, kb, ke) + "'");
      Value* slot = nullptr;
      if (equals_ascii(t_, kb, ke, "descr")) {
        slot = &descr;
      } else if (equals_ascii(t_, kb, ke, "fortran_order")) {
        slot = &fortran_order;
      } else if (equals_ascii(t_, kb, ke, "shape")) {
        slot = &shape;
      } else if (!has_unexpected) {
        has_unexpected = true;
        unexpected_begin = kb;
        unexpected_end = ke;
      }
      Value v;
      std::vector<int64_t>* dims = slot == &shape ? &shape_dims : &scratch_dims;
      VLK_RETURN_IF_ERROR(ParseValue(&v, dims));
      if (slot != nullptr) *slot = v;
      SkipSpace();
      if (At(i_) == ',') {
        ++i_;
      } else if (At(i_) != '}') {
        return Bad("expected ',' or '}'");
      }
    }
    ++i_;
    SkipSpace();
    if (i_ != n_) return Bad("unexpected text after '}'");
    return Status::Ok();
  }

  Value descr, fortran_order, shape;
  std::vector<int64_t> shape_dims;
  bool has_unexpected = false;
  size_t unexpected_begin = 0, unexpected_end = 0;

 private:
  int32_t At(size_t k) const { return k < n_ ? int32_t(t_[k]) : kEnd; }

  void SkipSpace() {
    while (i_ < n_ && is_js_space(t_[i_])) ++i_;
  }

  Status Bad(const std::string& what) const {
    size_t end = n_;
    while (end > 0 && is_js_space(t_[end - 1])) --end;
    std::string m = "header dict: " + what + " at character " + std::to_string(i_) + " of ";
    // A header can be megabytes: past kQuoteMax characters the message quotes a window around
    // the position instead of the whole text, so an error message stays small.
    constexpr size_t kQuoteMax = 1024;
    if (end <= kQuoteMax) {
      append_escaped(&m, t_, 0, end, true);
    } else {
      const size_t from = i_ > kQuoteMax / 4 ? i_ - kQuoteMax / 4 : 0;
      const size_t to = from + kQuoteMax / 2 < end ? from + kQuoteMax / 2 : end;
      m += "a " + std::to_string(end) + "-character header, characters " + std::to_string(from) + ".." +
           std::to_string(to) + ": ";
      append_escaped(&m, t_, from, to, true);
    }
    return Status(Code::kCorrupt, std::move(m));
  }

  Status QuotedString(size_t* b, size_t* e) {
    const int32_t q = At(i_);
    if (q != '\'' && q != '"') return Bad("expected a quoted string");
    size_t end = i_ + 1;
    while (end < n_ && t_[end] != char16_t(q)) ++end;
    if (end >= n_) return Bad("unterminated string");
    *b = i_ + 1;
    *e = end;
    i_ = end + 1;
    return Status::Ok();
  }

  // /^\d+L?/ then the value, which must be <= 2^53 - 1 (checked after consuming the digits).
  Status Int(int64_t* out) {
    size_t k = i_;
    int64_t v = 0;
    bool big = false;
    while (k < n_ && t_[k] >= '0' && t_[k] <= '9') {
      if (!big) {
        v = v * 10 + (t_[k] - '0');
        if (v > kMaxSafeInteger) big = true;
      }
      ++k;
    }
    if (k == i_) return Bad("expected a non-negative integer");
    if (k < n_ && t_[k] == 'L') ++k;
    const size_t start = i_;
    i_ = k;
    if (big) return Bad("dimension " + escaped(t_, start, k) + " is above 2^53 - 1");
    *out = v;
    return Status::Ok();
  }

  Status ParseValue(Value* v, std::vector<int64_t>* dims) {
    const int32_t c = At(i_);
    if (c == '\'' || c == '"') {
      v->type = ValueType::kString;
      return QuotedString(&v->begin, &v->end);
    }
    if (StartsWith("True")) {
      i_ += 4;
      v->type = ValueType::kBool;
      v->flag = true;
      return Status::Ok();
    }
    if (StartsWith("False")) {
      i_ += 5;
      v->type = ValueType::kBool;
      v->flag = false;
      return Status::Ok();
    }
    if (c == '(') {
      ++i_;
      dims->clear();
      SkipSpace();
      while (At(i_) != ')') {
        int64_t d = 0;
        VLK_RETURN_IF_ERROR(Int(&d));
        dims->push_back(d);
        SkipSpace();
        if (At(i_) == ',') {
          ++i_;
          SkipSpace();
        } else if (At(i_) != ')') {
          return Bad("expected ',' or ')' in the shape tuple");
        }
      }
      ++i_;
      v->type = ValueType::kTuple;
      return Status::Ok();
    }
    if (c == '[') {
      // A structured dtype's field list: skipped as a whole (it is rejected as a dtype).
      size_t depth = 0;
      for (; i_ < n_; ++i_) {
        if (t_[i_] == '[') {
          ++depth;
        } else if (t_[i_] == ']' && --depth == 0) {
          break;
        }
      }
      if (depth != 0) return Bad("unterminated list");
      ++i_;
      v->type = ValueType::kList;
      return Status::Ok();
    }
    return Bad("expected a string, True, False or a tuple");
  }

  bool StartsWith(const char* lit) const {
    const size_t n = std::strlen(lit);
    return n_ - i_ >= n && equals_ascii(t_, i_, i_ + n, lit);
  }

  const Units& t_;
  const size_t n_;
  size_t i_ = 0;
  std::vector<int64_t> scratch_dims;  // tuples of keys other than 'shape' (validated, then dropped)
};

// 'descr': /^([<>|=])([a-zA-Z])(\d+)$/ with a known (kind, size).
Status ParseDescr(const Units& t, size_t b, size_t e, NpyHeader* h) {
  const std::string descr_text = escaped(t, b, e);
  const auto unsupported = [&]() {
    return Status(Code::kType, "header 'descr': unsupported dtype '" + descr_text +
                                   "' (supported: float16/32/64, int8-64, uint8-64, bool, in either byte order)");
  };
  if (e - b < 3) return unsupported();
  const char16_t order = t[b];
  const char16_t kind = t[b + 1];
  if (order != '<' && order != '>' && order != '|' && order != '=') return unsupported();
  if (!((kind >= 'a' && kind <= 'z') || (kind >= 'A' && kind <= 'Z'))) return unsupported();
  int64_t size = 0;  // saturates: only 1, 2, 4 and 8 matter, leading zeros allowed as Number() allows
  for (size_t k = b + 2; k < e; ++k) {
    if (t[k] < '0' || t[k] > '9') return unsupported();
    if (size < 1000) size = size * 10 + (t[k] - '0');
  }
  bool known = false;
  switch (kind) {
    case 'f': known = size == 2 || size == 4 || size == 8; break;
    case 'i':
    case 'u': known = size == 1 || size == 2 || size == 4 || size == 8; break;
    case 'b': known = size == 1; break;
    default: break;
  }
  if (!known) return unsupported();
  if (order == '|' && size > 1) {
    return Status(Code::kCorrupt,
                  "header 'descr': '" + descr_text + "' has no byte order but " + std::to_string(size) + "-byte elements");
  }
  h->descr = descr_text;  // ASCII: the checks above admit nothing else
  h->kind = char(kind);
  h->item_size = int(size);
  h->big_endian = size > 1 && (order == '>' || (order == '=' && host_big_endian()));
  return Status::Ok();
}

Status ParseHeaderText(const Units& text, int64_t file_size, NpyHeader* h) {
  DictParser p(text);
  VLK_RETURN_IF_ERROR(p.Parse());
  if (p.has_unexpected) {
    return Status(Code::kCorrupt, "header dict: unexpected key '" + escaped(text, p.unexpected_begin, p.unexpected_end) +
                                      "' (a .npy header has descr, fortran_order, shape)");
  }
  if (p.descr.type == ValueType::kNone) return Status(Code::kCorrupt, "header 'descr': missing");
  if (p.descr.type != ValueType::kString) {
    return Status(Code::kType, "header 'descr': unsupported dtype: a structured (record) dtype");
  }
  if (p.fortran_order.type != ValueType::kBool) {
    return Status(Code::kCorrupt, std::string("header 'fortran_order': ") +
                                      (p.fortran_order.type == ValueType::kNone ? "missing" : "not True or False"));
  }
  if (p.shape.type != ValueType::kTuple) {
    return Status(Code::kCorrupt, std::string("header 'shape': ") +
                                      (p.shape.type == ValueType::kNone ? "missing" : "not a tuple of integers"));
  }
  VLK_RETURN_IF_ERROR(ParseDescr(text, p.descr.begin, p.descr.end, h));
  h->fortran_order = p.fortran_order.flag;
  h->shape = std::move(p.shape_dims);
  // count * item_size <= 2^53 - 1, multiplied step by step so nothing overflows; an empty array
  // (a 0 dimension) holds no bytes whatever its other dimensions.
  int64_t count = 1;
  bool zero = false;
  for (int64_t d : h->shape) zero = zero || d == 0;
  if (zero) {
    count = 0;
  } else {
    const int64_t limit = kMaxSafeInteger / h->item_size;
    for (int64_t d : h->shape) {
      if (count > limit / d) {
        return Status(Code::kShape, "header 'shape': " + shape_text(h->shape) + " x " + std::to_string(h->item_size) +
                                        " bytes overflows 2^53 - 1");
      }
      count *= d;
    }
  }
  h->count = count;
  const int64_t expected = count * h->item_size;
  const int64_t actual = file_size - h->data_offset;
  if (actual != expected) {
    return Status(Code::kCorrupt, "data: shape " + shape_text(h->shape) + " of '" + h->descr + "' needs " +
                                      std::to_string(expected) + " bytes after the " + std::to_string(h->data_offset) +
                                      "-byte header, the file has " + std::to_string(actual));
  }
  return Status::Ok();
}

}  // namespace

Status parse_npy_preamble(const uint8_t* data, int64_t len, int64_t file_size, NpyPreamble* out) {
  if (len < 0 || file_size < 0 || (data == nullptr && len > 0)) {
    return Status(Code::kInvalidArg, "npy preamble: len " + std::to_string(len) + ", file size " +
                                         std::to_string(file_size) + " (expected non-negative, data for len > 0)");
  }
  if (file_size < npy_format::kPreambleMin) {
    return Status(Code::kCorrupt, "magic: the file has " + std::to_string(file_size) +
                                      " bytes, fewer than a .npy preamble (10)");
  }
  if (len < npy_format::kPreambleMin) {
    return Status(Code::kInvalidArg, "npy preamble: " + std::to_string(len) + " bytes given, 10 needed");
  }
  if (data[0] != 0x93 || std::memcmp(data + 1, "NUMPY", 5) != 0) {
    const Units magic(data, data + 6);
    std::string m = "magic: expected \\x93NUMPY, found ";
    append_escaped(&m, magic, 0, magic.size(), true);
    return Status(Code::kCorrupt, std::move(m));
  }
  NpyPreamble p;
  p.major = data[6];
  p.minor = data[7];
  if (p.major == 1) {
    p.header_len = load_u16le(data + 8);
    p.header_start = 10;
  } else if (p.major == 2 || p.major == 3) {
    if (file_size < npy_format::kPreambleMax) {
      return Status(Code::kCorrupt, "header length: the file has " + std::to_string(file_size) + " bytes, fewer than a v" +
                                        std::to_string(p.major) + " preamble (12)");
    }
    if (len < npy_format::kPreambleMax) {
      return Status(Code::kInvalidArg, "npy preamble: " + std::to_string(len) + " bytes given, 12 needed");
    }
    p.header_len = load_u32le(data + 8);
    p.header_start = 12;
  } else {
    return Status(Code::kCorrupt, "version: format version " + std::to_string(p.major) + "." + std::to_string(p.minor) +
                                      " (1, 2 and 3 are known)");
  }
  // header_len < 2^32 and header_start <= 12: no overflow.
  if (p.header_start + p.header_len > file_size) {
    return Status(Code::kCorrupt, "header: truncated: " + std::to_string(p.header_len) + " header bytes announced, " +
                                      std::to_string(file_size - p.header_start) + " in the file");
  }
  *out = p;
  return Status::Ok();
}

Status parse_npy_header(const uint8_t* data, int64_t len, int64_t file_size, NpyHeader* out) {
  NpyPreamble pre;
  VLK_RETURN_IF_ERROR(parse_npy_preamble(data, len, file_size, &pre));
  const int64_t end = pre.header_start + pre.header_len;
  if (len < end) {
    return Status(Code::kInvalidArg, "npy header: " + std::to_string(len) + " bytes given, the header ends at byte " +
                                         std::to_string(end));
  }
  try {
    Units text;
    if (pre.major == 3) {
      decode_utf8(data + pre.header_start, pre.header_len, &text);
    } else {
      text.assign(data + pre.header_start, data + end);
    }
    NpyHeader h;
    h.preamble = pre;
    h.data_offset = end;
    VLK_RETURN_IF_ERROR(ParseHeaderText(text, file_size, &h));
    *out = std::move(h);
    return Status::Ok();
  } catch (const std::bad_alloc&) {
  } catch (const std::length_error&) {
  }
  return Status(Code::kOutOfMemory, "header: out of memory parsing " + std::to_string(pre.header_len) + " header bytes");
}

}  // namespace core
}  // namespace vlk
