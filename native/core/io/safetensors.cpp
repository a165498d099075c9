// The safetensors format (core/io): reader, writer, conversions. See safetensors.hpp.
#include "io/safetensors.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>

#include "common/atomic_file.hpp"
#include "io/json.hpp"

namespace vlk {
namespace core {

namespace fmt = safetensors_format;

namespace {

constexpr bool kHostLittle = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kChunk = int64_t(16) << 20;  // I/O, copy and cancellation granularity

struct DTypeRow {
  DType dtype;
  const char* name;
  int bits;
  int swap_unit;
};

// In enum order.
constexpr DTypeRow kDTypes[kDTypeCount] = {
    {DType::kBool, "BOOL", 8, 1},       {DType::kF4, "F4", 4, 1},
    {DType::kF6E2M3, "F6_E2M3", 6, 1},  {DType::kF6E3M2, "F6_E3M2", 6, 1},
    {DType::kU8, "U8", 8, 1},           {DType::kI8, "I8", 8, 1},
    {DType::kF8E5M2, "F8_E5M2", 8, 1},  {DType::kF8E4M3, "F8_E4M3", 8, 1},
    {DType::kF8E8M0, "F8_E8M0", 8, 1},  {DType::kF8E4M3FNUZ, "F8_E4M3FNUZ", 8, 1},
    {DType::kF8E5M2FNUZ, "F8_E5M2FNUZ", 8, 1},  {DType::kI16, "I16", 16, 2},
    {DType::kU16, "U16", 16, 2},        {DType::kF16, "F16", 16, 2},
    {DType::kBF16, "BF16", 16, 2},      {DType::kI32, "I32", 32, 4},
    {DType::kU32, "U32", 32, 4},        {DType::kF32, "F32", 32, 4},
    {DType::kC64, "C64", 64, 4},        {DType::kF64, "F64", 64, 8},
    {DType::kI64, "I64", 64, 8},        {DType::kU64, "U64", 64, 8},
};

constexpr bool table_in_enum_order() {
  for (int i = 0; i < kDTypeCount; ++i) {
    if (static_cast<int>(kDTypes[i].dtype) != i) return false;
  }
  return true;
}
static_assert(table_in_enum_order(), "kDTypes must list the dtypes in DType's order");

inline bool valid_dtype(DType d) { return static_cast<int>(d) < kDTypeCount; }

inline uint16_t ld16(const uint8_t* p) { return uint16_t(p[0] | p[1] << 8); }
inline uint64_t ld64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | p[i];
  return v;
}

Status corrupt(const std::string& where, const std::string& msg) { return Status(Code::kCorrupt, where + ": " + msg); }

Status out_of_memory(int64_t n, const char* what) {
  return Status(Code::kOutOfMemory, "safetensors: cannot allocate " + std::to_string(n) + " bytes for " + what);
}

// Tensor names and metadata keys in messages: JSON-quoted, so that control characters and quotes
// stay visible, and cut after 200 bytes (on a character boundary).
std::string quoted(std::string_view s) {
  std::string out;
  if (s.size() > 200) {
    size_t cut = 200;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
    json_append_quoted(&out, s.substr(0, cut));
    out.insert(out.size() - 1, "...");
  } else {
    json_append_quoted(&out, s);
  }
  return out;
}

std::string tensor_label(std::string_view name) { return "tensor " + quoted(name); }

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

const char* kind_text(JsonReader::Kind k) {
  switch (k) {
    case JsonReader::Kind::kNull: return "null";
    case JsonReader::Kind::kBool: return "a boolean";
    case JsonReader::Kind::kNumber: return "a number";
    case JsonReader::Kind::kString: return "a string";
    case JsonReader::Kind::kArray: return "an array";
    case JsonReader::Kind::kObject: return "an object";
  }
  return "a value";
}

// 64-byte aligned heap block of at least n bytes owned by a shared_ptr (null on failure).
std::shared_ptr<void> aligned_block(int64_t n) {
  const int64_t bytes = std::max<int64_t>((n + 63) / 64 * 64, 64);
  if (n < 0 || n > kInt64Max - 64 || uint64_t(bytes) > std::numeric_limits<size_t>::max()) return nullptr;
  void* p = nullptr;
  if (posix_memalign(&p, 64, size_t(bytes)) != 0) return nullptr;
  try {
    return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
  } catch (const std::bad_alloc&) {
    std::free(p);
    return nullptr;
  }
}

// ---- header parsing --------------------------------------------------------------------------

// A JSON integer that must be in [0, INT64_MAX]; `field` names it in messages.
Status read_count(JsonReader& r, const std::string& field, int64_t* out) {
  JsonReader::Kind kind;
  VLK_RETURN_IF_ERROR(r.peek(&kind));
  if (kind != JsonReader::Kind::kNumber) {
    return Status(Code::kCorrupt, field + ": expected a non-negative integer, found " + kind_text(kind));
  }
  JsonReader::Number num;
  VLK_RETURN_IF_ERROR(r.read_number(&num));
  if (!num.integer) return Status(Code::kCorrupt, field + ": " + num.text + " is not an integer");
  if (num.negative && (num.overflow || num.magnitude != 0)) {
    return Status(Code::kCorrupt, field + ": " + num.text + " is negative");
  }
  if (num.overflow || num.magnitude > uint64_t(kInt64Max)) {
    return Status(Code::kCorrupt, field + ": " + num.text + " is too large (above 2^63 - 1)");
  }
  *out = int64_t(num.magnitude);
  return Status::Ok();
}

// JSON syntax errors come back as kCorrupt "at byte N: ..."; structural ones name their field.
// Both get the same prefix from the caller. Everything here is kCorrupt or kOutOfMemory.
Status parse_tensor_entry(JsonReader& r, TensorInfo* t, int64_t* begin, int64_t* end) {
  const std::string label = tensor_label(t->name);
  JsonReader::Kind kind;
  VLK_RETURN_IF_ERROR(r.peek(&kind));
  if (kind != JsonReader::Kind::kObject) {
    return Status(Code::kCorrupt, label + ": expected an object {\"dtype\", \"shape\", \"data_offsets\"}, found " +
                                      kind_text(kind));
  }
  VLK_RETURN_IF_ERROR(r.begin_object());
  bool seen_dtype = false, seen_shape = false, seen_offsets = false;
  std::string field;
  while (true) {
    bool has = false;
    VLK_RETURN_IF_ERROR(r.next_member(&has, &field));
    if (!has) break;
    if (field == "dtype") {
      if (seen_dtype) return Status(Code::kCorrupt, label + ": duplicate field \"dtype\"");
      seen_dtype = true;
      VLK_RETURN_IF_ERROR(r.peek(&kind));
      if (kind != JsonReader::Kind::kString) {
        return Status(Code::kCorrupt, label + ": dtype: expected a string such as \"F32\", found " + kind_text(kind));
      }
      std::string name;
      VLK_RETURN_IF_ERROR(r.read_string(&name));
      if (!dtype_from_name(name, &t->dtype)) {
        return Status(Code::kCorrupt, label + ": dtype: unknown dtype " + quoted(name) +
                                          " (known: BOOL, U8, I8, I16, U16, I32, U32, I64, U64, F16, BF16, F32, "
                                          "F64, C64, F8_E5M2, F8_E4M3, F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ, F4, F6_E2M3, "
                                          "F6_E3M2)");
      }
    } else if (field == "shape") {
      if (seen_shape) return Status(Code::kCorrupt, label + ": duplicate field \"shape\"");
      seen_shape = true;
      VLK_RETURN_IF_ERROR(r.peek(&kind));
      if (kind != JsonReader::Kind::kArray) {
        return Status(Code::kCorrupt, label + ": shape: expected an array of integers, found " + kind_text(kind));
      }
      VLK_RETURN_IF_ERROR(r.begin_array());
      while (true) {
        bool more = false;
        VLK_RETURN_IF_ERROR(r.next_element(&more));
        if (!more) break;
        if (t->shape.size() >= size_t(fmt::kMaxRank)) {
          return Status(Code::kCorrupt,
                        label + ": shape: more than " + std::to_string(fmt::kMaxRank) + " dimensions");
        }
        int64_t d = 0;
        VLK_RETURN_IF_ERROR(read_count(r, label + ": shape[" + std::to_string(t->shape.size()) + "]", &d));
        t->shape.push_back(d);
      }
    } else if (field == "data_offsets") {
      if (seen_offsets) return Status(Code::kCorrupt, label + ": duplicate field \"data_offsets\"");
      seen_offsets = true;
      VLK_RETURN_IF_ERROR(r.peek(&kind));
      if (kind != JsonReader::Kind::kArray) {
        return Status(Code::kCorrupt,
                      label + ": data_offsets: expected an array [begin, end], found " + kind_text(kind));
      }
      VLK_RETURN_IF_ERROR(r.begin_array());
      int64_t v[2] = {0, 0};
      int count = 0;
      while (true) {
        bool more = false;
        VLK_RETURN_IF_ERROR(r.next_element(&more));
        if (!more) break;
        if (count >= 2) {
          return Status(Code::kCorrupt, label + ": data_offsets: more than 2 elements (expected [begin, end])");
        }
        VLK_RETURN_IF_ERROR(read_count(r, label + ": data_offsets[" + std::to_string(count) + "]", &v[count]));
        ++count;
      }
      if (count != 2) {
        return Status(Code::kCorrupt, label + ": data_offsets: " + std::to_string(count) +
                                          " element(s), expected 2 ([begin, end])");
      }
      *begin = v[0];
      *end = v[1];
    } else {
      VLK_RETURN_IF_ERROR(r.skip_value());  // unknown fields are ignored, as the reference does
    }
  }
  if (!seen_dtype) return Status(Code::kCorrupt, label + ": missing field \"dtype\"");
  if (!seen_shape) return Status(Code::kCorrupt, label + ": missing field \"shape\"");
  if (!seen_offsets) return Status(Code::kCorrupt, label + ": missing field \"data_offsets\"");
  return Status::Ok();
}

Status parse_metadata(JsonReader& r, SafetensorsFile* out) {
  JsonReader::Kind kind;
  VLK_RETURN_IF_ERROR(r.peek(&kind));
  if (kind == JsonReader::Kind::kNull) return r.read_null();  // serde reads null as "no metadata"
  if (kind != JsonReader::Kind::kObject) {
    return Status(Code::kCorrupt, "__metadata__: expected an object of strings, found " + std::string(kind_text(kind)));
  }
  VLK_RETURN_IF_ERROR(r.begin_object());
  out->has_metadata = true;
  std::string key;
  while (true) {
    bool has = false;
    VLK_RETURN_IF_ERROR(r.next_member(&has, &key));
    if (!has) break;
    VLK_RETURN_IF_ERROR(r.peek(&kind));
    if (kind != JsonReader::Kind::kString) {
      return Status(Code::kCorrupt, "__metadata__[" + quoted(key) + "]: expected a string, found " + kind_text(kind));
    }
    std::string value;
    VLK_RETURN_IF_ERROR(r.read_string(&value));
    out->metadata.emplace_back(std::move(key), std::move(value));
  }
  std::stable_sort(out->metadata.begin(), out->metadata.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t i = 1; i < out->metadata.size(); ++i) {
    if (out->metadata[i].first == out->metadata[i - 1].first) {
      return Status(Code::kCorrupt, "__metadata__: duplicate key " + quoted(out->metadata[i].first));
    }
  }
  return Status::Ok();
}

// Parses and validates header[0 .. n) against a data section of data_bytes bytes. Messages are
// relative ("header: ...", "tensor \"w\": ..."); the caller prefixes where they come from.
Status parse_header(const uint8_t* header, int64_t n, int64_t data_bytes, SafetensorsFile* out) {
  const size_t bad = utf8_invalid_at(header, size_t(n));
  if (bad < size_t(n)) return Status(Code::kCorrupt, "header: invalid UTF-8 at header byte " + std::to_string(bad));
  if (n == 0 || header[0] != '{') {
    std::string found = "an empty header";
    if (n > 0) {
      char buf[16];
      if (header[0] >= 0x20 && header[0] < 0x7f) {
        std::snprintf(buf, sizeof(buf), "'%c'", char(header[0]));
      } else {
        std::snprintf(buf, sizeof(buf), "byte 0x%02x", unsigned(header[0]));
      }
      found = buf;
    }
    return Status(Code::kCorrupt, "header: must be a JSON object starting at its first byte with '{', found " + found);
  }
  SafetensorsFile f;
  f.header_bytes = n;
  f.data_bytes = data_bytes;
  std::vector<std::pair<int64_t, int64_t>> ranges;  // per tensor: [begin, end) as written
  JsonReader r(reinterpret_cast<const char*>(header), size_t(n));
  std::string context = "header";  // where a JSON syntax error is
  Status s = [&]() -> Status {
    VLK_RETURN_IF_ERROR(r.begin_object());
    bool seen_metadata = false;
    std::string key;
    while (true) {
      context = "header";
      bool has = false;
      VLK_RETURN_IF_ERROR(r.next_member(&has, &key));
      if (!has) break;
      if (key == "__metadata__") {
        if (seen_metadata) return Status(Code::kCorrupt, "header: duplicate \"__metadata__\" entry");
        seen_metadata = true;
        context = "header, in __metadata__";
        VLK_RETURN_IF_ERROR(parse_metadata(r, &f));
        continue;
      }
      if (key.empty()) return Status(Code::kCorrupt, "header: a tensor has an empty name");
      context = "header, in " + tensor_label(key);
      TensorInfo t;
      t.name = std::move(key);
      int64_t begin = 0, end = 0;
      VLK_RETURN_IF_ERROR(parse_tensor_entry(r, &t, &begin, &end));
      const std::string label = tensor_label(t.name);
      std::string why;
      if (!tensor_byte_size(t.dtype, t.shape, &t.bytes, &why)) {
        return Status(Code::kCorrupt, label + ": dtype " + dtype_name(t.dtype) + ", shape " + shape_text(t.shape) +
                                          ": " + why);
      }
      const std::string offsets_text = "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "]";
      if (begin > end) return Status(Code::kCorrupt, label + ": " + offsets_text + ": begin is after end");
      if (end > data_bytes) {
        return Status(Code::kCorrupt, label + ": " + offsets_text + ": end lies past the end of the data section (" +
                                          std::to_string(data_bytes) + " bytes)");
      }
      if (end - begin != t.bytes) {
        return Status(Code::kCorrupt, label + ": " + offsets_text + " span " + std::to_string(end - begin) +
                                          " bytes, but dtype " + dtype_name(t.dtype) + " and shape " +
                                          shape_text(t.shape) + " take " + std::to_string(t.bytes));
      }
      t.offset = begin;
      f.tensors.push_back(std::move(t));
    }
    context = "header";
    return r.finish();
  }();
  if (!s.ok()) {
    // Reader errors ("at byte N: ...") are JSON syntax errors: say so and where.
    if (s.code == Code::kCorrupt && s.message.rfind("at byte ", 0) == 0) {
      return Status(Code::kCorrupt, context + ": invalid JSON " + s.message);
    }
    return s;
  }

