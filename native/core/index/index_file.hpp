// The on-disk (and in-buffer) format of a FlatIndex (core/index): a versioned, checksummed,
// little-endian image of the index's rows, written atomically and read back either into the heap
// or as a read-only mmap whose sections are used in place. Plain C++17 + POSIX; no Node-API.
// Every byte is documented in docs/index-format.md.
//
// Shape of the file: a 128-byte header (magic, version, dim, metric, storage, flags, count,
// next_auto_id, a table of four sections, a CRC32C of the payload and a CRC32C of the header),
// then the sections ids, f32, codes, scales, each at a 64-byte aligned offset, zero padding
// between them, nothing after the last one.
//
// Refinements of the API in the design brief:
//  - Storage and storage_name are not declared here: they already exist in
//    search/search_quantized.hpp (same values, kF32 = 0, kBF16 = 1, kI8 = 2), which this includes.
//  - IoOptions::chunk_bytes: the granularity of I/O, progress and cancellation (default 8 MiB);
//    tests set it small to exercise chunk boundaries with small images.
//  - The CRC32C functions are public (crc32c, crc32c_portable, crc32c_hw) so tests and tools can
//    checksum; the format constants (header field offsets) are public in index_format::.
//  - The readers also check next_auto_id: >= 0 and above every id (FlatIndex's invariant, so that
//    automatic ids after a load never collide), and that bf16 codes are finite.
//  - An IndexImage's pointer for an empty section (count 0, or a section the storage lacks) is null.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "common/cancel.hpp"
#include "common/status.hpp"
#include "search/search.hpp"
#include "search/search_quantized.hpp"  // Storage, storage_name (values are the file's `storage`)

