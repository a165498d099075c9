// Search driver (core/search): validation, work split, top-k selection and merge around the per-ISA
// panel kernels (search_kernel_*.cpp).
//
// Work split: queries are processed in chunks (bounded selection memory). With many query groups
// each task takes a slice of the chunk's queries against the whole gallery (one top-k list per
// query, no duplicated selection work); with few, tasks take contiguous gallery ranges and their
// lists are merged. A task packs its gallery panels one at a time (NR rows, transposed, L2-resident)
// and streams its query groups over each (one to four queries take the kernel's fused path instead,
// with no panel store). The kernel compares keys with per-query thresholds in registers and calls
// accept() only for the lanes that pass, so the Q x N score matrix never exists. There the filter
// (allow bits, per-query exclusions) is applied, so a filtered row never displaces an allowed one.
// Selection per (task, query) is a buffer of packed candidates (key bits, inverted index) of
// capacity ~2k: when full it is cut to the best k (nth_element) and the threshold rises to the k-th
// key. Lists are ordered by (key desc, index asc), so ties go to the lower index and the result does
// not depend on the split, the chunking or the ISA.
//
// L2 exactness: the scan key 2q.g - |g|^2 (fp32) can be off by at most
//   e = 1.01 (gamma_{D+2}) (2|q||g| + |g|^2),  gamma_n = n u / (1 - n u),  u = 2^-24,
// so every accepted candidate is re-scored directly in float64 (rounded once to the fp32 key), and
// the acceptance threshold is the k-th key minus one ulp minus e: no row that belongs in the top k
// can be rejected.
#include "search/search.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "search/search_detail.hpp"
#include "search/search_kernel.hpp"

namespace vlk {
namespace core {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
// Selection memory budget per chunk (bytes) used to size query chunks.
constexpr int64_t kSelectionBudget = int64_t(256) << 20;
constexpr int64_t kMaxChunk = 8192;

// 64-byte aligned float scratch.
struct AlignedFloats {
  float* p = nullptr;
  explicit AlignedFloats(size_t n) {
    const size_t bytes = ((n * sizeof(float)) + 63) / 64 * 64;
    p = static_cast<float*>(std::aligned_alloc(64, bytes == 0 ? 64 : bytes));
    if (p == nullptr) throw std::bad_alloc();
  }
  ~AlignedFloats() { std::free(p); }
  AlignedFloats(const AlignedFloats&) = delete;
  AlignedFloats& operator=(const AlignedFloats&) = delete;
};

// Keeps the best `keep` candidates, sorted best first. nth_element + sort: a heap-based
// partial_sort is several times slower once `keep` is in the hundreds.
void best_sorted(std::vector<Cand>& c, size_t keep) {
  if (c.size() > keep) {
    std::nth_element(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(keep - 1), c.end(),
                     std::greater<Cand>());
    c.resize(keep);
  }
  std::sort(c.begin(), c.end(), std::greater<Cand>());
}

// Token-max search: keeps one entry per item, its best (several tokens of one item may have
// entered a list).
void dedupe_items(std::vector<Cand>& c) {
  std::sort(c.begin(), c.end(), [](Cand a, Cand b) {
    return cand_idx(a) != cand_idx(b) ? cand_idx(a) < cand_idx(b) : a > b;
  });
  c.erase(std::unique(c.begin(), c.end(), [](Cand a, Cand b) { return cand_idx(a) == cand_idx(b); }), c.end());
}

// Per-chunk, read-only query data shared by every part.
struct ChunkQueries {
  int64_t q0 = 0;                  // first query of the chunk
  int64_t nq = 0;
  std::vector<float> qpack;        // groups of MR, each D x m
  std::vector<float> qinv;         // cosine: inverse norms
  std::vector<double> qnorm;       // l2: |q| (float64)
  std::vector<double> qnorm2;      // l2: |q|^2 (float64)
  std::vector<int64_t> excl_off;   // exclusions of the chunk's queries, CSR, each list sorted
  std::vector<int32_t> excl;

