// The FlatIndex file format (core/index): encoder, atomic file writer, validating decoder and
// reader (heap or mmap), and CRC32C. See index_file.hpp for the API and docs/index-format.md for
// the layout.
//
// Both directions run one sequential pass over the file's bytes after the header, in chunks that
// start at multiples of the chunk size (itself a multiple of 64). Sections start at multiples of
// 64 too, so a chunk never splits an element, and each chunk is checksummed and content-checked
// while it is cache-hot (scan_range). The writer fills a chunk from the image (fill_range), checks
// it with the same scan_range the reader uses (so it never writes what the reader would reject),
// and writes it; the header, which holds the payload CRC, is written last.
#include "index/index_file.hpp"

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

#include "common/atomic_file.hpp"
#include "common/checked_size.hpp"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#include <nmmintrin.h>
#define VLK_CRC_X86 1
#endif

namespace vlk {
namespace core {

namespace fmt = index_format;

namespace {

constexpr bool kHostLittle = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;
constexpr int64_t kDefaultChunk = int64_t(8) << 20;
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();

// ---- little-endian access --------------------------------------------------------------------
// Header fields: byte-wise, any host. Bulk elements (ld16/ld32/ld64): one memcpy load on a
// little-endian host, byte-wise elsewhere.
inline uint32_t get_u32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
inline uint64_t get_u64(const uint8_t* p) { return uint64_t(get_u32(p)) | uint64_t(get_u32(p + 4)) << 32; }
inline void put_u32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i));
}
inline void put_u64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = uint8_t(v >> (8 * i));
}

inline uint16_t ld16(const uint8_t* p) {
  if constexpr (kHostLittle) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    return v;
  } else {
    return uint16_t(p[0] | p[1] << 8);
  }
}
inline uint32_t ld32(const uint8_t* p) {
  if constexpr (kHostLittle) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
  } else {
    return get_u32(p);
  }
}
inline uint64_t ld64(const uint8_t* p) {
  if constexpr (kHostLittle) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
  } else {
    return get_u64(p);
  }
}

inline float bits_to_float(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

// Reverses every esz-byte element of p[0 .. n) in place (big-endian hosts only).
void swap_elements(uint8_t* p, int64_t n, int esz) {
  for (int64_t i = 0; i + esz <= n; i += esz) std::reverse(p + i, p + i + esz);
}

// ---- small string helpers --------------------------------------------------------------------
std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08x", v);
  return buf;
}

std::string hex_byte(unsigned v) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "0x%02x", v & 0xffu);
  return buf;
}

// Printable ASCII as is, anything else as \xHH.
std::string escape_bytes(const uint8_t* p, int64_t n) {
  std::string s;
  for (int64_t i = 0; i < n; ++i) {
    const unsigned c = p[i];
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') {
      s += char(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      s += buf;
    }
  }
  return s;
}

Status corrupt(const std::string& msg) { return Status(Code::kCorrupt, msg); }

// ---- CRC32C tables (slicing-by-8, built at compile time) -------------------------------------
struct CrcTables {
  uint32_t t[8][256];
};

constexpr CrcTables make_crc_tables() {
  CrcTables r{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
    r.t[0][i] = c;
  }
  for (int k = 1; k < 8; ++k) {
    for (int i = 0; i < 256; ++i) r.t[k][i] = (r.t[k - 1][i] >> 8) ^ r.t[0][r.t[k - 1][i] & 0xffu];
  }
  return r;
}

constexpr CrcTables kCrcTables = make_crc_tables();

#if VLK_CRC_X86
bool detect_sse42() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  return (c >> 20) & 1u;  // CPUID.1:ECX.SSE4_2
}

// The only function built for SSE4.2; called only after the cpuid check.
__attribute__((target("sse4.2"))) uint32_t crc32c_sse42(uint32_t crc, const uint8_t* p, size_t n) {
  uint64_t c = ~crc;
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7u) != 0) {
    c = _mm_crc32_u8(static_cast<uint32_t>(c), *p++);
    --n;
  }
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);  // x86 is little-endian: the bytes in file order
    c = _mm_crc32_u64(c, v);
    p += 8;
    n -= 8;
  }
  while (n > 0) {
    c = _mm_crc32_u8(static_cast<uint32_t>(c), *p++);
    --n;
  }
  return ~static_cast<uint32_t>(c);
}
#endif

// ---- layout ----------------------------------------------------------------------------------
struct Layout {
  int64_t off[fmt::kSectionCount] = {};
  int64_t len[fmt::kSectionCount] = {};
  int64_t row_bytes[fmt::kSectionCount] = {};  // bytes per row of each section
  int esz[fmt::kSectionCount] = {};            // bytes per element
  int64_t total = 0;                           // file size
};

// Everything the passes need, from a parsed header or from an image.
struct Format {
  int64_t dim = 0;
  Metric metric = Metric::kInnerProduct;
  Storage storage = Storage::kF32;
  bool has_f32 = true;
  int64_t count = 0;
  int64_t next_auto_id = 0;
  Layout layout;
  uint32_t payload_crc = 0;
};

