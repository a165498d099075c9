// MoCo memory bank (core/memory). See memory_bank.hpp.
#include "memory/memory_bank.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <new>
#include <string>

namespace vlk {
namespace core {

MemoryBank::MemoryBank(int64_t size, int64_t dim) : size_(size), dim_(dim), state_(std::make_shared<State>()) {
  state_->data.assign(static_cast<size_t>(size * dim), 0.0f);
  state_->ids.assign(static_cast<size_t>(size), -1);
}

int64_t MemoryBank::count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_->count;
}

std::shared_ptr<const MemoryBank::State> MemoryBank::view() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_;
}

Status MemoryBank::enqueue(const float* keys, const int64_t* ids, int64_t b) {
  if (b < 0) return Status(Code::kInvalidArg, "keys: negative row count");
  if (b == 0) return Status::Ok();
  if (keys == nullptr) return Status(Code::kInvalidArg, "keys: null");
  // Only the last `size` rows survive the call; check every row anyway (the input is wrong).
  for (int64_t i = 0; i < b * dim_; ++i) {
    if (!std::isfinite(keys[i])) {
      return Status(Code::kNonFinite, "keys: row " + std::to_string(i / dim_) + ", element " +
                                          std::to_string(i % dim_) + " is not finite");
    }
  }
  if (ids != nullptr) {
    for (int64_t i = 0; i < b; ++i) {
      if (ids[i] < 0) {
        return Status(Code::kInvalidArg, "ids[" + std::to_string(i) + "]: " + std::to_string(ids[i]) +
                                             " is negative (ids are integers >= 0)");
      }
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (state_.use_count() > 1) {
    // A reader holds the current contents: write into a copy (copy-on-write).
    try {
      state_ = std::make_shared<State>(*state_);
    } catch (const std::bad_alloc&) {
      return Status(Code::kOutOfMemory, "memory bank: out of memory copying the bank while a loss reads it");
    }
  } else {
    // use_count() is a relaxed load: pair it with the release of the last reader's decrement, so
    // that reader's loads happen before the writes below.
    std::atomic_thread_fence(std::memory_order_acquire);
  }
  State& s = *state_;
  const int64_t first = b > size_ ? b - size_ : 0;
  for (int64_t i = first; i < b; ++i) {
    std::memcpy(s.data.data() + s.head * dim_, keys + i * dim_, static_cast<size_t>(dim_) * sizeof(float));
    s.ids[static_cast<size_t>(s.head)] = ids != nullptr ? ids[i] : -1;
    s.head = s.head + 1 == size_ ? 0 : s.head + 1;
  }
  s.count = std::min(size_, s.count + (b - first));
  return Status::Ok();
}

int64_t MemoryBank::snapshot(float* out_data, int64_t* out_ids, int64_t max_count) const {
  std::shared_ptr<const State> v = view();
  const int64_t n = std::min(v->count, max_count);
  // Oldest first: when full the oldest is at head; before that, slot 0.
  const int64_t start = v->count == size_ ? v->head : 0;
  for (int64_t r = 0; r < n; ++r) {
    const int64_t slot = (start + r) % size_;
    if (out_data != nullptr) {
      std::memcpy(out_data + r * dim_, v->data.data() + slot * dim_, static_cast<size_t>(dim_) * sizeof(float));
    }
    if (out_ids != nullptr) out_ids[r] = v->ids[static_cast<size_t>(slot)];
  }
  return n;
}

Status MemoryBank::clear() {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_.use_count() > 1) {
    // Readers keep their contents; the bank starts a fresh state (same size).
    try {
      auto fresh = std::make_shared<State>();
      fresh->data.assign(static_cast<size_t>(size_ * dim_), 0.0f);
      fresh->ids.assign(static_cast<size_t>(size_), -1);
      state_ = std::move(fresh);
    } catch (const std::bad_alloc&) {
      return Status(Code::kOutOfMemory, "memory bank: out of memory clearing the bank while a loss reads it");
    }
    return Status::Ok();
  }
  state_->head = 0;
  state_->count = 0;
  std::fill(state_->ids.begin(), state_->ids.end(), int64_t{-1});
  return Status::Ok();
}

}  // namespace core
}  // namespace vlk
