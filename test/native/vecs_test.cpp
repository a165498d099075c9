// C++ core tests of the .fvecs / .ivecs / .bvecs records (test/native, core/io/vecs): layouts and
// values at 1, 7 and 513 rows/cols against a byte-by-byte little-endian decode written here (into
// float32, int32 and uint8, unaligned chunks, row offsets); malformed layouts and dim mismatches
// with exact messages; caller errors; every truncation and random byte flips.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "common/status.hpp"
#include "io/vecs.hpp"
#include "test_util.hpp"
#include "vlk_test.hpp"

namespace {

using vlk::Code;
using vlk::Status;
using vlk::core::VecsLayout;
using vlk::core::VecsOut;
using vlk_test::Rng;
using Bytes = std::vector<uint8_t>;

void put_i32le(Bytes* b, int64_t v) {
  const uint32_t u = uint32_t(v);
  for (int k = 0; k < 4; ++k) b->push_back(uint8_t(u >> (8 * k)));
}

// rows records of `cols` random values (elem 4: random bit patterns, NaNs and infinities among them).
Bytes vecs_file(int64_t rows, int64_t cols, int elem, Rng* rng) {
  Bytes b;
  for (int64_t r = 0; r < rows; ++r) {
    put_i32le(&b, cols);
    for (int64_t c = 0; c < cols * elem; ++c) b.push_back(uint8_t(rng->next()));
  }
  return b;
}

// The reference decode: value c of record r, from its little-endian bytes.
uint32_t ref_u32(const Bytes& f, int64_t record, int64_t r, int64_t c) {
  const size_t at = size_t(r * record + 4 + c * 4);
  return uint32_t(f[at]) | (uint32_t(f[at + 1]) << 8) | (uint32_t(f[at + 2]) << 16) | (uint32_t(f[at + 3]) << 24);
}

Status layout_of(const Bytes& f, int elem, VecsLayout* l) {
  Bytes head(f.begin(), f.begin() + std::min<size_t>(4, f.size()));
  return vlk::core::vecs_layout(head.empty() ? nullptr : head.data(), int64_t(head.size()), int64_t(f.size()), elem, l);
}

VLK_TEST(vecs_layout_and_values_at_awkward_sizes) {
  Rng rng(11);
  for (int elem : {4, 1}) {
    for (int64_t rows : {1, 7, 513}) {
      for (int64_t cols : {1, 7, 513}) {
        const Bytes f = vecs_file(rows, cols, elem, &rng);
        VecsLayout l;
        const Status st = layout_of(f, elem, &l);
        VLK_CHECK(st.ok()) << st.message;
        VLK_CHECK_EQ(l.rows, rows);
        VLK_CHECK_EQ(l.cols, cols);
        VLK_CHECK_EQ(l.record_bytes, 4 + cols * elem);
        VLK_CHECK_EQ(l.elem_bytes, elem);
        const int64_t n = rows * cols;
        // One call for the whole file, from an unaligned copy (offset 1).
        Bytes shifted(f.size() + 1);
        std::memcpy(shifted.data() + 1, f.data(), f.size());
        std::vector<float> f32(size_t(n), -1.0f);
        std::vector<int32_t> i32(size_t(n), -1);
        std::vector<uint8_t> u8(size_t(n), 0);
        VLK_CHECK(vlk::core::unpack_vecs_records(shifted.data() + 1, int64_t(f.size()), rows, 0, l, VecsOut::kFloat32,
                                                 f32.data(), n, 0).ok());
        VLK_CHECK(vlk::core::unpack_vecs_records(shifted.data() + 1, int64_t(f.size()), rows, 0, l, VecsOut::kInt32,
                                                 i32.data(), n, 0).ok());
        if (elem == 1) {
          VLK_CHECK(vlk::core::unpack_vecs_records(f.data(), int64_t(f.size()), rows, 0, l, VecsOut::kUint8, u8.data(),
                                                   n, 0).ok());
        }
        int bad = 0;
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t c = 0; c < cols; ++c) {
            const size_t k = size_t(r * cols + c);
            if (elem == 4) {
              const uint32_t want = ref_u32(f, l.record_bytes, r, c);
              uint32_t got_f = 0, got_i = 0;
              std::memcpy(&got_f, &f32[k], 4);
              std::memcpy(&got_i, &i32[k], 4);
              bad += got_f != want || got_i != want;
            } else {
              const uint8_t want = f[size_t(r * l.record_bytes + 4 + c)];
              bad += f32[k] != float(want) || i32[k] != int32_t(want) || u8[k] != want;
            }
          }
        }
        VLK_CHECK_EQ(bad, 0) << "elem " << elem << ", " << rows << " x " << cols;
      }
    }
  }
}