  // Names: unique (by_name also serves find()).
  const size_t count = f.tensors.size();
  if (count > size_t(std::numeric_limits<int32_t>::max())) return Status(Code::kCorrupt, "header: too many tensors");
  f.by_name.resize(count);
  for (size_t i = 0; i < count; ++i) f.by_name[i] = int32_t(i);
  std::sort(f.by_name.begin(), f.by_name.end(),
            [&](int32_t a, int32_t b) { return f.tensors[size_t(a)].name < f.tensors[size_t(b)].name; });
  for (size_t i = 1; i < count; ++i) {
    const std::string& a = f.tensors[size_t(f.by_name[i - 1])].name;
    if (a == f.tensors[size_t(f.by_name[i])].name) return Status(Code::kCorrupt, "header: duplicate tensor name " + quoted(a));
  }

  // Tiling: ordered by offset, the tensors cover [0, data_bytes) exactly.
  std::vector<TensorInfo>& ts = f.tensors;
  std::sort(ts.begin(), ts.end(), [](const TensorInfo& a, const TensorInfo& b) {
    if (a.offset != b.offset) return a.offset < b.offset;
    if (a.bytes != b.bytes) return a.bytes < b.bytes;
    return a.name < b.name;
  });
  int64_t pos = 0;
  for (size_t i = 0; i < count; ++i) {
    const TensorInfo& t = ts[i];
    const std::string range = "data_offsets [" + std::to_string(t.offset) + ", " + std::to_string(t.offset + t.bytes) + "]";
    if (t.offset < pos) {
      const TensorInfo& p = ts[i - 1];
      return Status(Code::kCorrupt, tensor_label(t.name) + ": " + range + " overlap " + tensor_label(p.name) +
                                        " (data_offsets [" + std::to_string(p.offset) + ", " +
                                        std::to_string(p.offset + p.bytes) + "])");
    }
    if (t.offset > pos) {
      return Status(Code::kCorrupt, "data section: bytes [" + std::to_string(pos) + ", " + std::to_string(t.offset) +
                                        ") " + (i == 0 ? "before " + tensor_label(t.name)
                                                       : "between " + tensor_label(ts[i - 1].name) + " and " +
                                                             tensor_label(t.name)) +
                                        " belong to no tensor (the tensors must cover the data section without holes)");
    }
    pos = t.offset + t.bytes;
  }
  if (pos != data_bytes) {
    return Status(Code::kCorrupt, "data section: " + std::to_string(data_bytes - pos) + " byte(s) after " +
                                      (count == 0 ? std::string("the header, which lists no tensor")
                                                  : "the last tensor, " + tensor_label(ts[count - 1].name) +
                                                        ", which ends at " + std::to_string(pos)) +
                                      " (trailing data)");
  }
  // by_name was built before the sort: rebuild it for the final order.
  for (size_t i = 0; i < count; ++i) f.by_name[i] = int32_t(i);
  std::sort(f.by_name.begin(), f.by_name.end(),
            [&](int32_t a, int32_t b) { return ts[size_t(a)].name < ts[size_t(b)].name; });
  *out = std::move(f);
  return Status::Ok();
}

// Checks the first 8 bytes' N against the total length.
Status check_length_prefix(uint64_t n, int64_t len) {
  if (n > uint64_t(fmt::kMaxHeaderBytes)) {
    return Status(Code::kCorrupt, "header length " + std::to_string(n) + " exceeds the limit of " +
                                      std::to_string(fmt::kMaxHeaderBytes) + " bytes");
  }
  if (n > uint64_t(len - 8)) {
    return Status(Code::kCorrupt, "header length " + std::to_string(n) + " does not fit in the " + std::to_string(len) +
                                      " bytes (8 of them the length itself): truncated, or not a safetensors file");
  }
  return Status::Ok();
}

Status parse_in_place(const uint8_t* data, int64_t len, const std::string& where, SafetensorsFile* out) {
  if (len < 8) {
    return corrupt(where, std::to_string(len) + " bytes, shorter than the 8-byte header length: truncated, or not a "
                                                "safetensors file");
  }
  const uint64_t n = ld64(data);
  Status s = check_length_prefix(n, len);
  if (!s.ok()) return corrupt(where, s.message);
  SafetensorsFile f;
  try {
    s = parse_header(data + 8, int64_t(n), len - 8 - int64_t(n), &f);
  } catch (const std::bad_alloc&) {
    return out_of_memory(int64_t(n), "the header");
  }
  if (!s.ok()) return s.code == Code::kCorrupt ? corrupt(where, s.message) : s;
  f.data = data + 8 + n;
  *out = std::move(f);
  return Status::Ok();
}

inline bool cancelled(const CancelFlag* c) { return c != nullptr && c->cancelled(); }

// Host order <-> little-endian of `bytes` bytes of `dtype` (the same operation both ways).
void swap_copy(DType dtype, const uint8_t* src, int64_t bytes, uint8_t* dst) {
  std::memcpy(dst, src, size_t(bytes));
  if constexpr (!kHostLittle) {
    const int unit = dtype_swap_unit(dtype);
    if (unit > 1) {
      for (int64_t i = 0; i + unit <= bytes; i += unit) std::reverse(dst + i, dst + i + unit);
    }
  } else {
    (void)dtype;
  }
}

}  // namespace

