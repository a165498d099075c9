// The .fvecs / .ivecs / .bvecs layout and record unpacking (core/io), see vecs.hpp. Values are
// loaded with memcpy (a chunk need not be aligned) and byte-swapped on big-endian hosts.
#include "io/vecs.hpp"

#include <cstring>
#include <string>

namespace vlk {
namespace core {

namespace {

bool host_big_endian() {
  const uint16_t one = 1;
  uint8_t first = 0;
  std::memcpy(&first, &one, 1);
  return first == 0;
}

int32_t load_i32le(const uint8_t* p) {
  const uint32_t u = uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
  int32_t v;
  std::memcpy(&v, &u, 4);
  return v;
}

// 4-byte little-endian values to host order (a memcpy on little-endian hosts).
void copy_le32(const uint8_t* src, int64_t count, uint8_t* dst, bool swap) {
  if (!swap) {
    std::memcpy(dst, src, size_t(count) * 4);
    return;
  }
  for (int64_t k = 0; k < count; ++k) {
    const uint8_t* s = src + 4 * k;
    uint8_t* d = dst + 4 * k;
    d[0] = s[3];
    d[1] = s[2];
    d[2] = s[1];
    d[3] = s[0];
  }
}

}  // namespace

Status vecs_layout(const uint8_t* head, int64_t head_len, int64_t file_size, int elem_bytes, VecsLayout* out) {
  if (elem_bytes != 1 && elem_bytes != 4) {
    return Status(Code::kInvalidArg, "vecs layout: elem_bytes " + std::to_string(elem_bytes) + " (1 or 4)");
  }
  if (file_size < 0 || head_len < 0 || (head == nullptr && head_len > 0)) {
    return Status(Code::kInvalidArg, "vecs layout: file size " + std::to_string(file_size) + ", head length " +
                                         std::to_string(head_len));
  }
  VecsLayout l;
  l.elem_bytes = elem_bytes;
  if (file_size == 0) {
    *out = l;
    return Status::Ok();
  }
  if (file_size < 4) {
    return Status(Code::kCorrupt, "record 0 dim: the file has " + std::to_string(file_size) +
                                      " bytes, fewer than one int32 dim");
  }
  if (head_len < 4) {
    return Status(Code::kInvalidArg, "vecs layout: " + std::to_string(head_len) + " head bytes given, 4 needed");
  }
  const int32_t dim = load_i32le(head);
  if (dim <= 0) return Status(Code::kCorrupt, "record 0 dim: " + std::to_string(dim) + " (a dim is a positive int32)");
  l.cols = dim;
  l.record_bytes = 4 + int64_t(dim) * elem_bytes;  // < 2^34
  const int64_t whole = file_size / l.record_bytes;
  const int64_t rest = file_size % l.record_bytes;
  if (rest != 0) {
    return Status(Code::kCorrupt, "record " + std::to_string(whole) + ": trailing partial record: " + std::to_string(rest) +
                                      " bytes after " + std::to_string(whole) + " whole " +
                                      std::to_string(l.record_bytes) + "-byte records of dim " + std::to_string(dim));
  }
  l.rows = whole;
  *out = l;
  return Status::Ok();
}

Status unpack_vecs_records(const uint8_t* chunk, int64_t chunk_len, int64_t n, int64_t first_row,
                           const VecsLayout& layout, VecsOut kind, void* out, int64_t out_len, int64_t out_row0) {
  const int64_t cols = layout.cols;
  const int64_t record = layout.record_bytes;
  const int elt = layout.elem_bytes;
  if ((elt != 1 && elt != 4) || cols < 1 || cols > INT32_MAX || record != 4 + cols * elt) {
    return Status(Code::kInvalidArg, "vecs unpack: inconsistent layout (cols " + std::to_string(cols) + ", record " +
                                         std::to_string(record) + " bytes, elem_bytes " + std::to_string(elt) + ")");
  }
  if (elt == 4 && kind == VecsOut::kUint8) {
    return Status(Code::kInvalidArg, "vecs unpack: 4-byte values do not fit uint8 output");
  }
  if (n < 0 || first_row < 0 || out_row0 < 0 || chunk_len < 0 || out_len < 0) {
    return Status(Code::kInvalidArg, "vecs unpack: negative count, row or length");
  }
  if (n == 0) return Status::Ok();
  // record < 2^34 and chunk_len < 2^63: compare by division, no product overflows.
  if (chunk == nullptr || n > chunk_len / record) {
    return Status(Code::kInvalidArg, "vecs unpack: " + std::to_string(n) + " records of " + std::to_string(record) +
                                         " bytes do not fit a " + std::to_string(chunk_len) + "-byte chunk");
  }
  if (out == nullptr || out_row0 > out_len / cols || n > out_len / cols - out_row0) {
    return Status(Code::kInvalidArg, "vecs unpack: rows " + std::to_string(out_row0) + " + " + std::to_string(n) +
                                         " of " + std::to_string(cols) + " do not fit " + std::to_string(out_len) +
                                         " output elements");
  }
  for (int64_t r = 0; r < n; ++r) {
    const int32_t dim = load_i32le(chunk + r * record);
    if (dim != cols) {
      return Status(Code::kCorrupt, "record " + std::to_string(first_row + r) + " dim: " + std::to_string(dim) +
                                        ", but record 0 has dim " + std::to_string(cols));
    }
  }
  const bool swap = host_big_endian();
  for (int64_t r = 0; r < n; ++r) {
    const uint8_t* src = chunk + r * record + 4;
    const int64_t dst = (out_row0 + r) * cols;
    if (elt == 4) {
      // float32 or int32 output: the same 4 bytes, in host order.
      copy_le32(src, cols, static_cast<uint8_t*>(out) + dst * 4, swap);
    } else if (kind == VecsOut::kUint8) {
      std::memcpy(static_cast<uint8_t*>(out) + dst, src, size_t(cols));
    } else if (kind == VecsOut::kFloat32) {
      float* o = static_cast<float*>(out) + dst;
      for (int64_t c = 0; c < cols; ++c) o[c] = float(src[c]);
    } else {
      int32_t* o = static_cast<int32_t*>(out) + dst;
      for (int64_t c = 0; c < cols; ++c) o[c] = int32_t(src[c]);
    }
  }
  return Status::Ok();
}

}  // namespace core
}  // namespace vlk
