// C++ core tests of the .npy header parser (test/native, core/io/npy): valid headers of every
// version, dtype, byte order, order and shape; malformed headers with their exact code and message;
// every truncation and random byte flips, parsed from exact-size buffers so that a sanitizer build
// sees any read past the end, never crash and keep the header's invariants.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "common/status.hpp"
#include "io/npy.hpp"
#include "test_util.hpp"
#include "vlk_test.hpp"

namespace {

using vlk::Code;
using vlk::Status;
using vlk::core::NpyHeader;
using vlk::core::NpyPreamble;
using vlk_test::Rng;
using Bytes = std::vector<uint8_t>;

constexpr int64_t kSafe = (int64_t{1} << 53) - 1;

bool host_big_endian() {
  const uint16_t one = 1;
  uint8_t first = 0;
  std::memcpy(&first, &one, 1);
  return first == 0;
}

// Preamble + `dict` (padded with spaces and a '\n' so that the data starts at a multiple of 64,
// as numpy writes it, unless raw) + `data_bytes` data bytes.
Bytes npy_file(const std::string& dict, int version, int64_t data_bytes, bool raw = false) {
  const size_t pre = version == 1 ? 10 : 12;
  std::string text = dict;
  if (!raw) {
    while ((pre + text.size() + 1) % 64 != 0) text += ' ';
    text += '\n';
  }
  Bytes b = {0x93, 'N', 'U', 'M', 'P', 'Y', uint8_t(version), 0};
  const uint64_t n = text.size();
  for (size_t k = 0; k < pre - 8; ++k) b.push_back(uint8_t(n >> (8 * k)));
  b.insert(b.end(), text.begin(), text.end());
  for (int64_t k = 0; k < data_bytes; ++k) b.push_back(uint8_t(k * 13 + 5));
  return b;
}

std::string dict_of(const std::string& descr, bool fortran, const std::string& shape) {
  return "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") + ", 'shape': " + shape + ", }";
}

// As lib/vectors_io.ts reads a file: the first min(12, size) bytes, then exactly the header's
// bytes, each in a buffer of its own size.
Status parse_like_js(const Bytes& file, NpyHeader* h) {
  const int64_t size = int64_t(file.size());
  Bytes pre(file.begin(), file.begin() + std::min<int64_t>(12, size));
  NpyPreamble p;
  Status st = vlk::core::parse_npy_preamble(pre.data(), int64_t(pre.size()), size, &p);
  if (!st.ok()) return st;
  Bytes head(file.begin(), file.begin() + (p.header_start + p.header_len));
  return vlk::core::parse_npy_header(head.data(), int64_t(head.size()), size, h);
}

// As a fuzz target calls it: the whole buffer, its own size as the file size.
Status parse_whole(const Bytes& file, NpyHeader* h) {
  Bytes copy(file);
  return vlk::core::parse_npy_header(copy.empty() ? nullptr : copy.data(), int64_t(copy.size()), int64_t(copy.size()), h);
}