inline int64_t align_up(int64_t v) { return (v + fmt::kAlign - 1) / fmt::kAlign * fmt::kAlign; }

// The canonical layout: non-empty sections in order, each at the next 64-byte boundary after the
// previous one (the header for the first); empty ones at offset 0. False on int64 overflow.
// dim <= kMaxDim here, so the per-row sizes cannot overflow.
bool compute_layout(int64_t dim, Storage st, bool has_f32, int64_t count, Layout* L) {
  const int code_size = st == Storage::kBF16 ? 2 : 1;
  L->esz[fmt::kSecIds] = 8;
  L->esz[fmt::kSecF32] = 4;
  L->esz[fmt::kSecCodes] = code_size;
  L->esz[fmt::kSecScales] = 4;
  L->row_bytes[fmt::kSecIds] = 8;
  L->row_bytes[fmt::kSecF32] = has_f32 ? dim * 4 : 0;
  L->row_bytes[fmt::kSecCodes] = st == Storage::kF32 ? 0 : dim * code_size;
  L->row_bytes[fmt::kSecScales] = st == Storage::kI8 ? 4 : 0;
  int64_t end = fmt::kHeaderSize;
  for (int s = 0; s < fmt::kSectionCount; ++s) {
    int64_t len = 0;
    if (__builtin_mul_overflow(count, L->row_bytes[s], &len)) return false;
    L->len[s] = len;
    if (len == 0) {
      L->off[s] = 0;
      continue;
    }
    if (end > kInt64Max - fmt::kAlign) return false;
    L->off[s] = align_up(end);
    if (__builtin_add_overflow(L->off[s], len, &end)) return false;
  }
  L->total = end;
  return true;
}

std::string row_bytes_text(const Format& f, int s) {
  switch (s) {
    case fmt::kSecIds: return "count " + std::to_string(f.count) + " x 8 bytes";
    case fmt::kSecF32:
      return f.has_f32 ? "count " + std::to_string(f.count) + " x dim " + std::to_string(f.dim) + " x 4 bytes"
                       : "no f32 rows (flags bit 0 clear)";
    case fmt::kSecCodes:
      if (f.storage == Storage::kF32) return "none for storage f32";
      return "count " + std::to_string(f.count) + " x dim " + std::to_string(f.dim) + " x " +
             (f.storage == Storage::kBF16 ? "2 bytes (bf16)" : "1 byte (i8)");
    case fmt::kSecScales:
      return f.storage == Storage::kI8 ? "count " + std::to_string(f.count) + " x 4 bytes"
                                       : std::string("none for storage ") + storage_name(f.storage);
  }
  return "";
}

// ---- header ----------------------------------------------------------------------------------
uint32_t header_crc(const uint8_t* h) {
  uint8_t copy[fmt::kHeaderSize];
  std::memcpy(copy, h, sizeof(copy));
  std::memset(copy + fmt::kOffHeaderCrc, 0, 4);
  return crc32c(0, copy, sizeof(copy));
}

void build_header(const Format& f, uint8_t* h) {
  std::memset(h, 0, fmt::kHeaderSize);
  std::memcpy(h + fmt::kOffMagic, fmt::kMagic, 8);
  put_u32(h + fmt::kOffVersion, fmt::kVersion);
  put_u32(h + fmt::kOffHeaderSize, uint32_t(fmt::kHeaderSize));
  put_u32(h + fmt::kOffDim, uint32_t(f.dim));
  put_u32(h + fmt::kOffMetric, uint32_t(f.metric));
  put_u32(h + fmt::kOffStorage, uint32_t(f.storage));
  put_u32(h + fmt::kOffFlags, f.has_f32 ? fmt::kFlagHasF32 : 0u);
  put_u64(h + fmt::kOffCount, uint64_t(f.count));
  put_u64(h + fmt::kOffNextAutoId, uint64_t(f.next_auto_id));
  for (int s = 0; s < fmt::kSectionCount; ++s) {
    put_u64(h + fmt::kOffSections + 16 * s, uint64_t(f.layout.off[s]));
    put_u64(h + fmt::kOffSections + 16 * s + 8, uint64_t(f.layout.len[s]));
  }
  put_u32(h + fmt::kOffPayloadCrc, f.payload_crc);
  put_u32(h + fmt::kOffHeaderCrc, header_crc(h));
}

