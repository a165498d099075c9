// FlatIndex (core/index): an exact index a service keeps and mutates: vectors with user ids, add,
// remove, get, has, and search that returns ids. Storage f32, or bf16 / i8 codes scanned by
// search_quantized and re-scored from fp32 copies kept beside them (exact: the fp32 top-k), or,
// in approximate mode, codes only (no fp32 copy, scores from the codes).
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
#include "index/index_file.hpp"
#include "search/search_quantized.hpp"

namespace vlk {
namespace core {

struct IndexSearchOut {
  int64_t* ids = nullptr;      // Q x k user ids, best first (ties: earlier insertion); padding -1
  float* scores = nullptr;     // Q x k, as search reports them; padding NaN
  int32_t* counts = nullptr;   // optional, Q: min(k, size)
  int32_t* rescored = nullptr; // optional, Q: rows re-scored in fp32 (bf16/i8 storage; else 0)
};

/// Which ids each query may return (both parts optional; ids not in the index are ignored).
struct IndexFilter {
  const int64_t* allow_ids = nullptr;  // only these ids (any order; null: every id)
  int64_t n_allow = 0;
  bool has_allow = false;              // true with n_allow 0: nothing allowed
  const int64_t* exclude_offsets = nullptr;  // Q + 1 offsets (CSR) into exclude_ids
  const int64_t* exclude_ids = nullptr;      // ids query q must not return
};

/// The live rows of an index at one moment, in insertion order, for saving (see
/// FlatIndex::freeze): holds the row blocks alive, copies no row.
class IndexSnapshot;

/// An index image ready for encode_index / write_index_file, with the memory it points into
/// (rows are copied out of the blocks unless the f32 rows are already one contiguous run).
struct IndexExport {
  IndexImage image;
  std::vector<int64_t> ids;
  std::vector<float> f32;
  std::vector<uint8_t> codes;
  std::vector<float> scales;
  std::shared_ptr<const IndexSnapshot> hold;  // keeps zero-copy rows alive
};

class FlatIndex {
 public:
  /// dim >= 1 (i8: <= 65536, see validate_options). approximate: bf16/i8 only, keep codes only.
  /// Thread-safe: every method may be called from any thread at any time.
  FlatIndex(int64_t dim, Metric metric, Storage storage = Storage::kF32, bool approximate = false);

  /// kInvalidArg for options the constructor must not get (approximate with f32, i8 dim > 65536).
  static Status validate_options(int64_t dim, Storage storage, bool approximate);
  ~FlatIndex();
  FlatIndex(const FlatIndex&) = delete;
  FlatIndex& operator=(const FlatIndex&) = delete;

  int64_t dim() const { return dim_; }
  Metric metric() const { return metric_; }
  Storage storage() const { return storage_; }
  bool approximate() const { return approximate_; }
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

  /// One past the largest id ever added (the next automatic id).
  int64_t next_auto_id() const;

  /// A counter bumped by every add (of at least one vector), remove (of at least one id) and
  /// compaction that rewrites the blocks: two equal versions mean the same live rows, ids and
  /// insertion order, so a copy of the rows made at one version (e.g. a GPU mirror, see
  /// native/binding/flat_index.cpp) is current while version() still returns it.
  int64_t version() const;

  /// A snapshot of the live rows for saving (cheap: block references and live bits).
  std::shared_ptr<const IndexSnapshot> freeze() const;
  /// Live rows in the snapshot.
  static int64_t snapshot_count(const IndexSnapshot& s);
  /// version() when the snapshot was taken (under the same lock as its rows).
  static int64_t snapshot_version(const IndexSnapshot& s);
  /// Bytes of the encoding of a snapshot (encoded_size of its image).
  int64_t encoded_size(const IndexSnapshot& s) const;
  /// The snapshot as an image: ids, fp32 rows (if kept) and codes (bf16/i8) in insertion order.
  /// kOutOfMemory; kAborted (cancel).
  Status export_image(const std::shared_ptr<const IndexSnapshot>& s, IndexExport* out, const CancelFlag* cancel) const;

  /// Builds an index from a loaded image (read_index_file / decode_index). A mapped image's f32
  /// rows are used in place (the mapping lives as long as the index); everything else is copied.
  /// bf16/i8 with fp32 rows are re-quantized from them (the same codes, and the bound's per-row
  /// norms); without (approximate), the codes are taken as they are. kCorrupt (duplicate ids, i8
  /// dim above 65536, an id at or above next_auto_id), kOutOfMemory.
  static Status from_loaded(const LoadedIndex& loaded, std::shared_ptr<FlatIndex>* out);

  /// Copies the vector of `id` into out (dim floats; approximate mode: reconstructed from the
  /// codes); kInvalidArg if unknown.
  Status get(int64_t id, float* out) const;

  /// Top-k (k >= 1) of the live vectors for each query (Q x dim), scored exactly as core::search
  /// scores them. A query gets min(k, size) results; the rest is padding.
  /// bf16/i8: exactly the f32 top-k (ids and scores), see search_quantized.hpp; approximate mode:
  /// the codes' estimate. filter: optional.
  Status search(const MatrixView<const float>& queries, int64_t k, const IndexSearchOut& out,
                const Context& ctx, const IndexFilter* filter = nullptr) const;

 private:
  friend class IndexSnapshot;
  struct Block;
  int64_t end_of_blocks_locked() const;  // first row a new block may start at (64-aligned)
  struct Snapshot;
  Snapshot snapshot(const IndexFilter* filter, int64_t nq) const;
  int64_t memory_usage_locked() const;  // mu_ held

  const int64_t dim_;
  const Metric metric_;
  const Storage storage_;
  const bool approximate_;
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<Block>> blocks_;
  int64_t rows_ = 0;                           // rows used across blocks (live or removed)
  int64_t live_count_ = 0;
  std::vector<uint64_t> live_;                 // bit r: row r is live
  std::unordered_map<int64_t, int64_t> rows_by_id_;
  int64_t next_auto_id_ = 0;
  int64_t version_ = 0;                        // see version()
};

}  // namespace core
}  // namespace vlk
