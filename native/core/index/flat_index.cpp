// FlatIndex (core/index). See flat_index.hpp. A search runs core::search once per block of its
// snapshot, with the block's live bits as the allow-set (removed rows never take a live row's
// place), then merges the blocks exactly with merge_top_k on global row numbers, so ties go to the
// earlier insertion, and maps rows to user ids.
#include "index/flat_index.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <string>
#include <unordered_set>

#include "search/merge_top_k.hpp"
#include "search/search_detail.hpp"

namespace vlk {
namespace core {

namespace {

// Smallest block; every block size is a multiple of 64 so blocks start on live-bit words. Growth is
// geometric (a new block at least as large as everything before it), so a small index holds little
// (37 rows of dim 24: 6 KiB, not the 98 KiB a 1024-row first block took, which made services that
// keep many small indexes, or drop them to the garbage collector, hold hundreds of MB).
constexpr int64_t kMinBlockRows = 64;

}  // namespace

struct FlatIndex::Block {
  int64_t start = 0;  // global row of the block's first row
  int64_t cap = 0;    // rows it holds
  float* data = nullptr;  // cap x dim fp32 (null in approximate mode)
  std::unique_ptr<int64_t[]> ids;
  // bf16 / i8 storage: code panels and the per-row arrays of search_quantized.hpp.
  void* codes = nullptr;
  std::vector<float> scale, norm2, rnorm, hnorm, gnorm;
  std::vector<int32_t> csum;

  bool owns_data = true;
  std::shared_ptr<const void> keep;  // a loaded file's mapping when data points into it

  // rows: the block's capacity; external: fp32 rows to use in place (kept alive by `keep`).
  Block(int64_t start_row, int64_t rows, int64_t dim, Storage storage, Metric metric, bool approximate,
        const float* external = nullptr, std::shared_ptr<const void> keep_alive = nullptr)
      : start(start_row), cap(rows), keep(std::move(keep_alive)) {
    if (external != nullptr) {
      data = const_cast<float*>(external);  // never written: rows of a loaded block are final
      owns_data = false;
    } else if (!approximate) {
      data = static_cast<float*>(aligned(static_cast<size_t>(rows * dim) * sizeof(float)));
    }
    ids.reset(new int64_t[static_cast<size_t>(rows)]);
    if (storage != Storage::kF32) {
      const int64_t padded = (rows + 63) / 64 * 64;  // whole panels, and room for the kernels' lanes
      const size_t bytes = static_cast<size_t>(padded / kQuantPanel * quant_panel_bytes(storage, dim));
      codes = aligned(bytes);
      std::memset(codes, 0, bytes);
      const size_t n = static_cast<size_t>(padded);
      rnorm.assign(n, 0.0f);
      hnorm.assign(n, 0.0f);
      gnorm.assign(n, 0.0f);
      if (storage == Storage::kI8) {
        scale.assign(n, 0.0f);
        csum.assign(n, 0);
      }
      if (metric == Metric::kL2) norm2.assign(n, 0.0f);
    }
  }
  ~Block() {
    if (owns_data) std::free(data);
    std::free(codes);
  }
  Block(const Block&) = delete;
  Block& operator=(const Block&) = delete;

  static void* aligned(size_t bytes) {
    void* p = std::aligned_alloc(64, bytes == 0 ? 64 : (bytes + 63) / 64 * 64);
    if (p == nullptr) throw std::bad_alloc();
    return p;
  }

  static float* or_null(std::vector<float>& v) { return v.empty() ? nullptr : v.data(); }

  QuantGallery view(Storage storage, Metric metric, int64_t dim, int64_t rows) const {
    QuantGallery g;
    g.storage = storage;
    g.metric = metric;
    g.rows = rows;
    g.dim = dim;
    g.codes = codes;
    g.scale = scale.empty() ? nullptr : scale.data();
    g.csum = csum.empty() ? nullptr : csum.data();
    g.norm2 = norm2.empty() ? nullptr : norm2.data();
    g.rnorm = rnorm.data();
    g.hnorm = hnorm.data();
    g.gnorm = gnorm.data();
    g.f32 = data;
    return g;
  }

