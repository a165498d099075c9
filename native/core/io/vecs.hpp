// The .fvecs / .ivecs / .bvecs records (core/io): the shape from the first dim and the file size,
// and the check-and-copy of whole records into row-major float32 / int32 / uint8 rows, for
// lib/vectors_io.ts (through binding/vectors_io.cpp) and the fuzz targets. Plain C++17.
#pragma once

#include <cstdint>

#include "common/status.hpp"

// Layout (TEXMEX / ANN_SIFT): records of an int32 little-endian dim, then dim values (float32 or
// int32 little-endian: elem_bytes 4; uint8: elem_bytes 1), every record the same dim; an empty
// file is 0 x 0. Messages are "<field>: <what>" (the JS prefixes the file name); hostile input
// never reads outside the given buffers and every size is computed without overflow.

namespace vlk {
namespace core {

struct VecsLayout {
  int64_t rows = 0;
  int64_t cols = 0;          // the dim of every record
  int64_t record_bytes = 4;  // 4 + cols * elem_bytes
  int elem_bytes = 4;        // 4 (fvecs, ivecs) or 1 (bvecs)
};

/// The layout of a file of `file_size` bytes whose first min(4, file_size) bytes are head[0 ..
/// head_len). Errors: kCorrupt "record 0 dim: ..." (file shorter than one dim, dim <= 0), kCorrupt
/// "record R: trailing partial record: ..." (the size is not a whole number of records);
/// kInvalidArg (elem_bytes not 1 or 4, head_len short, negative sizes). *out written on success.
Status vecs_layout(const uint8_t* head, int64_t head_len, int64_t file_size, int elem_bytes, VecsLayout* out);

/// What unpack_vecs_records writes: float32 rows (fvecs bit for bit; bvecs widened exactly),
/// int32 rows (ivecs) or uint8 rows (bvecs).
enum class VecsOut { kFloat32, kInt32, kUint8 };

/// chunk[0 .. chunk_len) holds records first_row .. first_row + n - 1 of a file of `layout`.
/// Checks every record's dim equals layout.cols (kCorrupt "record R dim: D, but record 0 has dim
/// C", R the file's record index) before writing anything, then writes their values in host byte
/// order to rows out_row0 .. out_row0 + n - 1 of `out` (out_len elements of the VecsOut type,
/// aligned for it; `chunk` needs no alignment). bvecs into kInt32 widens as into kFloat32.
/// kInvalidArg: n * record_bytes > chunk_len, the rows beyond out_len, negative counts, a VecsOut
/// that does not fit elem_bytes (uint8 output of 4-byte values), an inconsistent layout.
Status unpack_vecs_records(const uint8_t* chunk, int64_t chunk_len, int64_t n, int64_t first_row,
                           const VecsLayout& layout, VecsOut kind, void* out, int64_t out_len, int64_t out_row0);

}  // namespace core
}  // namespace vlk
