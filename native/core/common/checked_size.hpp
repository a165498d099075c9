// Checked size arithmetic and the memory ceiling (core/common, header-only): every size computed
// from caller-controlled numbers (rows x cols, heads x n x n, capacity x dim, counts read from a
// file) goes through these before it allocates or indexes, so an overflow or a request larger than
// the machine fails fast with kOutOfMemory / kShape naming the factors instead of wrapping around.
#pragma once

#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

#include "common/status.hpp"

namespace vlk {
namespace core {

/// *out = a * b; false (and *out untouched) on overflow or a negative factor.
inline bool checked_mul(int64_t a, int64_t b, int64_t* out) {
  int64_t r = 0;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r)) return false;
  *out = r;
  return true;
}

/// *out = a + b; false on overflow or a negative term.
inline bool checked_add(int64_t a, int64_t b, int64_t* out) {
  int64_t r = 0;
  if (a < 0 || b < 0 || __builtin_add_overflow(a, b, &r)) return false;
  *out = r;
  return true;
}

inline bool checked_mul(size_t a, size_t b, size_t* out) { return !__builtin_mul_overflow(a, b, out); }
inline bool checked_add(size_t a, size_t b, size_t* out) { return !__builtin_add_overflow(a, b, out); }

/// The product of non-negative factors; false on overflow of int64 or a negative factor.
inline bool checked_product(std::initializer_list<int64_t> factors, int64_t* out) {
  int64_t p = 1;
  for (int64_t f : factors) {
    if (!checked_mul(p, f, &p)) return false;
  }
  *out = p;
  return true;
}

/// The product of non-negative factors, or INT64_MAX when it overflows (or a factor is negative):
/// a length that no real array has, so a length check against it fails and an allocation check
/// refuses it, instead of a wrapped product matching a small array.
inline int64_t saturating_product(std::initializer_list<int64_t> factors) {
  int64_t p = 0;
  return checked_product(factors, &p) ? p : std::numeric_limits<int64_t>::max();
}

/// Bytes for the product of `counts` elements of `elem` bytes each; false on overflow.
inline bool bytes_for(std::initializer_list<int64_t> counts, size_t elem, uint64_t* out) {
  int64_t n = 0;
  if (!checked_product(counts, &n)) return false;
  uint64_t b = 0;
  if (__builtin_mul_overflow(static_cast<uint64_t>(n), static_cast<uint64_t>(elem), &b)) return false;
  *out = b;
  return true;
}

namespace detail {

// A limit file's first number ("max" or unreadable: 0, meaning none).
inline uint64_t read_limit_file(const char* path) {
  std::FILE* f = std::fopen(path, "r");
  if (f == nullptr) return 0;
  unsigned long long v = 0;
  const int got = std::fscanf(f, "%llu", &v);
  std::fclose(f);
  return got == 1 ? static_cast<uint64_t>(v) : 0;
}

// The cgroup memory limit of this process (v2 memory.max, else v1 memory.limit_in_bytes of its own
// group, else of the mount root); 0 when there is none.
inline uint64_t cgroup_limit_bytes() {
#if defined(__linux__)
  std::string v2, v1;
  if (std::FILE* f = std::fopen("/proc/self/cgroup", "r")) {
    char line[4096];
    while (std::fgets(line, sizeof(line), f) != nullptr) {
      std::string s(line);
      while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
      if (s.rfind("0::", 0) == 0) v2 = s.substr(3);
      const size_t a = s.find(':'), b = a == std::string::npos ? a : s.find(':', a + 1);
      if (b != std::string::npos) {
        const std::string ctrl = s.substr(a + 1, b - a - 1);
        if (ctrl == "memory" || ctrl.find("memory,") == 0 || ctrl.find(",memory") != std::string::npos) v1 = s.substr(b + 1);
      }
    }
    std::fclose(f);
  }
  uint64_t limit = 0;
  auto take = [&limit](uint64_t v) {
    // cgroup v1 reports "no limit" as a huge page-rounded number; anything above 2^60 is none.
    if (v != 0 && v < (uint64_t{1} << 60) && (limit == 0 || v < limit)) limit = v;
  };
  if (!v2.empty()) {
    take(read_limit_file(("/sys/fs/cgroup" + v2 + "/memory.max").c_str()));
    take(read_limit_file("/sys/fs/cgroup/memory.max"));
  }
  if (!v1.empty()) take(read_limit_file(("/sys/fs/cgroup/memory" + v1 + "/memory.limit_in_bytes").c_str()));
  take(read_limit_file("/sys/fs/cgroup/memory/memory.limit_in_bytes"));
  return limit;
#else
  return 0;
#endif
}

inline uint64_t compute_memory_ceiling() {
  uint64_t total = 0;
#if defined(_SC_PHYS_PAGES) && defined(_SC_PAGESIZE)
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0 && __builtin_mul_overflow(uint64_t(pages), uint64_t(page), &total)) total = UINT64_MAX;
#endif
  const uint64_t cg = cgroup_limit_bytes();
  if (cg != 0 && (total == 0 || cg < total)) total = cg;
  return total == 0 ? UINT64_MAX : total;
}

}  // namespace detail

/// Bytes this process may use at most: physical memory, or the cgroup limit when smaller
/// (UINT64_MAX when neither is known). Read once, then cached.
inline uint64_t memory_ceiling_bytes() {
  static const uint64_t ceiling = detail::compute_memory_ceiling();
  return ceiling;
}

/// "a x b x c" for messages.
inline std::string format_factors(std::initializer_list<int64_t> factors) {
  std::string s;
  for (int64_t f : factors) {
    if (!s.empty()) s += " x ";
    s += std::to_string(f);
  }
  return s;
}

/// Ok when the product of `factors` elements of `elem` bytes each (plus `extra` bytes) is
/// representable and fits in memory; otherwise kOutOfMemory naming `what`, the factors and the
/// bytes: "<what>: 1048576 x 1048576 x 4 bytes = 4398046511104 bytes, more than this machine's
/// memory (N bytes)" or "... overflows 64-bit size arithmetic".
inline Status check_alloc(const std::string& what, std::initializer_list<int64_t> factors, size_t elem,
                          uint64_t extra = 0) {
  uint64_t bytes = 0;
  const std::string shape = format_factors(factors) + " x " + std::to_string(elem) + " bytes";
  if (!bytes_for(factors, elem, &bytes) || __builtin_add_overflow(bytes, extra, &bytes)) {
    return Status(Code::kOutOfMemory, what + ": " + shape + " overflows 64-bit size arithmetic");
  }
  const uint64_t ceiling = memory_ceiling_bytes();
  if (bytes > ceiling) {
    return Status(Code::kOutOfMemory, what + ": " + shape + " = " + std::to_string(bytes) +
                                          " bytes, more than this machine's memory (" + std::to_string(ceiling) +
                                          " bytes)");
  }
  return Status::Ok();
}

/// Runs `body` (returning Status) so that no allocation exception leaves core: std::bad_alloc and
/// std::length_error (a vector asked for more than max_size) become kOutOfMemory naming `what`.
template <class F>
Status run_guarded(const char* what, F&& body) {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, std::string(what) + ": out of memory");
  } catch (const std::length_error&) {
    return Status(Code::kOutOfMemory, std::string(what) + ": a buffer larger than the address space was requested");
  }
}

}  // namespace core
}  // namespace vlk