  bool excluded(int64_t q, int32_t row) const {
    if (excl_off.empty()) return false;
    const auto b = excl.begin() + excl_off[static_cast<size_t>(q)];
    const auto e = excl.begin() + excl_off[static_cast<size_t>(q) + 1];
    return std::binary_search(b, e, row);
  }
};

// One task: a range of the chunk's queries (whole groups) against a contiguous gallery range.
// Query indices inside a Part are relative to q_begin.
struct Part {
  const SearchArgs* args = nullptr;
  const ChunkQueries* cq = nullptr;
  int64_t q_begin = 0;             // chunk-relative, a multiple of the query group size
  int64_t nq = 0;
  int64_t r_begin = 0, r_end = 0;  // gallery rows
  Metric metric = Metric::kInnerProduct;
  bool filtered = false;
  int64_t k = 0;
  size_t cap = 0;
  double gamma = 0;                // l2 error factor
  double gmax = 0;                 // l2: bound on |g| over the panels seen so far
  std::vector<float> thr;          // per query, key space
  std::vector<std::vector<Cand>> cands;
  std::vector<Cand> kth;           // per query: k-th kept candidate after the last cut, 0 if none

  // l2 scan-key error bound for query q and any row with |g| <= gmax.
  double margin(int64_t q) const {
    const double qn = cq->qnorm[static_cast<size_t>(q_begin + q)];
    return gamma * (2.0 * qn * gmax + gmax * gmax);
  }

  float threshold_from_kth(int64_t q) const {
    const float kk = cand_key(kth[static_cast<size_t>(q)]);
    if (metric != Metric::kL2) return kk;  // scan keys are the final keys
    // Scan key ~ |q|^2 - dist. A row can still enter if its exact key, rounded to float, reaches
    // kk: its exact -dist exceeds kk - ulp(kk), so its scan key exceeds that plus |q|^2 - margin.
    const double ulp = double(kk) - double(std::nextafter(kk, kNegInf));
    const double t = cq->qnorm2[static_cast<size_t>(q_begin + q)] + double(kk) - ulp - margin(q);
    float f = static_cast<float>(t);
    if (static_cast<double>(f) > t) f = std::nextafter(f, kNegInf);
    return f;
  }

  void cut_to_k(int64_t q) {
    std::vector<Cand>& c = cands[static_cast<size_t>(q)];
    if (args->tokens > 1) {
      dedupe_items(c);
      if (static_cast<int64_t>(c.size()) < k) return;  // fewer than k distinct items so far
    }
    std::nth_element(c.begin(), c.begin() + (k - 1), c.end(), std::greater<Cand>());
    kth[static_cast<size_t>(q)] = c[static_cast<size_t>(k - 1)];
    c.resize(static_cast<size_t>(k));  // nth_element put the k best first
    thr[static_cast<size_t>(q)] = threshold_from_kth(q);
  }

  void accept(int64_t q, int64_t row0, const float* keys, uint32_t lanes) {
    std::vector<Cand>& c = cands[static_cast<size_t>(q)];
    if (c.capacity() == 0) c.reserve(cap);
    float t = thr[static_cast<size_t>(q)];
    while (lanes != 0) {
      const int j = __builtin_ctz(lanes);
      lanes &= lanes - 1;
      if (!(keys[j] > t)) continue;  // the threshold rose since the kernel's test
      const int64_t item = args->tokens > 1 ? (row0 + j) / args->tokens : row0 + j;
      if (filtered && !allowed(q, item)) continue;
      Cand cand;
      if (metric == Metric::kL2) {
        const SearchArgs& a = *args;
        const double dist = l2_exact(a.queries.row(cq->q0 + q_begin + q), a.gallery.row(row0 + j),
                                     a.gallery.cols);
        cand = make_cand(static_cast<float>(-dist), item);
        if (cand <= kth[static_cast<size_t>(q)]) continue;  // cannot enter the top k
      } else {
        cand = make_cand(keys[j], item);
      }
      c.push_back(cand);
      if (c.size() >= cap) {
        cut_to_k(q);
        t = thr[static_cast<size_t>(q)];
      }
    }
  }

  bool allowed(int64_t q, int64_t row) const {
    const uint64_t* allow = args->filter.allow;
    if (allow != nullptr && ((allow[row >> 6] >> (row & 63)) & 1u) == 0) return false;
    return !cq->excluded(q_begin + q, static_cast<int32_t>(row));
  }

  static void accept_thunk(void* self, int64_t q, int64_t row0, const float* keys,
                           uint32_t lanes) {
    static_cast<Part*>(self)->accept(q, row0, keys, lanes);
  }

