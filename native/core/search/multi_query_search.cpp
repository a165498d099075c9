// Multi-query fusion search (core/search): embedding fusion = one exact search of the fused queries;
// score fusion scores every item (a union of per-rewrite top-k lists is not exact): gemm block
// scores, the fused score per item, top-k selection with a rising threshold; RRF fuses each
// rewrite's top-`depth` list from core::search (an item in no list scores 0).
#include "search/multi_query_search.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "common/block_cache.hpp"
#include "common/checked_size.hpp"
#include "common/finite.hpp"
#include "linalg/gemm.hpp"
#include "search/search_detail.hpp"

namespace vlk {
namespace core {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr int64_t kBlock = 256;            // gallery rows per gemm block
constexpr int64_t kMaxChunkRows = 1024;    // query rows (Q*R) per gemm block
constexpr int64_t kSelectionBudget = int64_t(256) << 20;

// Squared norms, an fma chain over d ascending from +0 per row (the search kernels' order), eight
// rows at a time so the chains overlap.
void row_norms2(const MatrixView<const float>& m, int64_t r0, int64_t r1, float* out) {
  const int64_t d = m.cols;
  int64_t r = r0;
  for (; r + 8 <= r1; r += 8) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    const float* p[8];
    for (int i = 0; i < 8; ++i) p[i] = m.row(r + i);
    for (int64_t c = 0; c < d; ++c) {
      for (int i = 0; i < 8; ++i) acc[i] = std::fma(p[i][c], p[i][c], acc[i]);
    }
    for (int i = 0; i < 8; ++i) out[r - r0 + i] = acc[i];
  }
  for (; r < r1; ++r) {
    const float* p = m.row(r);
    float acc = 0.0f;
    for (int64_t c = 0; c < d; ++c) acc = std::fma(p[c], p[c], acc);
    out[r - r0] = acc;
  }
}

float inv_norm(float n2) { return n2 > 0.0f ? 1.0f / std::sqrt(n2) : 0.0f; }

void best_sorted(std::vector<Cand>& c, size_t keep) {
  if (c.size() > keep) {
    std::nth_element(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(keep - 1), c.end(),
                     std::greater<Cand>());
    c.resize(keep);
  }
  std::sort(c.begin(), c.end(), std::greater<Cand>());
}

// The finite check of a matrix as a status naming the first bad element.
Status check_matrix(const char* name, const MatrixView<const float>& m) {
  bool ok = true;
  for (int64_t r = 0; r < m.rows && ok; ++r) ok = all_finite(m.row(r), m.cols);
  if (ok) return Status::Ok();
  return Status(Code::kNonFinite, find_non_finite(name, m));
}

// One task's top-k lists for the queries of a chunk over a gallery range.
struct Lists {
  int64_t k = 0;
  size_t cap = 0;
  std::vector<std::vector<Cand>> c;
  std::vector<float> thr;

  void reset(int64_t nq) {
    c.assign(static_cast<size_t>(nq), {});
    thr.assign(static_cast<size_t>(nq), kNegInf);
  }
  // Rows arrive in ascending order within a task, so a key equal to the k-th loses (the lower
  // index already holds it): the strict test is exact.
  void push(int64_t q, float key, int64_t idx) {
    std::vector<Cand>& v = c[static_cast<size_t>(q)];
    if (v.capacity() == 0) v.reserve(cap);
    v.push_back(make_cand(key, idx));
    if (v.size() >= cap) {
      std::nth_element(v.begin(), v.begin() + (k - 1), v.end(), std::greater<Cand>());
      thr[static_cast<size_t>(q)] = cand_key(v[static_cast<size_t>(k - 1)]);
      v.resize(static_cast<size_t>(k));
    }
  }
};

double weight_of(const float* w, bool per_query, int64_t r, int64_t q, int64_t i) {
  if (w == nullptr) return 1.0;
  return double(per_query ? w[q * r + i] : w[i]);
}

Status check_weights(const float* w, int64_t n, const char* name) {
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(w[i])) {
      return Status(Code::kNonFinite, std::string(name) + "[" + std::to_string(i) + "] is not finite");
    }
    if (w[i] < 0.0f) {
      return Status(Code::kInvalidArg, std::string(name) + "[" + std::to_string(i) + "]: " +
                                           std::to_string(w[i]) + " is negative (weights must be >= 0)");
    }
  }
  return Status::Ok();
}