// JSON.stringify of printable ASCII text, as the messages quote the header.
std::string json(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string trim_end(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\t')) s.pop_back();
  return s;
}

// The header text of npy_file(dict, version, ...) (padding included).
std::string padded(const std::string& dict, int version) {
  const Bytes f = npy_file(dict, version, 0);
  return std::string(f.begin() + (version == 1 ? 10 : 12), f.end());
}

std::string dict_error(const std::string& what, size_t at, const std::string& dict) {
  return "header dict: " + what + " at character " + std::to_string(at) + " of " + json(trim_end(dict));
}

// Every byte printable UTF-8: well-formed sequences, no C0 control, DEL or C1 control.
bool printable_utf8(const std::string& s) {
  size_t k = 0;
  while (k < s.size()) {
    const uint8_t b = uint8_t(s[k]);
    if (b < 0x20 || b == 0x7F) return false;
    if (b < 0x80) {
      ++k;
      continue;
    }
    size_t n = 0;
    uint32_t cp = 0, min = 0;
    if (b >= 0xC2 && b <= 0xDF) {
      n = 1, cp = b & 0x1Fu, min = 0x80;
    } else if (b >= 0xE0 && b <= 0xEF) {
      n = 2, cp = b & 0x0Fu, min = 0x800;
    } else if (b >= 0xF0 && b <= 0xF4) {
      n = 3, cp = b & 0x07u, min = 0x10000;
    } else {
      return false;
    }
    if (s.size() - k <= n) return false;
    for (size_t j = 1; j <= n; ++j) {
      const uint8_t c = uint8_t(s[k + j]);
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || (cp >= 0x80 && cp <= 0x9F)) return false;
    k += n + 1;
  }
  return true;
}

struct Dtype {
  const char* code;  // without the order character
  char kind;
  int size;
};

const Dtype kDtypes[] = {{"f2", 'f', 2}, {"f4", 'f', 4}, {"f8", 'f', 8}, {"i1", 'i', 1}, {"i2", 'i', 2}, {"i4", 'i', 4},
                         {"i8", 'i', 8}, {"u1", 'u', 1}, {"u2", 'u', 2}, {"u4", 'u', 4}, {"u8", 'u', 8}, {"b1", 'b', 1}};

struct ShapeCase {
  const char* text;
  std::vector<int64_t> dims;
};

const ShapeCase kShapes[] = {
    {"()", {}},           {"(0,)", {0}},         {"(3,)", {3}},       {"(1,)", {1}},
    {"(2, 3)", {2, 3}},   {"(2, 3,)", {2, 3}},   {"(7,513)", {7, 513}}, {"(2L, 3L)", {2, 3}},
    {"(0, 5)", {0, 5}},   {"(513, 0)", {513, 0}}, {"(1, 2, 3, 4)", {1, 2, 3, 4}}, {"( 4 , 1 , )", {4, 1}},
};

// ---- valid headers ----------------------------------------------------------------------------

VLK_TEST(npy_valid_every_version_dtype_order_shape) {
  int checked = 0;
  for (int version = 1; version <= 3; ++version) {
    for (const Dtype& dt : kDtypes) {
      for (char order : {'<', '>', '|', '='}) {
        if (order == '|' && dt.size > 1) continue;
        for (bool fortran : {false, true}) {
          for (const ShapeCase& sc : kShapes) {
            int64_t count = 1;
            for (int64_t d : sc.dims) count *= d;
            const std::string descr = std::string(1, order) + dt.code;
            const Bytes f = npy_file(dict_of(descr, fortran, sc.text), version, count * dt.size);
            for (int mode = 0; mode < 2; ++mode) {
              NpyHeader h;
              const Status st = mode == 0 ? parse_like_js(f, &h) : parse_whole(f, &h);
              VLK_CHECK(st.ok()) << descr << " " << sc.text << " v" << version << ": " << st.message;
              if (!st.ok()) continue;
              VLK_CHECK_EQ(h.descr, descr);
              VLK_CHECK_EQ(h.kind, dt.kind);
              VLK_CHECK_EQ(h.item_size, dt.size);
              const bool big = dt.size > 1 && (order == '>' || (order == '=' && host_big_endian()));
              VLK_CHECK_EQ(h.big_endian, big) << descr;
              VLK_CHECK_EQ(h.fortran_order, fortran);
              VLK_CHECK(h.shape == sc.dims) << sc.text;
              VLK_CHECK_EQ(h.count, count);
              VLK_CHECK_EQ(h.preamble.major, version);
              VLK_CHECK_EQ(h.data_offset, int64_t(f.size()) - count * dt.size);
              VLK_CHECK_EQ(h.data_offset % 64, 0);
              ++checked;
            }
          }
        }
      }
    }
  }
  VLK_CHECK_EQ(checked, 3 * (9 * 3 + 3 * 4) * 2 * 12 * 2);
}

VLK_TEST(npy_valid_grammar_variants) {
  struct Case {
    std::string dict;
    int version;
    std::vector<int64_t> shape;
    bool fortran;
    std::string descr;
    int size;
  };
  const std::vector<Case> cases = {
      // numpy's own output, key order changed, no trailing comma, double quotes, no spaces
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 1, {2, 3}, false, "<f4", 4},
      {"{'shape': (3,), 'fortran_order': True, 'descr': '>f8'}", 1, {3}, true, ">f8", 8},
      {"{\"descr\":\"<i4\",\"fortran_order\":False,\"shape\":(5,)}", 2, {5}, false, "<i4", 4},
      {"  \t{ 'descr' : '|u1' ,\n 'fortran_order' :False , 'shape' : ( 7 , ) , }  \n", 1, {7}, false, "|u1", 1},
      // leading zeros in the size and in dimensions, L suffixes
      {"{'descr': '<f04', 'fortran_order': False, 'shape': (02, 0003L), }", 1, {2, 3}, false, "<f04", 4},
      // the largest dimension a JS number holds, in a shape with a 0 (no bytes)
      {"{'descr': '<f8', 'fortran_order': False, 'shape': (9007199254740991, 0), }", 1, {9007199254740991, 0}, false,
       "<f8", 8},
      // JavaScript whitespace: NBSP (latin1 0xA0) in version 1, U+3000 and U+FEFF in version 3
      {"{'descr':\xA0'<u2', 'fortran_order': False, 'shape': (4,)}", 1, {4}, false, "<u2", 2},
      {"{'descr':\xE3\x80\x80'<u2', 'fortran_order': False,\xEF\xBB\xBF'shape': (4,)}", 3, {4}, false, "<u2", 2},
      // brackets and quotes inside strings are plain characters
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", 3, {1}, false, "<f4", 4},
  };
  for (const Case& c : cases) {
    int64_t count = 1;
    for (int64_t d : c.shape) count *= d;
    const Bytes f = npy_file(c.dict, c.version, count * c.size);
    NpyHeader h;
    const Status st = parse_like_js(f, &h);
    VLK_CHECK(st.ok()) << c.dict << ": " << st.message;
    if (!st.ok()) continue;
    VLK_CHECK(h.shape == c.shape) << c.dict;
    VLK_CHECK_EQ(h.fortran_order, c.fortran);
    VLK_CHECK_EQ(h.descr, c.descr);
    VLK_CHECK_EQ(h.item_size, c.size);
    VLK_CHECK_EQ(h.count, count);
  }
  // Unpadded headers of any length (1 byte of header is not a dict, so the error is the dict's).
  const std::string d = dict_of("<f4", false, "(2,)");
  NpyHeader h;
  VLK_CHECK(parse_like_js(npy_file(d, 1, 8, true), &h).ok());
  VLK_CHECK_EQ(h.data_offset, int64_t(10 + d.size()));
}