// ---- dtypes ----------------------------------------------------------------------------------
const char* dtype_name(DType d) { return valid_dtype(d) ? kDTypes[int(d)].name : "?"; }

bool dtype_from_name(std::string_view name, DType* out) {
  for (const DTypeRow& row : kDTypes) {
    if (name == row.name) {
      *out = row.dtype;
      return true;
    }
  }
  return false;
}

int dtype_bits(DType d) { return valid_dtype(d) ? kDTypes[int(d)].bits : 0; }
int dtype_swap_unit(DType d) { return valid_dtype(d) ? kDTypes[int(d)].swap_unit : 1; }
bool dtype_converts_to_f32(DType d) {
  return d == DType::kF32 || d == DType::kF64 || d == DType::kF16 || d == DType::kBF16;
}

bool tensor_byte_size(DType dtype, const std::vector<int64_t>& shape, int64_t* bytes, std::string* why) {
  if (!valid_dtype(dtype)) {
    *why = "invalid dtype";
    return false;
  }
  if (shape.size() > size_t(fmt::kMaxRank)) {
    *why = "more than " + std::to_string(fmt::kMaxRank) + " dimensions";
    return false;
  }
  // Zero anywhere makes the tensor empty whatever the other dimensions are (as in the reference,
  // whose checked product would only overflow before reaching the zero).
  uint64_t elements = 1;
  bool overflow = false;
  bool zero = false;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0) {
      *why = "shape[" + std::to_string(i) + "] = " + std::to_string(shape[i]) + " is negative";
      return false;
    }
    if (shape[i] == 0) zero = true;
    if (!overflow && shape[i] != 0 && elements > uint64_t(kInt64Max) / uint64_t(shape[i])) overflow = true;
    if (!overflow) elements *= uint64_t(shape[i]);
  }
  if (zero) {
    *bytes = 0;
    return true;
  }
  const uint64_t bits = uint64_t(dtype_bits(dtype));
  if (overflow || elements > uint64_t(kInt64Max) / bits) {
    *why = "the size overflows 64 bits";
    return false;
  }
  const uint64_t nbits = elements * bits;
  if (nbits % 8 != 0) {
    *why = std::to_string(elements) + " elements of " + std::to_string(bits) + " bits do not fill whole bytes";
    return false;
  }
  *bytes = int64_t(nbits / 8);
  return true;
}