  // l2: raise gmax to cover a new panel; thresholds already set must loosen accordingly.
  void raise_gmax(double g) {
    if (g <= gmax) return;
    gmax = g;
    for (int64_t q = 0; q < nq; ++q) {
      if (kth[static_cast<size_t>(q)] != 0) thr[static_cast<size_t>(q)] = threshold_from_kth(q);
    }
  }

  // Leaves each query's list sorted best first, at most k long.
  void finish() {
    for (auto& c : cands) {
      if (args->tokens > 1) dedupe_items(c);
      best_sorted(c, static_cast<size_t>(k));
    }
  }
};


// Prepares one chunk of queries: finite check, packing into groups, norms.
Status prepare_chunk(const SearchArgs& args, const SearchKernels& kern, int64_t q0, int64_t nq,
                     ChunkQueries* cq) {
  const int64_t d = args.queries.cols;
  const int mr = kern.query_group;
  cq->q0 = q0;
  cq->nq = nq;
  cq->qpack.assign(static_cast<size_t>(nq * d), 0.0f);
  for (int64_t g0 = 0; g0 < nq; g0 += mr) {
    const int64_t m = std::min<int64_t>(mr, nq - g0);
    float* dst = cq->qpack.data() + g0 * d;
    for (int64_t i = 0; i < m; ++i) {
      const float* src = args.queries.row(q0 + g0 + i);
      for (int64_t c = 0; c < d; ++c) dst[c * m + i] = src[c];
    }
  }
  if (args.filter.exclude_offsets != nullptr) {
    const int64_t* off = args.filter.exclude_offsets;
    cq->excl_off.assign(static_cast<size_t>(nq) + 1, 0);
    cq->excl.clear();
    for (int64_t q = 0; q < nq; ++q) {
      const int32_t* b = args.filter.exclude_rows + off[q0 + q];
      const int32_t* e = args.filter.exclude_rows + off[q0 + q + 1];
      for (const int32_t* p = b; p != e; ++p) {
        if (*p < 0 || *p >= args.gallery.rows / args.tokens) {
          return Status(Code::kInvalidArg, "exclude: query " + std::to_string(q0 + q) +
                                               " lists row " + std::to_string(*p) +
                                               ", outside 0.." +
                                               std::to_string(args.gallery.rows / args.tokens - 1));
        }
      }
      const size_t start = cq->excl.size();
      cq->excl.insert(cq->excl.end(), b, e);
      std::sort(cq->excl.begin() + static_cast<std::ptrdiff_t>(start), cq->excl.end());
      cq->excl_off[static_cast<size_t>(q) + 1] = static_cast<int64_t>(cq->excl.size());
    }
  }

  // Norms through the kernel's own pack so they are computed exactly like the gallery's; every
  // metric needs the overflow check, cosine and l2 also the values.
  const int nr = kern.panel_width;
  AlignedFloats panel(static_cast<size_t>(nr * d));
  std::vector<float> n2(static_cast<size_t>(nr));
  cq->qinv.assign(static_cast<size_t>(nq), 0.0f);
  cq->qnorm.assign(static_cast<size_t>(nq), 0.0);
  cq->qnorm2.assign(static_cast<size_t>(nq), 0.0);
  for (int64_t r0 = 0; r0 < nq; r0 += nr) {
    const int rows = static_cast<int>(std::min<int64_t>(nr, nq - r0));
    kern.pack_panel(args.queries.row(q0 + r0), args.queries.stride, d, rows, panel.p, n2.data());
    for (int j = 0; j < rows; ++j) {
      const int64_t q = r0 + j;
      if (!(n2[static_cast<size_t>(j)] <= kMaxNorm2)) return too_large("queries", q0 + q);
      if (args.metric == Metric::kInnerProduct) continue;
      const float s = n2[static_cast<size_t>(j)];
      cq->qinv[static_cast<size_t>(q)] = s > 0.0f ? 1.0f / std::sqrt(s) : 0.0f;
      double exact = 0;
      const float* row = args.queries.row(q0 + q);
      for (int64_t c = 0; c < d; ++c) exact += double(row[c]) * double(row[c]);
      cq->qnorm2[static_cast<size_t>(q)] = exact;
      cq->qnorm[static_cast<size_t>(q)] = std::sqrt(exact);
    }
  }
  return Status::Ok();
}

enum class PartError { kNone = 0, kNonFinite, kTooLarge, kAborted, kOutOfMemory };

struct PartResult {
  PartError error = PartError::kNone;
  int64_t row = -1;  // kTooLarge: the row
};

// Per-panel lane data from squared norms (cosine: inverse norms; l2: the norms, and the error
// bound grows to cover them). Returns false (res set) if a norm is too large.
bool lanes_from_norms(Part& part, ScanKey key, const float* norms2, int rows, int nr, float* aux,
                      int64_t row0, PartResult* res) {
  float pmax = 0.0f;
  for (int j = 0; j < rows; ++j) {
    if (!(norms2[j] <= kMaxNorm2)) {
      res->error = PartError::kTooLarge;
      res->row = row0 + j;
      return false;
    }
    pmax = std::max(pmax, norms2[j]);
  }
  if (key == ScanKey::kCosine) {
    for (int j = 0; j < nr; ++j) aux[j] = norms2[j] > 0.0f ? 1.0f / std::sqrt(norms2[j]) : 0.0f;
  } else if (key == ScanKey::kL2) {
    std::memcpy(aux, norms2, sizeof(float) * static_cast<size_t>(nr));
    // fp32 norms may sit below the true value by gamma_D; inflate so gmax bounds every |g|.
    part.raise_gmax(std::sqrt(double(pmax) * (1.0 + 4.0 * part.gamma)));
  }
  return true;
}

struct FusedSink {
  Part* part;
  ScanKey key;
  int nr;
  int64_t row0;
  PartResult* res;
};

void run_part(const SearchArgs& args, const SearchKernels& kern, const Context& ctx, Part& part,
              PartResult* res) {
  const int64_t r_begin = part.r_begin, r_end = part.r_end;
  const int64_t d = args.gallery.cols;
  const int nr = kern.panel_width;
  const bool fused = kern.scan_rows != nullptr && part.nq <= kern.small_queries;
  // The fused kernel uses the buffer as a 16-row staging block (see search_kernel_avx512.cpp).
  AlignedFloats panel(fused ? 16 * static_cast<size_t>(((d + 15) & ~int64_t(15)) + 16)
                            : static_cast<size_t>(nr) * static_cast<size_t>(d));
  std::vector<float> norms2(static_cast<size_t>(nr));
  std::vector<float> aux(static_cast<size_t>(nr));

  ScanArgs sa;
  sa.panel = panel.p;
  sa.lane_aux = aux.data();
  sa.dim = d;
  sa.qpack = part.cq->qpack.data() + part.q_begin * d;
  sa.nq = part.nq;
  sa.q_aux = part.cq->qinv.empty() ? nullptr : part.cq->qinv.data() + part.q_begin;
  sa.thr = part.thr.data();
  sa.sink = &part;
  sa.accept = &Part::accept_thunk;
  sa.key = args.metric == Metric::kInnerProduct ? ScanKey::kIp
           : args.metric == Metric::kCosine     ? ScanKey::kCosine
                                                : ScanKey::kL2;
  FusedSink fs{&part, sa.key, nr, 0, res};
  if (fused) {
    // The kernel hands the norms back before it compares any key.
    sa.prepare_lanes = [](void* ctx, const float* n2, int rows, float* out) {
      FusedSink* f = static_cast<FusedSink*>(ctx);
      return lanes_from_norms(*f->part, f->key, n2, rows, f->nr, out, f->row0, f->res);
    };
    sa.lanes_ctx = &fs;
  }

  for (int64_t r0 = r_begin; r0 < r_end; r0 += nr) {
    if (ctx.cancelled()) {
      res->error = PartError::kAborted;
      return;
    }
    const int rows = static_cast<int>(std::min<int64_t>(nr, r_end - r0));
    sa.nrows = rows;
    sa.row0 = r0;
    if (fused) {
      fs.row0 = r0;
      if (!kern.scan_rows(args.gallery.row(r0), args.gallery.stride, sa)) {
        if (res->error == PartError::kNone) res->error = PartError::kNonFinite;
        return;
      }
      continue;
    }
    if (!kern.pack_panel(args.gallery.row(r0), args.gallery.stride, d, rows, panel.p,
                         norms2.data())) {
      res->error = PartError::kNonFinite;
      return;
    }
    if (!lanes_from_norms(part, sa.key, norms2.data(), rows, nr, aux.data(), r0, res)) return;
    kern.scan_panel(sa);
  }
  part.finish();
}

}  // namespace

const SearchKernels& search_kernels(Isa isa) {
  switch (isa) {
    case Isa::kAvx512: return search_kernels_avx512();
    case Isa::kAvx2: return search_kernels_avx2();
    case Isa::kScalar: break;
  }
#if defined(__aarch64__)
  // NEON is baseline on arm64, so it serves the portable path there (bit-identical to scalar).
  return search_kernels_neon();
#else
  return search_kernels_scalar();
#endif
}

std::string find_non_finite(const char* name, const MatrixView<const float>& m) {
  for (int64_t r = 0; r < m.rows; ++r) {
    const float* p = m.row(r);
    for (int64_t c = 0; c < m.cols; ++c) {
      if (!std::isfinite(p[c])) {
        const char* what = std::isnan(p[c]) ? "NaN" : (p[c] > 0 ? "Infinity" : "-Infinity");
        return std::string(name) + ": row " + std::to_string(r) + ", column " + std::to_string(c) +
               " is " + what + " (every value must be finite)";
      }
    }
  }
  return std::string();
}

Status too_large(const char* name, int64_t row) {
  return Status(Code::kNonFinite, std::string(name) + ": row " + std::to_string(row) +
                                      " has a squared norm above 4.2e37; its products would "
                                      "overflow float32 (scale the vectors down)");
}

double l2_exact(const float* a, const float* b, int64_t d) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= d; i += 4) {
    const double d0 = double(a[i]) - double(b[i]);
    const double d1 = double(a[i + 1]) - double(b[i + 1]);
    const double d2 = double(a[i + 2]) - double(b[i + 2]);
    const double d3 = double(a[i + 3]) - double(b[i + 3]);
    s0 += d0 * d0;
    s1 += d1 * d1;
    s2 += d2 * d2;
    s3 += d3 * d3;
  }
  for (; i < d; ++i) {
    const double di = double(a[i]) - double(b[i]);
    s0 += di * di;
  }
  return (s0 + s1) + (s2 + s3);
}