// Validates the header h (h holds min(len, kHeaderSize) bytes of data that is len bytes long) and
// the placement of every section in those len bytes. Nothing is allocated, and nothing after the
// header is read. Messages name the field, the value found and what was expected.
Status parse_header(const uint8_t* h, int64_t len, Format* out) {
  const std::string need = "expected at least the " + std::to_string(fmt::kHeaderSize) + "-byte header";
  if (len < 8) return corrupt("header: truncated: " + std::to_string(len) + " bytes, " + need);
  if (std::memcmp(h + fmt::kOffMagic, fmt::kMagic, 8) != 0) {
    return corrupt("magic: found \"" + escape_bytes(h, 8) + "\", expected \"" + escape_bytes(
                       reinterpret_cast<const uint8_t*>(fmt::kMagic), 8) + "\" (not a vlkernels index)");
  }
  // The version comes before any other field: a newer version may lay out its header differently.
  if (len < fmt::kOffVersion + 4) return corrupt("header: truncated: " + std::to_string(len) + " bytes, " + need);
  const uint32_t version = get_u32(h + fmt::kOffVersion);
  if (version != fmt::kVersion) {
    return corrupt("unsupported index format version " + std::to_string(version) + "; this build reads version " +
                   std::to_string(fmt::kVersion));
  }
  if (len < fmt::kHeaderSize) return corrupt("header: truncated: " + std::to_string(len) + " bytes, " + need);
  const uint32_t header_size = get_u32(h + fmt::kOffHeaderSize);
  if (header_size != fmt::kHeaderSize) {
    return corrupt("header_size: found " + std::to_string(header_size) + ", expected " +
                   std::to_string(fmt::kHeaderSize));
  }
  const uint32_t stored_hcrc = get_u32(h + fmt::kOffHeaderCrc), hcrc = header_crc(h);
  if (stored_hcrc != hcrc) {
    return corrupt("header checksum: stored " + hex32(stored_hcrc) + ", computed " + hex32(hcrc) +
                   " (the header is damaged)");
  }

  // The header is intact; now check that its values make sense.
  Format f;
  const uint32_t dim = get_u32(h + fmt::kOffDim);
  if (dim < 1 || dim > fmt::kMaxDim) {
    return corrupt("dim: found " + std::to_string(dim) + ", expected 1.." + std::to_string(fmt::kMaxDim));
  }
  f.dim = dim;
  const uint32_t metric = get_u32(h + fmt::kOffMetric);
  if (metric > 2) return corrupt("metric: found " + std::to_string(metric) + ", expected 0 (ip), 1 (cosine) or 2 (l2)");
  f.metric = static_cast<Metric>(metric);
  const uint32_t storage = get_u32(h + fmt::kOffStorage);
  if (storage > 2) {
    return corrupt("storage: found " + std::to_string(storage) + ", expected 0 (f32), 1 (bf16) or 2 (i8)");
  }
  f.storage = static_cast<Storage>(storage);
  const uint32_t flags = get_u32(h + fmt::kOffFlags);
  if ((flags & ~fmt::kFlagHasF32) != 0) {
    return corrupt("flags: found " + hex32(flags) + ", unknown bits " + hex32(flags & ~fmt::kFlagHasF32) +
                   " (expected only bit 0, has_f32)");
  }
  f.has_f32 = (flags & fmt::kFlagHasF32) != 0;
  if (f.storage == Storage::kF32 && !f.has_f32) {
    return corrupt("flags: found " + hex32(flags) + ", but storage f32 requires bit 0 (has_f32)");
  }
  for (int i = fmt::kOffReserved; i < fmt::kOffHeaderCrc; ++i) {
    if (h[i] != 0) {
      return corrupt("reserved header bytes: found " + hex_byte(h[i]) + " at offset " + std::to_string(i) +
                     ", expected 0");
    }
  }
  f.count = static_cast<int64_t>(get_u64(h + fmt::kOffCount));
  if (f.count < 0) return corrupt("count: found " + std::to_string(f.count) + ", expected >= 0");
  f.next_auto_id = static_cast<int64_t>(get_u64(h + fmt::kOffNextAutoId));
  if (f.next_auto_id < 0) return corrupt("next_auto_id: found " + std::to_string(f.next_auto_id) + ", expected >= 0");
  if (!compute_layout(f.dim, f.storage, f.has_f32, f.count, &f.layout)) {
    return corrupt("count: " + std::to_string(f.count) + " rows of dim " + std::to_string(f.dim) +
                   " overflow the 64-bit section sizes");
  }
  f.payload_crc = get_u32(h + fmt::kOffPayloadCrc);

  // Section table: sizes as the fields imply, then placement within the data.
  const Layout& L = f.layout;
  uint64_t off[fmt::kSectionCount], slen[fmt::kSectionCount];
  for (int s = 0; s < fmt::kSectionCount; ++s) {
    off[s] = get_u64(h + fmt::kOffSections + 16 * s);
    slen[s] = get_u64(h + fmt::kOffSections + 16 * s + 8);
    if (slen[s] != uint64_t(L.len[s])) {
      return corrupt(std::string("section ") + fmt::section_name(s) + ": length " + std::to_string(slen[s]) +
                     ", expected " + std::to_string(L.len[s]) + " (" + row_bytes_text(f, s) + ")");
    }
  }
  int64_t prev_end = fmt::kHeaderSize;
  std::string prev_name = "the header";
  for (int s = 0; s < fmt::kSectionCount; ++s) {
    const std::string name = std::string("section ") + fmt::section_name(s);
    if (slen[s] == 0) {
      if (off[s] != 0) return corrupt(name + ": empty but offset " + std::to_string(off[s]) + ", expected 0");
      continue;
    }
    if (off[s] > uint64_t(len) || slen[s] > uint64_t(len) - off[s]) {
      return corrupt(name + ": offset " + std::to_string(off[s]) + " + length " + std::to_string(slen[s]) +
                     " lies past the end of the data (" + std::to_string(len) +
                     " bytes): the data is truncated or count " + std::to_string(f.count) + " is wrong");
    }
    if (off[s] % fmt::kAlign != 0) {
      return corrupt(name + ": offset " + std::to_string(off[s]) + " is not a multiple of " +
                     std::to_string(fmt::kAlign) + " (misaligned)");
    }
    if (int64_t(off[s]) < prev_end) {
      return corrupt(name + ": offset " + std::to_string(off[s]) + " overlaps " + prev_name + " (which ends at " +
                     std::to_string(prev_end) + ")");
    }
    if (int64_t(off[s]) != L.off[s]) {
      return corrupt(name + ": offset " + std::to_string(off[s]) + ", expected " + std::to_string(L.off[s]) +
                     " (the next 64-byte boundary after " + prev_name + ")");
    }
    prev_end = int64_t(off[s] + slen[s]);
    prev_name = name;
  }
  if (len != L.total) {
    return corrupt("data: " + std::to_string(len) + " bytes, but " + prev_name + " ends at " +
                   std::to_string(L.total) + " (" + std::to_string(len - L.total) + " trailing bytes)");
  }
  *out = f;
  return Status::Ok();
}