namespace vlk {
namespace core {

/// What a FlatIndex hands over to be written, or gets back from a read. Nothing is owned.
struct IndexImage {
  int64_t dim = 0;                       // 1 .. index_format::kMaxDim
  Metric metric = Metric::kInnerProduct;
  Storage storage = Storage::kF32;
  bool has_f32 = true;                   // fp32 rows present (always for kF32; bf16/i8: "exact" mode)
  int64_t count = 0;                     // rows (live vectors only: writers compact first)
  int64_t next_auto_id = 0;              // >= 0; above every id, or == every id == INT64_MAX
  const int64_t* ids = nullptr;          // count ids, each >= 0
  const float* f32 = nullptr;            // count x dim row-major, finite; null when !has_f32
  const void* codes = nullptr;           // kBF16: count x dim uint16 (bf16 bits, finite);
                                         // kI8: count x dim int8; null for kF32
  const float* scales = nullptr;         // kI8: count per-row scales, finite and >= 0; else null
};

using ProgressFn = void (*)(void* ctx, int64_t done_bytes, int64_t total_bytes);

struct IoOptions {
  /// Called with (0, total) first, (done, total) after each chunk (done increasing), and
  /// (total, total) once at the end of a successful call. Runs on the calling thread; keep it cheap.
  ProgressFn progress = nullptr;
  void* progress_ctx = nullptr;
  /// Polled before every chunk; once set, the call stops with kAborted (a write leaves no file).
  const CancelFlag* cancel = nullptr;
  /// Bytes per chunk; 0: 8 MiB. Rounded up to a multiple of 64.
  int64_t chunk_bytes = 0;
};

/// Exact size in bytes of the encoding of `image`, or -1 if its dim/count/storage are invalid or
/// the size overflows int64.
int64_t encoded_size(const IndexImage& image);

/// Encodes `image` into out[0 .. encoded_size(image)). Errors: kInvalidArg (bad dim, metric,
/// storage, flags, count, null pointer, negative id, id not below next_auto_id, bad scale, or
/// out_len below the encoded size), kNonFinite (NaN/Inf in f32 or bf16 rows, naming row and
/// col), kAborted. Contents of `out` are unspecified on error.
Status encode_index(const IndexImage& image, uint8_t* out, int64_t out_len, const IoOptions& opts);

/// Writes `image` to `path` atomically: a temporary file in the same directory (O_EXCL, 0644),
/// written in chunks, fsync'ed, renamed over `path`, then the directory is fsync'ed. On any
/// failure the temporary file is removed and an existing `path` is left as it was. Errors: those
/// of encode_index, and kIo (naming the path and the system's reason). A kIo from the final
/// directory fsync means the file is in place but its durability is not confirmed.
Status write_index_file(const std::string& path, const IndexImage& image, const IoOptions& opts);

/// A loaded image that owns its memory: a 64-byte aligned heap buffer holding the whole encoding,
/// or a read-only private mapping of the file, kept alive (mapped) as long as any copy of `owner`
/// lives. `image`'s pointers point into that memory; the f32 rows are 64-byte aligned.
struct LoadedIndex {
  IndexImage image;
  std::shared_ptr<const void> owner;
  bool mapped = false;  // true: `owner` is an mmap of the file
};

/// Validates data[0 .. len) completely and copies it into memory of its own (so `data` may change
/// or go away afterwards; a buffer shared with another thread cannot make the result invalid).
/// Errors: kCorrupt (naming the field or section, the value found and what was expected),
/// kOutOfMemory, kAborted, kInvalidArg (null data with len > 0, or len < 0). *out is written only
/// on success.
Status decode_index(const uint8_t* data, int64_t len, LoadedIndex* out, const IoOptions& opts);

/// Reads and validates the file at `path`. mmap = false: into a heap buffer, read in chunks.
/// mmap = true: mmap(PROT_READ, MAP_PRIVATE), validated in place (checksum included) and kept
/// mapped; the file must then not be truncated or rewritten in place while mapped (a save through
/// write_index_file replaces the file by rename, which is safe). On a big-endian host mmap falls
/// back to the heap (mapped = false). Errors: kIo (cannot open/stat/read/map, not a regular file;
/// naming the path), those of decode_index. *out is written only on success.
Status read_index_file(const std::string& path, bool mmap, LoadedIndex* out, const IoOptions& opts);

// ---- CRC32C (Castagnoli, reflected polynomial 0x82F63B78) ----------------------------------
// Running form: crc32c(crc32c(0, a), b) == crc32c(0, a followed by b). crc32c(0, "123456789", 9)
// == 0xE3069283.

/// Uses the SSE4.2 crc32 instruction when the CPU has it, else the portable code.
uint32_t crc32c(uint32_t crc, const void* data, size_t n);
/// Slicing-by-8 table implementation; any host.
uint32_t crc32c_portable(uint32_t crc, const void* data, size_t n);
/// True on x86-64 with SSE4.2 (cpuid, checked once).
bool crc32c_hw_available();
/// The SSE4.2 implementation; call only when crc32c_hw_available().
uint32_t crc32c_hw(uint32_t crc, const void* data, size_t n);

// ---- Format constants (docs/index-format.md) -------------------------------------------------
namespace index_format {

inline constexpr char kMagic[8] = {'V', 'L', 'K', 'F', 'L', 'A', 'T', '\0'};
inline constexpr uint32_t kVersion = 1;
inline constexpr int64_t kHeaderSize = 128;
inline constexpr int64_t kAlign = 64;              // every section's file offset
inline constexpr uint32_t kMaxDim = 1u << 20;
inline constexpr uint32_t kFlagHasF32 = 1u << 0;   // the only defined flag bit

// Byte offsets of the header fields.
inline constexpr int kOffMagic = 0;         // 8 bytes
inline constexpr int kOffVersion = 8;       // u32
inline constexpr int kOffHeaderSize = 12;   // u32
inline constexpr int kOffDim = 16;          // u32
inline constexpr int kOffMetric = 20;       // u32
inline constexpr int kOffStorage = 24;      // u32
inline constexpr int kOffFlags = 28;        // u32
inline constexpr int kOffCount = 32;        // i64
inline constexpr int kOffNextAutoId = 40;   // i64
inline constexpr int kOffSections = 48;     // 4 x {u64 offset, u64 length}, in Section order
inline constexpr int kOffPayloadCrc = 112;  // u32, CRC32C of bytes [kHeaderSize, end of file)
inline constexpr int kOffReserved = 116;    // 8 bytes, zero
inline constexpr int kOffHeaderCrc = 124;   // u32, CRC32C of the header with this field zeroed

enum Section { kSecIds = 0, kSecF32 = 1, kSecCodes = 2, kSecScales = 3, kSectionCount = 4 };

/// "ids", "f32", "codes", "scales".
const char* section_name(int section);

}  // namespace index_format

}  // namespace core
}  // namespace vlk
