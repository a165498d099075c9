// Shared by the libFuzzer targets (test/fuzz): reads typed values from the fuzzer's bytes (running
// out yields zeros, never a read past the end) and FUZZ_CHECK, which aborts on a broken invariant so
// that libFuzzer records the input as a crash. Built only with -DVLK_FUZZ=ON (clang).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "common/status.hpp"

#define FUZZ_CHECK(cond)                                                          \
  do {                                                                            \
    if (!(cond)) {                                                                \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                               \
    }                                                                             \
  } while (0)

namespace vlk::fuzz {

class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size) : p_(data), n_(size) {}

  size_t remaining() const { return n_ - i_; }

  void bytes(void* out, size_t len) {
    const size_t take = len < remaining() ? len : remaining();
    if (take > 0) std::memcpy(out, p_ + i_, take);
    if (take < len) std::memset(static_cast<uint8_t*>(out) + take, 0, len - take);
    i_ += take;
  }
  template <class T>
  T take() {
    T v{};
    bytes(&v, sizeof v);
    return v;
  }
  /// 0 .. max inclusive.
  int64_t small(int64_t max) { return static_cast<int64_t>(take<uint16_t>() % static_cast<uint64_t>(max + 1)); }
  bool flag() { return (take<uint8_t>() & 1) != 0; }

  /// Floats for a matrix: mostly small integers (so that scores are exact and ties common), and
  /// sometimes the raw bits (NaN, infinities, huge and subnormal values).
  std::vector<float> floats(int64_t count) {
    std::vector<float> out(static_cast<size_t>(count));
    for (auto& v : out) {
      const uint8_t tag = take<uint8_t>();
      if ((tag & 0xF0) == 0xF0) {
        v = take<float>();
      } else {
        v = static_cast<float>(static_cast<int>(tag & 0x0F) - 8);
      }
    }
    return out;
  }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t i_ = 0;
};

/// Every error a core call may return is one of the declared codes with a non-empty message.
inline void check_status(const Status& s) {
  if (s.ok()) return;
  FUZZ_CHECK(!s.message.empty());
  bool known = false;
  for (int i = 0; i < code_count(); ++i) known = known || code_at(i) == s.code;
  FUZZ_CHECK(known);
}

}  // namespace vlk::fuzz
