// Pieces shared by the search-family operations (core/search, internal): the per-call kernel
// table, the packed candidate (key, index) used by every top-k list, exact float64 l2, and the
// input checks with their messages. Not part of the public core API.
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

#include "common/matrix.hpp"
#include "common/status.hpp"
#include "isa/isa.hpp"
#include "search/search_kernel.hpp"

namespace vlk {
namespace core {

/// The kernel table for an ISA path.
const SearchKernels& search_kernels(Isa isa);

// A candidate packed so that a larger integer is a better result: the key's order-preserving
// bits above the inverted gallery index (equal keys: the lower index wins).
using Cand = uint64_t;

inline uint32_t ordered_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

inline Cand make_cand(float key, int64_t idx) {
  key += 0.0f;  // -0 -> +0: equal keys must pack equal
  return (static_cast<uint64_t>(ordered_bits(key)) << 32) |
         (0xFFFFFFFFu - static_cast<uint32_t>(idx));
}

inline float cand_key(Cand c) {
  const uint32_t o = static_cast<uint32_t>(c >> 32);
  const uint32_t b = (o & 0x80000000u) ? (o & 0x7FFFFFFFu) : ~o;
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

inline int32_t cand_idx(Cand c) {
  return static_cast<int32_t>(0xFFFFFFFFu - static_cast<uint32_t>(c));
}

/// Exact squared distance in float64, fixed summation order (4 interleaved partial sums).
double l2_exact(const float* a, const float* b, int64_t d);

/// First NaN/infinite value of a matrix as a message naming `name`, row and column; empty if none.
std::string find_non_finite(const char* name, const MatrixView<const float>& m);

/// Largest squared norm accepted: keeps 2 q.g and |q|^2 + |g|^2 finite in fp32.
constexpr float kMaxNorm2 = std::numeric_limits<float>::max() / 8;

/// kNonFinite for a row whose squared norm exceeds kMaxNorm2.
Status too_large(const char* name, int64_t row);

}  // namespace core
}  // namespace vlk