VLK_TEST(vecs_chunks_land_at_their_rows) {
  // 513 records unpacked 7 at a time (the last chunk shorter) into their rows of one output.
  Rng rng(5);
  const int64_t rows = 513, cols = 7;
  const Bytes f = vecs_file(rows, cols, 4, &rng);
  VecsLayout l;
  VLK_CHECK(layout_of(f, 4, &l).ok());
  std::vector<float> out(size_t(rows * cols), 0.0f);
  for (int64_t r0 = 0; r0 < rows; r0 += 7) {
    const int64_t n = std::min<int64_t>(7, rows - r0);
    Bytes chunk(f.begin() + r0 * l.record_bytes, f.begin() + (r0 + n) * l.record_bytes);
    const Status st = vlk::core::unpack_vecs_records(chunk.data(), int64_t(chunk.size()), n, r0, l, VecsOut::kFloat32,
                                                     out.data(), int64_t(out.size()), r0);
    VLK_CHECK(st.ok()) << st.message;
  }
  int bad = 0;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      uint32_t got = 0;
      std::memcpy(&got, &out[size_t(r * cols + c)], 4);
      bad += got != ref_u32(f, l.record_bytes, r, c);
    }
  }
  VLK_CHECK_EQ(bad, 0);
}

VLK_TEST(vecs_layout_errors) {
  struct Case {
    Bytes file;
    int elem;
    Code code;
    std::string message;
  };
  Rng rng(3);
  Bytes two = vecs_file(2, 2, 4, &rng);
  Bytes big = {0xFF, 0xFF, 0xFF, 0x7F, 0, 0, 0, 0};
  Bytes partial_b = vecs_file(3, 5, 1, &rng);
  partial_b.resize(partial_b.size() - 2);
  const std::vector<Case> cases = {
      {{3, 0}, 1, Code::kCorrupt, "record 0 dim: the file has 2 bytes, fewer than one int32 dim"},
      {{1, 0, 0}, 4, Code::kCorrupt, "record 0 dim: the file has 3 bytes, fewer than one int32 dim"},
      {{0, 0, 0, 0, 1, 0, 0, 0}, 4, Code::kCorrupt, "record 0 dim: 0 (a dim is a positive int32)"},
      {{0xFF, 0xFF, 0xFF, 0xFF}, 4, Code::kCorrupt, "record 0 dim: -1 (a dim is a positive int32)"},
      {{0, 0, 0, 0x80}, 1, Code::kCorrupt, "record 0 dim: -2147483648 (a dim is a positive int32)"},
      {Bytes(two.begin(), two.begin() + 20), 4, Code::kCorrupt,
       "record 1: trailing partial record: 8 bytes after 1 whole 12-byte records of dim 2"},
      {big, 4, Code::kCorrupt,
       "record 0: trailing partial record: 8 bytes after 0 whole 8589934592-byte records of dim 2147483647"},
      {partial_b, 1, Code::kCorrupt, "record 2: trailing partial record: 7 bytes after 2 whole 9-byte records of dim 5"},
  };
  for (const Case& c : cases) {
    VecsLayout l;
    l.rows = -7;
    const Status st = layout_of(c.file, c.elem, &l);
    VLK_CHECK_EQ(st.code, c.code) << c.message;
    VLK_CHECK_EQ(st.message, c.message);
    VLK_CHECK_EQ(l.rows, -7) << "*out written on failure";
  }
  // An empty file is 0 x 0; a single whole record is 1 row.
  VecsLayout l;
  VLK_CHECK(layout_of(Bytes{}, 4, &l).ok());
  VLK_CHECK(l.rows == 0 && l.cols == 0);
  VLK_CHECK(layout_of(Bytes{1, 0, 0, 0, 9}, 1, &l).ok());
  VLK_CHECK(l.rows == 1 && l.cols == 1 && l.record_bytes == 5);
  // Caller errors.
  const Bytes h = {2, 0, 0, 0};
  VLK_CHECK_EQ(vlk::core::vecs_layout(h.data(), 4, 12, 2, &l).code, Code::kInvalidArg);
  VLK_CHECK_EQ(vlk::core::vecs_layout(h.data(), 3, 12, 4, &l).code, Code::kInvalidArg);
  VLK_CHECK_EQ(vlk::core::vecs_layout(h.data(), 4, -1, 4, &l).code, Code::kInvalidArg);
  VLK_CHECK_EQ(vlk::core::vecs_layout(nullptr, 4, 12, 4, &l).code, Code::kInvalidArg);
}