// ---- content checks --------------------------------------------------------------------------
struct Issue {
  bool non_finite = false;  // writer: kNonFinite rather than kInvalidArg
  std::string msg;
};

std::string non_finite_text(float v) { return std::isnan(v) ? "NaN" : (v > 0 ? "+Infinity" : "-Infinity"); }

// Checks elements [e0, e1) of section s, whose bytes start at p (element e0).
bool check_section(const Format& f, int s, const uint8_t* p, int64_t e0, int64_t e1, Issue* issue) {
  const int64_t n = e1 - e0;
  switch (s) {
    case fmt::kSecIds: {
      const int64_t nai = f.next_auto_id;
      for (int64_t i = 0; i < n; ++i) {
        const int64_t id = static_cast<int64_t>(ld64(p + 8 * i));
        // FlatIndex keeps next_auto_id one past the largest id ever added, saturated at INT64_MAX.
        if (id < 0 || id > nai || (id == nai && nai != kInt64Max)) {
          issue->msg = id < 0 ? "section ids: id " + std::to_string(id) + " at row " + std::to_string(e0 + i) +
                                    " is negative, expected >= 0"
                              : "section ids: id " + std::to_string(id) + " at row " + std::to_string(e0 + i) +
                                    " is not below next_auto_id " + std::to_string(nai);
          return false;
        }
      }
      return true;
    }
    case fmt::kSecF32: {
      // Branch-free screen first (vectorises), then find the first bad element.
      uint32_t bad = 0;
      for (int64_t i = 0; i < n; ++i) bad |= (ld32(p + 4 * i) & 0x7f800000u) == 0x7f800000u;
      if (!bad) return true;
      for (int64_t i = 0; i < n; ++i) {
        const uint32_t b = ld32(p + 4 * i);
        if ((b & 0x7f800000u) != 0x7f800000u) continue;
        const int64_t e = e0 + i;
        issue->non_finite = true;
        issue->msg = "section f32: row " + std::to_string(e / f.dim) + " col " + std::to_string(e % f.dim) + " is " +
                     non_finite_text(bits_to_float(b)) + ", expected a finite value";
        return false;
      }
      return true;
    }
    case fmt::kSecCodes: {
      if (f.storage != Storage::kBF16) return true;  // every int8 is a valid code
      uint32_t bad = 0;
      for (int64_t i = 0; i < n; ++i) bad |= (ld16(p + 2 * i) & 0x7f80u) == 0x7f80u;
      if (!bad) return true;
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t b = ld16(p + 2 * i);
        if ((b & 0x7f80u) != 0x7f80u) continue;
        const int64_t e = e0 + i;
        issue->non_finite = true;
        issue->msg = "section codes: row " + std::to_string(e / f.dim) + " col " + std::to_string(e % f.dim) +
                     " is a non-finite bf16 (bits " + hex32(b) + "), expected a finite value";
        return false;
      }
      return true;
    }
    case fmt::kSecScales: {
      for (int64_t i = 0; i < n; ++i) {
        const float v = bits_to_float(ld32(p + 4 * i));
        if (std::isfinite(v) && v >= 0.0f) continue;
        issue->non_finite = !std::isfinite(v);
        char buf[64];
        std::snprintf(buf, sizeof(buf), "%.9g", double(v));
        issue->msg = "section scales: scale of row " + std::to_string(e0 + i) + " is " + buf +
                     ", expected finite and >= 0";
        return false;
      }
      return true;
    }
  }
  return true;
}