// ---- malformed headers ------------------------------------------------------------------------

struct Bad {
  const char* name;
  Bytes file;
  Code code;
  std::string message;
};

Bytes with_byte(Bytes b, size_t at, uint8_t v) {
  b[at] = v;
  return b;
}

Bytes prefix(const Bytes& b, size_t n) { return Bytes(b.begin(), b.begin() + n); }

std::vector<Bad> bad_cases() {
  const std::string ok = dict_of("<f4", false, "(2, 3)");
  const Bytes good = npy_file(ok, 1, 24);
  std::vector<Bad> v;
  const auto dict_case = [&](const char* name, const std::string& dict, const std::string& what, size_t at) {
    v.push_back({name, npy_file(dict, 1, 24), Code::kCorrupt, dict_error(what, at, padded(dict, 1))});
  };
  const auto field_case = [&](const char* name, const std::string& dict, int64_t data, Code code, const std::string& m) {
    v.push_back({name, npy_file(dict, 1, data), code, m});
  };
  v.push_back({"shorter than the preamble", Bytes{0x93, 'N', 'U', 'M', 'P'}, Code::kCorrupt,
               "magic: the file has 5 bytes, fewer than a .npy preamble (10)"});
  v.push_back({"empty file", Bytes{}, Code::kCorrupt, "magic: the file has 0 bytes, fewer than a .npy preamble (10)"});
  {
    const std::string s = "PK\x03\x04 not numpy at all";
    v.push_back({"bad magic (zip)", Bytes(s.begin(), s.end()), Code::kCorrupt,
                 "magic: expected \\x93NUMPY, found \"PK\\u0003\\u0004 n\""});
  }
  v.push_back({"bad magic (NUMPX)", with_byte(good, 5, 'X'), Code::kCorrupt,
               "magic: expected \\x93NUMPY, found \"\\u0093NUMPX\""});
  v.push_back({"bad magic (quote, backslash, latin1)", with_byte(with_byte(with_byte(good, 0, '"'), 1, '\\'), 2, 0xE9),
               Code::kCorrupt, "magic: expected \\x93NUMPY, found \"\\\"\\\\\xC3\xA9MPY\""});
  v.push_back({"unknown version", with_byte(good, 6, 4), Code::kCorrupt,
               "version: format version 4.0 (1, 2 and 3 are known)"});
  v.push_back({"version 0.7", with_byte(with_byte(good, 6, 0), 7, 7), Code::kCorrupt,
               "version: format version 0.7 (1, 2 and 3 are known)"});
  v.push_back({"v2 shorter than its preamble", prefix(npy_file(ok, 2, 24), 11), Code::kCorrupt,
               "header length: the file has 11 bytes, fewer than a v2 preamble (12)"});
  v.push_back({"truncated header", prefix(good, 40), Code::kCorrupt,
               "header: truncated: 118 header bytes announced, 30 in the file"});
  v.push_back({"v3 header length 2^32 - 1", with_byte(with_byte(with_byte(with_byte(npy_file(ok, 3, 24), 8, 0xFF), 9, 0xFF), 10, 0xFF), 11, 0xFF),
               Code::kCorrupt, "header: truncated: 4294967295 header bytes announced, 140 in the file"});
  dict_case("no opening brace", "'descr': '<f4'", "expected '{'", 0);
  dict_case("unquoted key", "{descr: '<f4'}", "expected a quoted string", 1);
  dict_case("unterminated key", "{'descr: '<f4'", "expected ':'", 10);
  dict_case("unterminated string", "{'descr': '<f4, 'fortran_order': False}", "expected ',' or '}'", 17);
  {
    const std::string d = "{'descr': \"<f4";
    v.push_back({"unterminated string at the end", npy_file(d, 1, 24), Code::kCorrupt,
                 dict_error("unterminated string", 10, padded(d, 1))});
  }
  dict_case("missing colon", "{'descr' '<f4'}", "expected ':'", 9);
  dict_case("duplicate key", "{'descr': '<f4', 'descr': '<f8'}", "duplicate key 'descr'", 26);
  dict_case("missing comma", "{'descr': '<f4' 'shape': (1,)}", "expected ',' or '}'", 16);
  dict_case("text after the brace", ok + " x", "unexpected text after '}'", ok.size() + 1);
  dict_case("a second dict", ok + "{}", "unexpected text after '}'", ok.size());
  dict_case("integer value", "{'descr': 5}", "expected a string, True, False or a tuple", 10);
  dict_case("None value", "{'descr': None}", "expected a string, True, False or a tuple", 10);
  dict_case("lowercase true", "{'fortran_order': true}", "expected a string, True, False or a tuple", 18);
  dict_case("negative dimension", "{'shape': (-1,)}", "expected a non-negative integer", 11);
  dict_case("empty tuple element", "{'shape': (3,,)}", "expected a non-negative integer", 13);
  dict_case("unclosed tuple", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3}", "expected ',' or ')' in the shape tuple",
            55);
  dict_case("float dimension", "{'shape': (2.5,)}", "expected ',' or ')' in the shape tuple", 12);
  dict_case("dimension 2^53", "{'shape': (9007199254740992, 1)}", "dimension 9007199254740992 is above 2^53 - 1", 27);
  dict_case("dimension 10^40 with L", "{'shape': (10000000000000000000000000000000000000000L,)}",
            "dimension 10000000000000000000000000000000000000000L is above 2^53 - 1", 53);
  {
    const std::string d = "{'descr': [('a', '<f4')";
    v.push_back({"unterminated list", npy_file(d, 1, 24), Code::kCorrupt,
                 dict_error("unterminated list", padded(d, 1).size(), padded(d, 1))});
  }
  v.push_back({"control character", npy_file("{'descr': '<f4',\x07 'shape': (1,)}", 1, 24), Code::kCorrupt,
               "header dict: expected a quoted string at character 16 of \"{'descr': '<f4',\\u0007 'shape': (1,)}\""});
  field_case("unexpected key", "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'extra': True}", 24,
             Code::kCorrupt, "header dict: unexpected key 'extra' (a .npy header has descr, fortran_order, shape)");
  field_case("unexpected key with control bytes", "{'a\x01\x7f\x9f': True}", 24, Code::kCorrupt,
             "header dict: unexpected key 'a\\u0001\\u007f\\u009f' (a .npy header has descr, fortran_order, shape)");
  field_case("descr missing", "{'fortran_order': False, 'shape': (6,)}", 24, Code::kCorrupt, "header 'descr': missing");
  field_case("structured descr", "{'descr': [('a', '<f4'), ('b', [1, [2]])], 'fortran_order': False, 'shape': (6,)}", 24,
             Code::kType, "header 'descr': unsupported dtype: a structured (record) dtype");
  field_case("descr True", "{'descr': True, 'fortran_order': False, 'shape': (6,)}", 24, Code::kType,
             "header 'descr': unsupported dtype: a structured (record) dtype");
  field_case("fortran_order missing", "{'descr': '<f4', 'shape': (6,)}", 24, Code::kCorrupt,
             "header 'fortran_order': missing");
  field_case("fortran_order a string", "{'descr': '<f4', 'fortran_order': 'no', 'shape': (6,)}", 24, Code::kCorrupt,
             "header 'fortran_order': not True or False");
  field_case("shape missing", "{'descr': '<f4', 'fortran_order': False}", 24, Code::kCorrupt, "header 'shape': missing");
  field_case("shape a list", "{'descr': '<f4', 'fortran_order': False, 'shape': [6]}", 24, Code::kCorrupt,
             "header 'shape': not a tuple of integers");
  const char* kSupported = "' (supported: float16/32/64, int8-64, uint8-64, bool, in either byte order)";
  for (const char* d : {"<c8", "<f16", "<b2", "f4", "<f4 ", "<U10", "<M8", "<f", "<4", "<f-4", "<f4\x01"}) {
    std::string shown = d;
    if (shown.back() == '\x01') shown = shown.substr(0, shown.size() - 1) + "\\u0001";
    field_case("unsupported dtype", dict_of(d, false, "(6,)"), 24, Code::kType,
               "header 'descr': unsupported dtype '" + shown + kSupported);
  }
  field_case("no byte order on 4-byte values", dict_of("|f4", false, "(6,)"), 24, Code::kCorrupt,
             "header 'descr': '|f4' has no byte order but 4-byte elements");
  field_case("no byte order on 8-byte values", dict_of("|i8", false, "(3,)"), 24, Code::kCorrupt,
             "header 'descr': '|i8' has no byte order but 8-byte elements");
  field_case("byte count above 2^53 - 1", dict_of("<f4", false, "(4503599627370496, 4)"), 24, Code::kShape,
             "header 'shape': (4503599627370496, 4) x 4 bytes overflows 2^53 - 1");
  field_case("largest dimension times 8 bytes", dict_of("<f8", false, "(9007199254740991,)"), 24, Code::kShape,
             "header 'shape': (9007199254740991) x 8 bytes overflows 2^53 - 1");
  field_case("many dimensions overflowing int64", dict_of("|u1", false, "(4294967296, 4294967296, 4294967296, 1)"), 24,
             Code::kShape, "header 'shape': (4294967296, 4294967296, 4294967296, 1) x 1 bytes overflows 2^53 - 1");
  field_case("data shorter than the shape", ok, 20, Code::kCorrupt,
             "data: shape (2, 3) of '<f4' needs 24 bytes after the 128-byte header, the file has 20");
  field_case("data longer than the shape", ok, 28, Code::kCorrupt,
             "data: shape (2, 3) of '<f4' needs 24 bytes after the 128-byte header, the file has 28");
  field_case("10^12 rows", dict_of("<f4", false, "(1000000000000, 4)"), 16, Code::kCorrupt,
             "data: shape (1000000000000, 4) of '<f4' needs 16000000000000 bytes after the 128-byte header, the file has 16");
  field_case("0-d array without data", dict_of("<f8", false, "()"), 0, Code::kCorrupt,
             "data: shape () of '<f8' needs 8 bytes after the 128-byte header, the file has 0");
  return v;
}

