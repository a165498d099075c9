// C++ core tests of the safetensors reader and writer (test/native, core/io/safetensors and
// core/io/json): the strict JSON reader (valid and invalid documents, escapes, surrogates,
// numbers, nesting, UTF-8) and the serde_json-style quoting; the dtype table and byte sizes;
// round trips through encode/parse and write/read (heap and mmap) for every dtype, scalars, empty
// shapes, metadata and unicode names; the writer's data order (the reference implementation's) and
// alignment; a golden image written by the Python reference implementation (safetensors 0.8.0,
// test/native/safetensors_golden.py), parsed value by value and re-encoded byte for byte; float
// conversions (every F16 and BF16 pattern); a catalogue of malformed images, each kCorrupt through
// the buffer parser and both file readers with a message naming the field; hostile headers under
// an address-space limit; writer validation; atomic writes.
#include <dirent.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "common/cancel.hpp"
#include "common/status.hpp"
#include "io/json.hpp"
#include "io/safetensors.hpp"
#include "test_util.hpp"
#include "vlk_test.hpp"

namespace {

using vlk::CancelFlag;
using vlk::Code;
using vlk::Status;
using vlk::core::DType;
using vlk::core::JsonReader;
using vlk::core::SafetensorsFile;
using vlk::core::SafetensorsMetadata;
using vlk::core::SafetensorsReadOptions;
using vlk::core::TensorInfo;
using vlk::core::TensorInput;
using vlk_test::Rng;
using Bytes = std::vector<uint8_t>;
namespace st = vlk::core;

// ---- helpers ----------------------------------------------------------------------------------

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

Bytes from_hex(const std::string& hex) {
  Bytes out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(uint8_t(std::stoul(hex.substr(i, 2), nullptr, 16)));
  return out;
}

void put_u64(Bytes* b, uint64_t v) {
  for (int i = 0; i < 8; ++i) b->push_back(uint8_t(v >> (8 * i)));
}

// u64 length + header text + `data_len` data bytes (0, 1, 2, ...).
Bytes image(const std::string& header, size_t data_len) {
  Bytes b;
  put_u64(&b, header.size());
  b.insert(b.end(), header.begin(), header.end());
  for (size_t i = 0; i < data_len; ++i) b.push_back(uint8_t(i * 7 + 1));
  return b;
}

// A length prefix of n followed by `rest` (for lengths that lie).
Bytes with_length(uint64_t n, const std::string& rest) {
  Bytes b;
  put_u64(&b, n);
  b.insert(b.end(), rest.begin(), rest.end());
  return b;
}

Status parse(const Bytes& b, SafetensorsFile* out) { return st::parse_safetensors(b.data(), int64_t(b.size()), out); }

void remove_tree(const std::string& path) {
  if (path.empty()) return;
  if (DIR* d = opendir(path.c_str())) {
    while (dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      const std::string full = path + "/" + name;
      struct stat sb;
      if (lstat(full.c_str(), &sb) == 0 && S_ISDIR(sb.st_mode)) {
        remove_tree(full);
      } else {
        unlink(full.c_str());
      }
    }
    closedir(d);
  }
  rmdir(path.c_str());
}

struct TempDir {
  std::string path;
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/vlk-safetensors-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (mkdtemp(buf.data()) != nullptr) path = buf.data();
  }
  ~TempDir() { remove_tree(path); }
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    if (DIR* d = opendir(path.c_str())) {
      while (dirent* e = readdir(d)) {
        const std::string name = e->d_name;
        if (name != "." && name != "..") out.push_back(name);
      }
      closedir(d);
    }
    std::sort(out.begin(), out.end());
    return out;
  }
};

bool write_bytes(const std::string& path, const Bytes& b) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  const bool ok = b.empty() || std::fwrite(b.data(), 1, b.size(), f) == b.size();
  return std::fclose(f) == 0 && ok;
}

Bytes read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Owned data for writer inputs.
struct Owned {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  Bytes bytes;  // host order
  TensorInput input() const {
    TensorInput t;
    t.name = name;
    t.dtype = dtype;
    t.shape = shape;
    t.data = bytes.empty() ? nullptr : bytes.data();
    t.bytes = int64_t(bytes.size());
    return t;
  }
};

std::vector<TensorInput> inputs_of(const std::vector<Owned>& owned) {
  std::vector<TensorInput> out;
  for (const Owned& o : owned) out.push_back(o.input());
  return out;
}

Owned random_tensor(const std::string& name, DType dtype, std::vector<int64_t> shape, uint64_t seed) {
  Owned o;
  o.name = name;
  o.dtype = dtype;
  o.shape = std::move(shape);
  int64_t bytes = 0;
  std::string why;
  if (!st::tensor_byte_size(dtype, o.shape, &bytes, &why)) return o;
  Rng rng(seed);
  o.bytes.resize(size_t(bytes));
  for (auto& b : o.bytes) b = uint8_t(rng.next());
  return o;
}

// Checks that `f` holds exactly `owned` (any order) with `metadata` sorted by key.
void check_file_matches(const SafetensorsFile& f, const std::vector<Owned>& owned, const SafetensorsMetadata& metadata,
                        const std::string& what) {
  VLK_CHECK_EQ(f.tensors.size(), owned.size()) << what;
  for (const Owned& o : owned) {
    const TensorInfo* t = f.find(o.name);
    VLK_CHECK(t != nullptr) << what << ": tensor " << o.name << " missing";
    if (t == nullptr) continue;
    VLK_CHECK(t->dtype == o.dtype) << what << ": " << o.name << " dtype " << st::dtype_name(t->dtype);
    VLK_CHECK(t->shape == o.shape) << what << ": " << o.name << " shape";
    VLK_CHECK_EQ(t->bytes, int64_t(o.bytes.size())) << what << ": " << o.name;
    Bytes host(o.bytes.size());
    st::copy_to_host(t->dtype, f.tensor_data(*t), t->bytes, host.data());
    VLK_CHECK(host == o.bytes) << what << ": " << o.name << " data";
  }
  SafetensorsMetadata sorted = metadata;
  std::sort(sorted.begin(), sorted.end());
  VLK_CHECK(f.metadata == sorted) << what << ": metadata";
  VLK_CHECK_EQ(f.has_metadata, !metadata.empty()) << what;
}

uint32_t float_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