int64_t TensorInfo::elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // validated: the byte size fits in int64, so this does too
  return n;
}

const TensorInfo* SafetensorsFile::find(std::string_view name) const {
  auto it = std::lower_bound(by_name.begin(), by_name.end(), name,
                             [&](int32_t i, std::string_view n) { return tensors[size_t(i)].name < n; });
  if (it == by_name.end() || tensors[size_t(*it)].name != name) return nullptr;
  return &tensors[size_t(*it)];
}

// ---- reading ---------------------------------------------------------------------------------
Status parse_safetensors(const uint8_t* data, int64_t len, SafetensorsFile* out) {
  if (len < 0 || (data == nullptr && len > 0)) {
    return Status(Code::kInvalidArg, "safetensors buffer: invalid (length " + std::to_string(len) + ")");
  }
  return parse_in_place(data, len, "safetensors buffer", out);
}

Status read_safetensors_file(const std::string& path, SafetensorsFile* out, const SafetensorsReadOptions& opts) {
  const std::string where = "safetensors file '" + path + "'";
  if (cancelled(opts.cancel)) return Status(Code::kAborted, "read cancelled");
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.fd < 0) return io_error("read: cannot open " + where, errno);
  struct stat st;
  if (::fstat(fd.fd, &st) != 0) return io_error("read: cannot stat " + where, errno);
  if (!S_ISREG(st.st_mode)) return Status(Code::kIo, "read: " + where + " is not a regular file");
  const int64_t len = int64_t(st.st_size);
  if (len < 8) {
    return corrupt(where, std::to_string(len) + " bytes, shorter than the 8-byte header length: truncated, or not a "
                                                "safetensors file");
  }
  auto shrank = [&](int64_t at) {
    return Status(Code::kIo, "read: " + where + " shrank while being read (" + std::to_string(at) + " of " +
                                 std::to_string(len) + " bytes)");
  };

  if (opts.mmap) {
    void* m = ::mmap(nullptr, size_t(len), PROT_READ, MAP_PRIVATE, fd.fd, 0);
    if (m == MAP_FAILED) return io_error("read: cannot mmap " + where, errno);
    std::shared_ptr<const void> owner;
    try {
      owner = std::shared_ptr<const void>(m, [len](const void* p) { ::munmap(const_cast<void*>(p), size_t(len)); });
    } catch (const std::bad_alloc&) {
      ::munmap(m, size_t(len));
      return out_of_memory(0, "the mapping");
    }
    SafetensorsFile f;
    VLK_RETURN_IF_ERROR(parse_in_place(static_cast<const uint8_t*>(m), len, where, &f));
    f.owner = std::move(owner);
    f.mapped = true;
    *out = std::move(f);
    return Status::Ok();
  }

  uint8_t prefix[8];
  int64_t got = 0;
  if (!pread_full(fd.fd, prefix, 8, 0, &got)) return io_error("read: cannot read " + where, errno);
  if (got < 8) return shrank(got);
  const uint64_t n = ld64(prefix);
  Status s = check_length_prefix(n, len);
  if (!s.ok()) return corrupt(where, s.message);
  // n <= 100 MB and <= the file's size: this allocation is bounded by bytes that exist.
  std::unique_ptr<uint8_t[]> header(new (std::nothrow) uint8_t[size_t(std::max<uint64_t>(n, 1))]);
  if (!header) return out_of_memory(int64_t(n), "the header");
  if (!pread_full(fd.fd, header.get(), int64_t(n), 8, &got)) return io_error("read: cannot read " + where, errno);
  if (got < int64_t(n)) return shrank(8 + got);
  SafetensorsFile f;
  const int64_t data_bytes = len - 8 - int64_t(n);
  try {
    s = parse_header(header.get(), int64_t(n), data_bytes, &f);
  } catch (const std::bad_alloc&) {
    return out_of_memory(int64_t(n), "the header");
  }
  if (!s.ok()) return s.code == Code::kCorrupt ? corrupt(where, s.message) : s;
  header.reset();
  // The header is consistent with the file's size: the data section exists, so allocate it.
  std::shared_ptr<void> block = aligned_block(data_bytes);
  if (!block) return out_of_memory(data_bytes, "the data section");
  uint8_t* base = static_cast<uint8_t*>(block.get());
  const int64_t start = 8 + int64_t(n);
  for (int64_t pos = 0; pos < data_bytes; pos += kChunk) {
    if (cancelled(opts.cancel)) return Status(Code::kAborted, "read cancelled");
    const int64_t want = std::min(kChunk, data_bytes - pos);
    if (!pread_full(fd.fd, base + pos, want, start + pos, &got)) return io_error("read: cannot read " + where, errno);
    if (got < want) return shrank(start + pos + got);
  }
  f.data = base;
  f.owner = std::move(block);
  f.mapped = false;
  *out = std::move(f);
  return Status::Ok();
}