Status validate_common(const MatrixView<const float>& q, const MatrixView<const float>& g, int64_t r,
                       int64_t k, const char* op) {
  if (q.rows < 0 || q.cols < 0 || g.rows < 0 || g.cols < 0 || q.stride < q.cols || g.stride < g.cols) {
    return Status(Code::kShape, std::string(op) + ": negative size or stride smaller than cols");
  }
  if (q.rows == 0 || q.cols == 0) {
    return Status(Code::kEmpty, "queries: " + std::to_string(q.rows) + " x " + std::to_string(q.cols) + " is empty");
  }
  if (g.rows == 0 || g.cols == 0) {
    return Status(Code::kEmpty, "gallery: " + std::to_string(g.rows) + " x " + std::to_string(g.cols) + " is empty");
  }
  if (q.cols != g.cols) {
    return Status(Code::kDimMismatch, "queries have dim " + std::to_string(q.cols) + " but gallery has dim " +
                                          std::to_string(g.cols));
  }
  if (q.data == nullptr || g.data == nullptr) return Status(Code::kInvalidArg, std::string(op) + ": null data pointer");
  if (g.rows > std::numeric_limits<int32_t>::max()) {
    return Status(Code::kShape, "gallery: " + std::to_string(g.rows) + " rows exceed the int32 index range");
  }
  if (r < 1) return Status(Code::kInvalidArg, "rewrites: " + std::to_string(r) + " is not an integer >= 1");
  if (q.rows % r != 0) {
    return Status(Code::kShape, "queries: " + std::to_string(q.rows) + " rows are not a whole number of groups of " +
                                    std::to_string(r) + " rewrites");
  }
  if (k < 1 || k > g.rows) {
    return Status(Code::kInvalidK, "k: " + std::to_string(k) + " is not in 1.." + std::to_string(g.rows) +
                                       " (gallery rows)");
  }
  return Status::Ok();
}

Status embedding_search(const MultiQuerySearchArgs& a, const MultiQuerySearchOut& out, const Context& ctx) {
  VLK_RETURN_IF_ERROR(check_matrix("queries", a.queries));
  const int64_t r = a.rewrites, nq = a.queries.rows / r, d = a.queries.cols;
  ScratchVector<float> fused(static_cast<size_t>(nq * d));
  std::vector<double> u(static_cast<size_t>(d));
  for (int64_t q = 0; q < nq; ++q) {
    std::fill(u.begin(), u.end(), 0.0);
    for (int64_t i = 0; i < r; ++i) {
      const double w = weight_of(a.weights, a.weights_per_query, r, q, i);
      const float* e = a.queries.row(q * r + i);
      for (int64_t c = 0; c < d; ++c) u[static_cast<size_t>(c)] += w * double(e[c]);
    }
    double n2 = 0;
    for (int64_t c = 0; c < d; ++c) n2 += u[static_cast<size_t>(c)] * u[static_cast<size_t>(c)];
    const double inv = n2 > 0 ? 1.0 / std::sqrt(n2) : 0.0;
    float* dst = fused.data() + q * d;
    for (int64_t c = 0; c < d; ++c) dst[c] = static_cast<float>(u[static_cast<size_t>(c)] * inv);
  }
  SearchArgs sa;
  sa.queries = MatrixView<const float>(fused.data(), nq, d);
  sa.gallery = a.gallery;
  sa.k = a.k;
  sa.metric = a.metric;
  SearchOut so;
  so.indices = out.indices;
  so.scores = out.scores;
  return search(sa, so, ctx);
}

