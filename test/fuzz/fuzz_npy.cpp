// libFuzzer target (test/fuzz): the .npy preamble and header parser behind readNpy, readNpyAny,
// readVectors and openVectors (core/io/npy) on arbitrary bytes taken as a whole file. Errors are
// declared codes with printable messages; an accepted header agrees with the bytes: its shape's
// product is its count, the data after the header is exactly count x item size bytes, and parsing
// the header alone gives what the preamble said.
#include <cstring>

#include "fuzz_input.hpp"
#include "io/npy.hpp"

using namespace vlk;

namespace {

// Messages quote header text with non-printable bytes escaped: no control character survives.
void check_printable(const Status& s) {
  for (unsigned char c : s.message) FUZZ_CHECK(c >= 0x20 && c != 0x7f);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int64_t n = static_cast<int64_t>(size);
  core::NpyPreamble pre;
  const int64_t head = n < core::npy_format::kPreambleMax ? n : core::npy_format::kPreambleMax;
  const Status p = core::parse_npy_preamble(data, head, n, &pre);
  fuzz::check_status(p);
  check_printable(p);
  core::NpyHeader h;
  const Status s = core::parse_npy_header(data, n, n, &h);
  fuzz::check_status(s);
  check_printable(s);
  if (!p.ok()) {
    // The header parser checks the preamble first, with the same verdict.
    FUZZ_CHECK(!s.ok() && s.code == p.code && s.message == p.message);
    return 0;
  }
  FUZZ_CHECK(pre.major >= 1 && pre.major <= 3 && pre.header_start + pre.header_len <= n);
  if (!s.ok()) {
    FUZZ_CHECK(s.code == Code::kCorrupt || s.code == Code::kType || s.code == Code::kShape ||
               s.code == Code::kOutOfMemory);
    return 0;
  }
  FUZZ_CHECK(h.preamble.header_start == pre.header_start && h.preamble.header_len == pre.header_len);
  FUZZ_CHECK(h.data_offset == pre.header_start + pre.header_len);
  FUZZ_CHECK(std::strchr("fiub", h.kind) != nullptr && h.kind != '\0');
  FUZZ_CHECK(h.item_size == 1 || h.item_size == 2 || h.item_size == 4 || h.item_size == 8);
  int64_t count = 1;
  for (int64_t d : h.shape) {
    FUZZ_CHECK(d >= 0 && d <= core::npy_format::kMaxSafeInteger);
    FUZZ_CHECK(!__builtin_mul_overflow(count, d, &count));
  }
  FUZZ_CHECK(count == h.count);
  FUZZ_CHECK(h.data_offset + h.count * h.item_size == n);
  // Passing exactly the header bytes gives the same header.
  core::NpyHeader again;
  FUZZ_CHECK(core::parse_npy_header(data, h.data_offset, n, &again).ok());
  FUZZ_CHECK(again.shape == h.shape && again.descr == h.descr && again.fortran_order == h.fortran_order);
  return 0;
}