// Checks the file bytes [b, e) (b >= kHeaderSize), held at bytes[0 .. e - b): padding is zero,
// every element valid. b and e are element boundaries in every section they cut (see top).
bool scan_range(const Format& f, const uint8_t* bytes, int64_t b, int64_t e, Issue* issue) {
  const Layout& L = f.layout;
  int64_t prev_end = fmt::kHeaderSize;
  for (int s = 0; s < fmt::kSectionCount; ++s) {
    if (L.len[s] == 0) continue;
    // Padding [prev_end, off).
    for (int64_t i = std::max(b, prev_end); i < std::min(e, L.off[s]); ++i) {
      if (bytes[i - b] != 0) {
        issue->msg = std::string("padding before section ") + fmt::section_name(s) + ": byte " +
                     hex_byte(bytes[i - b]) + " at offset " + std::to_string(i) + ", expected 0";
        return false;
      }
    }
    const int64_t end = L.off[s] + L.len[s];
    const int64_t lo = std::max(b, L.off[s]), hi = std::min(e, end);
    if (lo < hi) {
      const int esz = L.esz[s];
      if (!check_section(f, s, bytes + (lo - b), (lo - L.off[s]) / esz, (hi - L.off[s]) / esz, issue)) return false;
    }
    prev_end = end;
  }
  return true;
}

// ---- the two passes --------------------------------------------------------------------------
int64_t chunk_size(const IoOptions& o) {
  if (o.chunk_bytes <= 0) return kDefaultChunk;
  return std::min(align_up(std::min(o.chunk_bytes, kInt64Max / 2)), int64_t(1) << 40);
}

inline void report(const IoOptions& o, int64_t done, int64_t total) {
  if (o.progress != nullptr) o.progress(o.progress_ctx, done, total);
}

inline bool cancelled(const IoOptions& o) { return o.cancel != nullptr && o.cancel->cancelled(); }

// Reader pass over [kHeaderSize, len) of data whose bytes are (or, after produce(pos, n), will be)
// at base[pos ..]: checksum and contents. A checksum mismatch outranks a content error.
template <class Produce>
Status verify_pass(const Format& f, const uint8_t* base, int64_t len, const IoOptions& o, Produce produce) {
  const int64_t chunk = chunk_size(o);
  report(o, 0, len);
  uint32_t crc = 0;
  Issue issue;
  bool bad = false;
  for (int64_t pos = fmt::kHeaderSize; pos < len;) {
    if (cancelled(o)) return Status(Code::kAborted, "load cancelled");
    const int64_t next = std::min(len, (pos / chunk + 1) * chunk);
    VLK_RETURN_IF_ERROR(produce(pos, next - pos));
    crc = crc32c(crc, base + pos, size_t(next - pos));
    if (!bad) bad = !scan_range(f, base + pos, pos, next, &issue);
    pos = next;
    if (pos < len) report(o, pos, len);
  }
  if (cancelled(o)) return Status(Code::kAborted, "load cancelled");
  if (crc != f.payload_crc) {
    return corrupt("payload checksum: stored " + hex32(f.payload_crc) + ", computed " + hex32(crc) +
                   " (the data after the header is damaged)");
  }
  if (bad) return corrupt(issue.msg);
  return Status::Ok();
}

// Writes the file bytes [b, e) (b >= kHeaderSize) of image `im` into dst: sections little-endian,
// padding zero.
void fill_range(const Format& f, const IndexImage& im, uint8_t* dst, int64_t b, int64_t e) {
  const Layout& L = f.layout;
  const void* src[fmt::kSectionCount] = {im.ids, im.f32, im.codes, im.scales};
  int64_t prev_end = fmt::kHeaderSize;
  for (int s = 0; s < fmt::kSectionCount; ++s) {
    if (L.len[s] == 0) continue;
    const int64_t pad_lo = std::max(b, prev_end), pad_hi = std::min(e, L.off[s]);
    if (pad_lo < pad_hi) std::memset(dst + (pad_lo - b), 0, size_t(pad_hi - pad_lo));
    const int64_t end = L.off[s] + L.len[s];
    const int64_t lo = std::max(b, L.off[s]), hi = std::min(e, end);
    if (lo < hi) {
      uint8_t* d = dst + (lo - b);
      std::memcpy(d, static_cast<const uint8_t*>(src[s]) + (lo - L.off[s]), size_t(hi - lo));
      if (!kHostLittle && L.esz[s] > 1) swap_elements(d, hi - lo, L.esz[s]);
    }
    prev_end = end;
  }
}