Status rrf_search(const MultiQuerySearchArgs& a, const MultiQuerySearchOut& out, const Context& ctx) {
  const int64_t r = a.rewrites, m = a.queries.rows, nq = m / r, n = a.gallery.rows, k = a.k;
  const int64_t depth = std::min(a.depth, n);
  // Every rewrite's top-depth list is held at once: Q x R x depth (index, score) pairs, which a
  // large depth over a large gallery can make far larger than the queries and the gallery.
  VLK_RETURN_IF_ERROR(check_alloc("multiQuerySearch: the rewrites' top-depth lists (Q x R rows x depth)", {m, depth},
                                  sizeof(int32_t) + sizeof(float)));
  ScratchVector<int32_t> idx(static_cast<size_t>(m * depth));
  ScratchVector<float> sc(static_cast<size_t>(m * depth));
  SearchArgs sa;
  sa.queries = a.queries;
  sa.gallery = a.gallery;
  sa.k = depth;
  sa.metric = a.metric;
  SearchOut so;
  so.indices = idx.data();
  so.scores = sc.data();
  VLK_RETURN_IF_ERROR(search(sa, so, ctx));
  if (ctx.cancelled()) return Status(Code::kAborted, "multiQuerySearch aborted");

  auto fuse = [&](int64_t q0, int64_t q1) {
    std::vector<std::pair<int32_t, int32_t>> hits;  // (gallery row, rewrite * depth + rank - 1)
    std::vector<Cand> pos;
    std::vector<int32_t> pos_rows;
    for (int64_t q = q0; q < q1; ++q) {
      hits.clear();
      for (int64_t i = 0; i < r; ++i) {
        const int32_t* list = idx.data() + (q * r + i) * depth;
        for (int64_t t = 0; t < depth; ++t) hits.emplace_back(list[t], static_cast<int32_t>(i * depth + t));
      }
      // Grouped by row, rewrites ascending inside a group: the float64 sum runs over i ascending.
      std::sort(hits.begin(), hits.end());
      pos.clear();
      for (size_t h = 0; h < hits.size();) {
        const int32_t row = hits[h].first;
        double s = 0;
        for (; h < hits.size() && hits[h].first == row; ++h) {
          const int64_t i = hits[h].second / depth, rank = hits[h].second % depth + 1;
          s += weight_of(a.weights, a.weights_per_query, r, q, i) / (a.rrf_constant + double(rank));
        }
        const float key = static_cast<float>(s);
        if (key > 0.0f) pos.push_back(make_cand(key, row));
      }
      best_sorted(pos, static_cast<size_t>(k));
      int32_t* oi = out.indices + q * k;
      float* os = out.scores + q * k;
      int64_t j = 0;
      for (; j < static_cast<int64_t>(pos.size()); ++j) {
        oi[j] = cand_idx(pos[static_cast<size_t>(j)]);
        os[j] = cand_key(pos[static_cast<size_t>(j)]);
      }
      // The rest of the top k scores 0: the lowest rows not already placed.
      pos_rows.assign(oi, oi + j);
      std::sort(pos_rows.begin(), pos_rows.end());
      for (int32_t row = 0; j < k; ++row) {
        if (std::binary_search(pos_rows.begin(), pos_rows.end(), row)) continue;
        oi[j] = row;
        os[j] = 0.0f;
        ++j;
      }
    }
  };
  const int64_t tasks = std::min<int64_t>(nq, std::max(1, ctx.threads) * 4);
  auto task = [&](int64_t t) { fuse(nq * t / tasks, nq * (t + 1) / tasks); };
  if (ctx.pool != nullptr && ctx.threads > 1 && tasks > 1) {
    ctx.pool->parallel_for(tasks, ctx.threads, task);
  } else {
    for (int64_t t = 0; t < tasks; ++t) task(t);
  }
  return Status::Ok();
}

}  // namespace