VLK_TEST(npy_malformed_catalogue) {
  const std::vector<Bad> cases = bad_cases();
  VLK_CHECK(cases.size() >= 25) << cases.size();
  for (const Bad& c : cases) {
    for (int mode = 0; mode < 2; ++mode) {
      NpyHeader h;
      h.descr = "unchanged";
      // The JS path reads the header only once the preamble passed; the whole-buffer path takes any bytes.
      const Status st = mode == 0 ? parse_like_js(c.file, &h) : parse_whole(c.file, &h);
      VLK_CHECK_EQ(st.code, c.code) << c.name << " (mode " << mode << "): " << st.message;
      VLK_CHECK_EQ(st.message, c.message) << c.name << " (mode " << mode << ")";
      VLK_CHECK(printable_utf8(st.message)) << c.name;
      VLK_CHECK_EQ(h.descr, std::string("unchanged")) << c.name << ": *out written on failure";
    }
  }
}

VLK_TEST(npy_messages_quote_header_text_printably) {
  // latin1 (version 1): 0xE9 is 'é' (as JavaScript decoded it), C1 controls and DEL are escaped.
  {
    const std::string d = "{'descr': '<f4', 'x\xE9\x85\x7F': 1}";
    NpyHeader h;
    const Status st = parse_like_js(npy_file(d, 1, 0), &h);
    VLK_CHECK_EQ(st.code, Code::kCorrupt);
    VLK_CHECK_EQ(st.message, "header dict: expected a string, True, False or a tuple at character 25 of "
                             "\"{'descr': '<f4', 'x\xC3\xA9\\u0085\\u007f': 1}\"");
  }
  // UTF-8 (version 3): positions count UTF-16 units (the emoji is two), valid text passes through,
  // each invalid sequence is one U+FFFD as JavaScript's decoder gives.
  {
    const std::string d = "{'\xF0\x9F\x98\x80\xC3\xA9\xFF\xE2\x82': 1}";
    NpyHeader h;
    const Status st = parse_like_js(npy_file(d, 3, 0), &h);
    VLK_CHECK_EQ(st.code, Code::kCorrupt);
    VLK_CHECK_EQ(st.message, "header dict: expected a string, True, False or a tuple at character 10 of "
                             "\"{'\xF0\x9F\x98\x80\xC3\xA9\xEF\xBF\xBD\xEF\xBF\xBD': 1}\"");
  }
  // The same bytes in version 1 are latin1: one character each.
  {
    const std::string d = "{'\xF0\x9F\x98\x80': 1}";
    NpyHeader h;
    const Status st = parse_like_js(npy_file(d, 1, 0), &h);
    VLK_CHECK_EQ(st.message, "header dict: expected a string, True, False or a tuple at character 9 of "
                             "\"{'\xC3\xB0\\u009f\\u0098\\u0080': 1}\"");
  }
  // A NUL, a tab and a newline inside the text; trailing JavaScript whitespace is trimmed.
  {
    static const char kRaw[] = "{'descr':\t'<f4',\n'a\0b' 'x'}\xA0";
    const std::string d(kRaw, sizeof(kRaw) - 1);
    NpyHeader h;
    const Status st = parse_like_js(npy_file(d, 1, 0), &h);
    VLK_CHECK_EQ(st.message, "header dict: expected ':' at character 23 of \"{'descr':\\t'<f4',\\n'a\\u0000b' 'x'}\"");
  }
}