VLK_TEST(vecs_dim_mismatch_names_the_record) {
  Rng rng(9);
  Bytes f = vecs_file(40, 3, 4, &rng);
  VecsLayout l;
  VLK_CHECK(layout_of(f, 4, &l).ok());
  // Record 21 claims dim 4 (the size still fits), record 30 claims -3.
  f[size_t(21 * l.record_bytes)] = 4;
  for (int k = 0; k < 4; ++k) f[size_t(30 * l.record_bytes) + k] = k == 0 ? 0xFD : 0xFF;
  std::vector<float> out(size_t(40 * 3), 7.0f);
  // Chunks of 10 records: the chunk holding 20..29 fails naming record 21, and writes nothing.
  for (int64_t r0 = 0; r0 < 40; r0 += 10) {
    const Status st = vlk::core::unpack_vecs_records(f.data() + r0 * l.record_bytes, 10 * l.record_bytes, 10, r0, l,
                                                     VecsOut::kFloat32, out.data(), int64_t(out.size()), r0);
    if (r0 == 20) {
      VLK_CHECK_EQ(st.code, Code::kCorrupt);
      VLK_CHECK_EQ(st.message, "record 21 dim: 4, but record 0 has dim 3");
      VLK_CHECK(out[size_t(20 * 3)] == 7.0f) << "rows written before the check";
    } else if (r0 == 30) {
      VLK_CHECK_EQ(st.message, "record 30 dim: -3, but record 0 has dim 3");
    } else {
      VLK_CHECK(st.ok()) << st.message;
    }
  }
}

VLK_TEST(vecs_unpack_caller_errors) {
  Rng rng(4);
  const Bytes f = vecs_file(3, 5, 4, &rng);
  VecsLayout l;
  VLK_CHECK(layout_of(f, 4, &l).ok());
  std::vector<float> out(15);
  std::vector<uint8_t> u8(15);
  const auto unpack = [&](int64_t chunk_len, int64_t n, int64_t out_len, int64_t row0, VecsOut kind, void* dst,
                          const VecsLayout& lay) {
    return vlk::core::unpack_vecs_records(f.data(), chunk_len, n, 0, lay, kind, dst, out_len, row0);
  };
  VLK_CHECK(unpack(int64_t(f.size()), 3, 15, 0, VecsOut::kFloat32, out.data(), l).ok());
  VLK_CHECK(unpack(int64_t(f.size()), 0, 0, 0, VecsOut::kFloat32, nullptr, l).ok());
  const Status short_chunk = unpack(int64_t(f.size()) - 1, 3, 15, 0, VecsOut::kFloat32, out.data(), l);
  VLK_CHECK_EQ(short_chunk.code, Code::kInvalidArg);
  VLK_CHECK_EQ(short_chunk.message, "vecs unpack: 3 records of 24 bytes do not fit a 71-byte chunk");
  VLK_CHECK_EQ(unpack(int64_t(f.size()), 3, 14, 0, VecsOut::kFloat32, out.data(), l).code, Code::kInvalidArg);
  VLK_CHECK_EQ(unpack(int64_t(f.size()), 2, 15, 2, VecsOut::kFloat32, out.data(), l).code, Code::kInvalidArg);
  VLK_CHECK_EQ(unpack(int64_t(f.size()), 1, 15, INT64_MAX, VecsOut::kFloat32, out.data(), l).code, Code::kInvalidArg);
  VLK_CHECK_EQ(unpack(int64_t(f.size()), INT64_MAX, 15, 0, VecsOut::kFloat32, out.data(), l).code, Code::kInvalidArg);
  VLK_CHECK_EQ(unpack(int64_t(f.size()), -1, 15, 0, VecsOut::kFloat32, out.data(), l).code, Code::kInvalidArg);
  VLK_CHECK_EQ(unpack(int64_t(f.size()), 3, 15, 0, VecsOut::kUint8, u8.data(), l).code, Code::kInvalidArg);
  VecsLayout wrong = l;
  wrong.record_bytes = 8;
  VLK_CHECK_EQ(unpack(int64_t(f.size()), 3, 15, 0, VecsOut::kFloat32, out.data(), wrong).code, Code::kInvalidArg);
  wrong = l;
  wrong.elem_bytes = 2;
  VLK_CHECK_EQ(unpack(int64_t(f.size()), 3, 15, 0, VecsOut::kFloat32, out.data(), wrong).code, Code::kInvalidArg);
}