// Writer pass: for each chunk, dst(pos) is where the bytes go; they are filled, checked, summed,
// then handed to sink(pos, ptr, n).
template <class Dst, class Sink>
Status produce_pass(const Format& f, const IndexImage& im, const IoOptions& o, Dst dst, Sink sink, uint32_t* crc_out) {
  const int64_t total = f.layout.total, chunk = chunk_size(o);
  uint32_t crc = 0;
  for (int64_t pos = fmt::kHeaderSize; pos < total;) {
    if (cancelled(o)) return Status(Code::kAborted, "save cancelled");
    const int64_t next = std::min(total, (pos / chunk + 1) * chunk);
    uint8_t* d = dst(pos);
    fill_range(f, im, d, pos, next);
    Issue issue;
    if (!scan_range(f, d, pos, next, &issue)) {
      return Status(issue.non_finite ? Code::kNonFinite : Code::kInvalidArg, "index image: " + issue.msg);
    }
    crc = crc32c(crc, d, size_t(next - pos));
    VLK_RETURN_IF_ERROR(sink(pos, d, next - pos));
    pos = next;
    if (pos < total) report(o, pos, total);
  }
  if (cancelled(o)) return Status(Code::kAborted, "save cancelled");
  *crc_out = crc;
  return Status::Ok();
}

// Structure of an image to be written (contents are checked during the pass).
Status check_image(const IndexImage& im, Format* out) {
  auto bad = [](const std::string& m) { return Status(Code::kInvalidArg, "index image: " + m); };
  if (im.dim < 1 || im.dim > int64_t(fmt::kMaxDim)) {
    return bad("dim " + std::to_string(im.dim) + ", expected 1.." + std::to_string(fmt::kMaxDim));
  }
  const int metric = static_cast<int>(im.metric);
  if (metric < 0 || metric > 2) return bad("unknown metric " + std::to_string(metric));
  const uint32_t storage = static_cast<uint32_t>(im.storage);
  if (storage > 2) return bad("unknown storage " + std::to_string(storage));
  if (im.storage == Storage::kF32 && !im.has_f32) return bad("storage f32 requires has_f32");
  if (im.count < 0) return bad("count " + std::to_string(im.count) + ", expected >= 0");
  if (im.next_auto_id < 0) return bad("next_auto_id " + std::to_string(im.next_auto_id) + ", expected >= 0");
  Format f;
  f.dim = im.dim;
  f.metric = im.metric;
  f.storage = im.storage;
  f.has_f32 = im.has_f32;
  f.count = im.count;
  f.next_auto_id = im.next_auto_id;
  if (!compute_layout(f.dim, f.storage, f.has_f32, f.count, &f.layout)) {
    return bad("count " + std::to_string(im.count) + " x dim " + std::to_string(im.dim) + " is too large to encode");
  }
  if (im.count > 0) {
    if (im.ids == nullptr) return bad("ids is null");
    if (im.has_f32 && im.f32 == nullptr) return bad("f32 is null but has_f32 is set");
    if (im.storage != Storage::kF32 && im.codes == nullptr) {
      return bad(std::string("codes is null for storage ") + storage_name(im.storage));
    }
    if (im.storage == Storage::kI8 && im.scales == nullptr) return bad("scales is null for storage i8");
  }
  *out = f;
  return Status::Ok();
}

// ---- memory and files ------------------------------------------------------------------------
// A 64-byte aligned heap block of at least n bytes owned by a shared_ptr (null on failure).
std::shared_ptr<void> aligned_block(int64_t n) {
  void* p = nullptr;
  const int64_t bytes = align_up(std::max<int64_t>(n, fmt::kAlign));
  if (uint64_t(bytes) > std::numeric_limits<size_t>::max() ||
      posix_memalign(&p, size_t(fmt::kAlign), size_t(bytes)) != 0) {
    return nullptr;
  }
  try {
    return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
  } catch (const std::bad_alloc&) {
    std::free(p);  // the control block could not be allocated
    return nullptr;
  }
}

Status out_of_memory(int64_t n) {
  return Status(Code::kOutOfMemory, "cannot allocate " + std::to_string(n) + " bytes for the index");
}

}  // namespace

// ---- public ----------------------------------------------------------------------------------
const char* index_format::section_name(int section) {
  switch (section) {
    case kSecIds: return "ids";
    case kSecF32: return "f32";
    case kSecCodes: return "codes";
    case kSecScales: return "scales";
  }
  return "?";
}