  // Quantizes `n` rows from src (row stride `stride`) into local rows [local, local + n). In
  // approximate mode the per-row values are then derived from the codes alone, exactly as a load
  // (which has no fp32) derives them, so a saved and reloaded index answers the same.
  void quantize(Storage storage, Metric metric, int64_t dim, const float* src, int64_t stride, int64_t local,
                int64_t n) {
    std::vector<uint8_t> row_codes(data == nullptr ? static_cast<size_t>(dim) * 2 : 0);
    for (int64_t i = 0; i < n; ++i) {
      quantize_rows(storage, metric, src + i * stride, 1, dim, local + i, codes, or_null(scale),
                    csum.empty() ? nullptr : csum.data(), or_null(norm2), rnorm.data(), hnorm.data(), gnorm.data());
      if (data == nullptr) {
        const QuantGallery g = view(storage, metric, dim, cap);
        get_codes_row(g, local + i, row_codes.data());
        set_codes(storage, dim, row_codes.data(), scale.empty() ? 1.0f : scale[static_cast<size_t>(local + i)],
                  local + i);
      }
    }
  }

  // Sets one row from row-major codes (approximate mode; see set_codes_row).
  void set_codes(Storage storage, int64_t dim, const void* src, float scale_value, int64_t local) {
    set_codes_row(storage, src, scale_value, dim, local, codes, or_null(scale), csum.empty() ? nullptr : csum.data(),
                  or_null(norm2), rnorm.data(), hnorm.data(), gnorm.data());
  }

  // Copies one row's codes and per-row values (approximate mode's compaction: no fp32 to redo them).
  void copy_codes_from(const Block& src, int64_t sl, int64_t dl, Storage storage, int64_t dim) {
    const int step = quant_step(storage);
    const int64_t units = quant_dpad(storage, dim) / step;
    const size_t esz = storage == Storage::kI8 ? 1 : 2;
    const int64_t panel = quant_panel_bytes(storage, dim);
    const uint8_t* sp = static_cast<const uint8_t*>(src.codes) + (sl / kQuantPanel) * panel;
    uint8_t* dp = static_cast<uint8_t*>(codes) + (dl / kQuantPanel) * panel;
    for (int64_t u = 0; u < units; ++u) {
      std::memcpy(dp + ((u * kQuantPanel + dl % kQuantPanel) * step) * esz,
                  sp + ((u * kQuantPanel + sl % kQuantPanel) * step) * esz, step * esz);
    }
    const size_t s = static_cast<size_t>(sl), d = static_cast<size_t>(dl);
    rnorm[d] = src.rnorm[s];
    hnorm[d] = src.hnorm[s];
    gnorm[d] = src.gnorm[s];
    if (!scale.empty()) scale[d] = src.scale[s];
    if (!csum.empty()) csum[d] = src.csum[s];
    if (!norm2.empty()) norm2[d] = src.norm2[s];
  }

