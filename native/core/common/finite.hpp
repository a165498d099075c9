// Finiteness fast pass (core/common): input validation runs on every call, over every weight, so
// it must cost a memory pass, not a branch per element.
#pragma once

#include <cstdint>
#include <cstring>

namespace vlk {
namespace core {

/// True when none of x[0 .. n) is NaN or infinite. An all-ones exponent marks both; the OR of
/// integer tests vectorizes (no float compare, no early exit). Callers that get false scan again
/// to name the first bad element.
inline bool all_finite(const float* x, int64_t n) {
  uint32_t bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, x + i, sizeof bits);
    bad |= static_cast<uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
  }
  return bad == 0;
}

}  // namespace core
}  // namespace vlk
