// FlatIndex (core/index): an exact index a service keeps and mutates: vectors with user ids, add,
// remove, get, has, and search that returns ids. f32 storage.
//
// Layout: rows live in append-only blocks that never move (sizes double, from 1,024 rows or the
// size of the add that needs a new block);
// removal clears a row's live bit (its memory comes back at compact()). A search takes
// a snapshot under a short lock (block list, row count, live bitset) and runs without the lock,
// so add/remove never wait for a search and a search never sees a torn row: rows past its
// snapshot's count are not read, and rows before it are never written again.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "common/context.hpp"
#include "common/matrix.hpp"
#include "common/status.hpp"
#include "search/search.hpp"

namespace vlk {
namespace core {

struct IndexSearchOut {
  int64_t* ids = nullptr;      // Q x k user ids, best first (ties: earlier insertion); padding -1
  float* scores = nullptr;     // Q x k, as search reports them; padding NaN
  int32_t* counts = nullptr;   // optional, Q: min(k, size)
};

class FlatIndex {
 public:
  /// dim >= 1. Thread-safe: every method may be called from any thread at any time.
  FlatIndex(int64_t dim, Metric metric);
  ~FlatIndex();
  FlatIndex(const FlatIndex&) = delete;
  FlatIndex& operator=(const FlatIndex&) = delete;

  int64_t dim() const { return dim_; }
  Metric metric() const { return metric_; }
  /// Live vectors.
  int64_t size() const;
  /// Bytes held: row blocks (removed rows included until compaction), ids, live bits, id map.
  int64_t memory_usage() const;

  /// Appends vectors (n x dim) with ids (n non-negative, unique, not present) or, with ids null,
  /// automatic ids from one past the largest id ever added (written to *first_id if non-null).
  /// All or nothing. Errors: kDimMismatch, kNonFinite (NaN/Inf, or a squared norm above 4.2e37),
  /// kInvalidArg (negative or duplicate id, naming it), kOutOfMemory.
  Status add(const MatrixView<const float>& vectors, const int64_t* ids, int64_t* first_id);

  /// Removes n ids; kInvalidArg (nothing removed) if one is unknown or listed twice.
  Status remove(const int64_t* ids, int64_t n);

  /// Rewrites the live rows, in insertion order, into fresh blocks and drops the removed ones, so
  /// their memory comes back (results and tie order are unchanged). Runs under the index's lock:
  /// searches already running keep the old blocks through their snapshots. Writes the drop in
  /// memory_usage() to *freed if non-null. kOutOfMemory leaves the index as it was.
  Status compact(int64_t* freed);

  bool has(int64_t id) const;

  /// Copies the vector of `id` into out (dim floats); kInvalidArg if unknown.
  Status get(int64_t id, float* out) const;

  /// Top-k (k >= 1) of the live vectors for each query (Q x dim), scored exactly as core::search
  /// scores them. A query gets min(k, size) results; the rest is padding.
  Status search(const MatrixView<const float>& queries, int64_t k, const IndexSearchOut& out,
                const Context& ctx) const;

 private:
  struct Block;
  struct Snapshot;
  Snapshot snapshot() const;
  int64_t memory_usage_locked() const;  // mu_ held

  const int64_t dim_;
  const Metric metric_;
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<Block>> blocks_;
  int64_t rows_ = 0;                           // rows used across blocks (live or removed)
  int64_t live_count_ = 0;
  std::vector<uint64_t> live_;                 // bit r: row r is live
  std::unordered_map<int64_t, int64_t> rows_by_id_;
  int64_t next_auto_id_ = 0;
};

}  // namespace core
}  // namespace vlk