  // Heap bytes (fp32 rows used in place from a mapped file are not counted: the page cache holds them).
  int64_t bytes(Storage storage, int64_t dim) const {
    int64_t b = cap * int64_t(sizeof(int64_t));
    if (data != nullptr && owns_data) b += cap * dim * int64_t(sizeof(float));
    if (codes != nullptr) b += (cap + 63) / 64 * 64 / kQuantPanel * quant_panel_bytes(storage, dim);
    b += static_cast<int64_t>((scale.size() + norm2.size() + rnorm.size() + hnorm.size() + gnorm.size()) *
                              sizeof(float) + csum.size() * sizeof(int32_t));
    return b;
  }
};

struct FlatIndex::Snapshot {
  std::vector<std::shared_ptr<Block>> blocks;
  int64_t rows = 0;
  int64_t live_count = 0;
  std::vector<uint64_t> live;
  // Filter resolved to global rows under the same lock: live bits already cleared for rows
  // outside the allow-set; per query, excluded rows (CSR).
  std::vector<int64_t> excl_off;
  std::vector<int64_t> excl_rows;
};

FlatIndex::FlatIndex(int64_t dim, Metric metric, Storage storage, bool approximate)
    : dim_(dim), metric_(metric), storage_(storage), approximate_(approximate && storage != Storage::kF32) {}

Status FlatIndex::validate_options(int64_t dim, Storage storage, bool approximate) {
  if (dim < 1) return Status(Code::kInvalidArg, "dim: " + std::to_string(dim) + " is not >= 1");
  if (approximate && storage == Storage::kF32) {
    return Status(Code::kInvalidArg, "approximate: only for storage 'bf16' or 'i8' (f32 is always exact)");
  }
  // int8 dot products accumulate in int32: 4 * 255 * 127 per unit of 4 dims.
  if (storage == Storage::kI8 && dim > 65536) {
    return Status(Code::kInvalidArg, "dim: " + std::to_string(dim) + " exceeds 65536, the largest i8 storage takes");
  }
  return Status::Ok();
}
FlatIndex::~FlatIndex() = default;

int64_t FlatIndex::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return live_count_;
}

int64_t FlatIndex::memory_usage() const {
  std::lock_guard<std::mutex> lock(mu_);
  return memory_usage_locked();
}

int64_t FlatIndex::end_of_blocks_locked() const {
  if (blocks_.empty()) return 0;
  return (blocks_.back()->start + blocks_.back()->cap + 63) / 64 * 64;
}

int64_t FlatIndex::memory_usage_locked() const {
  int64_t bytes = 0;
  for (const auto& b : blocks_) bytes += b->bytes(storage_, dim_);
  bytes += static_cast<int64_t>(live_.capacity() * sizeof(uint64_t));
  // Buckets plus one node (key, value, next pointer, hash) per entry.
  bytes += static_cast<int64_t>(rows_by_id_.bucket_count() * sizeof(void*) + rows_by_id_.size() * 32);
  return bytes;
}

Status FlatIndex::add(const MatrixView<const float>& v, const int64_t* ids, int64_t* first_id) {
  if (v.rows < 0 || v.cols < 0) return Status(Code::kShape, "vectors: negative size");
  if (v.rows > 0 && v.cols != dim_) {
    return Status(Code::kDimMismatch, "vectors have dim " + std::to_string(v.cols) + " but the index has dim " +
                                          std::to_string(dim_));
  }
  // Values first, without the lock: NaN/Inf or magnitudes that would overflow a search.
  {
    const std::string bad = find_non_finite("vectors", v);
    if (!bad.empty()) return Status(Code::kNonFinite, bad);
    for (int64_t r = 0; r < v.rows; ++r) {
      double s = 0;
      const float* p = v.row(r);
      for (int64_t c = 0; c < v.cols; ++c) s += double(p[c]) * double(p[c]);
      if (!(s <= double(kMaxNorm2))) return too_large("vectors", r);
    }
  }
  try {
    std::lock_guard<std::mutex> lock(mu_);
    if (first_id != nullptr) *first_id = next_auto_id_;
    if (v.rows == 0) return Status::Ok();
    if (ids != nullptr) {
      std::unordered_set<int64_t> seen;
      seen.reserve(static_cast<size_t>(v.rows));
      for (int64_t i = 0; i < v.rows; ++i) {
        if (ids[i] < 0) {
          return Status(Code::kInvalidArg, "ids[" + std::to_string(i) + "]: " + std::to_string(ids[i]) +
                                               " is negative (ids are integers >= 0)");
        }
        if (rows_by_id_.count(ids[i]) != 0) {
          return Status(Code::kInvalidArg, "ids[" + std::to_string(i) + "]: id " + std::to_string(ids[i]) +
                                               " is already in the index");
        }
        if (!seen.insert(ids[i]).second) {
          return Status(Code::kInvalidArg, "ids[" + std::to_string(i) + "]: id " + std::to_string(ids[i]) +
                                               " appears twice in this call");
        }
      }
    } else if (next_auto_id_ > std::numeric_limits<int64_t>::max() - v.rows) {
      return Status(Code::kInvalidArg, "ids: automatic ids would overflow");
    }
    // Reserve everything before changing anything, so a failure leaves the index as it was.
    std::vector<std::shared_ptr<Block>> fresh;
    int64_t capacity = end_of_blocks_locked();
    while (capacity < rows_ + v.rows) {
      // Doubling, but never less than this add needs, so a big first add is one block.
      int64_t cap = std::max({kMinBlockRows, capacity, rows_ + v.rows - capacity});
      cap = (cap + 63) / 64 * 64;
      fresh.push_back(std::make_shared<Block>(capacity, cap, dim_, storage_, metric_, approximate_));
      capacity += cap;
    }
    live_.reserve(static_cast<size_t>((rows_ + v.rows + 63) / 64));
    rows_by_id_.reserve(rows_by_id_.size() + static_cast<size_t>(v.rows));
    blocks_.insert(blocks_.end(), fresh.begin(), fresh.end());

    size_t bi = 0;
    for (int64_t i = 0; i < v.rows; ++i) {
      const int64_t row = rows_ + i;
      while (row >= blocks_[bi]->start + blocks_[bi]->cap) ++bi;
      Block& b = *blocks_[bi];
      const int64_t local = row - b.start;
      if (b.data != nullptr) std::memcpy(b.data + local * dim_, v.row(i), static_cast<size_t>(dim_) * sizeof(float));
      if (storage_ != Storage::kF32) b.quantize(storage_, metric_, dim_, v.row(i), v.stride, local, 1);
      const int64_t id = ids != nullptr ? ids[i] : next_auto_id_ + i;
      b.ids[static_cast<size_t>(local)] = id;
      rows_by_id_.emplace(id, row);
      if (static_cast<size_t>(row >> 6) >= live_.size()) live_.push_back(0);
      live_[static_cast<size_t>(row >> 6)] |= uint64_t{1} << (row & 63);
    }
    int64_t max_id = next_auto_id_ - 1;
    if (ids != nullptr) {
      for (int64_t i = 0; i < v.rows; ++i) max_id = std::max(max_id, ids[i]);
    } else {
      max_id = next_auto_id_ + v.rows - 1;
    }
    next_auto_id_ = max_id == std::numeric_limits<int64_t>::max() ? max_id : max_id + 1;
    rows_ += v.rows;
    live_count_ += v.rows;
    ++version_;
    return Status::Ok();
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "add: out of memory for " + std::to_string(v.rows) + " vectors");
  }
}