VLK_TEST(npy_caller_errors) {
  const Bytes f = npy_file(dict_of("<f4", false, "(2,)"), 2, 8);
  NpyPreamble p;
  NpyHeader h;
  VLK_CHECK_EQ(vlk::core::parse_npy_preamble(f.data(), 9, int64_t(f.size()), &p).code, Code::kInvalidArg);
  VLK_CHECK_EQ(vlk::core::parse_npy_preamble(f.data(), 11, int64_t(f.size()), &p).code, Code::kInvalidArg);
  VLK_CHECK_EQ(vlk::core::parse_npy_preamble(nullptr, 12, int64_t(f.size()), &p).code, Code::kInvalidArg);
  VLK_CHECK_EQ(vlk::core::parse_npy_preamble(f.data(), -1, int64_t(f.size()), &p).code, Code::kInvalidArg);
  VLK_CHECK_EQ(vlk::core::parse_npy_preamble(f.data(), 12, -5, &p).code, Code::kInvalidArg);
  VLK_CHECK(vlk::core::parse_npy_preamble(f.data(), 12, int64_t(f.size()), &p).ok());
  VLK_CHECK_EQ(p.header_start, 12);
  VLK_CHECK_EQ(p.header_len, 116);
  const Status st = vlk::core::parse_npy_header(f.data(), 127, int64_t(f.size()), &h);
  VLK_CHECK_EQ(st.code, Code::kInvalidArg);
  VLK_CHECK_EQ(st.message, "npy header: 127 bytes given, the header ends at byte 128");
  VLK_CHECK(vlk::core::parse_npy_header(f.data(), 128, int64_t(f.size()), &h).ok());
  // Version 1 needs only 10 preamble bytes even when the file is longer.
  const Bytes g = npy_file(dict_of("<f4", false, "(2,)"), 1, 8);
  VLK_CHECK(vlk::core::parse_npy_preamble(g.data(), 10, int64_t(g.size()), &p).ok());
}

