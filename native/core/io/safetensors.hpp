// The safetensors format (core/io): a validating reader (in-place parse of a buffer, or a file read
// into memory it owns or mapped), an encoder and an atomic file writer, and conversions of the
// tensor bytes to float32 / to host-order arrays. Plain C++17 + POSIX; no Node-API.
//
// Layout (https://huggingface.co/docs/safetensors): u64 little-endian N, then N bytes of UTF-8
// JSON, an object mapping each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}
// (offsets into the data section that follows the header) plus an optional "__metadata__"
// object of string -> string; then the data section, tensors little-endian, row-major.
//
// What the reader enforces (any violation is kCorrupt naming "buffer" or the file, and the tensor
// and field): 8 <= length; N <= 100,000,000 and N <= length - 8; the header valid UTF-8 and one
// JSON object starting at its first byte, strictly parsed (core/io/json.hpp), only whitespace
// after it; tensor names non-empty and unique, "__metadata__" at most once and an object of
// strings (or null); per tensor exactly the fields dtype (a known name), shape (an array of at
// most kMaxRank integers >= 0) and data_offsets (two integers), unknown fields ignored as the
// reference does; byte size = product(shape) * bits / 8 without overflow (sub-byte dtypes must
// fill whole bytes); begin <= end, end - begin == byte size, end within the data section; and the
// tensors, ordered by offset, tile the data section exactly: no overlap, no hole, nothing after
// the last one. Memory used for a header is bounded by a small multiple of N whatever it holds.
//
// What the writer does: checks its input (kInvalidArg: empty, duplicate or reserved names,
// invalid UTF-8, size mismatches, duplicate metadata keys), orders the tensors as the reference
// implementation does (by dtype, widest first, then by name, so that every tensor's data is
// aligned to its element size), writes "__metadata__" first with its keys sorted, the JSON
// compact and escaped as serde_json does, the header padded with spaces to a multiple of 8
// bytes, and the data little-endian. For inputs with at most one metadata key its output is byte
// for byte the reference implementation's (Python `safetensors.serialize`).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/cancel.hpp"
#include "common/status.hpp"

namespace vlk {
namespace core {

/// Element types, in the reference implementation's order (which its writer sorts by; checked
/// against safetensors 0.8 for every dtype it can write).
enum class DType : uint8_t {
  kBool,
  kF4,
  kF6E2M3,
  kF6E3M2,
  kU8,
  kI8,
  kF8E5M2,
  kF8E4M3,
  kF8E8M0,
  kF8E4M3FNUZ,
  kF8E5M2FNUZ,
  kI16,
  kU16,
  kF16,
  kBF16,
  kI32,
  kU32,
  kF32,
  kC64,
  kF64,
  kI64,
  kU64,
};
inline constexpr int kDTypeCount = 22;

/// The file's name of a dtype: "F32", "BF16", "F8_E4M3", ...
const char* dtype_name(DType dtype);
/// The dtype named `name` (exact, case-sensitive); false for an unknown name.
bool dtype_from_name(std::string_view name, DType* out);
/// Bits per element: 4 (F4), 6 (F6_*), 8, 16, 32 or 64.
int dtype_bits(DType dtype);
/// Bytes of one host-order unit that byte order applies to: 1 for 8-bit and sub-byte types, 4 for
/// C64 (two float32 parts), else the element size.
int dtype_swap_unit(DType dtype);
/// F32, F64, F16, BF16: the dtypes convert_to_f32 accepts.
bool dtype_converts_to_f32(DType dtype);

namespace safetensors_format {
inline constexpr int64_t kMaxHeaderBytes = 100000000;  // the reference implementation's limit
inline constexpr int kMaxRank = 64;                    // dimensions per shape (numpy's limit)
}  // namespace safetensors_format

/// Byte size of a tensor of `dtype` and `shape`: product(shape) * bits / 8. False (with the reason
/// in *why) when a dimension is negative, the rank exceeds kMaxRank, the size overflows int64, or
/// a sub-byte dtype does not fill whole bytes.
bool tensor_byte_size(DType dtype, const std::vector<int64_t>& shape, int64_t* bytes, std::string* why);

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;  // [] for a scalar
  int64_t offset = 0;          // from the start of the data section
  int64_t bytes = 0;
  /// product(shape) (1 for a scalar).
  int64_t elements() const;
};

/// A parsed file. `data` points at the data section: raw file bytes, little-endian whatever the
/// host (use copy_to_host / convert_to_f32 to get host-order values).
struct SafetensorsFile {
  std::vector<TensorInfo> tensors;                             // ordered by offset (then name)
  std::vector<std::pair<std::string, std::string>> metadata;  // "__metadata__", sorted by key
  bool has_metadata = false;                                   // "__metadata__" was an object
  int64_t header_bytes = 0;                                    // N
  const uint8_t* data = nullptr;                               // the data section
  int64_t data_bytes = 0;
  std::shared_ptr<const void> owner;  // read_safetensors_file: keeps `data` alive; parse: null
  bool mapped = false;                // `owner` is an mmap of the file

  /// The tensor named `name`, or null. O(log n).
  const TensorInfo* find(std::string_view name) const;
  const uint8_t* tensor_data(const TensorInfo& t) const { return data + t.offset; }

