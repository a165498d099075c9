// libFuzzer target (test/fuzz): the .fvecs / .ivecs / .bvecs layout and record unpacking behind
// readFvecs, readIvecs, readBvecs, readVectors and openVectors (core/io/vecs). The first byte picks
// the format, the output type and the chunking; the rest is the file. Errors are CORRUPT for the
// file's faults; an accepted file unpacks, in any chunking, to rows x dim values equal to its
// records' (bit for bit, or widened exactly from bytes).
#include <cstring>
#include <vector>

#include "fuzz_input.hpp"
#include "io/vecs.hpp"

using namespace vlk;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const uint8_t* file = data + 1;
  const int64_t n = static_cast<int64_t>(size) - 1;
  const int elem = (mode & 1) ? 1 : 4;
  const core::VecsOut kind = elem == 1 ? ((mode & 2) ? core::VecsOut::kUint8 : core::VecsOut::kFloat32)
                                       : ((mode & 2) ? core::VecsOut::kInt32 : core::VecsOut::kFloat32);
  const int64_t per_chunk = 1 + (mode >> 2);  // records per unpack call: 1 .. 64

  core::VecsLayout layout;
  const Status s = core::vecs_layout(file, n < 4 ? n : 4, n, elem, &layout);
  fuzz::check_status(s);
  if (!s.ok()) {
    FUZZ_CHECK(s.code == Code::kCorrupt);
    return 0;
  }
  FUZZ_CHECK(layout.rows * layout.record_bytes == n);
  FUZZ_CHECK(layout.rows == 0 || layout.record_bytes == 4 + layout.cols * elem);
  const int64_t total = layout.rows * layout.cols;
  const size_t out_elem = kind == core::VecsOut::kUint8 ? 1 : 4;
  std::vector<uint8_t> out(static_cast<size_t>(total) * out_elem + 1);

  Status first_error;
  for (int64_t r0 = 0; r0 < layout.rows; r0 += per_chunk) {
    const int64_t m = layout.rows - r0 < per_chunk ? layout.rows - r0 : per_chunk;
    // The chunk is copied so that an over-read past it is an ASan report, not a read of the file.
    std::vector<uint8_t> chunk(file + r0 * layout.record_bytes, file + (r0 + m) * layout.record_bytes);
    const Status u = core::unpack_vecs_records(chunk.data(), static_cast<int64_t>(chunk.size()), m, r0, layout, kind,
                                               out.data(), total, r0);
    fuzz::check_status(u);
    if (!u.ok()) {
      FUZZ_CHECK(u.code == Code::kCorrupt);
      first_error = u;
      break;
    }
  }
  // Too small an output or chunk is the caller's error, never a write or read past them.
  if (layout.rows > 0) {
    const Status small = core::unpack_vecs_records(file, layout.record_bytes - 1, 1, 0, layout, kind, out.data(), total, 0);
    FUZZ_CHECK(small.code == Code::kInvalidArg);
    const Status beyond = core::unpack_vecs_records(file, n, layout.rows, 0, layout, kind, out.data(), total - 1, 0);
    FUZZ_CHECK(!beyond.ok());
  }
  if (!first_error.ok()) return 0;

  for (int64_t r = 0; r < layout.rows; ++r) {
    const uint8_t* rec = file + r * layout.record_bytes;
    int32_t dim = 0;
    std::memcpy(&dim, rec, 4);
    FUZZ_CHECK(dim == layout.cols);
    for (int64_t c = 0; c < layout.cols; ++c) {
      const size_t at = static_cast<size_t>(r * layout.cols + c);
      if (elem == 4) {
        FUZZ_CHECK(std::memcmp(&out[at * 4], rec + 4 + c * 4, 4) == 0);  // x86-64: host order is the file's
      } else if (kind == core::VecsOut::kUint8) {
        FUZZ_CHECK(out[at] == rec[4 + c]);
      } else {
        float v = 0;
        std::memcpy(&v, &out[at * 4], 4);
        FUZZ_CHECK(v == static_cast<float>(rec[4 + c]));
      }
    }
  }
  return 0;
}