// ---- truncation and random damage -------------------------------------------------------------

void check_invariants(const Status& st, const NpyHeader& h, int64_t file_size, const std::string& what) {
  VLK_CHECK(printable_utf8(st.message)) << what << ": " << st.message;
  if (!st.ok()) {
    VLK_CHECK(st.code == Code::kCorrupt || st.code == Code::kType || st.code == Code::kShape) << what << ": " << st.code;
    return;
  }
  VLK_CHECK(h.item_size == 1 || h.item_size == 2 || h.item_size == 4 || h.item_size == 8) << what;
  int64_t count = 1;
  bool zero = false;
  for (int64_t d : h.shape) {
    VLK_CHECK(d >= 0 && d <= kSafe) << what;
    zero = zero || d == 0;
  }
  if (!zero) {
    for (int64_t d : h.shape) {
      VLK_CHECK(count <= kSafe / d) << what;
      count *= d;
    }
  } else {
    count = 0;
  }
  VLK_CHECK_EQ(h.count, count) << what;
  VLK_CHECK_EQ(h.data_offset + h.count * h.item_size, file_size) << what;
  VLK_CHECK(h.descr.size() >= 3 && printable_utf8(h.descr)) << what;
}

std::vector<Bytes> valid_files() {
  std::vector<Bytes> out;
  out.push_back(npy_file(dict_of("<f4", false, "(2, 3)"), 1, 24));
  out.push_back(npy_file(dict_of(">f8", true, "(3, 1, 2)"), 2, 48));
  out.push_back(npy_file(dict_of("|b1", false, "()"), 3, 1));
  out.push_back(npy_file(dict_of("<i2", false, "(0,)"), 1, 0, true));
  out.push_back(npy_file("{'descr':'<u2','fortran_order':False,'shape':(5L,),}", 1, 10, true));
  out.push_back(npy_file("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,)}", 3, 8));
  return out;
}

