// Exact re-ranking of candidate lists (core/search). See rerank.hpp. Queries are split across the
// pool; each query gathers its candidates NR at a time into the kernel's score_rows (the same fma
// chains as the search scan), turns dots into keys exactly as search does (l2: float64 distance),
// then sorts its few candidates. Work per query is tiny, so blocks of queries are the unit.
#include "search/rerank.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <new>
#include <string>
#include <vector>

#include "search/search_detail.hpp"

namespace vlk {
namespace core {

namespace {

Status validate(const RerankArgs& a) {
  const auto& q = a.queries;
  const auto& g = a.gallery;
  if (q.rows <= 0 || q.cols <= 0) {
    return Status(Code::kEmpty, "queries: " + std::to_string(q.rows) + " x " + std::to_string(q.cols) + " is empty");
  }
  if (g.rows <= 0 || g.cols <= 0) {
    return Status(Code::kEmpty, "gallery: " + std::to_string(g.rows) + " x " + std::to_string(g.cols) + " is empty");
  }
  if (q.cols != g.cols) {
    return Status(Code::kDimMismatch, "queries have dim " + std::to_string(q.cols) + " but gallery has dim " +
                                          std::to_string(g.cols));
  }
  if (g.rows > std::numeric_limits<int32_t>::max()) {
    return Status(Code::kShape, "gallery: " + std::to_string(g.rows) + " rows exceed the int32 index range");
  }
  if (a.k < 1) return Status(Code::kInvalidK, "k: " + std::to_string(a.k) + " is not >= 1");
  if (a.offsets == nullptr) return Status(Code::kInvalidArg, "candidates: no offsets");
  if (a.offsets[0] != 0) {
    return Status(Code::kInvalidArg, "candidates: offsets[0] is " + std::to_string(a.offsets[0]) + ", not 0");
  }
  for (int64_t i = 0; i < q.rows; ++i) {
    if (a.offsets[i + 1] < a.offsets[i]) {
      return Status(Code::kInvalidArg, "candidates: offsets decrease at query " + std::to_string(i) + " (" +
                                           std::to_string(a.offsets[i]) + " then " +
                                           std::to_string(a.offsets[i + 1]) + ")");
    }
  }
  if (a.offsets[q.rows] > 0 && a.rows == nullptr) return Status(Code::kInvalidArg, "candidates: no rows");
  for (int64_t i = 0; i < q.rows; ++i) {
    for (int64_t j = a.offsets[i]; j < a.offsets[i + 1]; ++j) {
      if (a.rows[j] < 0 || a.rows[j] >= g.rows) {
        return Status(Code::kInvalidArg, "candidates: query " + std::to_string(i) + " lists row " +
                                             std::to_string(a.rows[j]) + ", outside 0.." +
                                             std::to_string(g.rows - 1));
      }
    }
  }
  return Status::Ok();
}

enum class Fail { kNone = 0, kNonFinite, kTooLarge, kAborted, kOutOfMemory };

struct BlockResult {
  Fail fail = Fail::kNone;
  int64_t query = -1;
  int64_t row = -1;
};

}  // namespace

Status rerank(const RerankArgs& a, const RerankOut& out, const Context& ctx) {
  VLK_RETURN_IF_ERROR(validate(a));
  if (out.indices == nullptr || out.scores == nullptr) return Status(Code::kInvalidArg, "rerank: null output");
  if (ctx.cancelled()) return Status(Code::kAborted, "rerank aborted");
  {
    const std::string bad = find_non_finite("queries", a.queries);
    if (!bad.empty()) return Status(Code::kNonFinite, bad);
  }
  const SearchKernels& kern = search_kernels(ctx.isa);
  const int nr = kern.panel_width;
  const int64_t nq = a.queries.rows;
  const int64_t d = a.queries.cols;
  const int64_t k = a.k;

  auto run = [&](int64_t lo, int64_t hi, BlockResult* res) {
    std::vector<Cand> cands;
    std::vector<const float*> ptrs(static_cast<size_t>(nr));
    std::vector<float> dots(static_cast<size_t>(nr)), norms2(static_cast<size_t>(nr));
    for (int64_t q = lo; q < hi; ++q) {
      if (ctx.cancelled()) {
        res->fail = Fail::kAborted;
        return;
      }
      const float* qrow = a.queries.row(q);
      // |q|^2 through the same kernel, so cosine and the overflow check match search.
      ptrs[0] = qrow;
      kern.score_rows(ptrs.data(), 1, qrow, d, dots.data(), norms2.data());
      const float qn2 = norms2[0];
      if (!(qn2 <= kMaxNorm2)) {
        res->fail = Fail::kTooLarge;
        res->query = q;
        return;
      }
      const float qinv = qn2 > 0.0f ? 1.0f / std::sqrt(qn2) : 0.0f;
      cands.clear();
      const int64_t begin = a.offsets[q], end = a.offsets[q + 1];
      for (int64_t c0 = begin; c0 < end; c0 += nr) {
        const int rows = static_cast<int>(std::min<int64_t>(nr, end - c0));
        for (int j = 0; j < rows; ++j) ptrs[static_cast<size_t>(j)] = a.gallery.row(a.rows[c0 + j]);
        if (!kern.score_rows(ptrs.data(), rows, qrow, d, dots.data(), norms2.data())) {
          res->fail = Fail::kNonFinite;
          res->query = q;
          return;
        }
        for (int j = 0; j < rows; ++j) {
          const int32_t row = a.rows[c0 + j];
          const float n2 = norms2[static_cast<size_t>(j)];
          if (!(n2 <= kMaxNorm2)) {
            res->fail = Fail::kTooLarge;
            res->row = row;
            return;
          }
          float key = dots[static_cast<size_t>(j)];
          if (a.metric == Metric::kCosine) {
            key = (key * qinv) * (n2 > 0.0f ? 1.0f / std::sqrt(n2) : 0.0f);
          } else if (a.metric == Metric::kL2) {
            key = static_cast<float>(-l2_exact(qrow, a.gallery.row(row), d));
          }
          cands.push_back(make_cand(key, row));
        }
      }
      std::sort(cands.begin(), cands.end(), std::greater<Cand>());
      cands.erase(std::unique(cands.begin(), cands.end()), cands.end());  // a row listed twice
      const int64_t have = std::min<int64_t>(k, static_cast<int64_t>(cands.size()));
      for (int64_t j = 0; j < k; ++j) {
        const bool valid = j < have;
        out.indices[q * k + j] = valid ? cand_idx(cands[static_cast<size_t>(j)]) : -1;
        const float key = valid ? cand_key(cands[static_cast<size_t>(j)]) : std::numeric_limits<float>::quiet_NaN();
        out.scores[q * k + j] = a.metric == Metric::kL2 ? 0.0f - key : key;  // never -0
      }
      if (out.counts != nullptr) out.counts[q] = static_cast<int32_t>(have);
    }
  };

  const int64_t blocks = std::max<int64_t>(1, std::min<int64_t>(nq, 8 * int64_t(ctx.threads)));
  std::vector<BlockResult> results(static_cast<size_t>(blocks));
  auto task = [&](int64_t b) {
    try {
      run(nq * b / blocks, nq * (b + 1) / blocks, &results[static_cast<size_t>(b)]);
    } catch (const std::bad_alloc&) {
      results[static_cast<size_t>(b)].fail = Fail::kOutOfMemory;
    }
  };
  if (ctx.pool != nullptr && ctx.threads > 1 && blocks > 1) {
    ctx.pool->parallel_for(blocks, ctx.threads, task);
  } else {
    for (int64_t b = 0; b < blocks; ++b) task(b);
  }
  // The first failing block in query order decides the message.
  for (const BlockResult& r : results) {
    switch (r.fail) {
      case Fail::kNone: continue;
      case Fail::kAborted: return Status(Code::kAborted, "rerank aborted");
      case Fail::kOutOfMemory: return Status(Code::kOutOfMemory, "rerank: out of memory");
      case Fail::kTooLarge:
        return r.row >= 0 ? too_large("gallery", r.row) : too_large("queries", r.query);
      case Fail::kNonFinite: {
        for (int64_t j = a.offsets[r.query]; j < a.offsets[r.query + 1]; ++j) {
          const MatrixView<const float> one(a.gallery.row(a.rows[j]), 1, d);
          const std::string bad = find_non_finite("gallery", one);
          if (!bad.empty()) {
            return Status(Code::kNonFinite, "gallery: row " + std::to_string(a.rows[j]) + bad.substr(bad.find(',')));
          }
        }
        return Status(Code::kNonFinite, "gallery: a candidate row is not finite");
      }
    }
  }
  return Status::Ok();
}

}  // namespace core
}  // namespace vlk