// The whole read as lib/vectors_io.ts does it: layout from the first 4 bytes, then record chunks
// (each an exact-size copy) into one output; any failure is a typed status.
Status read_all(const Bytes& f, int elem, std::vector<float>* out, VecsLayout* l) {
  Status st = layout_of(f, elem, l);
  if (!st.ok()) return st;
  out->assign(size_t(l->rows * l->cols), 0.0f);
  const int64_t per = 3;
  for (int64_t r0 = 0; r0 < l->rows; r0 += per) {
    const int64_t n = std::min(per, l->rows - r0);
    Bytes chunk(f.begin() + r0 * l->record_bytes, f.begin() + (r0 + n) * l->record_bytes);
    st = vlk::core::unpack_vecs_records(chunk.data(), int64_t(chunk.size()), n, r0, *l, VecsOut::kFloat32, out->data(),
                                        int64_t(out->size()), r0);
    if (!st.ok()) return st;
  }
  return Status::Ok();
}

VLK_TEST(vecs_every_truncation_and_random_flips) {
  Rng rng(21);
  for (int elem : {4, 1}) {
    const Bytes f = vecs_file(7, 5, elem, &rng);
    const int64_t record = 4 + 5 * elem;
    for (size_t n = 0; n < f.size(); ++n) {
      const Bytes cut(f.begin(), f.begin() + n);
      std::vector<float> out;
      VecsLayout l;
      const Status st = read_all(cut, elem, &out, &l);
      // A prefix of whole records is a valid, shorter file; any other prefix is corrupt.
      if (int64_t(n) % record == 0) {
        VLK_CHECK(st.ok()) << n << ": " << st.message;
        VLK_CHECK_EQ(l.rows, int64_t(n) / record);
      } else {
        VLK_CHECK_EQ(st.code, Code::kCorrupt) << n;
      }
    }
  }
  int ok = 0, corrupt = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    const int elem = rng.next() % 2 ? 4 : 1;
    Bytes f = vecs_file(1 + int64_t(rng.next() % 9), 1 + int64_t(rng.next() % 6), elem, &rng);
    const int flips = 1 + int(rng.next() % 3);
    for (int k = 0; k < flips; ++k) {
      // Flips aimed at dims (small values, so layouts stay plausible) and anywhere.
      const size_t at = size_t(rng.next() % f.size());
      f[at] = rng.next() % 2 ? uint8_t(rng.next() % 16) : uint8_t(rng.next());
    }
    std::vector<float> out;
    VecsLayout l;
    const Status st = read_all(f, elem, &out, &l);
    if (st.ok()) {
      ++ok;
      VLK_CHECK_EQ(l.rows * l.record_bytes, int64_t(f.size()));
      bool dims_ok = true;
      for (int64_t r = 0; r < l.rows; ++r) dims_ok = dims_ok && f[size_t(r * l.record_bytes)] == uint8_t(l.cols);
      VLK_CHECK(dims_ok) << "accepted a file whose dims differ";
    } else {
      ++corrupt;
      VLK_CHECK_EQ(st.code, Code::kCorrupt) << st.message;
    }
  }
  VLK_CHECK(ok > 100 && corrupt > 100) << ok << " ok, " << corrupt << " corrupt";
}

}  // namespace