Status FlatIndex::remove(const int64_t* ids, int64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  try {
    std::unordered_set<int64_t> seen;
    for (int64_t i = 0; i < n; ++i) {
      if (rows_by_id_.count(ids[i]) == 0) {
        return Status(Code::kInvalidArg, "ids[" + std::to_string(i) + "]: id " + std::to_string(ids[i]) +
                                             " is not in the index (nothing was removed)");
      }
      if (!seen.insert(ids[i]).second) {
        return Status(Code::kInvalidArg, "ids[" + std::to_string(i) + "]: id " + std::to_string(ids[i]) +
                                             " appears twice in this call (nothing was removed)");
      }
    }
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "remove: out of memory");
  }
  for (int64_t i = 0; i < n; ++i) {
    auto it = rows_by_id_.find(ids[i]);
    const int64_t row = it->second;
    live_[static_cast<size_t>(row >> 6)] &= ~(uint64_t{1} << (row & 63));
    rows_by_id_.erase(it);
  }
  live_count_ -= n;
  if (n > 0) ++version_;
  return Status::Ok();
}

Status FlatIndex::compact(int64_t* freed) {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t capacity = end_of_blocks_locked();
  if (freed != nullptr) *freed = 0;
  if (live_count_ == rows_ && capacity <= std::max(kMinBlockRows, (rows_ + 63) / 64 * 64)) return Status::Ok();
  const int64_t before = memory_usage_locked();
  try {
    std::vector<std::shared_ptr<Block>> fresh;
    std::unordered_map<int64_t, int64_t> rows_by_id;
    rows_by_id.reserve(static_cast<size_t>(live_count_));
    if (live_count_ > 0) {
      fresh.push_back(std::make_shared<Block>(0, std::max(kMinBlockRows, (live_count_ + 63) / 64 * 64), dim_,
                                              storage_, metric_, approximate_));
      Block& nb = *fresh.front();
      int64_t out = 0;
      for (const auto& b : blocks_) {
        const int64_t used = std::min(b->cap, rows_ - b->start);
        for (int64_t local = 0; local < used; ++local) {
          const int64_t row = b->start + local;
          if (((live_[static_cast<size_t>(row >> 6)] >> (row & 63)) & 1u) == 0) continue;
          if (nb.data != nullptr) {
            std::memcpy(nb.data + out * dim_, b->data + local * dim_, static_cast<size_t>(dim_) * sizeof(float));
            if (storage_ != Storage::kF32) nb.quantize(storage_, metric_, dim_, nb.data + out * dim_, dim_, out, 1);
          } else {
            nb.copy_codes_from(*b, local, out, storage_, dim_);
          }
          nb.ids[static_cast<size_t>(out)] = b->ids[static_cast<size_t>(local)];
          rows_by_id.emplace(b->ids[static_cast<size_t>(local)], out);
          ++out;
        }
      }
    }
    std::vector<uint64_t> live(static_cast<size_t>((live_count_ + 63) / 64), ~uint64_t{0});
    if (live_count_ % 64 != 0) live.back() = (uint64_t{1} << (live_count_ % 64)) - 1;
    blocks_.swap(fresh);  // the old blocks live on while a snapshot holds them
    rows_by_id_.swap(rows_by_id);
    live_.swap(live);
    rows_ = live_count_;
    ++version_;
    if (freed != nullptr) *freed = before - memory_usage_locked();
    return Status::Ok();
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "compact: out of memory for " + std::to_string(live_count_) + " vectors");
  }
}

