// Streaming rank of ground-truth items (core/metrics). See rank_of_targets.hpp.
// Pass 1 computes each target's key: the target rows are gathered and multiplied by their query
// rows with core::gemm, whose per-element fp32 sequence does not depend on where a tile sits, so
// the key is bit-identical to the one the item takes in pass 2. Pass 2 streams MB x NB tiles of
// rows x gallery through gemm (one single-threaded gemm per tile, tasks over a grid of row and
// column chunks) and counts, per target, the items whose key is greater, and those equal before
// and after the target's index; each column chunk writes its own integer partial counts, so the
// sums do not depend on how the grid is split. Excluded rows are then subtracted by their keys.
#include "metrics/rank_of_targets.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <new>
#include <string>
#include <vector>

#include "common/block_cache.hpp"
#include "common/finite.hpp"
#include "linalg/gemm.hpp"

namespace vlk {
namespace core {

const char* tie_rule_name(TieRule t) {
  switch (t) {
    case TieRule::kOptimistic: return "optimistic";
    case TieRule::kPessimistic: return "pessimistic";
    case TieRule::kStable: break;
  }
  return "stable";
}

Status parse_tie_rule(const char* name, TieRule* out) {
  const std::string s = name != nullptr ? name : "";
  if (s == "stable") {
    *out = TieRule::kStable;
  } else if (s == "optimistic") {
    *out = TieRule::kOptimistic;
  } else if (s == "pessimistic") {
    *out = TieRule::kPessimistic;
  } else {
    return Status(Code::kInvalidArg, "ties: expected 'stable', 'optimistic' or 'pessimistic', got '" + s + "'");
  }
  return Status::Ok();
}

namespace {

// Tile of the stream: 256 rows x 512 gallery items (512 KiB of fp32 per task, L2-resident while
// it is counted); gemm's own column block is 512, so each tile packs the gallery block once.
constexpr int64_t kTileRows = 256;
constexpr int64_t kTileCols = 512;
// Pass 1: 32 query rows against up to 256 gathered target rows per gemm.
constexpr int64_t kSubRows = 32;
constexpr int64_t kPiece = 256;
// Bound on the per-chunk partial counters (the grid gets fewer column chunks above it).
constexpr size_t kPartialBudget = size_t(64) << 20;
// |dot| <= |a| |b|: above this bound a product or 2 * dot could overflow fp32.
constexpr double kMaxProduct = 1e37;

// One side of the product: rows x d, and per row the value its key needs (cosine: 1 / |x|, l2:
// |x|^2, both fp32 from a float64 sum, so duplicated rows get identical values).
struct Side {
  const float* data = nullptr;
  int64_t rows = 0;
  int64_t stride = 0;
  ScratchVector<float> aux;
  double max_norm2 = 0;
};

Status check_finite(const char* name, const MatrixView<const float>& m) {
  for (int64_t r = 0; r < m.rows; ++r) {
    const float* x = m.row(r);
    if (all_finite(x, m.cols)) continue;
    for (int64_t c = 0; c < m.cols; ++c) {
      if (!std::isfinite(x[c])) {
        return Status(Code::kNonFinite, std::string(name) + ": row " + std::to_string(r) + ", column " +
                                            std::to_string(c) + " is not finite (" +
                                            (std::isnan(x[c]) ? "NaN" : "infinity") + ")");
      }
    }
  }
  return Status::Ok();
}

void side_norms(const MatrixView<const float>& m, Metric metric, Side* s, const Context& ctx) {
  s->data = m.data;
  s->rows = m.rows;
  s->stride = m.stride;
  s->aux.resize(static_cast<size_t>(m.rows));
  std::vector<double> maxes(64, 0.0);
  const int64_t chunks = std::min<int64_t>(64, std::max<int64_t>(1, m.rows / 256));
  auto task = [&](int64_t c) {
    const int64_t r0 = m.rows * c / chunks, r1 = m.rows * (c + 1) / chunks;
    double mx = 0;
    for (int64_t r = r0; r < r1; ++r) {
      const float* x = m.row(r);
      double n2 = 0;
      for (int64_t k = 0; k < m.cols; ++k) n2 += double(x[k]) * double(x[k]);
      mx = std::max(mx, n2);
      float a = 0.0f;
      if (metric == Metric::kCosine) a = n2 > 0 ? static_cast<float>(1.0 / std::sqrt(n2)) : 0.0f;
      if (metric == Metric::kL2) a = static_cast<float>(n2);
      s->aux[static_cast<size_t>(r)] = a;
    }
    maxes[static_cast<size_t>(c)] = mx;
  };
  if (ctx.pool != nullptr && ctx.threads > 1 && chunks > 1) {
    ctx.pool->parallel_for(chunks, ctx.threads, task);
  } else {
    for (int64_t c = 0; c < chunks; ++c) task(c);
  }
  s->max_norm2 = *std::max_element(maxes.begin(), maxes.end());
}

Status check_magnitudes(const char* a_name, const Side& a, const char* b_name, const Side& b, Metric metric) {
  const double bound = std::sqrt(a.max_norm2) * std::sqrt(b.max_norm2);
  if (!(bound <= kMaxProduct) || (metric == Metric::kL2 && !(std::max(a.max_norm2, b.max_norm2) <= kMaxProduct))) {
    return Status(Code::kNonFinite, std::string(a_name) + " x " + b_name + ": row norms up to " +
                                        std::to_string(std::sqrt(a.max_norm2)) + " and " +
                                        std::to_string(std::sqrt(b.max_norm2)) +
                                        " make products that overflow fp32");
  }
  return Status::Ok();
}

// The key of raw dot s for the item at aux index j (the gallery side of its direction).
inline float key_of(Metric m, float s, float aux) {
  switch (m) {
    case Metric::kCosine: return s * aux;
    case Metric::kL2: return 2.0f * s - aux;
    case Metric::kInnerProduct: break;
  }
  return s;
}

template <Metric M>
inline float key_t(float s, float aux) {
  if (M == Metric::kCosine) return s * aux;
  if (M == Metric::kL2) return 2.0f * s - aux;
  return s;
}

void row_keys(Metric m, const float* s, const float* aux, int64_t n, float* out) {
  switch (m) {
    case Metric::kCosine:
      for (int64_t j = 0; j < n; ++j) out[j] = key_t<Metric::kCosine>(s[j], aux[j]);
      break;
    case Metric::kL2:
      for (int64_t j = 0; j < n; ++j) out[j] = key_t<Metric::kL2>(s[j], aux[j]);
      break;
    case Metric::kInnerProduct:
      std::memcpy(out, s, sizeof(float) * static_cast<size_t>(n));
      break;
  }
}

// Items of k[0 .. n) above t and equal to t.
inline void count_row(const float* k, int64_t n, float t, int32_t* gt, int32_t* eq) {
  int32_t a = 0, b = 0;
  for (int64_t j = 0; j < n; ++j) {
    a += k[j] > t ? 1 : 0;
    b += k[j] == t ? 1 : 0;
  }
  *gt += a;
  *eq += b;
}

// Column direction, one row of a tile: key(s[j], aux) against each column's own threshold.
template <Metric M>
void count_cols_t(const float* s, const float* t, int64_t n, float aux, int32_t* gt, int32_t* eq) {
  for (int64_t j = 0; j < n; ++j) {
    const float k = key_t<M>(s[j], aux);
    gt[j] += k > t[j] ? 1 : 0;
    eq[j] += k == t[j] ? 1 : 0;
  }
}

void count_cols(Metric m, const float* s, const float* t, int64_t n, float aux, int32_t* gt, int32_t* eq) {
  if (n <= 0) return;
  switch (m) {
    case Metric::kCosine: count_cols_t<Metric::kCosine>(s, t, n, aux, gt, eq); break;
    case Metric::kL2: count_cols_t<Metric::kL2>(s, t, n, aux, gt, eq); break;
    case Metric::kInnerProduct: count_cols_t<Metric::kInnerProduct>(s, t, n, aux, gt, eq); break;
  }
}

Context single(const Context& ctx) {
  Context one = ctx;
  one.pool = nullptr;
  one.threads = 1;
  return one;
}

void run_tasks(int64_t n, const Context& ctx, const std::function<void(int64_t)>& fn) {
  if (ctx.pool != nullptr && ctx.threads > 1 && n > 1) {
    ctx.pool->parallel_for(n, ctx.threads, fn);
  } else {
    for (int64_t i = 0; i < n; ++i) fn(i);
  }
}

// dots[e] = a_row(q) . b_row(ids[e]) for every entry e of every row q (CSR), computed by gemm on
// gathered b rows, so each value has the bits the streamed tiles give the same pair.
Status entry_dots(const Side& a, const Side& b, int64_t d, const int64_t* off, const int32_t* ids, float* dots,
                  const Context& ctx) {
  const int64_t rows = a.rows;
  const int64_t subs = (rows + kSubRows - 1) / kSubRows;
  const int64_t tasks = std::min<int64_t>(subs, ctx.pool != nullptr && ctx.threads > 1 ? 4 * ctx.threads : 1);
  std::atomic<bool> oom{false}, failed{false};
  const Context one = single(ctx);
  run_tasks(tasks, ctx, [&](int64_t t) {
    CachedArray<float> gathered, c;
    try {
      gathered.reset(static_cast<size_t>(kPiece * d));
      c.reset(static_cast<size_t>(kSubRows * kPiece));
    } catch (const std::bad_alloc&) {
      oom = true;
      return;
    }
    for (int64_t sb = subs * t / tasks; sb < subs * (t + 1) / tasks; ++sb) {
      const int64_t q0 = sb * kSubRows, q1 = std::min(rows, q0 + kSubRows);
      for (int64_t e0 = off[q0]; e0 < off[q1]; e0 += kPiece) {
        const int64_t e1 = std::min(off[q1], e0 + kPiece);
        for (int64_t e = e0; e < e1; ++e) {
          std::memcpy(gathered.data() + (e - e0) * d, b.data + int64_t(ids[e]) * b.stride, sizeof(float) * size_t(d));
        }
        int64_t qa = q0;
        while (off[qa + 1] <= e0) ++qa;
        int64_t qb = qa;
        while (qb + 1 < q1 && off[qb + 1] < e1) ++qb;
        GemmArgs g;
        g.trans_b = true;
        g.m = qb - qa + 1;
        g.n = e1 - e0;
        g.k = d;
        g.a = a.data + qa * a.stride;
        g.lda = a.stride;
        g.b = gathered.data();
        g.ldb = d;
        g.c = c.data();
        g.ldc = kPiece;
        if (!gemm(g, one).ok()) {
          failed = true;
          return;
        }
        for (int64_t q = qa; q <= qb; ++q) {
          for (int64_t e = std::max(off[q], e0); e < std::min(off[q + 1], e1); ++e) {
            dots[e] = c[static_cast<size_t>((q - qa) * kPiece + (e - e0))];
          }
        }
      }
    }
  });
  if (oom) return Status(Code::kOutOfMemory, "rankOfTargets: out of memory for the target rows");
  if (failed) return Status(Code::kInternal, "rankOfTargets: gemm failed on the target rows");
  return Status::Ok();
}

// Counters of one direction: per entry, items with a greater key, and items with an equal key
// before / after the target's index (the target itself never counts).
struct Counts {
  ScratchVector<int32_t> gt, eq_before, eq_after;
  void resize(size_t n) {
    gt.assign(n, 0);
    eq_before.assign(n, 0);
    eq_after.assign(n, 0);
  }
};

// The streaming pass over rows (a) x gallery (b).
//  rows direction (always): entries off/ids with thresholds row_t; partials per column chunk;
//  columns direction (per > 0): column c's target is row c / per with threshold col_t[c];
//  partials per row chunk.
struct Stream {
  const Side* a = nullptr;
  const Side* b = nullptr;
  int64_t d = 0;
  Metric metric = Metric::kInnerProduct;
  const int64_t* off = nullptr;
  const int32_t* ids = nullptr;
  const float* row_t = nullptr;
  int64_t per = 0;
  const float* col_t = nullptr;
};

Status stream(const Stream& st, std::vector<Counts>* row_parts, std::vector<Counts>* col_parts, const Context& ctx) {
  const int64_t rows = st.a->rows, cols = st.b->rows;
  const int64_t nnz = st.off[rows];
  const int64_t rblocks = (rows + kTileRows - 1) / kTileRows;
  const int64_t cblocks = (cols + kTileCols - 1) / kTileCols;
  const int64_t want = ctx.pool != nullptr && ctx.threads > 1 ? 4 * int64_t(ctx.threads) : 1;
  int64_t cchunks = std::min(cblocks, want);
  const size_t per_chunk = std::max<size_t>(1, size_t(nnz) * 3 * sizeof(int32_t));
  cchunks = std::max<int64_t>(1, std::min<int64_t>(cchunks, int64_t(kPartialBudget / per_chunk)));
  int64_t rchunks = std::min(rblocks, (want + cchunks - 1) / cchunks);
  if (st.per > 0) {
    const size_t col_bytes = std::max<size_t>(1, size_t(cols) * 3 * sizeof(int32_t));
    rchunks = std::max<int64_t>(1, std::min<int64_t>(rchunks, int64_t(kPartialBudget / col_bytes)));
  }
  row_parts->resize(static_cast<size_t>(cchunks));
  for (auto& p : *row_parts) p.resize(static_cast<size_t>(nnz));
  if (st.per > 0) {
    col_parts->resize(static_cast<size_t>(rchunks));
    for (auto& p : *col_parts) p.resize(static_cast<size_t>(cols));
  }
  std::atomic<bool> oom{false}, failed{false}, aborted{false};
  const Context one = single(ctx);
  const float* baux = st.b->aux.empty() ? nullptr : st.b->aux.data();
  const float* aaux = st.a->aux.empty() ? nullptr : st.a->aux.data();
  run_tasks(rchunks * cchunks, ctx, [&](int64_t task) {
    const int64_t rc = task / cchunks, cc = task % cchunks;
    Counts& rp = (*row_parts)[static_cast<size_t>(cc)];
    Counts* cp = st.per > 0 ? &(*col_parts)[static_cast<size_t>(rc)] : nullptr;
    CachedArray<float> tile;
    std::vector<float> keys;
    try {
      tile.reset(static_cast<size_t>(kTileRows * kTileCols));
      keys.resize(static_cast<size_t>(kTileCols));
    } catch (const std::bad_alloc&) {
      oom = true;
      return;
    }
    for (int64_t rb = rblocks * rc / rchunks; rb < rblocks * (rc + 1) / rchunks; ++rb) {
      const int64_t r0 = rb * kTileRows, r1 = std::min(rows, r0 + kTileRows);
      // Rows without targets only matter to the column direction.
      if (st.per == 0 && st.off[r0] == st.off[r1]) continue;
      for (int64_t cb = cblocks * cc / cchunks; cb < cblocks * (cc + 1) / cchunks; ++cb) {
        if (ctx.cancelled() || aborted || oom || failed) {
          aborted = true;
          return;
        }
        const int64_t c0 = cb * kTileCols, c1 = std::min(cols, c0 + kTileCols), nb = c1 - c0;
        GemmArgs g;
        g.trans_b = true;
        g.m = r1 - r0;
        g.n = nb;
        g.k = st.d;
        g.a = st.a->data + r0 * st.a->stride;
        g.lda = st.a->stride;
        g.b = st.b->data + c0 * st.b->stride;
        g.ldb = st.b->stride;
        g.c = tile.data();
        g.ldc = kTileCols;
        if (!gemm(g, one).ok()) {
          failed = true;
          return;
        }
        for (int64_t r = r0; r < r1; ++r) {
          const float* s = tile.data() + (r - r0) * kTileCols;
          if (st.off[r] < st.off[r + 1]) {
            const float* k = s;
            if (st.metric != Metric::kInnerProduct) {
              row_keys(st.metric, s, baux + c0, nb, keys.data());
              k = keys.data();
            }
            for (int64_t e = st.off[r]; e < st.off[r + 1]; ++e) {
              const int64_t gid = st.ids[e];
              const float t = st.row_t[e];
              const int64_t split = std::min(std::max(gid, c0), c1);  // items before the target
              const int64_t after = std::max(gid + 1, c0);             // items after it
              int32_t* gt = &rp.gt[static_cast<size_t>(e)];
              count_row(k, split - c0, t, gt, &rp.eq_before[static_cast<size_t>(e)]);
              if (after < c1) count_row(k + (after - c0), c1 - after, t, gt, &rp.eq_after[static_cast<size_t>(e)]);
            }
          }
          if (cp != nullptr) {
            // Column c's target row is c / per: columns below per * r have their target before r
            // (r counts as "after" on a tie), columns from per * (r + 1) have it after r.
            const float aux = aaux != nullptr ? aaux[r] : 0.0f;
            const int64_t own0 = std::min(std::max(r * st.per, c0), c1);
            const int64_t own1 = std::min(std::max((r + 1) * st.per, c0), c1);
            count_cols(st.metric, s, st.col_t + c0, own0 - c0, aux, cp->gt.data() + c0, cp->eq_after.data() + c0);
            count_cols(st.metric, s + (own1 - c0), st.col_t + own1, c1 - own1, aux, cp->gt.data() + own1,
                       cp->eq_before.data() + own1);
          }
        }
      }
    }
  });
  if (oom) return Status(Code::kOutOfMemory, "rankOfTargets: out of memory for the score tiles");
  if (failed) return Status(Code::kInternal, "rankOfTargets: gemm failed on a score tile");
  if (aborted) return Status(Code::kAborted, "rankOfTargets: aborted");
  return Status::Ok();
}

// Sums the chunks' partial counts into parts[0].
void reduce(std::vector<Counts>* parts, int64_t n, const Context& ctx) {
  if (parts->size() <= 1) return;
  Counts& into = (*parts)[0];
  const int64_t pieces = std::max<int64_t>(1, std::min<int64_t>(64, n / 4096));
  run_tasks(pieces, ctx, [&](int64_t p) {
    for (size_t c = 1; c < parts->size(); ++c) {
      const Counts& from = (*parts)[c];
      for (int64_t i = n * p / pieces; i < n * (p + 1) / pieces; ++i) {
        into.gt[size_t(i)] += from.gt[size_t(i)];
        into.eq_before[size_t(i)] += from.eq_before[size_t(i)];
        into.eq_after[size_t(i)] += from.eq_after[size_t(i)];
      }
    }
  });
}

inline int32_t rank_of(TieRule rule, int32_t gt, int32_t eqb, int32_t eqa) {
  switch (rule) {
    case TieRule::kOptimistic: return gt;
    case TieRule::kPessimistic: return gt + eqb + eqa;
    case TieRule::kStable: break;
  }
  return gt + eqb;
}

Status check_shapes(const char* a_name, const MatrixView<const float>& a, const char* b_name,
                    const MatrixView<const float>& b) {
  if (a.rows == 0) return Status(Code::kEmpty, std::string(a_name) + ": no rows");
  if (b.rows == 0) return Status(Code::kEmpty, std::string(b_name) + ": no rows");
  if (a.cols == 0) return Status(Code::kEmpty, std::string(a_name) + ": dim 0");
  if (a.cols != b.cols) {
    return Status(Code::kDimMismatch, std::string(b_name) + ": dim " + std::to_string(b.cols) + " differs from the " +
                                          a_name + "' " + std::to_string(a.cols));
  }
  if (b.rows > std::numeric_limits<int32_t>::max()) {
    return Status(Code::kShape, std::string(b_name) + ": " + std::to_string(b.rows) +
                                    " rows exceed the int32 ranks (2^31 - 1)");
  }
  if (a.data == nullptr || b.data == nullptr || a.stride < a.cols || b.stride < b.cols) {
    return Status(Code::kInvalidArg, "rankOfTargets: null data or short stride");
  }
  return Status::Ok();
}

Status check_csr(const char* name, const int64_t* off, const int32_t* ids, int64_t rows, int64_t n) {
  if (off == nullptr) return Status(Code::kInvalidArg, std::string(name) + ": offsets missing");
  if (off[0] != 0) {
    return Status(Code::kInvalidArg, std::string(name) + ".offsets[0]: " + std::to_string(off[0]) + ", expected 0");
  }
  for (int64_t q = 0; q < rows; ++q) {
    if (off[q + 1] < off[q]) {
      return Status(Code::kInvalidArg, std::string(name) + ".offsets[" + std::to_string(q + 1) + "]: " +
                                           std::to_string(off[q + 1]) + " is below offsets[" + std::to_string(q) +
                                           "] = " + std::to_string(off[q]));
    }
  }
  if (off[rows] > 0 && ids == nullptr) return Status(Code::kInvalidArg, std::string(name) + ".ids: missing");
  for (int64_t q = 0; q < rows; ++q) {
    for (int64_t e = off[q]; e < off[q + 1]; ++e) {
      if (ids[e] < 0 || ids[e] >= n) {
        return Status(Code::kInvalidArg, std::string(name) + ".ids[" + std::to_string(e) + "] (query " +
                                             std::to_string(q) + "): " + std::to_string(ids[e]) +
                                             " is not a gallery row in 0.." + std::to_string(n - 1));
      }
    }
  }
  return Status::Ok();
}

}  // namespace

Status rank_of_targets(const RankArgs& args, RankOut& out, const Context& ctx) {
  try {
    VLK_RETURN_IF_ERROR(check_shapes("queries", args.queries, "gallery", args.gallery));
    const int64_t q_rows = args.queries.rows, n = args.gallery.rows, d = args.queries.cols;
    VLK_RETURN_IF_ERROR(check_csr("groundTruth", args.gt_offsets, args.gt_ids, q_rows, n));
    const bool has_ex = args.exclude_offsets != nullptr;
    if (has_ex) VLK_RETURN_IF_ERROR(check_csr("exclude", args.exclude_offsets, args.exclude_ids, q_rows, n));
    const int64_t* off = args.gt_offsets;
    const int32_t* ids = args.gt_ids;
    const int64_t nnz = off[q_rows];
    // Each query's exclusions, deduplicated, and never one of its targets.
    ScratchVector<int64_t> xoff(1, 0);
    ScratchVector<int32_t> xids;
    if (has_ex) {
      xoff.resize(static_cast<size_t>(q_rows + 1));
      std::vector<int32_t> sorted_gt;
      for (int64_t q = 0; q < q_rows; ++q) {
        const int64_t x0 = args.exclude_offsets[q], x1 = args.exclude_offsets[q + 1];
        const size_t start = xids.size();
        xids.insert(xids.end(), args.exclude_ids + x0, args.exclude_ids + x1);
        std::sort(xids.begin() + long(start), xids.end());
        xids.erase(std::unique(xids.begin() + long(start), xids.end()), xids.end());
        if (x1 > x0 && off[q + 1] > off[q]) {
          sorted_gt.assign(ids + off[q], ids + off[q + 1]);
          std::sort(sorted_gt.begin(), sorted_gt.end());
          for (size_t i = start; i < xids.size(); ++i) {
            if (std::binary_search(sorted_gt.begin(), sorted_gt.end(), xids[i])) {
              return Status(Code::kInvalidArg, "exclude: query " + std::to_string(q) + " excludes gallery row " +
                                                   std::to_string(xids[i]) +
                                                   ", which is one of its ground-truth items");
            }
          }
        }
        xoff[static_cast<size_t>(q + 1)] = static_cast<int64_t>(xids.size());
      }
    }
    VLK_RETURN_IF_ERROR(check_finite("queries", args.queries));
    VLK_RETURN_IF_ERROR(check_finite("gallery", args.gallery));
    Side a, b;
    side_norms(args.queries, Metric::kInnerProduct, &a, ctx);
    side_norms(args.gallery, args.metric, &b, ctx);
    a.aux.clear();
    VLK_RETURN_IF_ERROR(check_magnitudes("queries", a, "gallery", b, args.metric));
    if (args.metric == Metric::kInnerProduct) b.aux.clear();
    out.ties = 0;
    if (nnz == 0) {
      std::fill(out.best, out.best + q_rows, -1);
      return Status::Ok();
    }
    ScratchVector<float> row_t(static_cast<size_t>(nnz));
    VLK_RETURN_IF_ERROR(entry_dots(a, b, d, off, ids, row_t.data(), ctx));
    const float* baux = b.aux.empty() ? nullptr : b.aux.data();
    for (int64_t e = 0; e < nnz; ++e) row_t[size_t(e)] = key_of(args.metric, row_t[size_t(e)], baux ? baux[ids[e]] : 0.0f);
    ScratchVector<float> x_key(xids.size());
    if (!xids.empty()) {
      VLK_RETURN_IF_ERROR(entry_dots(a, b, d, xoff.data(), xids.data(), x_key.data(), ctx));
      for (size_t e = 0; e < xids.size(); ++e) x_key[e] = key_of(args.metric, x_key[e], baux ? baux[xids[e]] : 0.0f);
    }
    if (ctx.cancelled()) return Status(Code::kAborted, "rankOfTargets: aborted");
    Stream st;
    st.a = &a;
    st.b = &b;
    st.d = d;
    st.metric = args.metric;
    st.off = off;
    st.ids = ids;
    st.row_t = row_t.data();
    std::vector<Counts> parts, unused;
    VLK_RETURN_IF_ERROR(stream(st, &parts, &unused, ctx));
    reduce(&parts, nnz, ctx);
    Counts& c = parts[0];
    int64_t ties = 0;
    for (int64_t q = 0; q < q_rows; ++q) {
      int32_t best = -1, best_opt = std::numeric_limits<int32_t>::max(), best_pess = best_opt;
      for (int64_t e = off[q]; e < off[q + 1]; ++e) {
        for (int64_t x = has_ex ? xoff[size_t(q)] : 0; x < (has_ex ? xoff[size_t(q + 1)] : 0); ++x) {
          const float kx = x_key[size_t(x)];
          const float t = row_t[size_t(e)];
          if (kx > t) {
            --c.gt[size_t(e)];
          } else if (kx == t) {
            --(xids[size_t(x)] < ids[e] ? c.eq_before : c.eq_after)[size_t(e)];
          }
        }
        const int32_t gt = c.gt[size_t(e)], eqb = c.eq_before[size_t(e)], eqa = c.eq_after[size_t(e)];
        const int32_t r = rank_of(args.ties, gt, eqb, eqa);
        out.ranks[e] = r;
        best = best < 0 ? r : std::min(best, r);
        best_opt = std::min(best_opt, gt);
        best_pess = std::min(best_pess, gt + eqb + eqa);
      }
      out.best[q] = best;
      if (best >= 0 && best_opt != best_pess) ++ties;
    }
    out.ties = ties;
    return Status::Ok();
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "rankOfTargets: out of memory");
  }
}

Status cross_modal_ranks(const CrossModalArgs& args, CrossModalOut& out, const Context& ctx) {
  try {
    if (args.per < 1) return Status(Code::kInvalidArg, "perImage: " + std::to_string(args.per) + " is not >= 1");
    VLK_RETURN_IF_ERROR(check_shapes("images", args.images, "captions", args.captions));
    const int64_t n = args.images.rows, per = args.per, d = args.images.cols;
    if (n > std::numeric_limits<int32_t>::max() / per || args.captions.rows != n * per) {
      return Status(Code::kShape, "captions: " + std::to_string(args.captions.rows) + " rows, expected images x perImage = " +
                                      std::to_string(n) + " x " + std::to_string(per) + " (image-major)");
    }
    const int64_t m = n * per;
    VLK_RETURN_IF_ERROR(check_finite("images", args.images));
    VLK_RETURN_IF_ERROR(check_finite("captions", args.captions));
    Side a, b;
    side_norms(args.images, args.metric, &a, ctx);
    side_norms(args.captions, args.metric, &b, ctx);
    VLK_RETURN_IF_ERROR(check_magnitudes("images", a, "captions", b, args.metric));
    if (args.metric == Metric::kInnerProduct) {
      a.aux.clear();
      b.aux.clear();
    }
    ScratchVector<int64_t> off(static_cast<size_t>(n + 1));
    ScratchVector<int32_t> ids(static_cast<size_t>(m));
    for (int64_t i = 0; i <= n; ++i) off[size_t(i)] = i * per;
    for (int64_t c = 0; c < m; ++c) ids[size_t(c)] = static_cast<int32_t>(c);
    ScratchVector<float> dots(static_cast<size_t>(m)), col_t(static_cast<size_t>(m));
    VLK_RETURN_IF_ERROR(entry_dots(a, b, d, off.data(), ids.data(), dots.data(), ctx));
    const float* aaux = a.aux.empty() ? nullptr : a.aux.data();
    const float* baux = b.aux.empty() ? nullptr : b.aux.data();
    for (int64_t c = 0; c < m; ++c) col_t[size_t(c)] = key_of(args.metric, dots[size_t(c)], aaux ? aaux[c / per] : 0.0f);
    // Every rule's rank falls as the target's key rises (and, for equal keys, is smallest at the
    // lowest index under the stable rule and equal under the others), so an image's best caption
    // is its highest-keyed one, lowest index first: only that one is counted.
    ScratchVector<float> row_t(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      int64_t pick = i * per;
      float best = key_of(args.metric, dots[size_t(pick)], baux ? baux[pick] : 0.0f);
      for (int64_t c = pick + 1; c < (i + 1) * per; ++c) {
        const float k = key_of(args.metric, dots[size_t(c)], baux ? baux[c] : 0.0f);
        if (k > best) {
          best = k;
          pick = c;
        }
      }
      off[size_t(i)] = i;
      ids[size_t(i)] = static_cast<int32_t>(pick);
      row_t[size_t(i)] = best;
    }
    off[size_t(n)] = n;
    if (ctx.cancelled()) return Status(Code::kAborted, "crossModalRanks: aborted");
    Stream st;
    st.a = &a;
    st.b = &b;
    st.d = d;
    st.metric = args.metric;
    st.off = off.data();
    st.ids = ids.data();
    st.row_t = row_t.data();
    st.per = per;
    st.col_t = col_t.data();
    std::vector<Counts> rows, cols;
    Status s = stream(st, &rows, &cols, ctx);
    if (s.code == Code::kAborted) return Status(Code::kAborted, "crossModalRanks: aborted");
    VLK_RETURN_IF_ERROR(s);
    reduce(&rows, n, ctx);
    reduce(&cols, m, ctx);
    int64_t ties = 0;
    for (int64_t i = 0; i < n; ++i) {
      const int32_t gt = rows[0].gt[size_t(i)], eqb = rows[0].eq_before[size_t(i)], eqa = rows[0].eq_after[size_t(i)];
      out.i2t[i] = rank_of(args.ties, gt, eqb, eqa);
      if (eqb + eqa > 0) ++ties;
    }
    out.ties_i2t = ties;
    ties = 0;
    for (int64_t c = 0; c < m; ++c) {
      const int32_t gt = cols[0].gt[size_t(c)], eqb = cols[0].eq_before[size_t(c)], eqa = cols[0].eq_after[size_t(c)];
      out.t2i[c] = rank_of(args.ties, gt, eqb, eqa);
      if (eqb + eqa > 0) ++ties;
    }
    out.ties_t2i = ties;
    return Status::Ok();
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "crossModalRanks: out of memory");
  }
}

}  // namespace core
}  // namespace vlk