  std::vector<int32_t> by_name;  // indices into `tensors` sorted by name (find)
};

/// Validates data[0 .. len) (see the top of this file) and describes it in *out, whose `data`
/// then points into `data` (no copy: the buffer must outlive *out and stay unchanged). Errors:
/// kCorrupt ("safetensors buffer: ..."), kInvalidArg (null data with len > 0, len < 0),
/// kOutOfMemory. *out is written only on success.
Status parse_safetensors(const uint8_t* data, int64_t len, SafetensorsFile* out);

struct SafetensorsReadOptions {
  /// true: mmap(PROT_READ, MAP_PRIVATE) the file and parse it in place (the file must then not be
  /// truncated or rewritten in place while *out lives; write_safetensors_file replaces by rename,
  /// which is safe). false: the header, then the data section into a 64-byte aligned heap block.
  bool mmap = false;
  /// Polled between chunks of the read; once set, the call returns kAborted.
  const CancelFlag* cancel = nullptr;
};

/// Reads and validates the file at `path`; *out owns its memory (`owner`). The header length is
/// checked against the file's size before anything is allocated for it, and the data section is
/// allocated only after the header proved it consistent with that size. Errors: kIo (cannot
/// open/stat/read/map, not a regular file, file shrank; naming the path), kCorrupt
/// ("safetensors file '<path>': ..."), kOutOfMemory, kAborted. *out is written only on success.
Status read_safetensors_file(const std::string& path, SafetensorsFile* out, const SafetensorsReadOptions& opts = {});

/// Copies `bytes` bytes of little-endian file data of `dtype` to `dst` in host byte order (a
/// memcpy on little-endian hosts). `bytes` must be a multiple of dtype_swap_unit(dtype).
void copy_to_host(DType dtype, const uint8_t* src, int64_t bytes, void* dst);

/// Converts `count` little-endian elements of `dtype` (F32, F64, F16, BF16) to float32: F16 and
/// BF16 exactly (subnormals, infinities and NaN payloads kept), F64 rounded to nearest (beyond
/// the float32 range: +-Infinity). kType for any other dtype.
Status convert_to_f32(DType dtype, const uint8_t* src, int64_t count, float* dst);

/// convert_to_f32 of a whole tensor of `file`; kType names the tensor and its dtype.
Status tensor_to_f32(const SafetensorsFile& file, const TensorInfo& tensor, float* dst);

/// Scalar conversions (bit patterns in host order).
float f16_bits_to_f32(uint16_t bits);
float bf16_bits_to_f32(uint16_t bits);
/// Round to nearest even; NaN stays NaN (quiet), overflow gives infinity.
uint16_t f32_to_f16_bits(float value);
uint16_t f32_to_bf16_bits(float value);

// ---- writing ----------------------------------------------------------------------------------

/// One tensor to write. `data` holds `bytes` bytes in host byte order (raw bytes for 8-bit and
/// sub-byte dtypes); it may be null only when bytes == 0.
struct TensorInput {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  int64_t bytes = 0;
};

/// Metadata as (key, value) pairs, any order; empty: no "__metadata__" entry.
using SafetensorsMetadata = std::vector<std::pair<std::string, std::string>>;

/// What the writer will produce: the 8-byte length and the padded JSON header, the tensors' data
/// order and offsets, and the total size.
struct SafetensorsPlan {
  std::string header;            // u64 N then N bytes of JSON padded with spaces
  std::vector<size_t> order;     // input indices in data order
  std::vector<int64_t> offsets;  // per input index: offset in the data section
  int64_t data_bytes = 0;
  int64_t total_bytes = 0;       // header.size() + data_bytes
};

/// Checks the input and builds the header. Errors: kInvalidArg naming the tensor (or metadata
/// key) and the problem; kOutOfMemory.
Status plan_safetensors(const std::vector<TensorInput>& tensors, const SafetensorsMetadata& metadata,
                        SafetensorsPlan* plan);

/// Writes the encoding planned by plan_safetensors(tensors, ...) to out[0 .. plan.total_bytes).
/// Errors: kInvalidArg (out_len too small), kAborted (cancel set; polled between chunks).
Status encode_safetensors_into(const std::vector<TensorInput>& tensors, const SafetensorsPlan& plan, uint8_t* out,
                               int64_t out_len, const CancelFlag* cancel = nullptr);

/// plan + encode into a new vector.
Status encode_safetensors(const std::vector<TensorInput>& tensors, const SafetensorsMetadata& metadata,
                          std::vector<uint8_t>* out);

/// Writes the encoding to `path` atomically (common/atomic_file.hpp: temporary file in the same
/// directory, fsync, rename, fsync of the directory); on any failure an existing `path` is left
/// as it was and no temporary file remains. Errors: those of plan_safetensors, kInvalidArg (empty
/// path), kIo (naming the path and the system's reason), kAborted.
Status write_safetensors_file(const std::string& path, const std::vector<TensorInput>& tensors,
                              const SafetensorsMetadata& metadata, const CancelFlag* cancel = nullptr);

}  // namespace core
}  // namespace vlk