// ---- conversions -----------------------------------------------------------------------------
float f16_bits_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400u) == 0);
      bits = sign | (uint32_t(127 - 15 - e) << 23) | ((mant & 0x3FFu) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7F800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float bf16_bits_to_f32(uint16_t b) {
  const uint32_t bits = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t f32_to_bf16_bits(float value) {
  uint32_t x;
  std::memcpy(&x, &value, 4);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return uint16_t((x >> 16) | 0x40u);  // NaN: keep it quiet
  x += 0x7FFFu + ((x >> 16) & 1u);
  return uint16_t(x >> 16);
}

uint16_t f32_to_f16_bits(float value) {
  uint32_t x;
  std::memcpy(&x, &value, 4);
  const uint16_t sign = uint16_t((x >> 16) & 0x8000u);
  const uint32_t abs = x & 0x7FFFFFFFu;
  if (abs > 0x7F800000u) return uint16_t(sign | 0x7E00u | ((abs >> 13) & 0x3FFu));  // NaN
  if (abs >= 0x477FF000u) return uint16_t(sign | 0x7C00u);  // rounds to >= 65520: infinity
  if (abs < 0x38800000u) {  // below 2^-14: subnormal or zero
    // value = abs_float; subnormal unit 2^-24: round(abs * 2^24) with ties to even.
    const uint32_t exp = abs >> 23;
    if (exp < 102) return sign;  // below 2^-25: rounds to zero
    const uint32_t mant = (abs & 0x7FFFFFu) | 0x800000u;
    const int shift = int(126 - exp);  // so that mant >> shift is in units of 2^-24
    uint32_t q = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) ++q;
    return uint16_t(sign | q);
  }
  uint32_t r = abs - 0x38000000u;  // rebias exponent 127 -> 15
  r += 0xFFFu + ((r >> 13) & 1u);
  return uint16_t(sign | (r >> 13));
}

void copy_to_host(DType dtype, const uint8_t* src, int64_t bytes, void* dst) {
  if (bytes > 0) swap_copy(dtype, src, bytes, static_cast<uint8_t*>(dst));
}

Status convert_to_f32(DType dtype, const uint8_t* src, int64_t count, float* dst) {
  switch (dtype) {
    case DType::kF32:
      copy_to_host(dtype, src, count * 4, dst);
      return Status::Ok();
    case DType::kF64:
      for (int64_t i = 0; i < count; ++i) {
        const uint64_t b = ld64(src + 8 * i);
        double d;
        std::memcpy(&d, &b, 8);
        dst[i] = static_cast<float>(d);
      }
      return Status::Ok();
    case DType::kF16:
      for (int64_t i = 0; i < count; ++i) dst[i] = f16_bits_to_f32(ld16(src + 2 * i));
      return Status::Ok();
    case DType::kBF16:
      for (int64_t i = 0; i < count; ++i) dst[i] = bf16_bits_to_f32(ld16(src + 2 * i));
      return Status::Ok();
    default:
      return Status(Code::kType, std::string("dtype ") + dtype_name(dtype) +
                                     " is not a floating-point type that converts to float32 (F32, F64, F16, BF16)");
  }
}

Status tensor_to_f32(const SafetensorsFile& file, const TensorInfo& t, float* dst) {
  if (!dtype_converts_to_f32(t.dtype)) {
    return Status(Code::kType, tensor_label(t.name) + ": dtype " + dtype_name(t.dtype) +
                                   " is not a floating-point type that converts to float32 (F32, F64, F16, BF16)");
  }
  return convert_to_f32(t.dtype, file.tensor_data(t), t.elements(), dst);
}

// ---- writing ---------------------------------------------------------------------------------
Status plan_safetensors(const std::vector<TensorInput>& tensors, const SafetensorsMetadata& metadata,
                        SafetensorsPlan* plan) {
  try {
    auto bad = [](const std::string& m) { return Status(Code::kInvalidArg, "safetensors: " + m); };
    const size_t count = tensors.size();
    for (const TensorInput& t : tensors) {
      const std::string label = tensor_label(t.name);
      if (t.name.empty()) return bad("a tensor has an empty name");
      if (utf8_invalid_at(reinterpret_cast<const uint8_t*>(t.name.data()), t.name.size()) < t.name.size()) {
        return bad(label + ": the name is not valid UTF-8");
      }
      if (t.name == "__metadata__") return bad(label + ": the name is reserved for the metadata");
      if (!valid_dtype(t.dtype)) return bad(label + ": invalid dtype");
      int64_t bytes = 0;
      std::string why;
      if (!tensor_byte_size(t.dtype, t.shape, &bytes, &why)) {
        return bad(label + ": dtype " + dtype_name(t.dtype) + ", shape " + shape_text(t.shape) + ": " + why);
      }
      if (bytes != t.bytes) {
        return bad(label + ": data has " + std::to_string(t.bytes) + " bytes, but dtype " + dtype_name(t.dtype) +
                   " and shape " + shape_text(t.shape) + " take " + std::to_string(bytes));
      }
      if (t.bytes > 0 && t.data == nullptr) return bad(label + ": data is null");
    }
    // Data order: widest dtype first (the reference's order, which keeps every tensor aligned to
    // its element size), then name.
    SafetensorsPlan p;
    p.order.resize(count);
    for (size_t i = 0; i < count; ++i) p.order[i] = i;
    std::sort(p.order.begin(), p.order.end(), [&](size_t a, size_t b) {
      if (tensors[a].dtype != tensors[b].dtype) return tensors[a].dtype > tensors[b].dtype;
      return tensors[a].name < tensors[b].name;
    });
    {
      std::vector<const std::string*> names(count);
      for (size_t i = 0; i < count; ++i) names[i] = &tensors[i].name;
      std::sort(names.begin(), names.end(), [](const std::string* a, const std::string* b) { return *a < *b; });
      for (size_t i = 1; i < count; ++i) {
        if (*names[i] == *names[i - 1]) return bad("duplicate tensor name " + quoted(*names[i]));
      }
    }
    std::vector<const std::pair<std::string, std::string>*> meta(metadata.size());
    for (size_t i = 0; i < metadata.size(); ++i) {
      const auto& kv = metadata[i];
      for (const std::string* s : {&kv.first, &kv.second}) {
        if (utf8_invalid_at(reinterpret_cast<const uint8_t*>(s->data()), s->size()) < s->size()) {
          return bad("metadata " + quoted(kv.first) + ": " + (s == &kv.first ? "the key" : "the value") +
                     " is not valid UTF-8");
        }
      }
      meta[i] = &kv;
    }
    std::sort(meta.begin(), meta.end(), [](const auto* a, const auto* b) { return a->first < b->first; });
    for (size_t i = 1; i < meta.size(); ++i) {
      if (meta[i]->first == meta[i - 1]->first) return bad("duplicate metadata key " + quoted(meta[i]->first));
    }

    p.offsets.assign(count, 0);
    int64_t offset = 0;
    for (size_t idx : p.order) {
      p.offsets[idx] = offset;
      if (tensors[idx].bytes > kInt64Max - offset) return bad("the tensors' total size overflows 64 bits");
      offset += tensors[idx].bytes;
    }
    p.data_bytes = offset;

    std::string json = "{";
    bool first = true;
    if (!meta.empty()) {
      json += "\"__metadata__\":{";
      for (size_t i = 0; i < meta.size(); ++i) {
        if (i) json += ',';
        json_append_quoted(&json, meta[i]->first);
        json += ':';
        json_append_quoted(&json, meta[i]->second);
      }
      json += '}';
      first = false;
    }
    for (size_t idx : p.order) {
      const TensorInput& t = tensors[idx];
      if (!first) json += ',';
      first = false;
      json_append_quoted(&json, t.name);
      json += ":{\"dtype\":\"";
      json += dtype_name(t.dtype);
      json += "\",\"shape\":[";
      for (size_t d = 0; d < t.shape.size(); ++d) {
        if (d) json += ',';
        json += std::to_string(t.shape[d]);
      }
      json += "],\"data_offsets\":[";
      json += std::to_string(p.offsets[idx]);
      json += ',';
      json += std::to_string(p.offsets[idx] + t.bytes);
      json += "]}";
    }
    json += '}';
    json.append((8 - json.size() % 8) % 8, ' ');
    const int64_t n = int64_t(json.size());
    if (n > fmt::kMaxHeaderBytes) {
      return bad("the header would take " + std::to_string(n) + " bytes, over the " +
                 std::to_string(fmt::kMaxHeaderBytes) + "-byte limit readers accept (too many tensors or too "
                                                        "much metadata)");
    }
    if (p.data_bytes > kInt64Max - 8 - n) return bad("the total size overflows 64 bits");
    // Self-check: never write what the reader would reject.
    SafetensorsFile check;
    Status s = parse_header(reinterpret_cast<const uint8_t*>(json.data()), n, p.data_bytes, &check);
    if (!s.ok()) return Status(Code::kInternal, "safetensors: the encoder produced a header the reader rejects: " + s.message);

    p.header.reserve(size_t(8 + n));
    for (int i = 0; i < 8; ++i) p.header.push_back(char(uint64_t(n) >> (8 * i) & 0xFF));
    p.header += json;
    p.total_bytes = 8 + n + p.data_bytes;
    *plan = std::move(p);
    return Status::Ok();
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "safetensors: out of memory building the header");
  }
}