VLK_TEST(npy_every_truncation_rejected) {
  int rejected = 0;
  for (const Bytes& f : valid_files()) {
    NpyHeader whole;
    const Status full = parse_like_js(f, &whole);
    const bool structured = full.code == Code::kType;
    VLK_CHECK(full.ok() || structured) << full.message;
    for (size_t n = 0; n < f.size(); ++n) {
      const Bytes cut = prefix(f, n);
      for (int mode = 0; mode < 2; ++mode) {
        NpyHeader h;
        const Status st = mode == 0 ? parse_like_js(cut, &h) : parse_whole(cut, &h);
        VLK_CHECK(!st.ok()) << "prefix " << n << " of " << f.size() << " accepted";
        check_invariants(st, h, int64_t(n), "prefix " + std::to_string(n));
        ++rejected;
      }
    }
  }
  VLK_CHECK(rejected > 500) << rejected;
}

VLK_TEST(npy_random_byte_flips_never_crash) {
  Rng rng(20240610);
  const std::vector<Bytes> files = valid_files();
  int accepted = 0, rejected = 0;
  for (int iter = 0; iter < 40000; ++iter) {
    Bytes f = files[rng.next() % files.size()];
    const int flips = 1 + int(rng.next() % 4);
    for (int k = 0; k < flips; ++k) {
      const size_t at = size_t(rng.next() % f.size());
      // Half the flips are structural characters, so the parser goes deep rather than stopping early.
      static const char kSyntax[] = "{}()[]',:\" 0123456789LTF\n\t\xA0\x93<>|=fiub";
      f[at] = rng.next() % 2 ? uint8_t(rng.next()) : uint8_t(kSyntax[rng.next() % (sizeof(kSyntax) - 1)]);
    }
    if (rng.next() % 8 == 0) f.resize(size_t(rng.next() % (f.size() + 1)));
    NpyHeader h;
    const Status st = parse_whole(f, &h);
    check_invariants(st, h, int64_t(f.size()), "iteration " + std::to_string(iter));
    if (st.ok()) {
      ++accepted;
    } else {
      ++rejected;
    }
  }
  // Both outcomes happen (the flips are not all fatal, nor all harmless).
  VLK_CHECK(accepted > 100 && rejected > 100) << accepted << " accepted, " << rejected << " rejected";
}