int64_t FlatIndex::next_auto_id() const {
  std::lock_guard<std::mutex> lock(mu_);
  return next_auto_id_;
}

int64_t FlatIndex::version() const {
  std::lock_guard<std::mutex> lock(mu_);
  return version_;
}

bool FlatIndex::has(int64_t id) const {
  std::lock_guard<std::mutex> lock(mu_);
  return rows_by_id_.count(id) != 0;
}

Status FlatIndex::get(int64_t id, float* out) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = rows_by_id_.find(id);
  if (it == rows_by_id_.end()) {
    return Status(Code::kInvalidArg, "id " + std::to_string(id) + " is not in the index");
  }
  for (const auto& b : blocks_) {
    if (it->second < b->start + b->cap) {
      const int64_t local = it->second - b->start;
      if (b->data != nullptr) {
        std::memcpy(out, b->data + local * dim_, static_cast<size_t>(dim_) * sizeof(float));
      } else {
        dequantize_row(b->view(storage_, metric_, dim_, b->cap), local, out);
      }
      return Status::Ok();
    }
  }
  return Status(Code::kInternal, "get: row not found in any block");
}

FlatIndex::Snapshot FlatIndex::snapshot(const IndexFilter* filter, int64_t nq) const {
  std::lock_guard<std::mutex> lock(mu_);
  Snapshot s;
  s.blocks = blocks_;
  s.rows = rows_;
  s.live_count = live_count_;
  s.live = live_;
  if (filter == nullptr) return s;
  if (filter->has_allow) {
    std::vector<uint64_t> allow(s.live.size(), 0);
    for (int64_t i = 0; i < filter->n_allow; ++i) {
      auto it = rows_by_id_.find(filter->allow_ids[i]);
      if (it != rows_by_id_.end()) allow[static_cast<size_t>(it->second >> 6)] |= uint64_t{1} << (it->second & 63);
    }
    for (size_t w = 0; w < s.live.size(); ++w) s.live[w] &= allow[w];
  }
  if (filter->exclude_offsets != nullptr) {
    s.excl_off.assign(static_cast<size_t>(nq) + 1, 0);
    for (int64_t q = 0; q < nq; ++q) {
      for (int64_t j = filter->exclude_offsets[q]; j < filter->exclude_offsets[q + 1]; ++j) {
        auto it = rows_by_id_.find(filter->exclude_ids[j]);
        if (it != rows_by_id_.end()) s.excl_rows.push_back(it->second);
      }
      s.excl_off[static_cast<size_t>(q) + 1] = static_cast<int64_t>(s.excl_rows.size());
    }
  }
  return s;
}

class IndexSnapshot {
 public:
  std::vector<std::shared_ptr<FlatIndex::Block>> blocks;
  int64_t rows = 0;
  int64_t live_count = 0;
  int64_t next_auto_id = 0;
  int64_t version = 0;
  std::vector<uint64_t> live;

  bool is_live(int64_t row) const { return ((live[static_cast<size_t>(row >> 6)] >> (row & 63)) & 1u) != 0; }
};

std::shared_ptr<const IndexSnapshot> FlatIndex::freeze() const {
  auto s = std::make_shared<IndexSnapshot>();
  std::lock_guard<std::mutex> lock(mu_);
  s->blocks = blocks_;
  s->rows = rows_;
  s->live_count = live_count_;
  s->next_auto_id = next_auto_id_;
  s->version = version_;
  s->live = live_;
  return s;
}

int64_t FlatIndex::snapshot_count(const IndexSnapshot& s) { return s.live_count; }

int64_t FlatIndex::snapshot_version(const IndexSnapshot& s) { return s.version; }

int64_t FlatIndex::encoded_size(const IndexSnapshot& s) const {
  IndexImage im;
  im.dim = dim_;
  im.metric = metric_;
  im.storage = storage_;
  im.has_f32 = !approximate_;
  im.count = s.live_count;
  im.next_auto_id = s.next_auto_id;
  return core::encoded_size(im);
}