Status encode_safetensors_into(const std::vector<TensorInput>& tensors, const SafetensorsPlan& plan, uint8_t* out,
                               int64_t out_len, const CancelFlag* cancel) {
  if (plan.offsets.size() != tensors.size()) {
    return Status(Code::kInvalidArg, "safetensors: the plan was made for another tensor list");
  }
  if (out == nullptr || out_len < plan.total_bytes) {
    return Status(Code::kInvalidArg, "safetensors: output buffer of " + std::to_string(out == nullptr ? 0 : out_len) +
                                         " bytes, need " + std::to_string(plan.total_bytes));
  }
  if (cancelled(cancel)) return Status(Code::kAborted, "encode cancelled");
  std::memcpy(out, plan.header.data(), plan.header.size());
  uint8_t* data = out + plan.header.size();
  for (size_t idx : plan.order) {
    const TensorInput& t = tensors[idx];
    const uint8_t* src = static_cast<const uint8_t*>(t.data);
    for (int64_t pos = 0; pos < t.bytes; pos += kChunk) {
      if (cancelled(cancel)) return Status(Code::kAborted, "encode cancelled");
      swap_copy(t.dtype, src + pos, std::min(kChunk, t.bytes - pos), data + plan.offsets[idx] + pos);
    }
  }
  return Status::Ok();
}

