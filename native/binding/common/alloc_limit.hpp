// Output-size guard (binding/common): V8 aborts the whole process when an ArrayBuffer cannot be
// allocated (no exception to catch), so every result sized from the caller's shapes (Q x k, n x n)
// is checked against the machine's memory first and refused with a typed ERR_VLK_OUT_OF_MEMORY.
#pragma once

#include <cstdint>
#include <string>

#include "common/checked_size.hpp"
#include "common/status.hpp"

namespace vlk::binding {

// Bytes this process may use at most: physical memory, or the cgroup limit when it is smaller
// (core's ceiling, so the binding's output checks and core's scratch checks agree).
inline uint64_t MemoryCeilingBytes() { return core::memory_ceiling_bytes(); }

// Ok when `count` elements of `elem_bytes` each (plus `extra_bytes`) fit in memory; otherwise
// kOutOfMemory naming `what`, the element count and the bytes against the ceiling.
inline Status CheckAllocation(const std::string& what, int64_t count, uint64_t elem_bytes, uint64_t extra_bytes = 0) {
  uint64_t bytes = 0;
  const bool overflow = count < 0 || __builtin_mul_overflow(static_cast<uint64_t>(count), elem_bytes, &bytes) ||
                        __builtin_add_overflow(bytes, extra_bytes, &bytes);
  const uint64_t ceiling = MemoryCeilingBytes();
  if (overflow) {
    return Status(Code::kOutOfMemory, what + ": " + std::to_string(count) + " elements of " +
                                          std::to_string(elem_bytes) + " bytes overflow 64-bit size arithmetic");
  }
  if (bytes > ceiling) {
    return Status(Code::kOutOfMemory, what + ": " + std::to_string(count) + " elements need " + std::to_string(bytes) +
                                          " bytes, more than this machine's memory (" + std::to_string(ceiling) +
                                          " bytes)");
  }
  return Status::Ok();
}

}  // namespace vlk::binding