Status FlatIndex::export_image(const std::shared_ptr<const IndexSnapshot>& sp, IndexExport* out,
                               const CancelFlag* cancel) const {
  const IndexSnapshot& s = *sp;
  const int64_t n = s.live_count;
  try {
    out->hold = sp;
    out->ids.resize(static_cast<size_t>(n));
    // Zero copy for the fp32 rows when they are one run: a single block, nothing removed.
    const bool one_run = !approximate_ && s.blocks.size() == 1 && n == std::min(s.blocks[0]->cap, s.rows);
    if (!approximate_ && !one_run) out->f32.resize(static_cast<size_t>(n * dim_));
    const size_t esz = storage_ == Storage::kI8 ? 1 : 2;
    if (storage_ != Storage::kF32) out->codes.resize(static_cast<size_t>(n * dim_) * esz);
    if (storage_ == Storage::kI8) out->scales.resize(static_cast<size_t>(n));
    int64_t o = 0;
    for (const auto& b : s.blocks) {
      const int64_t used = std::min(b->cap, s.rows - b->start);
      const QuantGallery g = b->view(storage_, metric_, dim_, b->cap);
      for (int64_t local = 0; local < used; ++local) {
        if (!s.is_live(b->start + local)) continue;
        if (cancel != nullptr && (o & 4095) == 0 && cancel->cancelled()) return Status(Code::kAborted, "save aborted");
        out->ids[static_cast<size_t>(o)] = b->ids[static_cast<size_t>(local)];
        if (!out->f32.empty()) {
          std::memcpy(out->f32.data() + o * dim_, b->data + local * dim_, static_cast<size_t>(dim_) * sizeof(float));
        }
        if (storage_ != Storage::kF32) get_codes_row(g, local, out->codes.data() + static_cast<size_t>(o * dim_) * esz);
        if (storage_ == Storage::kI8) out->scales[static_cast<size_t>(o)] = b->scale[static_cast<size_t>(local)];
        ++o;
      }
    }
    IndexImage& im = out->image;
    im.dim = dim_;
    im.metric = metric_;
    im.storage = storage_;
    im.has_f32 = !approximate_;
    im.count = n;
    im.next_auto_id = s.next_auto_id;
    im.ids = n > 0 ? out->ids.data() : nullptr;
    im.f32 = approximate_ || n == 0 ? nullptr : one_run ? s.blocks[0]->data : out->f32.data();
    im.codes = storage_ == Storage::kF32 || n == 0 ? nullptr : out->codes.data();
    im.scales = storage_ == Storage::kI8 && n > 0 ? out->scales.data() : nullptr;
    return Status::Ok();
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "save: out of memory copying " + std::to_string(n) + " rows");
  }
}