VLK_TEST(npy_random_headers_after_a_valid_preamble) {
  Rng rng(77);
  static const char kAlphabet[] = "{}()[]',:\" 0123456789LTrueFals\n\tdescrfortan_ohpe<>|=fiub\x01\xC3\xA9\xF0\x9F";
  for (int iter = 0; iter < 20000; ++iter) {
    const int version = 1 + int(rng.next() % 3);
    std::string text;
    const size_t n = size_t(rng.next() % 200);
    for (size_t k = 0; k < n; ++k) text += kAlphabet[rng.next() % (sizeof(kAlphabet) - 1)];
    const Bytes f = npy_file(text, version, int64_t(rng.next() % 64), rng.next() % 2 == 0);
    NpyHeader h;
    const Status st = parse_like_js(f, &h);
    check_invariants(st, h, int64_t(f.size()), "header " + std::to_string(iter));
  }
}

VLK_TEST(npy_large_hostile_headers_stay_linear) {
  // 1 MiB of nested '[' (no recursion: a depth counter), of keys (the duplicate set), of tuple
  // elements: each parses (or fails) with memory and time linear in the header.
  const int64_t n = 1 << 20;
  {
    std::string d = "{'descr': " + std::string(size_t(n), '[');
    NpyHeader h;
    const Status st = parse_whole(npy_file(d, 2, 0), &h);
    VLK_CHECK_EQ(st.code, Code::kCorrupt);
    VLK_CHECK(st.message.find("unterminated list") != std::string::npos);
  }
  {
    std::string d = "{";
    for (int k = 0; d.size() < size_t(n); ++k) d += "'k" + std::to_string(k) + "': True, ";
    d += "'k7': True}";
    NpyHeader h;
    const Status st = parse_whole(npy_file(d, 2, 0), &h);
    VLK_CHECK_EQ(st.code, Code::kCorrupt);
    VLK_CHECK(st.message.rfind("header dict: duplicate key 'k7' at character ", 0) == 0);
  }
  {
    std::string d = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
    while (d.size() < size_t(n)) d += "1, ";
    d += ")}";
    NpyHeader h;
    const Status st = parse_whole(npy_file(d, 2, 4), &h);
    VLK_CHECK(st.ok()) << st.message.substr(0, 200);
    VLK_CHECK(h.shape.size() > 300000);
    VLK_CHECK_EQ(h.count, 1);
  }
}

}  // namespace
