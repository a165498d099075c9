// C++ core tests of the checked size arithmetic (test/native): products and sums that overflow
// int64 / size_t are reported instead of wrapping, check_alloc names the factors and the bytes,
// run_guarded turns allocation exceptions into kOutOfMemory, and the block cache refuses sizes
// whose byte count overflows or exceeds the machine instead of handing back an undersized block.
#include <cstdint>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/block_cache.hpp"
#include "common/checked_size.hpp"
#include "vlk_test.hpp"

using vlk::Code;
using vlk::Status;
namespace core = vlk::core;

VLK_TEST(checked_mul_reports_int64_overflow_and_negative_factors) {
  int64_t r = 7;
  VLK_CHECK(core::checked_mul(int64_t{1} << 31, int64_t{1} << 31, &r));
  VLK_CHECK_EQ(r, int64_t{1} << 62);
  r = 7;
  VLK_CHECK(!core::checked_mul(int64_t{1} << 32, int64_t{1} << 31, &r));
  VLK_CHECK_EQ(r, int64_t{7});  // untouched on failure
  VLK_CHECK(!core::checked_mul(int64_t{-1}, int64_t{3}, &r));
  // (2^32 + 1)(2^32 - 1) = 2^64 - 1 wraps to -1 in plain int64 arithmetic.
  VLK_CHECK(!core::checked_mul((int64_t{1} << 32) + 1, (int64_t{1} << 32) - 1, &r));
  VLK_CHECK(core::checked_add(std::numeric_limits<int64_t>::max() - 1, int64_t{1}, &r));
  VLK_CHECK(!core::checked_add(std::numeric_limits<int64_t>::max(), int64_t{1}, &r));
  size_t z = 0;
  VLK_CHECK(!core::checked_mul(std::numeric_limits<size_t>::max() / 2 + 1, size_t{2}, &z));
  VLK_CHECK(!core::checked_add(std::numeric_limits<size_t>::max(), size_t{1}, &z));
}

VLK_TEST(saturating_product_and_bytes_for) {
  int64_t p = 0;
  VLK_CHECK(core::checked_product({3, 5, 7}, &p));
  VLK_CHECK_EQ(p, int64_t{105});
  VLK_CHECK(core::checked_product({}, &p));
  VLK_CHECK_EQ(p, int64_t{1});
  VLK_CHECK_EQ(core::saturating_product({int64_t{1} << 53, int64_t{1} << 53}), std::numeric_limits<int64_t>::max());
  VLK_CHECK_EQ(core::saturating_product({(int64_t{1} << 32) + 1, (int64_t{1} << 32) - 1}),
               std::numeric_limits<int64_t>::max());
  VLK_CHECK_EQ(core::saturating_product({0, int64_t{1} << 62, int64_t{1} << 62}), int64_t{0});
  VLK_CHECK_EQ(core::saturating_product({-1, 2}), std::numeric_limits<int64_t>::max());
  uint64_t b = 0;
  VLK_CHECK(core::bytes_for({1 << 20, 1 << 10}, 4, &b));
  VLK_CHECK_EQ(b, uint64_t{1} << 32);
  // 2^61 elements fit int64 but not as bytes of 8.
  VLK_CHECK(!core::bytes_for({int64_t{1} << 61}, 8, &b));
}

VLK_TEST(check_alloc_names_the_factors_and_the_bytes) {
  const uint64_t ceiling = core::memory_ceiling_bytes();
  VLK_CHECK(ceiling > 0);
  VLK_CHECK(core::check_alloc("small", {16, 16}, 4).ok());
  Status s = core::check_alloc("op: the B x B logits", {int64_t{1} << 30, int64_t{1} << 30}, 4);
  VLK_CHECK(s.code == Code::kOutOfMemory);
  VLK_CHECK(s.message.find("op: the B x B logits: 1073741824 x 1073741824 x 4 bytes = 4611686018427387904 bytes") ==
            0) << s.message;
  VLK_CHECK(s.message.find(std::to_string(ceiling)) != std::string::npos) << s.message;
  s = core::check_alloc("op: overflow", {int64_t{1} << 40, int64_t{1} << 40}, 4);
  VLK_CHECK(s.code == Code::kOutOfMemory);
  VLK_CHECK(s.message.find("1099511627776 x 1099511627776 x 4 bytes overflows 64-bit size arithmetic") !=
            std::string::npos) << s.message;
  // Extra bytes count too, and their sum overflowing is an overflow.
  s = core::check_alloc("op: extra", {1}, 1, std::numeric_limits<uint64_t>::max());
  VLK_CHECK(s.code == Code::kOutOfMemory);
  VLK_CHECK(s.message.find("overflows") != std::string::npos) << s.message;
}

VLK_TEST(run_guarded_maps_allocation_exceptions) {
  Status s = core::run_guarded("op", []() -> Status { throw std::bad_alloc(); });
  VLK_CHECK(s.code == Code::kOutOfMemory);
  VLK_CHECK_EQ(s.message, std::string("op: out of memory"));
  s = core::run_guarded("op", []() -> Status {
    std::vector<double> v;
    v.resize(std::numeric_limits<size_t>::max());  // above max_size(): std::length_error
    return Status::Ok();
  });
  VLK_CHECK(s.code == Code::kOutOfMemory);
  VLK_CHECK(s.message.find("op: ") == 0) << s.message;
  s = core::run_guarded("op", []() { return Status(Code::kShape, "kept"); });
  VLK_CHECK(s.code == Code::kShape);
  VLK_CHECK_EQ(s.message, std::string("kept"));
}

VLK_TEST(cached_array_refuses_a_byte_count_that_overflows) {
  // n * sizeof(double) wraps to a small number for this n: the array must throw, not hand back
  // a block of a few bytes that the caller would index up to n.
  const size_t n = (std::numeric_limits<size_t>::max() / sizeof(double)) + 2;
  bool threw = false;
  try {
    core::CachedArray<double> a(n);
  } catch (const std::bad_alloc&) {
    threw = true;
  }
  VLK_CHECK(threw);
  threw = false;
  try {
    core::BlockAllocator<double> alloc;
    (void)alloc.allocate(n);
  } catch (const std::bad_alloc&) {
    threw = true;
  }
  VLK_CHECK(threw);
}

VLK_TEST(block_acquire_refuses_more_than_the_machine) {
  const uint64_t ceiling = core::memory_ceiling_bytes();
  if (ceiling < std::numeric_limits<size_t>::max() / 4) {
    VLK_CHECK(core::block_acquire(static_cast<size_t>(ceiling) + 4096) == nullptr);
  }
  VLK_CHECK(core::block_acquire(std::numeric_limits<size_t>::max() - 10) == nullptr);
  void* p = core::block_acquire(size_t(1) << 20);
  VLK_CHECK(p != nullptr);
  core::block_release(p, size_t(1) << 20);
}
