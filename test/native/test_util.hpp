// Shared helpers of the C++ core tests (test/native): deterministic data (splitmix64, identical on
// every platform, so a failing case reproduces from its seed) and printers that let VLK_CHECK_EQ
// show codes, ISAs and metrics by name.
#pragma once

#include <cstdint>
#include <ostream>

#include "common/status.hpp"
#include "isa/isa.hpp"
#include "search/search.hpp"

namespace vlk {
inline std::ostream& operator<<(std::ostream& os, Code c) { return os << code_string(c); }
inline std::ostream& operator<<(std::ostream& os, Isa isa) { return os << isa_name(isa); }
namespace core {
inline std::ostream& operator<<(std::ostream& os, Metric m) { return os << metric_name(m); }
}  // namespace core
}  // namespace vlk

namespace vlk_test {

class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  /// Uniform in [-1, 1).
  float uniform() { return static_cast<float>(next() >> 40) * (2.0f / 16777216.0f) - 1.0f; }
  int small_int(int lo, int hi) { return lo + static_cast<int>(next() % uint64_t(hi - lo + 1)); }

 private:
  uint64_t s_;
};

}  // namespace vlk_test