const char* metric_name(Metric m) {
  switch (m) {
    case Metric::kInnerProduct: return "ip";
    case Metric::kCosine: return "cosine";
    case Metric::kL2: return "l2";
  }
  return "ip";
}

Status parse_metric(const char* name, Metric* out) {
  const std::string s = name ? name : "";
  if (s == "ip") { *out = Metric::kInnerProduct; return Status::Ok(); }
  if (s == "cosine") { *out = Metric::kCosine; return Status::Ok(); }
  if (s == "l2") { *out = Metric::kL2; return Status::Ok(); }
  return Status(Code::kInvalidArg,
                "metric: unknown metric '" + s + "' (expected 'ip', 'cosine' or 'l2')");
}

Status validate_search(const SearchArgs& a) {
  const auto& q = a.queries;
  const auto& g = a.gallery;
  if (q.rows < 0 || q.cols < 0 || g.rows < 0 || g.cols < 0 || q.stride < q.cols ||
      g.stride < g.cols) {
    return Status(Code::kShape, "search: negative size or stride smaller than cols");
  }
  if (q.rows == 0 || q.cols == 0) {
    return Status(Code::kEmpty, "queries: " + std::to_string(q.rows) + " x " +
                                    std::to_string(q.cols) + " is empty");
  }
  if (g.rows == 0 || g.cols == 0) {
    return Status(Code::kEmpty, "gallery: " + std::to_string(g.rows) + " x " +
                                    std::to_string(g.cols) + " is empty");
  }
  if (q.cols != g.cols) {
    return Status(Code::kDimMismatch, "queries have dim " + std::to_string(q.cols) +
                                          " but gallery has dim " + std::to_string(g.cols));
  }
  if (q.data == nullptr || g.data == nullptr) {
    return Status(Code::kInvalidArg, "search: null data pointer");
  }
  if (g.rows > std::numeric_limits<int32_t>::max()) {
    return Status(Code::kShape, "gallery: " + std::to_string(g.rows) +
                                    " rows exceed the int32 index range");
  }
  if (a.tokens < 1 || g.rows % a.tokens != 0) {
    return Status(Code::kShape, "gallery: " + std::to_string(g.rows) + " rows are not a whole number of items of " +
                                    std::to_string(a.tokens) + " tokens");
  }
  const int64_t items = g.rows / a.tokens;
  if (a.filter.exclude_offsets != nullptr) {
    const int64_t* off = a.filter.exclude_offsets;
    if (off[0] < 0) {
      return Status(Code::kInvalidArg, "exclude: offsets[0] is " + std::to_string(off[0]) +
                                           " (must be >= 0)");
    }
    for (int64_t i = 0; i < q.rows; ++i) {
      if (off[i + 1] < off[i]) {
        return Status(Code::kInvalidArg, "exclude: offsets decrease at query " +
                                             std::to_string(i) + " (" + std::to_string(off[i]) +
                                             " then " + std::to_string(off[i + 1]) + ")");
      }
    }
    if (off[q.rows] > 0 && a.filter.exclude_rows == nullptr) {
      return Status(Code::kInvalidArg, "exclude: offsets given without rows");
    }
  }
  if (a.k < 1 || a.k > items) {
    return Status(Code::kInvalidK, "k: " + std::to_string(a.k) + " is not in 1.." + std::to_string(items) +
                                       (a.tokens > 1 ? " (gallery items)" : " (gallery rows)"));
  }
  return Status::Ok();
}