float bits_float(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

// ---- the golden image (test/native/safetensors_golden.py, safetensors 0.8.0) ------------------
const char* const kGoldenHex =
    "68020000000000007b225f5f6d657461646174615f5f223a7b22666f726d6174223a227074227d2c22696473223a7b22"
    "6474797065223a22493634222c227368617065223a5b335d2c22646174615f6f666673657473223a5b302c32345d7d2c"
    "227069223a7b226474797065223a22463634222c227368617065223a5b5d2c22646174615f6f666673657473223a5b32"
    "342c33325d7d2c2263223a7b226474797065223a22433634222c227368617065223a5b315d2c22646174615f6f666673"
    "657473223a5b33322c34305d7d2c22776569676874223a7b226474797065223a22463332222c227368617065223a5b32"
    "2c335d2c22646174615f6f666673657473223a5b34302c36345d7d2c22c3bce5908d223a7b226474797065223a224933"
    "32222c227368617065223a5b315d2c22646174615f6f666673657473223a5b36342c36385d7d2c226266223a7b226474"
    "797065223a2242463136222c227368617065223a5b325d2c22646174615f6f666673657473223a5b36382c37325d7d2c"
    "2262696173223a7b226474797065223a22463136222c227368617065223a5b335d2c22646174615f6f66667365747322"
    "3a5b37322c37385d7d2c226638223a7b226474797065223a2246385f45344d33222c227368617065223a5b325d2c2264"
    "6174615f6f666673657473223a5b37382c38305d7d2c22656d707479223a7b226474797065223a225538222c22736861"
    "7065223a5b302c355d2c22646174615f6f666673657473223a5b38302c38305d7d2c226d61736b223a7b226474797065"
    "223a22424f4f4c222c227368617065223a5b345d2c22646174615f6f666673657473223a5b38302c38345d7d7d202020"
    "ffffffffffffffff00000000000100000700000000000000182d4454fb2109400000c03f000000c0000080bf000000bf"
    "000000000000003f0000803f0000c03fc01dfeff803f00bc003c00c1ff7b38b801000101";

template <class T>
Bytes host_bytes(const std::vector<T>& v) {
  Bytes b(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// The tensors the golden script writes, in host order.
std::vector<Owned> golden_tensors() {
  std::vector<Owned> t;
  t.push_back({"weight", DType::kF32, {2, 3}, host_bytes(std::vector<float>{-1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 1.5f})});
  t.push_back({"bias", DType::kF16, {3}, host_bytes(std::vector<uint16_t>{0x3C00, 0xC100, 0x7BFF})});
  t.push_back({"bf", DType::kBF16, {2}, host_bytes(std::vector<uint16_t>{0x3F80, 0xBC00})});
  t.push_back({"pi", DType::kF64, {}, host_bytes(std::vector<double>{3.141592653589793})});
  t.push_back({"ids", DType::kI64, {3}, host_bytes(std::vector<int64_t>{-1, int64_t(1) << 40, 7})});
  t.push_back({"mask", DType::kBool, {4}, Bytes{1, 0, 1, 1}});
  t.push_back({"empty", DType::kU8, {0, 5}, Bytes{}});
  t.push_back({"\xc3\xbc\xe5\x90\x8d", DType::kI32, {1}, host_bytes(std::vector<int32_t>{-123456})});
  t.push_back({"c", DType::kC64, {1}, host_bytes(std::vector<float>{1.5f, -2.0f})});
  t.push_back({"f8", DType::kF8E4M3, {2}, Bytes{0x38, 0xB8}});
  return t;
}

}  // namespace

// ---- JSON ---------------------------------------------------------------------------------------

VLK_TEST(safetensors_json_accepts_valid_documents) {
  const std::vector<std::string> ok = {
      "{}",
      "[]",
      " \t\r\n{ } \n",
      "0",
      "-0",
      "12345678901234567890123",  // an integer beyond uint64 is still valid JSON (overflow flagged)
      "1.5",
      "-1.25e-3",
      "1E+10",
      "true",
      "false",
      "null",
      "\"\"",
      "\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u0041\\u00e9\\u4e2d\\ud83d\\ude00\"",
      "\"\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80\x7f\"",
      "{\"a\":[1,2,{\"b\":null}],\"c\":{\"d\":[[]]}}",
      "[1 , 2 ,3]",
      std::string(100, '[') + std::string(100, ']'),
  };
  for (const std::string& text : ok) {
    const Status s = st::json_validate(text.data(), text.size());
    VLK_CHECK(s.ok()) << text << " -> " << s.message;
  }
}

VLK_TEST(safetensors_json_rejects_invalid_documents) {
  struct Case {
    std::string text;
    std::string expect;  // part of the message
  };
  const std::vector<Case> cases = {
      {"", "end of the text"},
      {"   ", "end of the text"},
      {"{", "string key or '}'"},
      {"{\"a\":1,}", "no trailing commas"},
      {"[1,]", "no trailing commas"},
      {"[1 2]", "expected ',' or ']'"},
      {"{\"a\" 1}", "expected ':'"},
      {"{a:1}", "string key"},
      {"{'a':1}", "string key"},
      {"01", "leading zero"},
      {"-", "expected a digit"},
      {"1.", "after '.'"},
      {".5", "expected a value"},
      {"+1", "expected a value"},
      {"1e", "exponent"},
      {"NaN", "expected a value"},
      {"Infinity", "expected a value"},
      {"tru", "expected true or false"},
      {"nul", "expected null"},
      {"1 2", "after the end of the value"},
      {"{} x", "after the end of the value"},
      {"/* c */ {}", "expected a value"},
      {"\"abc", "unterminated string"},
      {"\"a\nb\"", "control character"},
      {"\"a\tb\"", "control character"},
      {"\"\\x41\"", "invalid escape \\x"},
      {"\"\\u12G4\"", "invalid hex digit"},
      {"\"\\u12\"", "truncated \\u escape"},
      {"\"\\ud800\"", "not followed by a low surrogate"},
      {"\"\\ud800\\u0041\"", "not followed by a low surrogate"},
      {"\"\\udc00\"", "lone low surrogate"},
      {"\"\xc0\x80\"", "invalid UTF-8"},          // overlong NUL
      {"\"\xed\xa0\x80\"", "invalid UTF-8"},      // encoded surrogate
      {"\"\xf5\x80\x80\x80\"", "invalid UTF-8"},  // above U+10FFFF
      {"\"\xe4\xb8\"", "invalid UTF-8"},          // truncated sequence
      {std::string(200, '['), "nesting deeper than 128"},
  };
  for (const Case& c : cases) {
    const Status s = st::json_validate(c.text.data(), c.text.size());
    VLK_CHECK_EQ(s.code, Code::kCorrupt) << c.text;
    VLK_CHECK(contains(s.message, c.expect)) << c.text << " -> " << s.message;
    VLK_CHECK(contains(s.message, "at byte ")) << s.message;
  }
}

VLK_TEST(safetensors_json_decodes_strings_and_numbers) {
  struct StrCase {
    std::string text;
    std::string want;
  };
  const std::vector<StrCase> strings = {
      {"\"plain\"", "plain"},
      {"\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", std::string("\"\\/\b\f\n\r\t")},
      {"\"\\u0000x\"", std::string("\0x", 2)},
      {"\"\\u00e9\\u00E9\"", "\xc3\xa9\xc3\xa9"},
      {"\"\\u4e2d\"", "\xe4\xb8\xad"},
      {"\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80"},  // U+1F600 from a surrogate pair
      {"\"\\udbff\\udfff\"", "\xf4\x8f\xbf\xbf"},  // U+10FFFF
      {"\"\xf0\x9f\x98\x80\"", "\xf0\x9f\x98\x80"},
  };
  for (const StrCase& c : strings) {
    JsonReader r(c.text.data(), c.text.size());
    std::string out;
    const Status s = r.read_string(&out);
    VLK_CHECK(s.ok()) << c.text << " -> " << s.message;
    VLK_CHECK(out == c.want) << c.text;
    VLK_CHECK(r.finish().ok()) << c.text;
  }
  struct NumCase {
    std::string text;
    bool negative, integer, overflow;
    uint64_t magnitude;
  };
  const std::vector<NumCase> numbers = {
      {"0", false, true, false, 0},
      {"-0", true, true, false, 0},
      {"42", false, true, false, 42},
      {"-7", true, true, false, 7},
      {"18446744073709551615", false, true, false, UINT64_MAX},
      {"18446744073709551616", false, true, true, 0},
      {"1.0", false, false, false, 0},
      {"1e3", false, false, false, 0},
      {"-2.5E-1", true, false, false, 0},
  };
  for (const NumCase& c : numbers) {
    JsonReader r(c.text.data(), c.text.size());
    JsonReader::Number n;
    const Status s = r.read_number(&n);
    VLK_CHECK(s.ok()) << c.text << " -> " << s.message;
    VLK_CHECK_EQ(n.negative, c.negative) << c.text;
    VLK_CHECK_EQ(n.integer, c.integer) << c.text;
    VLK_CHECK_EQ(n.overflow, c.overflow) << c.text;
    if (!c.overflow && c.integer) VLK_CHECK_EQ(n.magnitude, c.magnitude) << c.text;
    VLK_CHECK(n.text == c.text) << c.text;
  }
  // Walking an object member by member.
  const std::string doc = "{\"a\": [1, \"x\"], \"b\": {\"c\": true}, \"d\": null}";
  JsonReader r(doc.data(), doc.size());
  VLK_CHECK(r.begin_object().ok());
  std::vector<std::string> keys;
  bool has = true;
  std::string key;
  while (r.next_member(&has, &key).ok() && has) {
    keys.push_back(key);
    VLK_CHECK(r.skip_value().ok()) << key;
  }
  VLK_CHECK((keys == std::vector<std::string>{"a", "b", "d"}));
  VLK_CHECK(r.finish().ok());
}

VLK_TEST(safetensors_json_quoting_matches_serde_json) {
  std::string out;
  st::json_append_quoted(&out, std::string("a\"b\\c/d\b\f\n\r\t\x01\x1f\x7f \xc3\xa9", 18));
  VLK_CHECK(out == "\"a\\\"b\\\\c/d\\b\\f\\n\\r\\t\\u0001\\u001f\x7f \xc3\xa9\"") << out;
  // What the reader reads back is what was quoted.
  const std::string original("x\0y\"\n\xe4\xb8\xad", 9);
  std::string quoted;
  st::json_append_quoted(&quoted, original);
  JsonReader r(quoted.data(), quoted.size());
  std::string back;
  VLK_CHECK(r.read_string(&back).ok());
  VLK_CHECK(back == original);
}

VLK_TEST(safetensors_utf8_validation) {
  struct Case {
    std::string s;
    size_t bad;  // npos: valid
  };
  const size_t ok = std::string::npos;
  const std::vector<Case> cases = {
      {"", ok},
      {"ascii", ok},
      {"\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80", ok},
      {"\xf4\x8f\xbf\xbf", ok},      // U+10FFFF
      {"\xef\xbf\xbf", ok},          // U+FFFF
      {"a\x80", 1},                  // stray continuation
      {"\xc0\xaf", 0},               // overlong
      {"\xe0\x80\xaf", 0},           // overlong
      {"\xed\xbf\xbf", 0},           // surrogate
      {"\xf4\x90\x80\x80", 0},       // above U+10FFFF
      {"ab\xe4\xb8", 2},             // truncated
      {"\xff", 0},
  };
  for (const Case& c : cases) {
    const size_t at = st::utf8_invalid_at(reinterpret_cast<const uint8_t*>(c.s.data()), c.s.size());
    VLK_CHECK_EQ(at, c.bad == ok ? c.s.size() : c.bad) << "case of " << c.s.size() << " bytes";
  }
}

// ---- dtypes and sizes -------------------------------------------------------------------------

VLK_TEST(safetensors_dtype_table) {
  const char* names[st::kDTypeCount] = {"BOOL", "F4",  "F6_E2M3", "F6_E3M2", "U8",  "I8",  "F8_E5M2", "F8_E4M3",
                                        "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "I16", "U16", "F16", "BF16", "I32",
                                        "U32", "F32", "C64", "F64", "I64", "U64"};
  const int bits[st::kDTypeCount] = {8, 4, 6, 6, 8, 8, 8, 8, 8, 8, 8, 16, 16, 16, 16, 32, 32, 32, 64, 64, 64, 64};
  for (int i = 0; i < st::kDTypeCount; ++i) {
    const DType d = DType(i);
    VLK_CHECK(std::string(st::dtype_name(d)) == names[i]) << i;
    DType back;
    VLK_CHECK(st::dtype_from_name(names[i], &back) && back == d) << names[i];
    VLK_CHECK_EQ(st::dtype_bits(d), bits[i]) << names[i];
  }
  VLK_CHECK_EQ(st::dtype_swap_unit(DType::kC64), 4);
  VLK_CHECK_EQ(st::dtype_swap_unit(DType::kF64), 8);
  VLK_CHECK_EQ(st::dtype_swap_unit(DType::kBF16), 2);
  VLK_CHECK_EQ(st::dtype_swap_unit(DType::kF4), 1);
  DType d;
  for (const char* bad : {"f32", "F31", "", "FLOAT32", "F32 ", "U128"}) VLK_CHECK(!st::dtype_from_name(bad, &d)) << bad;
  VLK_CHECK(st::dtype_converts_to_f32(DType::kF16) && st::dtype_converts_to_f32(DType::kBF16) &&
            st::dtype_converts_to_f32(DType::kF32) && st::dtype_converts_to_f32(DType::kF64));
  VLK_CHECK(!st::dtype_converts_to_f32(DType::kI64) && !st::dtype_converts_to_f32(DType::kF8E4M3));
}

VLK_TEST(safetensors_byte_sizes) {
  struct Case {
    DType dtype;
    std::vector<int64_t> shape;
    int64_t bytes;  // -1: rejected
    std::string why;
  };
  const int64_t big = int64_t(1) << 62;
  const std::vector<Case> cases = {
      {DType::kF32, {}, 4, ""},
      {DType::kF32, {2, 3}, 24, ""},
      {DType::kF64, {0}, 0, ""},
      {DType::kU8, {3, 0, 5}, 0, ""},
      {DType::kF32, {0, big, big}, 0, ""},  // empty whatever the other dimensions
      {DType::kC64, {3}, 24, ""},
      {DType::kF4, {2, 3}, 3, ""},
      {DType::kF4, {3}, -1, "whole bytes"},
      {DType::kF6E2M3, {4}, 3, ""},
      {DType::kF6E3M2, {2}, -1, "whole bytes"},
      {DType::kF32, {2, -1}, -1, "shape[1] = -1 is negative"},
      {DType::kF32, {big, 2}, -1, "overflows"},
      {DType::kU8, {big, 2}, -1, "overflows"},
      {DType::kF64, {int64_t(1) << 59}, -1, "overflows"},
      {DType::kF32, std::vector<int64_t>(65, 1), -1, "more than 64 dimensions"},
      {DType::kF32, std::vector<int64_t>(64, 1), 4, ""},
  };
  for (const Case& c : cases) {
    int64_t bytes = -7;
    std::string why;
    const bool ok = st::tensor_byte_size(c.dtype, c.shape, &bytes, &why);
    VLK_CHECK_EQ(ok, c.bytes >= 0) << st::dtype_name(c.dtype) << " rank " << c.shape.size() << ": " << why;
    if (ok && c.bytes >= 0) VLK_CHECK_EQ(bytes, c.bytes) << st::dtype_name(c.dtype);
    if (!ok) VLK_CHECK(contains(why, c.why)) << why;
  }
}

// ---- round trips ------------------------------------------------------------------------------

VLK_TEST(safetensors_round_trip_every_dtype) {
  TempDir dir;
  for (int i = 0; i < st::kDTypeCount; ++i) {
    const DType d = DType(i);
    std::vector<Owned> owned = {random_tensor(std::string("t_") + st::dtype_name(d), d, {3, 4}, 100 + uint64_t(i)),
                                random_tensor("scalar", d == DType::kF4 || d == DType::kF6E2M3 || d == DType::kF6E3M2
                                                            ? DType::kU8
                                                            : d,
                                              {}, 7),
                                random_tensor("empty", d, {0, 3}, 8)};
    const std::vector<TensorInput> in = inputs_of(owned);
    const SafetensorsMetadata meta = {{"dtype", st::dtype_name(d)}};
    std::vector<uint8_t> bytes;
    Status s = st::encode_safetensors(in, meta, &bytes);
    VLK_CHECK(s.ok()) << st::dtype_name(d) << ": " << s.message;
    SafetensorsFile f;
    s = parse(bytes, &f);
    VLK_CHECK(s.ok()) << st::dtype_name(d) << ": " << s.message;
    if (s.ok()) check_file_matches(f, owned, meta, std::string("buffer ") + st::dtype_name(d));

    const std::string path = dir.path + "/" + st::dtype_name(d) + ".safetensors";
    s = st::write_safetensors_file(path, in, meta);
    VLK_CHECK(s.ok()) << s.message;
    VLK_CHECK(read_bytes(path) == bytes) << "write and encode give the same bytes";
    for (bool mmap : {false, true}) {
      SafetensorsFile g;
      SafetensorsReadOptions o;
      o.mmap = mmap;
      s = st::read_safetensors_file(path, &g, o);
      VLK_CHECK(s.ok()) << s.message;
      VLK_CHECK_EQ(g.mapped, mmap);
      VLK_CHECK(g.owner != nullptr);
      if (s.ok()) check_file_matches(g, owned, meta, std::string(mmap ? "mmap " : "heap ") + st::dtype_name(d));
    }
  }
}

VLK_TEST(safetensors_round_trip_names_shapes_and_metadata) {
  std::vector<Owned> owned = {
      random_tensor("a", DType::kF32, {5}, 1),
      random_tensor("scalar", DType::kF64, {}, 2),
      random_tensor("zeros", DType::kF32, {0}, 3),
      random_tensor("zeros2", DType::kI16, {2, 0, 3}, 4),
      random_tensor("\xc3\xbc\xe5\x90\x8d \xf0\x9f\x98\x80", DType::kBF16, {2, 2}, 5),
      random_tensor("quote\"back\\slash/ctl\x01\ttab", DType::kU8, {3}, 6),
      random_tensor(std::string("nul\0inside", 10), DType::kI8, {1}, 7),
      random_tensor("layers.0.attn.q_proj.weight", DType::kF16, {4, 3}, 8),
      random_tensor("big", DType::kF32, {64, 33}, 9),
  };
  const SafetensorsMetadata meta = {{"z", "last"},
                                    {"format", "pt"},
                                    {"", "empty key"},
                                    {"json", "{\"nested\": [1, 2]}\n\ttab \\ back"},
                                    {"\xe5\x90\x8d", "\xf0\x9f\x98\x80"}};
  std::vector<uint8_t> bytes;
  Status s = st::encode_safetensors(inputs_of(owned), meta, &bytes);
  VLK_CHECK(s.ok()) << s.message;
  SafetensorsFile f;
  s = parse(bytes, &f);
  VLK_CHECK(s.ok()) << s.message;
  if (!s.ok()) return;
  check_file_matches(f, owned, meta, "names");
  VLK_CHECK(f.metadata.front().first.empty() && f.metadata.back().first == "\xe5\x90\x8d") << "sorted by key";
  VLK_CHECK(f.find("missing") == nullptr);
  VLK_CHECK(f.find("") == nullptr);
  // Scalars and empty tensors.
  VLK_CHECK_EQ(f.find("scalar")->elements(), 1);
  VLK_CHECK_EQ(f.find("scalar")->bytes, 8);
  VLK_CHECK_EQ(f.find("zeros2")->elements(), 0);
  // No tensors at all, with and without metadata.
  for (const SafetensorsMetadata& m : {SafetensorsMetadata{}, SafetensorsMetadata{{"k", "v"}}}) {
    s = st::encode_safetensors({}, m, &bytes);
    VLK_CHECK(s.ok()) << s.message;
    SafetensorsFile e;
    VLK_CHECK(parse(bytes, &e).ok());
    VLK_CHECK(e.tensors.empty());
    VLK_CHECK_EQ(e.data_bytes, 0);
    VLK_CHECK_EQ(e.has_metadata, !m.empty());
  }
  // The reference's empty file: {} padded to 8 bytes.
  s = st::encode_safetensors({}, {}, &bytes);
  VLK_CHECK(bytes == (Bytes{8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '}));
}

VLK_TEST(safetensors_writer_orders_and_aligns_like_the_reference) {
  // Names chosen so that name order and dtype order disagree; odd sizes so that a name-only order
  // would misalign the wider tensors.
  std::vector<Owned> owned = {
      random_tensor("a_u8", DType::kU8, {3}, 1),     random_tensor("b_f64", DType::kF64, {3}, 2),
      random_tensor("c_f16", DType::kF16, {5}, 3),   random_tensor("d_f32", DType::kF32, {1}, 4),
      random_tensor("e_bool", DType::kBool, {1}, 5), random_tensor("f_i64", DType::kI64, {2}, 6),
      random_tensor("g_f64", DType::kF64, {1}, 7),   random_tensor("h_bf16", DType::kBF16, {3}, 8),
      random_tensor("i_c64", DType::kC64, {1}, 9),   random_tensor("j_u64", DType::kU64, {1}, 10),
  };
  std::vector<uint8_t> bytes;
  Status s = st::encode_safetensors(inputs_of(owned), {{"k", "v"}}, &bytes);
  VLK_CHECK(s.ok()) << s.message;
  SafetensorsFile f;
  VLK_CHECK(parse(bytes, &f).ok());
  std::vector<std::string> order;
  for (const TensorInfo& t : f.tensors) order.push_back(t.name);
  const std::vector<std::string> want = {"j_u64", "f_i64", "b_f64", "g_f64", "i_c64", "d_f32",
                                         "h_bf16", "c_f16", "a_u8", "e_bool"};
  VLK_CHECK(order == want);
  VLK_CHECK_EQ(f.header_bytes % 8, 0);
  for (const TensorInfo& t : f.tensors) {
    const int unit = std::max(1, st::dtype_bits(t.dtype) / 8);
    VLK_CHECK_EQ(t.offset % unit, 0) << t.name;
  }
  // The header lists "__metadata__" first, then the tensors in data order.
  const std::string header(reinterpret_cast<const char*>(bytes.data()) + 8, size_t(f.header_bytes));
  VLK_CHECK(header.rfind("{\"__metadata__\":{\"k\":\"v\"},\"j_u64\":{\"dtype\":\"U64\",\"shape\":[1],\"data_offsets\":[0,8]}", 0) == 0)
      << header;
}

VLK_TEST(safetensors_golden_file_from_the_reference_implementation) {
  const Bytes golden = from_hex(kGoldenHex);
  VLK_CHECK_EQ(golden.size(), size_t(708));
  SafetensorsFile f;
  const Status s = parse(golden, &f);
  VLK_CHECK(s.ok()) << s.message;
  if (!s.ok()) return;
  const std::vector<Owned> want = golden_tensors();
  check_file_matches(f, want, {{"format", "pt"}}, "golden");
  // Values through the float32 conversion.
  std::vector<float> v(6);
  VLK_CHECK(st::tensor_to_f32(f, *f.find("weight"), v.data()).ok());
  VLK_CHECK((v == std::vector<float>{-1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 1.5f}));
  VLK_CHECK(st::tensor_to_f32(f, *f.find("bias"), v.data()).ok());
  VLK_CHECK(v[0] == 1.0f && v[1] == -2.5f && v[2] == 65504.0f);
  VLK_CHECK(st::tensor_to_f32(f, *f.find("bf"), v.data()).ok());
  VLK_CHECK(v[0] == 1.0f && v[1] == -0.0078125f);
  VLK_CHECK(st::tensor_to_f32(f, *f.find("pi"), v.data()).ok());
  VLK_CHECK(v[0] == 3.14159265f);
  const Status ints = st::tensor_to_f32(f, *f.find("ids"), v.data());
  VLK_CHECK_EQ(ints.code, Code::kType);
  VLK_CHECK(contains(ints.message, "tensor \"ids\"") && contains(ints.message, "I64")) << ints.message;
  // The encoder writes the reference's bytes exactly.
  std::vector<uint8_t> mine;
  VLK_CHECK(st::encode_safetensors(inputs_of(want), {{"format", "pt"}}, &mine).ok());
  VLK_CHECK(mine == golden) << "encoder output differs from the reference (" << mine.size() << " bytes)";
}

VLK_TEST(safetensors_float_conversions) {
  // Every F16 pattern: exact in float32, and back to the same bits (NaNs stay NaN).
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = st::f16_bits_to_f32(uint16_t(h));
    const bool nan = (h & 0x7C00) == 0x7C00 && (h & 0x3FF) != 0;
    if (nan) {
      VLK_CHECK(std::isnan(f)) << h;
      VLK_CHECK(std::isnan(st::f16_bits_to_f32(st::f32_to_f16_bits(f)))) << h;
    } else {
      VLK_CHECK_EQ(st::f32_to_f16_bits(f), uint16_t(h)) << "f16 " << h;
    }
    const float b = st::bf16_bits_to_f32(uint16_t(h));
    VLK_CHECK_EQ(float_bits(b), h << 16) << "bf16 " << h;
    if (!std::isnan(b)) VLK_CHECK_EQ(st::f32_to_bf16_bits(b), uint16_t(h)) << "bf16 " << h;
  }
  // Known values.
  VLK_CHECK_EQ(st::f16_bits_to_f32(0x0001), std::ldexp(1.0f, -24));
  VLK_CHECK_EQ(st::f16_bits_to_f32(0x03FF), std::ldexp(1023.0f, -24));
  VLK_CHECK_EQ(st::f16_bits_to_f32(0x7C00), std::numeric_limits<float>::infinity());
  VLK_CHECK_EQ(st::f16_bits_to_f32(0xFC00), -std::numeric_limits<float>::infinity());
  VLK_CHECK_EQ(float_bits(st::f16_bits_to_f32(0x8000)), 0x80000000u);
  // Rounding to f16: ties to even, overflow, underflow.
  VLK_CHECK_EQ(st::f32_to_f16_bits(65519.0f), 0x7BFF);
  VLK_CHECK_EQ(st::f32_to_f16_bits(65520.0f), 0x7C00);
  VLK_CHECK_EQ(st::f32_to_f16_bits(1e10f), 0x7C00);
  VLK_CHECK_EQ(st::f32_to_f16_bits(std::ldexp(1.0f, -25)), 0x0000);  // tie -> even (0)
  VLK_CHECK_EQ(st::f32_to_f16_bits(std::ldexp(1.5f, -25)), 0x0001);
  VLK_CHECK_EQ(st::f32_to_f16_bits(std::ldexp(3.0f, -25)), 0x0002);  // 1.5 units, tie -> even (2)
  VLK_CHECK_EQ(st::f32_to_f16_bits(1.0f + std::ldexp(1.0f, -11)), 0x3C00);  // tie -> even
  VLK_CHECK_EQ(st::f32_to_f16_bits(1.0f + std::ldexp(3.0f, -11)), 0x3C02);  // tie -> even (up)
  VLK_CHECK_EQ(st::f32_to_bf16_bits(bits_float(0x3F808000u)), 0x3F80);  // tie -> even
  VLK_CHECK_EQ(st::f32_to_bf16_bits(bits_float(0x3F818000u)), 0x3F82);
  // F64 -> F32: rounded; beyond the range: infinity.
  Bytes f64;
  for (double d : {0.1, -1e300, 1e-50, 3.0}) {
    uint64_t b;
    std::memcpy(&b, &d, 8);
    for (int i = 0; i < 8; ++i) f64.push_back(uint8_t(b >> (8 * i)));
  }
  float out[4];
  VLK_CHECK(st::convert_to_f32(DType::kF64, f64.data(), 4, out).ok());
  VLK_CHECK(out[0] == 0.1f && out[1] == -std::numeric_limits<float>::infinity() && out[2] == 0.0f && out[3] == 3.0f);
  for (DType d : {DType::kI32, DType::kU8, DType::kBool, DType::kC64, DType::kF8E5M2}) {
    const Status s = st::convert_to_f32(d, f64.data(), 1, out);
    VLK_CHECK_EQ(s.code, Code::kType) << st::dtype_name(d);
    VLK_CHECK(contains(s.message, st::dtype_name(d))) << s.message;
  }
}

// ---- malformed inputs -----------------------------------------------------------------------------

namespace {

struct Malformed {
  const char* name;
  Bytes bytes;
  std::vector<std::string> expect;  // each must be in the message
};

const char* kT = "{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";

std::string tensor(const std::string& dtype, const std::string& shape, const std::string& offsets) {
  return "{\"dtype\":" + dtype + ",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}";
}

// "[1,1,...,1]" with `rank` ones.
std::string ones_shape(int rank) {
  std::string s = "[1";
  for (int i = 1; i < rank; ++i) s += ",1";
  return s + "]";
}

std::vector<Malformed> malformed_cases() {
  std::vector<Malformed> c;
  auto add = [&](const char* name, Bytes b, std::vector<std::string> expect) { c.push_back({name, std::move(b), std::move(expect)}); };
  const std::string ok1 = std::string("{\"w\":") + kT + "}";
  // Length prefix.
  add("empty buffer", Bytes{}, {"0 bytes", "shorter than the 8-byte header length"});
  add("5 bytes", Bytes{1, 0, 0, 0, 0}, {"5 bytes", "shorter than the 8-byte"});
  add("header length above 100 MB", with_length(100000001, "{}      "), {"header length 100000001", "exceeds the limit"});
  add("header length 2^64 - 1", with_length(UINT64_MAX, "{}      "), {"header length 18446744073709551615", "exceeds"});
  add("header length past the end", with_length(64, "{}      "), {"header length 64", "does not fit"});
  add("header length one past the end", with_length(9, "{}      "), {"header length 9", "does not fit"});
  // Header text.
  add("empty header", image("", 0), {"header", "empty header"});
  add("header starts with a space", image(" {}", 0), {"must be a JSON object", "' '"});
  add("header is an array", image("[]", 0), {"must be a JSON object", "'['"});
  add("header invalid UTF-8", image("{\"w\xff\":1}", 0), {"invalid UTF-8 at header byte 3"});
  add("truncated JSON", image("{\"w\":{\"dtype\":\"F32\"", 8), {"invalid JSON", "tensor \"w\""});
  add("trailing comma", image(std::string("{\"w\":") + kT + ",}", 8), {"invalid JSON", "no trailing commas"});
  add("garbage after the object", image(ok1 + " x", 8), {"invalid JSON", "after the end of the value"});
  add("NUL padding", image(ok1 + std::string("\0\0", 2), 8), {"invalid JSON", "byte 0x00"});
  add("bad escape in a name", image(std::string("{\"w\\q\":") + kT + "}", 8), {"invalid JSON", "invalid escape \\q"});
  add("lone surrogate in a name", image(std::string("{\"\\ud800\":") + kT + "}", 8), {"invalid JSON", "surrogate"});
  add("control character in a name", image(std::string("{\"a\nb\":") + kT + "}", 8), {"invalid JSON", "control character"});
  add("deep nesting in an unknown field",
      image("{\"w\":{\"x\":" + std::string(300, '[') + std::string(300, ']') + "}}", 0), {"nesting deeper"});
  // Entries.
  add("entry not an object", image("{\"w\":5}", 0), {"tensor \"w\"", "expected an object", "a number"});
  add("empty tensor name", image(std::string("{\"\":") + kT + "}", 8), {"empty name"});
  add("duplicate tensor name", image(std::string("{\"w\":") + kT + ",\"w\":" + kT + "}", 8), {"duplicate tensor name \"w\""});
  add("duplicate field", image("{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8),
      {"tensor \"w\"", "duplicate field \"dtype\""});
  add("missing dtype", image("{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8), {"tensor \"w\"", "missing field \"dtype\""});
  add("missing shape", image("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8), {"missing field \"shape\""});
  add("missing data_offsets", image("{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8), {"missing field \"data_offsets\""});
  // dtype.
  add("unknown dtype", image("{\"w\":" + tensor("\"F31\"", "[2]", "[0,8]") + "}", 8), {"tensor \"w\"", "dtype", "unknown dtype \"F31\""});
  add("lower-case dtype", image("{\"w\":" + tensor("\"f32\"", "[2]", "[0,8]") + "}", 8), {"unknown dtype \"f32\""});
  add("dtype not a string", image("{\"w\":" + tensor("32", "[2]", "[0,8]") + "}", 8), {"dtype: expected a string", "a number"});
  // shape.
  add("negative dimension", image("{\"w\":" + tensor("\"F32\"", "[2,-3]", "[0,8]") + "}", 8), {"tensor \"w\"", "shape[1]", "-3 is negative"});
  add("float dimension", image("{\"w\":" + tensor("\"F32\"", "[2.0]", "[0,8]") + "}", 8), {"shape[0]", "2.0 is not an integer"});
  add("exponent dimension", image("{\"w\":" + tensor("\"F32\"", "[2e0]", "[0,8]") + "}", 8), {"shape[0]", "not an integer"});
  add("string dimension", image("{\"w\":" + tensor("\"F32\"", "[\"2\"]", "[0,8]") + "}", 8), {"shape[0]", "a string"});
  add("shape not an array", image("{\"w\":" + tensor("\"F32\"", "2", "[0,8]") + "}", 8), {"shape: expected an array"});
  add("dimension above 2^63", image("{\"w\":" + tensor("\"F32\"", "[9223372036854775808]", "[0,8]") + "}", 8),
      {"shape[0]", "too large"});
  add("size overflow", image("{\"w\":" + tensor("\"F32\"", "[4611686018427387904,4]", "[0,8]") + "}", 8),
      {"tensor \"w\"", "overflows"});
  add("65 dimensions", image("{\"w\":" + tensor("\"F32\"", ones_shape(65), "[0,4]") + "}", 4),
      {"shape", "more than 64 dimensions"});
  add("F4 not filling bytes", image("{\"w\":" + tensor("\"F4\"", "[3]", "[0,2]") + "}", 2), {"tensor \"w\"", "whole bytes"});
  // data_offsets.
  add("offsets not an array", image("{\"w\":" + tensor("\"F32\"", "[2]", "8") + "}", 8), {"data_offsets: expected an array"});
  add("one offset", image("{\"w\":" + tensor("\"F32\"", "[2]", "[8]") + "}", 8), {"data_offsets: 1 element(s), expected 2"});
  add("three offsets", image("{\"w\":" + tensor("\"F32\"", "[2]", "[0,8,8]") + "}", 8), {"data_offsets: more than 2"});
  add("negative offset", image("{\"w\":" + tensor("\"F32\"", "[2]", "[-8,0]") + "}", 8), {"data_offsets[0]", "negative"});
  add("float offset", image("{\"w\":" + tensor("\"F32\"", "[2]", "[0,8.0]") + "}", 8), {"data_offsets[1]", "not an integer"});
  add("begin after end", image("{\"w\":" + tensor("\"F32\"", "[0]", "[8,0]") + "}", 8), {"tensor \"w\"", "begin is after end"});
  add("end past the data", image("{\"w\":" + tensor("\"F32\"", "[2]", "[0,8]") + "}", 4),
      {"tensor \"w\"", "data_offsets [0, 8]", "past the end of the data section (4 bytes)"});
  add("span does not match the size", image("{\"w\":" + tensor("\"F32\"", "[2]", "[0,4]") + "}", 4),
      {"tensor \"w\"", "span 4 bytes", "F32", "take 8"});
  add("overlapping tensors",
      image("{\"a\":" + tensor("\"F32\"", "[2]", "[0,8]") + ",\"b\":" + tensor("\"F32\"", "[2]", "[4,12]") + "}", 12),
      {"tensor \"b\"", "overlap tensor \"a\""});
  add("two tensors on the same bytes",
      image("{\"a\":" + tensor("\"F32\"", "[2]", "[0,8]") + ",\"b\":" + tensor("\"U8\"", "[8]", "[0,8]") + "}", 8),
      {"overlap"});
  add("hole between tensors",
      image("{\"a\":" + tensor("\"F32\"", "[1]", "[0,4]") + ",\"b\":" + tensor("\"F32\"", "[1]", "[8,12]") + "}", 12),
      {"bytes [4, 8)", "between tensor \"a\" and tensor \"b\"", "belong to no tensor"});
  add("hole before the first tensor", image("{\"a\":" + tensor("\"F32\"", "[1]", "[4,8]") + "}", 8),
      {"bytes [0, 4)", "before tensor \"a\""});
  add("trailing data", image("{\"a\":" + tensor("\"F32\"", "[1]", "[0,4]") + "}", 8),
      {"4 byte(s) after the last tensor, tensor \"a\"", "trailing"});
  add("data but no tensor", image("{}", 8), {"8 byte(s) after the header, which lists no tensor"});
  // Metadata.
  add("duplicate __metadata__", image("{\"__metadata__\":{},\"__metadata__\":{}}", 0), {"duplicate \"__metadata__\""});
  add("__metadata__ value not a string", image("{\"__metadata__\":{\"epoch\":3}}", 0),
      {"__metadata__[\"epoch\"]", "expected a string", "a number"});
  add("__metadata__ is an array", image("{\"__metadata__\":[\"a\"]}", 0), {"__metadata__", "expected an object of strings"});
  add("duplicate metadata key", image("{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0), {"__metadata__", "duplicate key \"k\""});
  return c;
}

}  // namespace

VLK_TEST(safetensors_rejects_malformed_inputs) {
  TempDir dir;
  const std::vector<Malformed> cases = malformed_cases();
  VLK_CHECK(cases.size() >= 25) << cases.size();
  int n = 0;
  for (const Malformed& c : cases) {
    SafetensorsFile f;
    f.header_bytes = -5;  // must stay untouched
    const Status s = parse(c.bytes, &f);
    VLK_CHECK_EQ(s.code, Code::kCorrupt) << c.name << ": " << s.message;
    VLK_CHECK(s.message.rfind("safetensors buffer: ", 0) == 0) << c.name << ": " << s.message;
    for (const std::string& e : c.expect) VLK_CHECK(contains(s.message, e)) << c.name << ": '" << e << "' not in: " << s.message;
    VLK_CHECK_EQ(f.header_bytes, -5) << c.name << ": output written on error";
    // The same through both file readers, naming the file.
    const std::string path = dir.path + "/bad" + std::to_string(n++) + ".safetensors";
    VLK_CHECK(write_bytes(path, c.bytes));
    for (bool mmap : {false, true}) {
      if (mmap && c.bytes.empty()) continue;  // an empty file cannot be mapped: kCorrupt comes first anyway
      SafetensorsReadOptions o;
      o.mmap = mmap;
      SafetensorsFile g;
      const Status r = st::read_safetensors_file(path, &g, o);
      VLK_CHECK_EQ(r.code, Code::kCorrupt) << c.name << (mmap ? " (mmap)" : " (heap)") << ": " << r.message;
      VLK_CHECK(contains(r.message, "safetensors file '" + path + "'")) << r.message;
      for (const std::string& e : c.expect) VLK_CHECK(contains(r.message, e)) << c.name << ": " << r.message;
    }
  }
  // Every truncation of a valid image is rejected.
  std::vector<uint8_t> good;
  VLK_CHECK(st::encode_safetensors(inputs_of({random_tensor("w", DType::kF32, {3}, 1), random_tensor("b", DType::kU8, {5}, 2)}),
                                   {{"k", "v"}}, &good)
                .ok());
  for (size_t len = 0; len < good.size(); ++len) {
    SafetensorsFile f;
    const Status s = st::parse_safetensors(good.data(), int64_t(len), &f);
    VLK_CHECK_EQ(s.code, Code::kCorrupt) << "truncated to " << len;
  }
  // Invalid arguments are not kCorrupt.
  SafetensorsFile f;
  VLK_CHECK_EQ(st::parse_safetensors(nullptr, 8, &f).code, Code::kInvalidArg);
  VLK_CHECK_EQ(st::parse_safetensors(good.data(), -1, &f).code, Code::kInvalidArg);
}

VLK_TEST(safetensors_accepts_what_the_reference_accepts) {
  // Unknown fields are ignored, "__metadata__": null is no metadata, whitespace (not only spaces)
  // may pad the header, the header length need not be a multiple of 8, entries may come in any
  // order, and zero-size tensors may sit anywhere in the tiling.
  const std::string header =
      "{\"b\":{\"data_offsets\":[4,8],\"shape\":[1],\"dtype\":\"I32\",\"extra\":{\"x\":[1,2.5,null]}},"
      "\"__metadata__\":null,\"z\":" + tensor("\"F64\"", "[0,3]", "[4,4]") + ",\"a\":" + tensor("\"U8\"", "[4]", "[0,4]") +
      "}\n\t\r ";
  const Bytes b = image(header, 8);
  SafetensorsFile f;
  const Status s = parse(b, &f);
  VLK_CHECK(s.ok()) << s.message;
  if (!s.ok()) return;
  VLK_CHECK(!f.has_metadata && f.metadata.empty());
  std::vector<std::string> order;
  for (const TensorInfo& t : f.tensors) order.push_back(t.name);
  VLK_CHECK((order == std::vector<std::string>{"a", "z", "b"})) << "ordered by offset, then size";
  VLK_CHECK_EQ(f.data_bytes, 8);
  VLK_CHECK(f.data == b.data() + 8 + header.size()) << "a view, not a copy";
}

VLK_TEST(safetensors_hostile_headers_never_allocate_much) {
#if defined(__linux__)
  TempDir dir;
  // Inputs whose numbers promise much more than the bytes hold.
  std::vector<Bytes> hostile = {
      with_length(99999999, "{}"),
      with_length(UINT64_MAX - 7, "{}"),
      image("{\"w\":" + tensor("\"F64\"", "[1152921504606846975]", "[0,9223372036854775800]") + "}", 16),
      image("{\"w\":" + tensor("\"U8\"", "[4611686018427387904,2]", "[0,9223372036854775807]") + "}", 16),
      image("{\"w\":" + tensor("\"F32\"", ones_shape(100000), "[0,4]") + "}", 4),
  };
  std::vector<std::string> paths;
  for (size_t i = 0; i < hostile.size(); ++i) {
    paths.push_back(dir.path + "/hostile" + std::to_string(i));
    VLK_CHECK(write_bytes(paths.back(), hostile[i]));
  }
  // In a child process with a 128 MiB address-space margin: an allocation driven by the numbers in
  // these headers would fail there (kOutOfMemory or a crash), not pass.
  const pid_t pid = fork();
  if (pid == 0) {
    long pages = 0, resident = 0;
    if (FILE* statm = std::fopen("/proc/self/statm", "r")) {
      if (std::fscanf(statm, "%ld %ld", &pages, &resident) != 2) pages = 0;
      std::fclose(statm);
    }
    if (pages > 0) {
      struct rlimit lim;
      lim.rlim_cur = lim.rlim_max = rlim_t(pages) * rlim_t(sysconf(_SC_PAGESIZE)) + (rlim_t(128) << 20);
      setrlimit(RLIMIT_AS, &lim);
    }
    int bad = 0;
    for (size_t i = 0; i < hostile.size(); ++i) {
      SafetensorsFile f;
      if (parse(hostile[i], &f).code != Code::kCorrupt) bad |= 1;
      for (bool mmap : {false, true}) {
        SafetensorsReadOptions o;
        o.mmap = mmap;
        if (st::read_safetensors_file(paths[i], &f, o).code != Code::kCorrupt) bad |= 2;
      }
    }
    _exit(bad);
  }
  int status = 0;
  VLK_CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
  VLK_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
#endif
}

// ---- writer -------------------------------------------------------------------------------------

VLK_TEST(safetensors_writer_validates_its_input) {
  struct Case {
    const char* name;
    std::vector<TensorInput> tensors;
    SafetensorsMetadata metadata;
    std::vector<std::string> expect;
  };
  const float data[6] = {1, 2, 3, 4, 5, 6};
  auto t = [&](std::string name, DType d, std::vector<int64_t> shape, int64_t bytes, const void* p = nullptr) {
    TensorInput in;
    in.name = std::move(name);
    in.dtype = d;
    in.shape = std::move(shape);
    in.bytes = bytes;
    in.data = p ? p : data;
    return in;
  };
  const std::vector<Case> cases = {
      {"empty name", {t("", DType::kF32, {1}, 4)}, {}, {"empty name"}},
      {"reserved name", {t("__metadata__", DType::kF32, {1}, 4)}, {}, {"tensor \"__metadata__\"", "reserved"}},
      {"invalid UTF-8 name", {t("a\xff", DType::kF32, {1}, 4)}, {}, {"not valid UTF-8"}},
      {"duplicate name", {t("w", DType::kF32, {1}, 4), t("w", DType::kU8, {4}, 4)}, {}, {"duplicate tensor name \"w\""}},
      {"size mismatch", {t("w", DType::kF32, {2, 3}, 20)}, {}, {"tensor \"w\"", "20 bytes", "take 24"}},
      {"negative dimension", {t("w", DType::kF32, {-1}, 4)}, {}, {"tensor \"w\"", "negative"}},
      {"F4 odd count", {t("w", DType::kF4, {3}, 2)}, {}, {"whole bytes"}},
      {"null data", {t("w", DType::kF32, {1}, 4, nullptr)}, {}, {}},
      {"invalid dtype", {t("w", DType(200), {1}, 4)}, {}, {"invalid dtype"}},
      {"duplicate metadata key", {}, {{"k", "a"}, {"k", "b"}}, {"duplicate metadata key \"k\""}},
      {"invalid UTF-8 metadata value", {}, {{"k", "\xc0\xaf"}}, {"metadata \"k\"", "value is not valid UTF-8"}},
  };
  for (const Case& c : cases) {
    std::vector<TensorInput> tensors = c.tensors;
    if (std::string(c.name) == "null data") {
      tensors[0].data = nullptr;
    }
    std::vector<uint8_t> out;
    const Status s = st::encode_safetensors(tensors, c.metadata, &out);
    VLK_CHECK_EQ(s.code, Code::kInvalidArg) << c.name << ": " << s.message;
    for (const std::string& e : c.expect) VLK_CHECK(contains(s.message, e)) << c.name << ": " << s.message;
  }
  // encode_safetensors_into checks its buffer.
  std::vector<TensorInput> one = {t("w", DType::kF32, {6}, 24)};
  st::SafetensorsPlan plan;
  VLK_CHECK(st::plan_safetensors(one, {}, &plan).ok());
  std::vector<uint8_t> small(size_t(plan.total_bytes - 1));
  VLK_CHECK_EQ(st::encode_safetensors_into(one, plan, small.data(), int64_t(small.size())).code, Code::kInvalidArg);
  CancelFlag cancel;
  cancel.cancel();
  small.resize(size_t(plan.total_bytes));
  VLK_CHECK_EQ(st::encode_safetensors_into(one, plan, small.data(), int64_t(small.size()), &cancel).code, Code::kAborted);
}

VLK_TEST(safetensors_writes_are_atomic) {
  TempDir dir;
  const std::string target = dir.path + "/model.safetensors";
  const std::vector<Owned> first = {random_tensor("w", DType::kF32, {4, 4}, 1)};
  VLK_CHECK(st::write_safetensors_file(target, inputs_of(first), {{"v", "1"}}).ok());
  const Bytes before = read_bytes(target);
  VLK_CHECK(!before.empty());
  // An invalid input, a cancelled write and a missing directory change nothing and leave no
  // temporary file.
  std::vector<TensorInput> bad = inputs_of(first);
  bad[0].bytes = 3;
  VLK_CHECK_EQ(st::write_safetensors_file(target, bad, {}).code, Code::kInvalidArg);
  CancelFlag cancel;
  cancel.cancel();
  const Status c = st::write_safetensors_file(target, inputs_of({random_tensor("x", DType::kU8, {9}, 2)}), {}, &cancel);
  VLK_CHECK_EQ(c.code, Code::kAborted) << c.message;
  VLK_CHECK(read_bytes(target) == before);
  VLK_CHECK((dir.entries() == std::vector<std::string>{"model.safetensors"}));
  const Status m = st::write_safetensors_file(dir.path + "/missing/x.safetensors", inputs_of(first), {});
  VLK_CHECK_EQ(m.code, Code::kIo);
  VLK_CHECK(contains(m.message, "missing/x.safetensors")) << m.message;
  VLK_CHECK_EQ(st::write_safetensors_file("", inputs_of(first), {}).code, Code::kInvalidArg);
  // A successful rewrite replaces the file.
  const std::vector<Owned> second = {random_tensor("w2", DType::kBF16, {3}, 3)};
  VLK_CHECK(st::write_safetensors_file(target, inputs_of(second), {}).ok());
  SafetensorsFile f;
  VLK_CHECK(st::read_safetensors_file(target, &f).ok());
  check_file_matches(f, second, {}, "rewritten");
  VLK_CHECK((dir.entries() == std::vector<std::string>{"model.safetensors"}));
  // A file mapped before the rewrite keeps its old contents (the rewrite replaced it by rename).
  SafetensorsFile mapped;
  SafetensorsReadOptions o;
  o.mmap = true;
  VLK_CHECK(st::read_safetensors_file(target, &mapped, o).ok());
  VLK_CHECK(st::write_safetensors_file(target, inputs_of(first), {{"v", "1"}}).ok());
  check_file_matches(mapped, second, {}, "mapped before the rewrite");
}

VLK_TEST(safetensors_read_errors_are_io) {
  TempDir dir;
  SafetensorsFile f;
  const std::string missing = dir.path + "/nope.safetensors";
  Status s = st::read_safetensors_file(missing, &f);
  VLK_CHECK_EQ(s.code, Code::kIo);
  VLK_CHECK(contains(s.message, missing)) << s.message;
  s = st::read_safetensors_file(dir.path, &f);
  VLK_CHECK_EQ(s.code, Code::kIo);
  VLK_CHECK(contains(s.message, "not a regular file")) << s.message;
  CancelFlag cancel;
  cancel.cancel();
  SafetensorsReadOptions o;
  o.cancel = &cancel;
  VLK_CHECK_EQ(st::read_safetensors_file(missing, &f, o).code, Code::kAborted);
}
