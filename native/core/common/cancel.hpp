// Cooperative cancellation flag (core/common). Set from any thread (the JS thread on AbortSignal
// 'abort'); polled by kernels between gallery blocks, which then return Code::kAborted.
#pragma once

#include <atomic>

namespace vlk {

class CancelFlag {
 public:
  void cancel() { flag_.store(true, std::memory_order_relaxed); }
  bool cancelled() const { return flag_.load(std::memory_order_relaxed); }

 private:
  std::atomic<bool> flag_{false};
};

}  // namespace vlk