Status FlatIndex::from_loaded(const LoadedIndex& li, std::shared_ptr<FlatIndex>* out) {
  const IndexImage& im = li.image;
  const bool approximate = im.storage != Storage::kF32 && !im.has_f32;
  {
    const Status st = validate_options(im.dim, im.storage, approximate);
    if (!st.ok()) return Status(Code::kCorrupt, "index: " + st.message);
  }
  try {
    auto index = std::make_shared<FlatIndex>(im.dim, im.metric, im.storage, approximate);
    const int64_t n = im.count, d = im.dim;
    index->next_auto_id_ = im.next_auto_id;
    if (n == 0) {
      *out = std::move(index);
      return Status::Ok();
    }
    // Rows add() would refuse (a squared norm above kMaxNorm2, whose products overflow a search):
    // a file can hold them (codes of any finite bf16 / i8 x scale value, fp32 rows written by other
    // tools), and a search would then fail for every query, or in approximate mode silently drop
    // the row. They are a corrupt image, reported at load.
    for (int64_t i = 0; i < n; ++i) {
      double s2 = 0;
      if (im.has_f32) {
        const float* row = im.f32 + i * d;
        for (int64_t c = 0; c < d; ++c) s2 += double(row[c]) * double(row[c]);
      } else if (im.storage == Storage::kBF16) {
        const uint16_t* row = static_cast<const uint16_t*>(im.codes) + i * d;
        for (int64_t c = 0; c < d; ++c) {
          const uint32_t bits = uint32_t(row[c]) << 16;
          float v;
          std::memcpy(&v, &bits, 4);
          s2 += double(v) * double(v);
        }
      } else {
        const int8_t* row = static_cast<const int8_t*>(im.codes) + i * d;
        double c2 = 0;
        for (int64_t c = 0; c < d; ++c) c2 += double(row[c]) * double(row[c]);
        s2 = c2 * double(im.scales[i]) * double(im.scales[i]);
      }
      if (!(s2 <= double(kMaxNorm2))) {
        return Status(Code::kCorrupt, std::string("index: row ") + std::to_string(i) + " (id " +
                                          std::to_string(im.ids[i]) + ") has squared norm " + std::to_string(s2) +
                                          ", above " + std::to_string(double(kMaxNorm2)) +
                                          " (a search would overflow float32; add() refuses such rows)");
      }
    }
    index->rows_by_id_.reserve(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      if (!index->rows_by_id_.emplace(im.ids[i], i).second) {
        return Status(Code::kCorrupt, "index: id " + std::to_string(im.ids[i]) + " appears twice (rows " +
                                          std::to_string(index->rows_by_id_[im.ids[i]]) + " and " +
                                          std::to_string(i) + ")");
      }
    }
    // In place from a mapping (fp32 rows are 64-byte aligned there); else a fresh block.
    const bool in_place = li.mapped && im.has_f32;
    const int64_t cap = in_place ? n : std::max(kMinBlockRows, (n + 63) / 64 * 64);
    auto block = std::make_shared<Block>(0, cap, d, im.storage, im.metric, approximate, in_place ? im.f32 : nullptr,
                                         in_place ? li.owner : nullptr);
    std::memcpy(block->ids.get(), im.ids, static_cast<size_t>(n) * sizeof(int64_t));
    if (im.has_f32 && !in_place) std::memcpy(block->data, im.f32, static_cast<size_t>(n * d) * sizeof(float));
    if (im.storage != Storage::kF32) {
      if (im.has_f32) {
        block->quantize(im.storage, im.metric, d, im.f32, d, 0, n);
      } else {
        const size_t esz = im.storage == Storage::kI8 ? 1 : 2;
        for (int64_t i = 0; i < n; ++i) {
          block->set_codes(im.storage, d, static_cast<const uint8_t*>(im.codes) + static_cast<size_t>(i * d) * esz,
                           im.storage == Storage::kI8 ? im.scales[i] : 1.0f, i);
        }
      }
    }
    index->blocks_.push_back(std::move(block));
    index->rows_ = (n + 63) / 64 * 64;  // rows past n (a mapped block's tail) are never live
    index->live_count_ = n;
    index->live_.assign(static_cast<size_t>((n + 63) / 64), ~uint64_t{0});
    if (n % 64 != 0) index->live_.back() = (uint64_t{1} << (n % 64)) - 1;
    // rows_ must not pass the end of the blocks for appends: a fresh block ends at cap >= rows_.
    if (!in_place) index->rows_ = n;
    *out = std::move(index);
    return Status::Ok();
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "load: out of memory for " + std::to_string(im.count) + " rows");
  }
}

