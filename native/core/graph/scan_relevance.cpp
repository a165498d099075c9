// SCAN-style cross-modal relevance (core/graph). See scan_relevance.hpp. Captions go in chunks: the
// chunk's real words (gathered, padding skipped) times every normalised region in one GEMM, then
// one task per caption for both reductions per image; each task writes row i of T2I and column i
// of I2T only. Each product entry is one fixed fp32 sequence, so the thread count changes nothing.
#include "graph/scan_relevance.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <new>
#include <string>
#include <vector>

#include "common/checked_size.hpp"
#include "graph/graph_common.hpp"

namespace vlk {
namespace core {

Status scan_relevance(const ScanRelevanceArgs& a, float* t2i, float* i2t, const Context& ctx) {
  const int64_t bt = a.captions, l = a.max_words, bi = a.images, r = a.regions_per_image, d = a.d;
  if (bt <= 0 || l <= 0 || bi <= 0 || r <= 0 || d <= 0) {
    return Status(Code::kEmpty, "scanRelevance: words " + std::to_string(bt) + " x " + std::to_string(l) + " x " +
                                    std::to_string(d) + ", regions " + std::to_string(bi) + " x " +
                                    std::to_string(r) + " x " + std::to_string(d) + ": a size is 0");
  }
  if (a.words == nullptr || a.word_lengths == nullptr || a.regions == nullptr || t2i == nullptr || i2t == nullptr) {
    return Status(Code::kInvalidArg, "scanRelevance: null argument");
  }
  if (!std::isfinite(a.negative_slope) || !(a.eps > 0) || !std::isfinite(a.eps)) {
    return Status(Code::kInvalidArg, "scanRelevance: negative slope and eps must be finite (eps > 0)");
  }
  for (int64_t i = 0; i < bt; ++i) {
    const int32_t len = a.word_lengths[i];
    if (len < 1 || len > l) {
      return Status(Code::kInvalidArg, "wordLengths[" + std::to_string(i) + "]: " + std::to_string(len) +
                                           " is not in 1.." + std::to_string(l));
    }
    VLK_RETURN_IF_ERROR(graph_detail::check_finite(("words[" + std::to_string(i) + "]").c_str(),
                                                   a.words + i * l * d, len, d));
  }
  VLK_RETURN_IF_ERROR(graph_detail::check_finite("regions (image-major rows)", a.regions, bi * r, d));
  const float slope = static_cast<float>(a.negative_slope);
  const double eps = a.eps;
  // The word-region similarity block is max(maxWords, 512) rows by every region of every image:
  // with short vectors it is far larger than either input.
  VLK_RETURN_IF_ERROR(check_alloc("scanRelevance: the word-region similarity block (max(maxWords, 512) x images x "
                                  "regionsPerImage)",
                                  {std::max<int64_t>(l, 512), bi * r}, sizeof(float)));
  try {
    std::vector<float> vn(static_cast<size_t>(bi * r * d));
    graph_detail::for_rows(bi * r, ctx, [&](int64_t row) {
      const float* v = a.regions + row * d;
      double s = 0;
      for (int64_t k = 0; k < d; ++k) s += double(v[k]) * v[k];
      const double inv = 1.0 / (std::sqrt(s) + eps);
      for (int64_t k = 0; k < d; ++k) vn[row * d + k] = static_cast<float>(v[k] * inv);
    });
    if (ctx.cancelled()) return Status(Code::kAborted, "aborted");
    // Captions in chunks of at most max(L, 512) real words: their words gathered into one block,
    // one GEMM against every region (rows split over the pool), then one task per caption.
    const int64_t cols = bi * r;
    const int64_t cap_rows = std::max<int64_t>(l, 512);
    std::vector<float> wbuf(static_cast<size_t>(cap_rows * d));
    std::vector<float> s(static_cast<size_t>(cap_rows * cols));
    std::vector<int64_t> offset(static_cast<size_t>(bt));
    for (int64_t c0 = 0; c0 < bt;) {
      int64_t c1 = c0, rows = 0;
      while (c1 < bt && rows + a.word_lengths[c1] <= cap_rows) {
        offset[c1] = rows;
        rows += a.word_lengths[c1];
        ++c1;
      }
      for (int64_t i = c0; i < c1; ++i) {
        std::copy(a.words + i * l * d, a.words + (i * l + a.word_lengths[i]) * d, wbuf.data() + offset[i] * d);
      }
      VLK_RETURN_IF_ERROR(graph_detail::matmul(false, true, rows, cols, d, wbuf.data(), vn.data(), s.data(), 0.0f, ctx));
      if (ctx.cancelled()) return Status(Code::kAborted, "aborted");
      std::atomic<bool> oom{false};
      graph_detail::for_rows(c1 - c0, ctx, [&](int64_t t) {
        const int64_t i = c0 + t;
        const int64_t len = a.word_lengths[i];
        float* si = s.data() + offset[i] * cols;
        std::vector<double> cn, rn, best;
        try {
          cn.resize(static_cast<size_t>(r));
          rn.resize(static_cast<size_t>(len));
          best.resize(static_cast<size_t>(r));
        } catch (const std::bad_alloc&) {
          oom = true;
          return;
        }
        for (int64_t e = 0; e < len * cols; ++e) si[e] = si[e] > 0 ? si[e] : si[e] * slope;
        for (int64_t j = 0; j < bi; ++j) {
          // A[w, q] = si[w * cols + j * r + q]
          const float* aj = si + j * r;
          for (int64_t q = 0; q < r; ++q) cn[q] = 0;
          for (int64_t w = 0; w < len; ++w) {
            double rs = 0;
            for (int64_t q = 0; q < r; ++q) {
              const double v = aj[w * cols + q];
              cn[q] += v * v;
              rs += v * v;
            }
            rn[w] = 1.0 / (std::sqrt(rs) + eps);  // reciprocals: one multiply per entry below
          }
          for (int64_t q = 0; q < r; ++q) {
            cn[q] = 1.0 / (std::sqrt(cn[q]) + eps);
            best[q] = -std::numeric_limits<double>::infinity();
          }
          double t2i_sum = 0;
          for (int64_t w = 0; w < len; ++w) {
            double mx = -std::numeric_limits<double>::infinity();
            for (int64_t q = 0; q < r; ++q) {
              const double v = aj[w * cols + q];
              mx = std::max(mx, v * cn[q]);
              best[q] = std::max(best[q], v * rn[w]);
            }
            t2i_sum += mx;
          }
          double i2t_sum = 0;
          for (int64_t q = 0; q < r; ++q) i2t_sum += best[q];
          t2i[i * bi + j] = static_cast<float>(t2i_sum / static_cast<double>(len));
          i2t[j * bt + i] = static_cast<float>(i2t_sum / static_cast<double>(r));
        }
      });
      if (oom) return Status(Code::kOutOfMemory, "scanRelevance: out of memory");
      c0 = c1;
    }
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "scanRelevance: out of memory");
  }
  if (ctx.cancelled()) return Status(Code::kAborted, "aborted");
  return Status::Ok();
}

}  // namespace core
}  // namespace vlk