uint32_t crc32c_portable(uint32_t crc, const void* data, size_t n) {
  const auto& t = kCrcTables.t;
  const uint8_t* p = static_cast<const uint8_t*>(data);
  uint32_t c = ~crc;
  while (n >= 8) {
    const uint32_t lo = get_u32(p) ^ c, hi = get_u32(p + 4);
    c = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^ t[3][hi & 0xff] ^
        t[2][(hi >> 8) & 0xff] ^ t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n > 0) {
    c = t[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    --n;
  }
  return ~c;
}

bool crc32c_hw_available() {
#if VLK_CRC_X86
  static const bool available = detect_sse42();
  return available;
#else
  return false;
#endif
}

uint32_t crc32c_hw(uint32_t crc, const void* data, size_t n) {
#if VLK_CRC_X86
  return crc32c_sse42(crc, static_cast<const uint8_t*>(data), n);
#else
  return crc32c_portable(crc, data, n);
#endif
}

uint32_t crc32c(uint32_t crc, const void* data, size_t n) {
  return crc32c_hw_available() ? crc32c_hw(crc, data, n) : crc32c_portable(crc, data, n);
}

int64_t encoded_size(const IndexImage& image) {
  if (image.dim < 1 || image.dim > int64_t(fmt::kMaxDim) || image.count < 0) return -1;
  if (static_cast<uint32_t>(image.storage) > 2 || (image.storage == Storage::kF32 && !image.has_f32)) return -1;
  Layout L;
  if (!compute_layout(image.dim, image.storage, image.has_f32, image.count, &L)) return -1;
  return L.total;
}

Status encode_index(const IndexImage& image, uint8_t* out, int64_t out_len, const IoOptions& opts) {
  Format f;
  VLK_RETURN_IF_ERROR(check_image(image, &f));
  const int64_t total = f.layout.total;
  if (out == nullptr || out_len < total) {
    return Status(Code::kInvalidArg, "index image: output buffer of " + std::to_string(out == nullptr ? 0 : out_len) +
                                         " bytes, need " + std::to_string(total));
  }
  report(opts, 0, total);
  VLK_RETURN_IF_ERROR(produce_pass(
      f, image, opts, [&](int64_t pos) { return out + pos; },
      [](int64_t, const uint8_t*, int64_t) { return Status::Ok(); }, &f.payload_crc));
  build_header(f, out);
  report(opts, total, total);
  return Status::Ok();
}

Status write_index_file(const std::string& path, const IndexImage& image, const IoOptions& opts) {
  Format f;
  VLK_RETURN_IF_ERROR(check_image(image, &f));
  if (path.empty()) return Status(Code::kInvalidArg, "save: empty path");
  const int64_t total = f.layout.total;
  if (cancelled(opts)) return Status(Code::kAborted, "save cancelled");

  const int64_t stage_len = std::min(chunk_size(opts), std::max<int64_t>(total, fmt::kHeaderSize));
  std::unique_ptr<uint8_t[]> stage(new (std::nothrow) uint8_t[size_t(stage_len)]);
  if (!stage) return out_of_memory(stage_len);

  // Temporary file next to the target (same file system, so the rename is atomic); removed on any
  // failure (AtomicFile's destructor included).
  AtomicFile file;
  VLK_RETURN_IF_ERROR(file.create(path, "save"));

  report(opts, 0, total);
  VLK_RETURN_IF_ERROR(produce_pass(
      f, image, opts, [&](int64_t) { return stage.get(); },
      [&](int64_t pos, const uint8_t* p, int64_t n) { return file.write_at(pos, p, n); }, &f.payload_crc));
  uint8_t header[fmt::kHeaderSize];
  build_header(f, header);
  VLK_RETURN_IF_ERROR(file.write_at(0, header, fmt::kHeaderSize));
  VLK_RETURN_IF_ERROR(file.commit(opts.cancel));
  report(opts, total, total);
  return Status::Ok();
}

namespace {

// Points out->image into `base` (a validated encoding) and hands over ownership.
void finish(const Format& f, const uint8_t* base, std::shared_ptr<const void> owner, bool mapped, LoadedIndex* out) {
  const Layout& L = f.layout;
  auto at = [&](int s) -> const void* { return L.len[s] == 0 ? nullptr : base + L.off[s]; };
  LoadedIndex r;
  r.image.dim = f.dim;
  r.image.metric = f.metric;
  r.image.storage = f.storage;
  r.image.has_f32 = f.has_f32;
  r.image.count = f.count;
  r.image.next_auto_id = f.next_auto_id;
  r.image.ids = static_cast<const int64_t*>(at(fmt::kSecIds));
  r.image.f32 = static_cast<const float*>(at(fmt::kSecF32));
  r.image.codes = at(fmt::kSecCodes);
  r.image.scales = static_cast<const float*>(at(fmt::kSecScales));
  r.owner = std::move(owner);
  r.mapped = mapped;
  *out = std::move(r);
}

// Big-endian hosts: the sections of a verified heap copy to native byte order.
void to_native(const Format& f, uint8_t* base) {
  if constexpr (!kHostLittle) {
    const Layout& L = f.layout;
    for (int s = 0; s < fmt::kSectionCount; ++s) {
      if (L.len[s] > 0 && L.esz[s] > 1) swap_elements(base + L.off[s], L.len[s], L.esz[s]);
    }
  } else {
    (void)f;
    (void)base;
  }
}

}  // namespace

Status decode_index(const uint8_t* data, int64_t len, LoadedIndex* out, const IoOptions& opts) {
  if (len < 0 || (data == nullptr && len > 0)) {
    return Status(Code::kInvalidArg, "index buffer: invalid (length " + std::to_string(len) + ")");
  }
  // Validate a private copy of the header: the source may be shared memory that changes under us.
  uint8_t header[fmt::kHeaderSize] = {};
  if (len > 0) std::memcpy(header, data, size_t(std::min<int64_t>(len, fmt::kHeaderSize)));
  Format f;
  Status s = parse_header(header, len, &f);
  if (!s.ok()) return Status(s.code, "index buffer: " + s.message);
  // Sizes are now proven to fit in `len` bytes that exist, so this allocation is bounded by them;
  // the copy still doubles them, so it is checked against the machine first.
  VLK_RETURN_IF_ERROR(check_alloc("index buffer: a private copy of the index", {len}, 1));
  std::shared_ptr<void> block = aligned_block(len);
  if (!block) return out_of_memory(len);
  uint8_t* base = static_cast<uint8_t*>(block.get());
  std::memcpy(base, header, fmt::kHeaderSize);
  // Checks run on the copy, so what is verified is what is kept.
  s = verify_pass(f, base, len, opts, [&](int64_t pos, int64_t n) {
    std::memcpy(base + pos, data + pos, size_t(n));
    return Status::Ok();
  });
  if (!s.ok()) return s.code == Code::kCorrupt ? Status(s.code, "index buffer: " + s.message) : s;
  to_native(f, base);
  finish(f, base, std::move(block), false, out);
  report(opts, len, len);
  return Status::Ok();
}

Status read_index_file(const std::string& path, bool mmap, LoadedIndex* out, const IoOptions& opts) {
  const std::string where = "index file '" + path + "'";
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.fd < 0) return io_error("load: cannot open " + where, errno);
  struct stat st;
  if (::fstat(fd.fd, &st) != 0) return io_error("load: cannot stat " + where, errno);
  if (!S_ISREG(st.st_mode)) return Status(Code::kIo, "load: " + where + " is not a regular file");
  const int64_t len = int64_t(st.st_size);
  auto prefixed = [&](const Status& e) {
    return e.code == Code::kCorrupt ? Status(e.code, where + ": " + e.message) : e;
  };

  uint8_t header[fmt::kHeaderSize] = {};
  int64_t got = 0;
  if (!pread_full(fd.fd, header, std::min<int64_t>(len, fmt::kHeaderSize), 0, &got)) {
    return io_error("load: cannot read " + where, errno);
  }
  if (got < std::min<int64_t>(len, fmt::kHeaderSize)) {
    return Status(Code::kIo, "load: " + where + " shrank while being read");
  }
  Format f;
  Status s = parse_header(header, len, &f);
  if (!s.ok()) return prefixed(s);

  if (mmap && kHostLittle) {
    void* m = ::mmap(nullptr, size_t(len), PROT_READ, MAP_PRIVATE, fd.fd, 0);
    if (m == MAP_FAILED) return io_error("load: cannot mmap " + where, errno);
    std::shared_ptr<const void> owner;
    try {
      owner = std::shared_ptr<const void>(m, [len](const void* p) { ::munmap(const_cast<void*>(p), size_t(len)); });
    } catch (const std::bad_alloc&) {
      ::munmap(m, size_t(len));
      return out_of_memory(0);
    }
    const uint8_t* base = static_cast<const uint8_t*>(m);
    if (std::memcmp(base, header, fmt::kHeaderSize) != 0) {
      return Status(Code::kIo, "load: " + where + " changed while being opened");
    }
    s = verify_pass(f, base, len, opts, [](int64_t, int64_t) { return Status::Ok(); });
    if (!s.ok()) return prefixed(s);
    finish(f, base, std::move(owner), true, out);
    report(opts, len, len);
    return Status::Ok();
  }

  // The file's size (proven consistent with its header) is read into memory: a file larger than
  // the machine is refused before the OS overcommits the block and the read is killed.
  VLK_RETURN_IF_ERROR(check_alloc("load: " + where + " read into memory (mmap: false)", {len}, 1));
  std::shared_ptr<void> block = aligned_block(len);
  if (!block) return out_of_memory(len);
  uint8_t* base = static_cast<uint8_t*>(block.get());
  std::memcpy(base, header, fmt::kHeaderSize);
  s = verify_pass(f, base, len, opts, [&](int64_t pos, int64_t n) {
    int64_t read = 0;
    if (!pread_full(fd.fd, base + pos, n, pos, &read)) return io_error("load: cannot read " + where, errno);
    if (read < n) {
      return Status(Code::kIo, "load: " + where + " shrank while being read (" + std::to_string(pos + read) +
                                   " of " + std::to_string(len) + " bytes)");
    }
    return Status::Ok();
  });
  if (!s.ok()) return prefixed(s);
  to_native(f, base);
  finish(f, base, std::move(block), false, out);
  report(opts, len, len);
  return Status::Ok();
}

}  // namespace core
}  // namespace vlk
