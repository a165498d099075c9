// Per-call execution context (core/common): which pool, how wide, which ISA, and the cancel flag.
#pragma once

#include "common/cancel.hpp"
#include "common/thread_pool.hpp"
#include "isa/isa.hpp"

namespace vlk {

struct Context {
  ThreadPool* pool = nullptr;          // null: run on the calling thread only
  int threads = 1;                     // parallel width requested (>= 1); capped by pool size + 1
  Isa isa = Isa::kScalar;              // kernel path for this call
  const CancelFlag* cancel = nullptr;  // optional; polled between gallery blocks

  bool cancelled() const { return cancel != nullptr && cancel->cancelled(); }
};

}  // namespace vlk
