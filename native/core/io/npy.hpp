// The .npy header (core/io): a validating parser of the preamble (magic, version 1/2/3, header
// length) and of the header's Python dict literal, for lib/vectors_io.ts (through
// binding/vectors_io.cpp) and the fuzz targets. Plain C++17; the data itself is not read here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.hpp"

// Layout (numpy.lib.format): "\x93NUMPY", major, minor, then the header length (u16 little-endian
// for version 1, u32 for 2 and 3), then that many bytes of a Python dict literal {'descr': '<f4',
// 'fortran_order': False, 'shape': (rows, cols), } (latin1 for 1 and 2, UTF-8 for 3), then the data.
//
// Every error is a Status whose message is "<field>: <what>", e.g. "header dict: expected ':' at
// character 9 of \"{'descr' '<f4'}\""; the JS prefixes the file name. Codes: kCorrupt (bad magic,
// version, truncated header, dict syntax, missing or unknown key, data size not the shape's),
// kType (unsupported or structured dtype), kShape (byte count above 2^53 - 1), kInvalidArg (a
// caller passed fewer bytes than it said), kOutOfMemory. Quoted header text escapes every
// non-printable character (JSON style: \n, \u0007, ...), so a message is always printable UTF-8.
//
// Bounds for hostile input: nothing is read outside [data, data + len); no recursion; memory a
// small multiple of len; every size computed with checked arithmetic; no exception escapes.

namespace vlk {
namespace core {

namespace npy_format {
inline constexpr int64_t kPreambleMin = 10;  // magic (6), version (2), u16 header length
inline constexpr int64_t kPreambleMax = 12;  // version 2 and 3: u32 header length
inline constexpr int64_t kMaxSafeInteger = (int64_t{1} << 53) - 1;  // largest exact JS number
}  // namespace npy_format

/// The fixed-size start of a .npy file.
struct NpyPreamble {
  int major = 0;             // 1, 2 or 3
  int minor = 0;
  int64_t header_start = 0;  // 10 (version 1) or 12
  int64_t header_len = 0;    // bytes of the dict literal (padding and the final '\n' included)
};

/// A parsed, validated header. On success data_offset + item_size * count == the file size.
struct NpyHeader {
  NpyPreamble preamble;
  std::string descr;          // as written: "<f4", ">i8", "|u1", "<f04" (ASCII once validated)
  char kind = 'f';            // 'f', 'i', 'u' or 'b'
  int item_size = 4;          // 1, 2, 4 or 8 (bool: 1)
  bool big_endian = false;    // the data's byte order ('=' is the host's; false when item_size 1)
  bool fortran_order = false;
  std::vector<int64_t> shape;  // [] for a 0-d array; each <= 2^53 - 1
  int64_t count = 1;           // product(shape); count * item_size <= 2^53 - 1
  int64_t data_offset = 0;     // header_start + header_len
};

/// Parses the preamble from data[0 .. len), which must hold the first min(12, file_size) bytes of
/// a file of `file_size` bytes (10 suffice for version 1). Checks, in this order: file_size >= 10 ("magic"), the magic
/// ("magic"), the version ("version"; 2 and 3 need file_size >= 12: "header length"), and that the
/// announced header fits the file ("header"). kInvalidArg when len is short or file_size < 0.
Status parse_npy_preamble(const uint8_t* data, int64_t len, int64_t file_size, NpyPreamble* out);

/// Parses and validates the whole header. data[0 .. len) must hold bytes [0, header_start +
/// header_len) of the file (the preamble included; more is ignored). The dict grammar: optional
/// whitespace, '{', entries "key: value" separated by ',' (a trailing ',' allowed), '}', optional
/// whitespace; keys quoted strings ('...' or "...", no escapes), unique, and only descr,
/// fortran_order, shape; values quoted strings, True, False, tuples of non-negative decimal
/// integers (an optional L suffix, a trailing ','), or a [...] list (a structured dtype, skipped
/// by bracket depth and then rejected as kType). Whitespace is JavaScript's \s (NBSP, U+3000 and
/// U+FEFF included). descr: [<>|=] then f/i/u/b then the item size (f2 f4 f8, i1-i8, u1-u8, b1); '|' only for
/// one-byte items. The data after the header must be exactly count * item_size bytes.
/// *out is written only on success.
Status parse_npy_header(const uint8_t* data, int64_t len, int64_t file_size, NpyHeader* out);

}  // namespace core
}  // namespace vlk
