// MoCo memory bank (core/memory, seed 004): a fixed-size ring buffer of `size` key embeddings of
// width D plus one int64 id per entry, as AAHR's per-modality queues (K = 2048, ring buffer, the
// oldest keys overwritten first).
//   enqueue(keys B x D, ids?): rows are written in order at the head, each overwriting the oldest
//     entry once the bank is full. B may exceed the free space; B > size keeps only the LAST
//     `size` rows (the first B - size rows would be overwritten in the same call anyway). Missing
//     ids are stored as -1 ("no id": never equal to a query id, so never masked). Keys must be
//     finite (kNonFinite names the row and element; nothing is written on any error), so readers
//     never re-check the bank.
//   Storage: entry slots 0..size-1 in ring order; while count < size the filled slots are exactly
//     0..count-1; `head` is the slot the next key goes to (the oldest entry once full).
//   snapshot(): the filled entries OLDEST FIRST (slot head, head+1, ... wrapping, when full).
// Thread safety, copy-on-write: the contents live in an immutable-while-shared State behind a
// shared_ptr. A reader (an async loss) takes view() - a shared_ptr to the current State, under the
// mutex - at CALL time and reads it without any lock. enqueue() writes in place when nobody else
// holds the State (use_count 1 under the mutex), else it first copies it (one size x D copy, only
// when an enqueue overlaps a loss still in flight). So a loss always sees the bank as it was when
// it was called, enqueue never blocks on a running loss, and no lock is held while computing.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "common/status.hpp"

namespace vlk {
namespace core {

class MemoryBank {
 public:
  struct State {
    std::vector<float> data;    // size x D, ring order
    std::vector<int64_t> ids;   // size
    int64_t head = 0;           // next slot written
    int64_t count = 0;          // filled entries (<= size)
  };

  /// size >= 1, dim >= 1; throws std::bad_alloc when the memory cannot be had (the binding maps it).
  MemoryBank(int64_t size, int64_t dim);

  int64_t size() const { return size_; }
  int64_t dim() const { return dim_; }
  int64_t count() const;

  /// Writes `b` keys (b x dim, row-major) and their ids (null: -1 each). Errors: kInvalidArg (null
  /// keys with b > 0, a negative id), kNonFinite; kOutOfMemory when a copy-on-write fails. On any
  /// error the bank is unchanged.
  Status enqueue(const float* keys, const int64_t* ids, int64_t b);

  /// The current contents (never null), immutable while held: read filled slots 0..count-1.
  std::shared_ptr<const State> view() const;

  /// The filled entries oldest first into out_data (count x dim) and out_ids (count); either may be
  /// null. Returns the count copied. `max_count` bounds what the buffers hold.
  int64_t snapshot(float* out_data, int64_t* out_ids, int64_t max_count) const;

  /// Empties the bank (count 0, head 0); the memory stays allocated. kOutOfMemory only when a
  /// reader holds the contents and a fresh state cannot be allocated.
  Status clear();

  /// Bytes of native memory held for the contents (data + ids), not counting a copy a reader holds.
  int64_t bytes() const { return size_ * dim_ * 4 + size_ * 8; }

 private:
  int64_t size_, dim_;
  mutable std::mutex mu_;
  std::shared_ptr<State> state_;
};

}  // namespace core
}  // namespace vlk