Status encode_safetensors(const std::vector<TensorInput>& tensors, const SafetensorsMetadata& metadata,
                          std::vector<uint8_t>* out) {
  SafetensorsPlan plan;
  VLK_RETURN_IF_ERROR(plan_safetensors(tensors, metadata, &plan));
  std::vector<uint8_t> bytes;
  try {
    bytes.resize(size_t(plan.total_bytes));
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "safetensors: cannot allocate " + std::to_string(plan.total_bytes) + " bytes");
  } catch (const std::length_error&) {
    return Status(Code::kOutOfMemory, "safetensors: cannot allocate " + std::to_string(plan.total_bytes) + " bytes");
  }
  VLK_RETURN_IF_ERROR(encode_safetensors_into(tensors, plan, bytes.data(), int64_t(bytes.size())));
  *out = std::move(bytes);
  return Status::Ok();
}

Status write_safetensors_file(const std::string& path, const std::vector<TensorInput>& tensors,
                              const SafetensorsMetadata& metadata, const CancelFlag* cancel) {
  SafetensorsPlan plan;
  VLK_RETURN_IF_ERROR(plan_safetensors(tensors, metadata, &plan));
  if (path.empty()) return Status(Code::kInvalidArg, "save: empty path");
  if (cancelled(cancel)) return Status(Code::kAborted, "save cancelled");
  // Big-endian hosts swap through a staging buffer; little-endian ones write straight from the
  // caller's memory.
  std::unique_ptr<uint8_t[]> stage;
  if constexpr (!kHostLittle) {
    stage.reset(new (std::nothrow) uint8_t[size_t(kChunk)]);
    if (!stage) return Status(Code::kOutOfMemory, "safetensors: cannot allocate the write buffer");
  }
  AtomicFile file;
  VLK_RETURN_IF_ERROR(file.create(path, "save"));
  VLK_RETURN_IF_ERROR(
      file.write_at(0, reinterpret_cast<const uint8_t*>(plan.header.data()), int64_t(plan.header.size())));
  const int64_t base = int64_t(plan.header.size());
  for (size_t idx : plan.order) {
    const TensorInput& t = tensors[idx];
    const uint8_t* src = static_cast<const uint8_t*>(t.data);
    for (int64_t pos = 0; pos < t.bytes; pos += kChunk) {
      if (cancelled(cancel)) return Status(Code::kAborted, "save cancelled");
      const int64_t n = std::min(kChunk, t.bytes - pos);
      const uint8_t* p = src + pos;
      if constexpr (!kHostLittle) {
        swap_copy(t.dtype, p, n, stage.get());
        p = stage.get();
      }
      VLK_RETURN_IF_ERROR(file.write_at(base + plan.offsets[idx] + pos, p, n));
    }
  }
  return file.commit(cancel);
}

}  // namespace core
}  // namespace vlk