Status FlatIndex::search(const MatrixView<const float>& queries, int64_t k, const IndexSearchOut& out,
                         const Context& ctx, const IndexFilter* filter) const {
  if (queries.rows <= 0 || queries.cols <= 0) {
    return Status(Code::kEmpty, "queries: " + std::to_string(queries.rows) + " x " + std::to_string(queries.cols) +
                                    " is empty");
  }
  if (queries.cols != dim_) {
    return Status(Code::kDimMismatch, "queries have dim " + std::to_string(queries.cols) + " but the index has dim " +
                                          std::to_string(dim_));
  }
  if (k < 1) return Status(Code::kInvalidK, "k: " + std::to_string(k) + " is not >= 1");
  if (out.ids == nullptr || out.scores == nullptr) return Status(Code::kInvalidArg, "search: null output");
  if (filter != nullptr && filter->exclude_offsets != nullptr) {
    const int64_t* off = filter->exclude_offsets;
    if (off[0] != 0) return Status(Code::kInvalidArg, "filter.exclude: offsets[0] is " + std::to_string(off[0]) + ", not 0");
    for (int64_t q = 0; q < queries.rows; ++q) {
      if (off[q + 1] < off[q]) {
        return Status(Code::kInvalidArg, "filter.exclude: offsets decrease at query " + std::to_string(q));
      }
    }
  }
  try {
    const Snapshot snap = snapshot(filter, queries.rows);
    const int64_t q = queries.rows;
    const bool has_excl = !snap.excl_off.empty();
    // Per block: its rows within the snapshot, searched with its live (and allowed) bits.
    std::vector<std::vector<int64_t>> part_rows;
    std::vector<std::vector<float>> part_scores;
    std::vector<std::vector<int32_t>> part_counts;
    std::vector<TopKPartial> parts;
    std::vector<int32_t> rescored_total(out.rescored != nullptr ? static_cast<size_t>(q) : 0, 0);
    std::vector<int32_t> rescored(out.rescored != nullptr ? static_cast<size_t>(q) : 0, 0);
    std::vector<int64_t> boff;
    std::vector<int32_t> brows;
    for (const auto& b : snap.blocks) {
      const int64_t rows = std::min(b->cap, snap.rows - b->start);
      if (rows <= 0) break;
      const int64_t kb = std::min(k, rows);
      const uint64_t* allow = snap.live.data() + (b->start >> 6);
      if (has_excl) {  // this block's excluded rows, local
        boff.assign(static_cast<size_t>(q) + 1, 0);
        brows.clear();
        for (int64_t i = 0; i < q; ++i) {
          for (int64_t j = snap.excl_off[static_cast<size_t>(i)]; j < snap.excl_off[static_cast<size_t>(i) + 1]; ++j) {
            const int64_t r = snap.excl_rows[static_cast<size_t>(j)];
            if (r >= b->start && r < b->start + rows) brows.push_back(static_cast<int32_t>(r - b->start));
          }
          boff[static_cast<size_t>(i) + 1] = static_cast<int64_t>(brows.size());
        }
      }
      std::vector<int32_t> local(static_cast<size_t>(q * kb));
      part_scores.emplace_back(static_cast<size_t>(q * kb));
      part_counts.emplace_back(static_cast<size_t>(q));
      if (storage_ == Storage::kF32) {
        SearchArgs a;
        a.queries = queries;
        a.gallery = MatrixView<const float>(b->data, rows, dim_);
        a.k = kb;
        a.metric = metric_;
        a.filter.allow = allow;
        if (has_excl) {
          a.filter.exclude_offsets = boff.data();
          a.filter.exclude_rows = brows.data();
        }
        SearchOut so{local.data(), part_scores.back().data(), part_counts.back().data()};
        VLK_RETURN_IF_ERROR(vlk::core::search(a, so, ctx));
      } else {
        QuantSearchArgs a;
        a.queries = queries;
        a.gallery = b->view(storage_, metric_, dim_, rows);
        a.k = kb;
        a.allow = allow;
        if (has_excl) {
          a.exclude_offsets = boff.data();
          a.exclude_rows = brows.data();
        }
        QuantSearchOut so{local.data(), part_scores.back().data(), part_counts.back().data(),
                          rescored.empty() ? nullptr : rescored.data()};
        VLK_RETURN_IF_ERROR(search_quantized(a, so, ctx));
        for (size_t i = 0; i < rescored.size(); ++i) rescored_total[i] += rescored[i];
      }
      std::vector<int64_t> global(local.size());
      for (size_t i = 0; i < local.size(); ++i) global[i] = local[i] < 0 ? -1 : b->start + local[i];
      part_rows.push_back(std::move(global));
    }
    for (size_t p = 0; p < part_rows.size(); ++p) {
      const int64_t kb = static_cast<int64_t>(part_rows[p].size()) / q;
      parts.push_back(TopKPartial{part_rows[p].data(), part_scores[p].data(), part_counts[p].data(), kb});
    }
    for (int64_t i = 0; out.rescored != nullptr && i < q; ++i) out.rescored[i] = rescored_total[static_cast<size_t>(i)];
    if (parts.empty()) {  // an index that never held a vector
      for (int64_t i = 0; i < q * k; ++i) {
        out.ids[i] = -1;
        out.scores[i] = std::numeric_limits<float>::quiet_NaN();
      }
      for (int64_t i = 0; out.counts != nullptr && i < q; ++i) out.counts[i] = 0;
      return Status::Ok();
    }
    MergeTopKArgs m;
    m.parts = parts.data();
    m.nparts = static_cast<int64_t>(parts.size());
    m.queries = q;
    m.k = k;
    m.metric = metric_;
    VLK_RETURN_IF_ERROR(merge_top_k(m, MergeTopKOut{out.ids, out.scores, out.counts}, ctx));
    // Global rows (ties merged by block order, then row: insertion order) -> user ids.
    for (int64_t i = 0; i < q * k; ++i) {
      const int64_t row = out.ids[i];
      if (row < 0) continue;
      size_t bi = 0;
      while (row >= snap.blocks[bi]->start + snap.blocks[bi]->cap) ++bi;
      out.ids[i] = snap.blocks[bi]->ids[static_cast<size_t>(row - snap.blocks[bi]->start)];
    }
    return Status::Ok();
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "search: out of memory");
  }
}

}  // namespace core
}  // namespace vlk
