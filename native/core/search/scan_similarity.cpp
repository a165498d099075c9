// SCAN-style local scoring of candidate pairs (core/search). See scan_similarity.hpp.
#include "search/scan_similarity.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <new>
#include <string>
#include <vector>

#include "linalg/gemm.hpp"
#include "pooling/pooling_detail.hpp"
#include "search/scan_kernel.hpp"

namespace vlk {
namespace core {

namespace {

int64_t cand_begin(const ScanSimilarityArgs& a, int64_t q) {
  return a.offsets != nullptr ? a.offsets[q] : q * a.candidates;
}
int64_t cand_row(const ScanSimilarityArgs& a, int64_t q, int64_t i) {
  return a.offsets != nullptr ? a.rows[i] : q * a.candidates + (i - q * a.candidates);
}

Status validate(const ScanSimilarityArgs& a, int64_t* total) {
  if (a.q <= 0 || a.l <= 0 || a.d <= 0 || a.items <= 0 || a.r <= 0) {
    return Status(Code::kEmpty, "scanSimilarity: Q, L, D, N and R must be >= 1 (got Q = " + std::to_string(a.q) +
                                    ", L = " + std::to_string(a.l) + ", D = " + std::to_string(a.d) + ", N = " +
                                    std::to_string(a.items) + ", R = " + std::to_string(a.r) + ")");
  }
  if (a.words == nullptr || a.regions == nullptr) return Status(Code::kInvalidArg, "scanSimilarity: null input");
  if (a.k < 0) return Status(Code::kInvalidK, "scanSimilarity: k = " + std::to_string(a.k) + " is negative");
  if (!(a.lambda1 > 0) || !std::isfinite(a.lambda1) || !(a.lambda2 > 0) || !std::isfinite(a.lambda2)) {
    return Status(Code::kInvalidArg, "scanSimilarity: lambda1 and lambda2 must be finite and > 0");
  }
  if (a.offsets != nullptr) {
    if (a.offsets[0] != 0) return Status(Code::kInvalidArg, "candidates.offsets[0] must be 0");
    for (int64_t q = 0; q < a.q; ++q) {
      if (a.offsets[q + 1] < a.offsets[q]) {
        return Status(Code::kInvalidArg, "candidates.offsets decrease at " + std::to_string(q + 1));
      }
    }
    *total = a.offsets[a.q];
    if (*total > 0 && a.rows == nullptr) return Status(Code::kInvalidArg, "candidates.rows is null");
    for (int64_t i = 0; i < *total; ++i) {
      if (a.rows[i] < 0 || a.rows[i] >= a.items) {
        return Status(Code::kInvalidArg, "candidates.rows[" + std::to_string(i) + "] = " + std::to_string(a.rows[i]) +
                                             " is outside 0.." + std::to_string(a.items - 1));
      }
    }
  } else {
    if (a.candidates <= 0 || a.items != a.q * a.candidates) {
      return Status(Code::kInvalidArg, "scanSimilarity: dense regions need N = Q x C (got N = " +
                                           std::to_string(a.items) + ", Q = " + std::to_string(a.q) + ", C = " +
                                           std::to_string(a.candidates) + ")");
    }
    *total = a.q * a.candidates;
  }
  VLK_RETURN_IF_ERROR(gl_detail::check_lengths("wordLengths", a.word_lengths, a.q, a.l));
  VLK_RETURN_IF_ERROR(gl_detail::check_tokens("words", a.words, a.word_lengths, a.q, a.l, a.d));
  return gl_detail::check_finite("regions", a.regions, a.items * a.r, a.d);
}

struct Scratch {
  std::vector<float> wt, a0, at, u, att, alpha_f;
  std::vector<double> an, wnorm, rw;
};

}  // namespace

Status parse_scan_mode(const char* name, ScanMode* out) {
  const std::string s = name == nullptr ? "" : name;
  if (s == "t2i-lse") *out = ScanMode::kT2iLse;
  else if (s == "t2i-mean") *out = ScanMode::kT2iMean;
  else if (s == "mean-max") *out = ScanMode::kMeanMax;
  else return Status(Code::kInvalidArg, "mode: '" + s + "' is not 't2i-lse', 't2i-mean' or 'mean-max'");
  return Status::Ok();
}

Status scan_similarity(const ScanSimilarityArgs& a, const ScanSimilarityOut& out, const Context& ctx) {
  int64_t total = 0;
  VLK_RETURN_IF_ERROR(validate(a, &total));
  if (out.scores == nullptr) return Status(Code::kInvalidArg, "scanSimilarity: null scores");
  if (a.k > 0 && (out.positions == nullptr || out.indices == nullptr || out.top_scores == nullptr ||
                  out.counts == nullptr)) {
    return Status(Code::kInvalidArg, "scanSimilarity: null top-k outputs");
  }
  const int64_t R = a.r, D = a.d, L = a.l;
  const bool t2i = a.mode != ScanMode::kMeanMax;
  // Grams V V^T once per used region set when candidates repeat enough to pay for them.
  std::vector<float> gram;
  std::vector<int64_t> gram_slot;
  bool use_gram = false;
  if (t2i) {
    std::vector<char> used(static_cast<size_t>(a.items), 0);
    int64_t nused = 0;
    for (int64_t q = 0; q < a.q; ++q) {
      const int64_t b0 = cand_begin(a, q), b1 = a.offsets ? a.offsets[q + 1] : b0 + a.candidates;
      for (int64_t i = b0; i < b1; ++i) {
        const int64_t row = cand_row(a, q, i);
        if (!used[row]) {
          used[row] = 1;
          ++nused;
        }
      }
    }
    use_gram = total * L > nused * R;
    if (use_gram) {
      try {
        gram_slot.assign(static_cast<size_t>(a.items), -1);
        gram.resize(static_cast<size_t>(nused * R * R));
      } catch (const std::bad_alloc&) {
        return Status(Code::kOutOfMemory, "scanSimilarity: out of memory for the region Gram matrices");
      }
      std::vector<int64_t> list;
      for (int64_t j = 0; j < a.items; ++j) {
        if (used[j]) {
          gram_slot[j] = static_cast<int64_t>(list.size());
          list.push_back(j);
        }
      }
      std::atomic<bool> failed{false};
      const Context one = gl_detail::serial(ctx);
      gl_detail::parallel(ctx, nused, [&](int64_t s) {
        if (ctx.cancelled()) return;
        const float* v = a.regions + list[s] * R * D;
        GemmArgs g;
        g.trans_b = true;
        g.m = R;
        g.n = R;
        g.k = D;
        g.a = v;
        g.lda = D;
        g.b = v;
        g.ldb = D;
        g.c = gram.data() + s * R * R;
        g.ldc = R;
        if (!gemm(g, one).ok()) failed = true;
      });
      if (failed) return Status(Code::kOutOfMemory, "scanSimilarity: out of memory in the Gram GEMM");
      if (ctx.cancelled()) return Status(Code::kAborted, "aborted");
    }
  }

  std::atomic<bool> failed{false};
  const Context one = gl_detail::serial(ctx);
  const ScanKernels& kern = ctx.isa == Isa::kAvx512 ? scan_kernels_avx512()
                            : ctx.isa == Isa::kAvx2 ? scan_kernels_avx2()
                                                    : scan_kernels_scalar();
  gl_detail::parallel(ctx, a.q, [&](int64_t q) {
    if (failed || ctx.cancelled()) return;
    const int64_t lq = a.word_lengths == nullptr ? L : a.word_lengths[q];
    const int64_t blocks = (lq + kScanLanes - 1) / kScanLanes, lp = blocks * kScanLanes;
    const float* w = a.words + q * L * D;
    const int64_t b0 = cand_begin(a, q), b1 = a.offsets ? a.offsets[q + 1] : b0 + a.candidates;
    Scratch s;
    try {
      s.wt.assign(static_cast<size_t>(blocks * D * kScanLanes), 0.0f);
      s.a0.resize(static_cast<size_t>(R * lp));
      s.an.resize(static_cast<size_t>(lq * R));
      s.wnorm.resize(static_cast<size_t>(lq));
      s.rw.resize(static_cast<size_t>(lq));
      if (t2i && use_gram) {
        s.at.assign(static_cast<size_t>(blocks * R * kScanLanes), 0.0f);
        s.u.resize(static_cast<size_t>(R * lp));
      }
      if (t2i && !use_gram) {
        s.att.resize(static_cast<size_t>(lq * D));
        s.alpha_f.resize(static_cast<size_t>(lq * R));
      }
    } catch (const std::bad_alloc&) {
      failed = true;
      return;
    }
    for (int64_t t = 0; t < lq; ++t) {
      double n2 = 0;
      float* wb = s.wt.data() + (t / kScanLanes) * D * kScanLanes + t % kScanLanes;
      for (int64_t e = 0; e < D; ++e) {
        n2 += double(w[t * D + e]) * w[t * D + e];
        wb[e * kScanLanes] = w[t * D + e];
      }
      s.wnorm[t] = std::sqrt(n2);
    }
    for (int64_t c = b0; c < b1; ++c) {
      const int64_t row = cand_row(a, q, c);
      const float* v = a.regions + row * R * D;
      kern.dots(s.wt.data(), blocks, v, R, D, D, s.a0.data());
      const float* a0 = s.a0.data();  // A0(t, r) = a0[r * lp + t]
      // A = LeakyReLU(A0), normalised over words per region.
      for (int64_t r = 0; r < R; ++r) {
        double n2 = 0;
        for (int64_t t = 0; t < lq; ++t) {
          double x = a0[r * lp + t];
          x = x > 0 ? x : 0.1 * x;
          s.an[t * R + r] = x;
          n2 += x * x;
        }
        const double inv = 1.0 / (std::sqrt(n2) + gl_detail::kNormEps);
        for (int64_t t = 0; t < lq; ++t) s.an[t * R + r] *= inv;
      }
      double score = 0;
      if (!t2i) {
        for (int64_t t = 0; t < lq; ++t) {
          double m = s.an[t * R];
          for (int64_t r = 1; r < R; ++r) m = std::max(m, s.an[t * R + r]);
          score += m;
        }
        score /= static_cast<double>(lq);
      } else {
        for (int64_t t = 0; t < lq; ++t) {
          double* al = s.an.data() + t * R;  // becomes alpha in place
          double mx = -INFINITY;
          for (int64_t r = 0; r < R; ++r) mx = std::max(mx, a.lambda1 * al[r]);
          double z = 0;
          for (int64_t r = 0; r < R; ++r) z += (al[r] = std::exp(a.lambda1 * al[r] - mx));
          double num = 0;
          for (int64_t r = 0; r < R; ++r) {
            al[r] /= z;
            num += al[r] * a0[r * lp + t];
          }
          s.rw[t] = num;  // numerator for now
          if (use_gram) {
            float* ab = s.at.data() + (t / kScanLanes) * R * kScanLanes + t % kScanLanes;
            for (int64_t r = 0; r < R; ++r) ab[r * kScanLanes] = static_cast<float>(al[r]);
          } else {
            for (int64_t r = 0; r < R; ++r) s.alpha_f[t * R + r] = static_cast<float>(al[r]);
          }
        }
        if (use_gram) {
          // u[r, t] = sum_e G[r, e] alpha[t, e]; |a_t|^2 = sum_r alpha[t, r] u[r, t].
          kern.dots(s.at.data(), blocks, gram.data() + gram_slot[row] * R * R, R, R, R, s.u.data());
          for (int64_t t = 0; t < lq; ++t) {
            const float* ab = s.at.data() + (t / kScanLanes) * R * kScanLanes + t % kScanLanes;
            double n2 = 0;
            for (int64_t r = 0; r < R; ++r) n2 += double(ab[r * kScanLanes]) * s.u[r * lp + t];
            s.rw[t] /= std::max(s.wnorm[t] * std::sqrt(std::max(n2, 0.0)), 1e-8);
          }
        } else {
          GemmArgs g2;
          g2.m = lq;
          g2.n = D;
          g2.k = R;
          g2.a = s.alpha_f.data();
          g2.lda = R;
          g2.b = v;
          g2.ldb = D;
          g2.c = s.att.data();
          g2.ldc = D;
          if (!gemm(g2, one).ok()) {
            failed = true;
            return;
          }
          for (int64_t t = 0; t < lq; ++t) {
            double n2 = 0;
            for (int64_t e = 0; e < D; ++e) n2 += double(s.att[t * D + e]) * s.att[t * D + e];
            s.rw[t] /= std::max(s.wnorm[t] * std::sqrt(n2), 1e-8);
          }
        }
        if (a.mode == ScanMode::kT2iMean) {
          for (int64_t t = 0; t < lq; ++t) score += s.rw[t];
          score /= static_cast<double>(lq);
        } else {
          double mx = -INFINITY;
          for (int64_t t = 0; t < lq; ++t) mx = std::max(mx, a.lambda2 * s.rw[t]);
          double z = 0;
          for (int64_t t = 0; t < lq; ++t) z += std::exp(a.lambda2 * s.rw[t] - mx);
          score = (mx + std::log(z)) / a.lambda2;
        }
      }
      out.scores[c] = static_cast<float>(score);
    }
    if (a.k > 0) {
      const int64_t nc = b1 - b0;
      std::vector<int64_t> ord(static_cast<size_t>(nc));
      for (int64_t i = 0; i < nc; ++i) ord[i] = i;
      const int64_t kk = std::min(a.k, nc);
      auto better = [&](int64_t x, int64_t y) {
        const float sx = out.scores[b0 + x], sy = out.scores[b0 + y];
        return sx > sy || (sx == sy && x < y);
      };
      std::partial_sort(ord.begin(), ord.begin() + kk, ord.end(), better);
      for (int64_t j = 0; j < a.k; ++j) {
        const int64_t o = q * a.k + j;
        if (j < kk) {
          out.positions[o] = static_cast<int32_t>(ord[j]);
          out.indices[o] = static_cast<int32_t>(cand_row(a, q, b0 + ord[j]));
          out.top_scores[o] = out.scores[b0 + ord[j]];
        } else {
          out.positions[o] = -1;
          out.indices[o] = -1;
          out.top_scores[o] = NAN;
        }
      }
      out.counts[q] = static_cast<int32_t>(kk);
    }
  });
  if (failed) return Status(Code::kOutOfMemory, "scanSimilarity: out of memory");
  if (ctx.cancelled()) return Status(Code::kAborted, "aborted");
  return Status::Ok();
}

}  // namespace core
}  // namespace vlk