Status parse_fusion(const char* name, Fusion* out) {
  const std::string s = name ? name : "";
  if (s == "embedding") { *out = Fusion::kEmbedding; return Status::Ok(); }
  if (s == "mean") { *out = Fusion::kMean; return Status::Ok(); }
  if (s == "max") { *out = Fusion::kMax; return Status::Ok(); }
  if (s == "rrf") { *out = Fusion::kRrf; return Status::Ok(); }
  return Status(Code::kInvalidArg,
                "fusion: unknown mode '" + s + "' (expected 'embedding', 'mean', 'max' or 'rrf')");
}

Status fused_top_k(const FusedTopKArgs& a, int32_t* out_idx, float* out_scores, const Context& ctx) {
  const int64_t r = a.r, m_all = a.queries.rows, q_all = m_all / r, n = a.gallery.rows, d = a.gallery.cols;
  const int64_t k = a.k;
  const std::string op = a.op;
  if (ctx.threads < 1) {
    return Status(Code::kInvalidArg, "threads: " + std::to_string(ctx.threads) + " is not an integer >= 1");
  }
  if (ctx.cancelled()) return Status(Code::kAborted, op + " aborted");
  VLK_RETURN_IF_ERROR(check_matrix("queries", a.queries));
  VLK_RETURN_IF_ERROR(check_matrix("gallery", a.gallery));
  try {
    // Norms: the overflow bound for every metric, inverse norms for cosine.
    ScratchVector<float> qinv(static_cast<size_t>(m_all)), ginv(static_cast<size_t>(n));
    row_norms2(a.queries, 0, m_all, qinv.data());
    for (int64_t i = 0; i < m_all; ++i) {
      if (!(qinv[static_cast<size_t>(i)] <= kMaxNorm2)) return too_large("queries", i);
      qinv[static_cast<size_t>(i)] = inv_norm(qinv[static_cast<size_t>(i)]);
    }
    const int64_t width = ctx.threads;
    {
      const int64_t pieces = std::min<int64_t>(n, width * 4);
      auto norms = [&](int64_t t) { row_norms2(a.gallery, n * t / pieces, n * (t + 1) / pieces, ginv.data() + n * t / pieces); };
      if (ctx.pool != nullptr && width > 1 && pieces > 1) {
        ctx.pool->parallel_for(pieces, static_cast<int>(width), norms);
      } else {
        for (int64_t t = 0; t < pieces; ++t) norms(t);
      }
    }
    for (int64_t j = 0; j < n; ++j) {
      if (!(ginv[static_cast<size_t>(j)] <= kMaxNorm2)) return too_large("gallery", j);
      ginv[static_cast<size_t>(j)] = inv_norm(ginv[static_cast<size_t>(j)]);
    }
    const bool cosine = a.metric == Metric::kCosine;

    // Tasks take contiguous ranges of whole blocks; query chunks bound the selection memory.
    const int64_t blocks = (n + kBlock - 1) / kBlock;
    const int64_t ntasks = std::max<int64_t>(1, std::min(width, blocks));
    const int64_t per_task = (blocks + ntasks - 1) / ntasks * kBlock;
    const size_t cap = static_cast<size_t>(std::min<int64_t>(2 * k + 32, std::max<int64_t>(k, per_task)));
    int64_t chunk = std::max<int64_t>(1, kMaxChunkRows / r);
    chunk = std::min(chunk, std::max<int64_t>(1, kSelectionBudget / (ntasks * int64_t(cap) * 8 + 64)));
    chunk = std::min(chunk, q_all);

    std::vector<Lists> lists(static_cast<size_t>(ntasks));
    std::vector<ScratchVector<float>> cbuf(static_cast<size_t>(ntasks));
    for (auto& l : lists) {
      l.k = k;
      l.cap = cap;
    }
    std::vector<Cand> merged;
    for (int64_t q0 = 0; q0 < q_all; q0 += chunk) {
      const int64_t nq = std::min(chunk, q_all - q0);
      const int64_t mrows = nq * r;
      std::vector<char> failed(static_cast<size_t>(ntasks), 0);  // 1: aborted, 2: out of memory
      auto task = [&](int64_t t) {
        Lists& L = lists[static_cast<size_t>(t)];
        try {
          L.reset(nq);
          ScratchVector<float>& cb = cbuf[static_cast<size_t>(t)];
          cb.resize(static_cast<size_t>(mrows * kBlock));
          const Context one{nullptr, 1, ctx.isa, nullptr};
          const int64_t rb = std::min(n, t * per_task), re = std::min(n, rb + per_task);
          for (int64_t j0 = rb; j0 < re; j0 += kBlock) {
            if (ctx.cancelled()) {
              failed[static_cast<size_t>(t)] = 1;
              return;
            }
            const int64_t bn = std::min(kBlock, re - j0);
            GemmArgs g;
            g.trans_b = true;
            g.m = mrows;
            g.n = bn;
            g.k = d;
            g.a = a.queries.row(q0 * r);
            g.lda = a.queries.stride;
            g.b = a.gallery.row(j0);
            g.ldb = a.gallery.stride;
            g.c = cb.data();
            g.ldc = bn;
            if (!gemm(g, one).ok()) {
              failed[static_cast<size_t>(t)] = 2;
              return;
            }
            float* c = cb.data();
            if (cosine) {
              for (int64_t i = 0; i < mrows; ++i) {
                const float qi = qinv[static_cast<size_t>(q0 * r + i)];
                float* row = c + i * bn;
                for (int64_t j = 0; j < bn; ++j) row[j] = (row[j] * qi) * ginv[static_cast<size_t>(j0 + j)];
              }
            }
            for (int64_t q = 0; q < nq; ++q) {
              const float* s = c + q * r * bn;
              float& thr = L.thr[static_cast<size_t>(q)];
              const int64_t gq = q0 + q;
              if (a.rule == FuseRule::kPrior) {
                const float lam = a.lambda[gq];
                for (int64_t j = 0; j < bn; ++j) {
                  const float f = s[j] + lam * a.prior[j0 + j];
                  if (f > thr) L.push(q, f, j0 + j);
                }
              } else if (a.rule == FuseRule::kMax) {
                for (int64_t j = 0; j < bn; ++j) {
                  float f = kNegInf;
                  for (int64_t i = 0; i < r; ++i) {
                    const float w = static_cast<float>(weight_of(a.weights, a.weights_per_query, r, gq, i));
                    f = std::max(f, w * s[i * bn + j]);
                  }
                  if (f > thr) L.push(q, f, j0 + j);
                }
              } else {
                double wsum = 0;
                for (int64_t i = 0; i < r; ++i) wsum += weight_of(a.weights, a.weights_per_query, r, gq, i);
                for (int64_t j = 0; j < bn; ++j) {
                  double acc = 0;
                  for (int64_t i = 0; i < r; ++i) {
                    acc += weight_of(a.weights, a.weights_per_query, r, gq, i) * double(s[i * bn + j]);
                  }
                  const float f = static_cast<float>(acc / wsum);
                  if (f > thr) L.push(q, f, j0 + j);
                }
              }
            }
          }
        } catch (const std::bad_alloc&) {
          failed[static_cast<size_t>(t)] = 2;
        }
      };
      if (ctx.pool != nullptr && ntasks > 1) {
        ctx.pool->parallel_for(ntasks, static_cast<int>(width), task);
      } else {
        for (int64_t t = 0; t < ntasks; ++t) task(t);
      }
      for (char f : failed) {
        if (f == 1) return Status(Code::kAborted, op + " aborted");
      }
      for (char f : failed) {
        if (f == 2) return Status(Code::kOutOfMemory, op + ": out of memory");
      }
      for (int64_t q = 0; q < nq; ++q) {
        merged.clear();
        for (const auto& L : lists) {
          const auto& v = L.c[static_cast<size_t>(q)];
          merged.insert(merged.end(), v.begin(), v.end());
        }
        best_sorted(merged, static_cast<size_t>(k));
        // Every row is offered to some list, so a short list means keys that never passed -inf.
        bool finite = static_cast<int64_t>(merged.size()) == k;
        for (size_t j = 0; finite && j < merged.size(); ++j) finite = std::isfinite(cand_key(merged[j]));
        if (!finite) {
          return Status(Code::kNonFinite, op + ": query " + std::to_string(q0 + q) +
                                              " has a fused score that overflows float32 (scale the " +
                                              (a.rule == FuseRule::kPrior ? "prior or lambda" : "weights") +
                                              " down)");
        }
        for (int64_t j = 0; j < k; ++j) {
          out_idx[(q0 + q) * k + j] = cand_idx(merged[static_cast<size_t>(j)]);
          out_scores[(q0 + q) * k + j] = cand_key(merged[static_cast<size_t>(j)]);
        }
      }
    }
    return Status::Ok();
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, op + ": out of memory");
  }
}