Status search(const SearchArgs& args, const SearchOut& out, const Context& ctx) {
  VLK_RETURN_IF_ERROR(validate_search(args));
  if (out.indices == nullptr || out.scores == nullptr) {
    return Status(Code::kInvalidArg, "search: null output buffer");
  }
  if (ctx.threads < 1) {
    return Status(Code::kInvalidArg,
                  "threads: " + std::to_string(ctx.threads) + " is not an integer >= 1");
  }
  if (ctx.cancelled()) return Status(Code::kAborted, "search aborted");
  {
    const std::string bad = find_non_finite("queries", args.queries);
    if (!bad.empty()) return Status(Code::kNonFinite, bad);
  }
  try {
    const SearchKernels& kern = search_kernels(ctx.isa);
    const int64_t nq_all = args.queries.rows;
    const int64_t n = args.gallery.rows;
    const int64_t d = args.gallery.cols;
    const int64_t k = args.k;
    const int nr = kern.panel_width;

    const int mr = kern.query_group;
    const int64_t width = ctx.threads;
    const int64_t panels = (n + nr - 1) / nr;

    // Split: with many query groups each task takes a slice of the queries against the whole
    // gallery (each query keeps one top-k list, so selection work is not duplicated); with few,
    // tasks take contiguous gallery ranges and their lists are merged. Either way the result is the
    // same, bit for bit.
    const int64_t groups_all = (nq_all + mr - 1) / mr;
    const bool split_queries = width > 1 && groups_all >= 4 * width;
    const int64_t gparts = split_queries ? 1 : std::max<int64_t>(1, std::min(width, panels));
    const int64_t per_part = (panels + gparts - 1) / gparts;
    const int64_t part_rows_max = std::min(n, per_part * nr);
    const size_t cap =
        static_cast<size_t>(std::min<int64_t>(2 * k + 32, std::max<int64_t>(k, part_rows_max)));

    // Query chunk: bounded so that the chunk's candidate buffers fit the selection budget.
    const int64_t per_query = gparts * static_cast<int64_t>(cap) * int64_t(sizeof(Cand)) + 64;
    int64_t chunk = std::max<int64_t>(1, kSelectionBudget / per_query);
    chunk = std::min<int64_t>({chunk, kMaxChunk, nq_all});
    if (chunk >= mr) chunk -= chunk % mr;

    const double u = std::ldexp(1.0, -24);
    const double nu = double(d + 2) * u;
    const double gamma = 1.01 * nu / (1.0 - nu);
    ThreadPool* pool = ctx.pool;

    for (int64_t q0 = 0; q0 < nq_all; q0 += chunk) {
      const int64_t nq = std::min(chunk, nq_all - q0);
      ChunkQueries cq;
      VLK_RETURN_IF_ERROR(prepare_chunk(args, kern, q0, nq, &cq));

      const int64_t groups = (nq + mr - 1) / mr;
      const int64_t qparts = split_queries ? std::min(width, groups) : 1;
      const int64_t nparts = qparts * gparts;
      std::vector<std::unique_ptr<Part>> parts(static_cast<size_t>(nparts));
      std::vector<PartResult> results(static_cast<size_t>(nparts));
      for (int64_t s = 0; s < qparts; ++s) {
        const int64_t qb = std::min(nq, (groups * s / qparts) * mr);
        const int64_t qe = std::min(nq, (groups * (s + 1) / qparts) * mr);
        for (int64_t p = 0; p < gparts; ++p) {
          auto st = std::make_unique<Part>();
          st->args = &args;
          st->cq = &cq;
          st->q_begin = qb;
          st->nq = qe - qb;
          st->r_begin = std::min(n, p * part_rows_max);
          st->r_end = std::min(n, st->r_begin + part_rows_max);
          st->metric = args.metric;
          st->filtered = args.filter.active();
          st->k = k;
          st->cap = cap;
          st->gamma = gamma;
          st->thr.assign(static_cast<size_t>(st->nq), kNegInf);
          st->cands.resize(static_cast<size_t>(st->nq));
          st->kth.assign(static_cast<size_t>(st->nq), 0);
          parts[static_cast<size_t>(s * gparts + p)] = std::move(st);
        }
      }
      auto task = [&](int64_t i) {
        PartResult* res = &results[static_cast<size_t>(i)];
        try {
          run_part(args, kern, ctx, *parts[static_cast<size_t>(i)], res);
        } catch (const std::bad_alloc&) {
          res->error = PartError::kOutOfMemory;
        }
      };
      if (pool != nullptr && nparts > 1) {
        pool->parallel_for(nparts, static_cast<int>(width), task);
      } else {
        for (int64_t i = 0; i < nparts; ++i) task(i);
      }

      // Errors are reported the same way whichever part met them first.
      bool bad_data = false;
      for (const auto& r : results) {
        if (r.error == PartError::kAborted) return Status(Code::kAborted, "search aborted");
        if (r.error == PartError::kOutOfMemory) {
          return Status(Code::kOutOfMemory, "search: out of memory for top-k selection");
        }
        bad_data = bad_data || r.error != PartError::kNone;
      }
      if (bad_data) {
        const std::string bad = find_non_finite("gallery", args.gallery);
        if (!bad.empty()) return Status(Code::kNonFinite, bad);
        int64_t row = -1;
        for (const auto& r : results) {
          if (r.error == PartError::kTooLarge && (row < 0 || r.row < row)) row = r.row;
        }
        return too_large("gallery", row);
      }

      // Write out: each query's gallery parts hold sorted lists; merge them when there are several.
      auto emit = [&](int64_t s, std::vector<Cand>& scratch) -> bool {
        const Part& first = *parts[static_cast<size_t>(s * gparts)];
        for (int64_t q = 0; q < first.nq; ++q) {
          const std::vector<Cand>* list = &first.cands[static_cast<size_t>(q)];
          if (gparts > 1) {
            scratch.clear();
            for (int64_t p = 0; p < gparts; ++p) {
              const auto& c = parts[static_cast<size_t>(s * gparts + p)]->cands[static_cast<size_t>(q)];
              scratch.insert(scratch.end(), c.begin(), c.end());
            }
            if (args.tokens > 1) dedupe_items(scratch);  // an item's tokens may span two parts
            best_sorted(scratch, static_cast<size_t>(k));
            list = &scratch;
          }
          // Without a filter every row is offered to some part, so a short list would be a bug:
          // fail loudly rather than pad. With one, short lists are padded and counted.
          const int64_t have = std::min<int64_t>(k, static_cast<int64_t>(list->size()));
          if (have < k && !args.filter.active()) return false;
          const int64_t row = q0 + first.q_begin + q;
          int32_t* oi = out.indices + row * k;
          float* os = out.scores + row * k;
          for (int64_t j = 0; j < have; ++j) {
            const Cand c = (*list)[static_cast<size_t>(j)];
            oi[j] = cand_idx(c);
            const float key = cand_key(c);
            os[j] = args.metric == Metric::kL2 ? 0.0f - key : key;  // +0 at distance 0, never -0
          }
          for (int64_t j = have; j < k; ++j) {
            oi[j] = -1;
            os[j] = std::numeric_limits<float>::quiet_NaN();
          }
          if (out.counts != nullptr) out.counts[row] = static_cast<int32_t>(have);
        }
        return true;
      };
      std::vector<Cand> scratch;
      for (int64_t s = 0; s < qparts; ++s) {
        if (!emit(s, scratch)) {
          return Status(Code::kInternal, "search: fewer than k candidates survived selection");
        }
      }
    }
    return Status::Ok();
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "search: out of memory");
  }
}

}  // namespace core
}  // namespace vlk