Status multi_query_search(const MultiQuerySearchArgs& a, const MultiQuerySearchOut& out, const Context& ctx) {
  VLK_RETURN_IF_ERROR(validate_common(a.queries, a.gallery, a.rewrites, a.k, "multiQuerySearch"));
  if (out.indices == nullptr || out.scores == nullptr) {
    return Status(Code::kInvalidArg, "multiQuerySearch: null output buffer");
  }
  const int64_t r = a.rewrites, nq = a.queries.rows / r;
  if (a.weights != nullptr) {
    VLK_RETURN_IF_ERROR(check_weights(a.weights, a.weights_per_query ? nq * r : r, "weights"));
  }
  if (a.fusion == Fusion::kMean && a.weights != nullptr) {
    for (int64_t q = 0; q < nq; ++q) {
      double s = 0;
      for (int64_t i = 0; i < r; ++i) s += weight_of(a.weights, a.weights_per_query, r, q, i);
      if (!(s > 0)) {
        return Status(Code::kInvalidArg, "weights: the weights of query " + std::to_string(q) +
                                             " sum to 0 (mean fusion needs a positive sum)");
      }
    }
  }
  if ((a.fusion == Fusion::kMean || a.fusion == Fusion::kMax) && a.metric == Metric::kL2) {
    return Status(Code::kInvalidArg, std::string("metric: 'l2' is not supported with fusion '") +
                                         (a.fusion == Fusion::kMean ? "mean" : "max") +
                                         "' (use 'ip' or 'cosine', or fusion 'embedding' / 'rrf')");
  }
  if (a.fusion == Fusion::kRrf) {
    if (!(std::isfinite(a.rrf_constant) && a.rrf_constant >= 0)) {
      return Status(Code::kInvalidArg, "rrfConstant: " + std::to_string(a.rrf_constant) + " is not a finite number >= 0");
    }
    if (a.depth < 1) return Status(Code::kInvalidArg, "depth: " + std::to_string(a.depth) + " is not an integer >= 1");
  }
  if (ctx.threads < 1) {
    return Status(Code::kInvalidArg, "threads: " + std::to_string(ctx.threads) + " is not an integer >= 1");
  }
  if (ctx.cancelled()) return Status(Code::kAborted, "multiQuerySearch aborted");
  try {
    switch (a.fusion) {
      case Fusion::kEmbedding: return embedding_search(a, out, ctx);
      case Fusion::kRrf: return rrf_search(a, out, ctx);
      case Fusion::kMean:
      case Fusion::kMax: {
        FusedTopKArgs f;
        f.queries = a.queries;
        f.gallery = a.gallery;
        f.r = r;
        f.k = a.k;
        f.metric = a.metric;
        f.rule = a.fusion == Fusion::kMean ? FuseRule::kMean : FuseRule::kMax;
        f.weights = a.weights;
        f.weights_per_query = a.weights_per_query;
        f.op = "multiQuerySearch";
        return fused_top_k(f, out.indices, out.scores, ctx);
      }
    }
    return Status(Code::kInvalidArg, "fusion: unknown mode");
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "multiQuerySearch: out of memory");
  }
}

}  // namespace core
}  // namespace vlk
