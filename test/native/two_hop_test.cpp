// C++ core tests of the two-hop alignment kernels (test/native): token-max similarity forward
// against a float64 reference (values and argmax), its backward and the contrastive loss's backward
// against central finite differences of float64 forwards, at random shapes with B = 1 included,
// label smoothing and temperature; bad inputs give typed errors.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "common/context.hpp"
#include "common/status.hpp"
#include "common/thread_pool.hpp"
#include "compose/token_max_similarity.hpp"
#include "losses/info_nce.hpp"
#include "losses/prototype_alignment.hpp"
#include "test_util.hpp"
#include "vlk_test.hpp"

namespace {

using vlk::Code;
using vlk::Context;
using vlk::core::InfoNceArgs;
using vlk::core::InfoNceOut;
using vlk::core::TokenMaxSimilarityArgs;
using vlk_test::Rng;

Context ctx2() {
  Context c;
  c.pool = &vlk::global_pool();
  c.threads = 2;
  return c;
}

// float64 forward of S = max_k F . Z[j, k].
std::vector<double> ref_tms(const std::vector<double>& f, const std::vector<double>& z, int64_t b, int64_t m, int64_t k,
                            int64_t d, std::vector<int>* arg = nullptr) {
  std::vector<double> s(static_cast<size_t>(b * m));
  if (arg) arg->assign(static_cast<size_t>(b * m), 0);
  for (int64_t i = 0; i < b; ++i) {
    for (int64_t j = 0; j < m; ++j) {
      double best = -INFINITY;
      for (int64_t t = 0; t < k; ++t) {
        double acc = 0;
        for (int64_t c = 0; c < d; ++c) acc += f[static_cast<size_t>(i * d + c)] * z[static_cast<size_t>((j * k + t) * d + c)];
        if (acc > best) {
          best = acc;
          if (arg) (*arg)[static_cast<size_t>(i * m + j)] = static_cast<int>(t);
        }
      }
      s[static_cast<size_t>(i * m + j)] = best;
    }
  }
  return s;
}

// float64 contrastive loss (diagonal targets).
double ref_nce(const std::vector<double>& s, int64_t r, int64_t c, double scale, double eps) {
  double loss = 0;
  for (int64_t i = 0; i < r; ++i) {
    double mx = -INFINITY;
    for (int64_t j = 0; j < c; ++j) mx = std::max(mx, scale * s[static_cast<size_t>(i * c + j)]);
    double sum = 0;
    for (int64_t j = 0; j < c; ++j) sum += std::exp(scale * s[static_cast<size_t>(i * c + j)] - mx);
    const double lse = mx + std::log(sum);
    for (int64_t j = 0; j < c; ++j) {
      const double y = eps / double(c) + (i == j ? 1 - eps : 0);
      loss -= y * (scale * s[static_cast<size_t>(i * c + j)] - lse);
    }
  }
  return loss / double(r);
}

double rel_err(const std::vector<double>& want, const std::vector<float>& got) {
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    num += (want[i] - got[i]) * (want[i] - got[i]);
    den += want[i] * want[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

}  // namespace

VLK_TEST(token_max_similarity_forward_matches_float64) {
  struct Shape {
    int64_t b, m, k, d;
  };
  for (const Shape sh : {Shape{1, 1, 1, 1}, Shape{1, 5, 3, 7}, Shape{7, 9, 32, 33}, Shape{16, 16, 4, 256}}) {
    Rng rng(static_cast<uint64_t>(sh.b * 1000 + sh.d));
    std::vector<float> f(static_cast<size_t>(sh.b * sh.d)), z(static_cast<size_t>(sh.m * sh.k * sh.d));
    for (auto& x : f) x = rng.uniform();
    for (auto& x : z) x = rng.uniform();
    std::vector<double> f64(f.begin(), f.end()), z64(z.begin(), z.end());
    std::vector<int> arg64;
    const std::vector<double> want = ref_tms(f64, z64, sh.b, sh.m, sh.k, sh.d, &arg64);
    std::vector<float> s(want.size());
    std::vector<int32_t> arg(want.size());
    TokenMaxSimilarityArgs a{f.data(), z.data(), sh.b, sh.m, sh.k, sh.d};
    VLK_CHECK(vlk::core::token_max_similarity(a, s.data(), arg.data(), ctx2()).ok());
    VLK_CHECK(rel_err(want, s) < 1e-5) << rel_err(want, s);
    for (size_t i = 0; i < arg.size(); ++i) VLK_CHECK(arg[i] == arg64[i]) << "argmax " << i;
  }
}

VLK_TEST(token_max_similarity_backward_matches_finite_differences) {
  const int64_t b = 3, m = 4, k = 5, d = 6;
  Rng rng(77);
  std::vector<float> f(static_cast<size_t>(b * d)), z(static_cast<size_t>(m * k * d)), w(static_cast<size_t>(b * m));
  for (auto& x : f) x = rng.uniform();
  for (auto& x : z) x = rng.uniform();
  for (auto& x : w) x = rng.uniform();
  std::vector<float> s(static_cast<size_t>(b * m)), df(f.size()), dz(z.size());
  std::vector<int32_t> arg(s.size());
  TokenMaxSimilarityArgs a{f.data(), z.data(), b, m, k, d};
  VLK_CHECK(vlk::core::token_max_similarity(a, s.data(), arg.data(), ctx2()).ok());
  // L = sum w . S, so dS = w.
  VLK_CHECK(vlk::core::token_max_similarity_backward(a, w.data(), arg.data(), df.data(), dz.data(), ctx2()).ok());
  std::vector<double> f64(f.begin(), f.end()), z64(z.begin(), z.end());
  auto loss = [&]() {
    const std::vector<double> sv = ref_tms(f64, z64, b, m, k, d);
    double l = 0;
    for (size_t i = 0; i < sv.size(); ++i) l += w[i] * sv[i];
    return l;
  };
  const double h = 1e-4;
  std::vector<double> num_f(f.size()), num_z(z.size());
  for (size_t i = 0; i < f.size(); ++i) {
    const double x = f64[i];
    f64[i] = x + h;
    const double lp = loss();
    f64[i] = x - h;
    const double lm = loss();
    f64[i] = x;
    num_f[i] = (lp - lm) / (2 * h);
  }
  for (size_t i = 0; i < z.size(); ++i) {
    const double x = z64[i];
    z64[i] = x + h;
    const double lp = loss();
    z64[i] = x - h;
    const double lm = loss();
    z64[i] = x;
    num_z[i] = (lp - lm) / (2 * h);
  }
  VLK_CHECK(rel_err(num_f, df) < 1e-3) << "dF " << rel_err(num_f, df);
  VLK_CHECK(rel_err(num_z, dz) < 1e-3) << "dZ " << rel_err(num_z, dz);
}

VLK_TEST(info_nce_forward_and_backward) {
  for (const int64_t n : {int64_t{1}, int64_t{2}, int64_t{9}}) {
    for (const double eps : {0.0, 0.1}) {
      Rng rng(static_cast<uint64_t>(n * 10 + eps * 100));
      std::vector<float> s(static_cast<size_t>(n * n));
      for (auto& x : s) x = rng.uniform();
      const double scale = 1 / 0.07;
      std::vector<float> ds(s.size());
      InfoNceOut out;
      out.dscores = ds.data();
      InfoNceArgs a;
      a.scores = s.data();
      a.rows = a.cols = n;
      a.scale = scale;
      a.label_smoothing = eps;
      VLK_CHECK(vlk::core::info_nce(a, &out, ctx2()).ok());
      std::vector<double> s64(s.begin(), s.end());
      VLK_CHECK(std::fabs(out.loss - ref_nce(s64, n, n, scale, eps)) < 1e-9 * (1 + std::fabs(out.loss)));
      const double h = 1e-5;
      std::vector<double> num(s.size());
      for (size_t i = 0; i < s.size(); ++i) {
        const double x = s64[i];
        s64[i] = x + h;
        const double lp = ref_nce(s64, n, n, scale, eps);
        s64[i] = x - h;
        const double lm = ref_nce(s64, n, n, scale, eps);
        s64[i] = x;
        num[i] = (lp - lm) / (2 * h);
      }
      if (n > 1 || eps > 0) VLK_CHECK(rel_err(num, ds) < 1e-3) << "n " << n << " eps " << eps << ": " << rel_err(num, ds);
      // d loss / d scale against finite differences.
      const double dsc = (ref_nce(s64, n, n, scale + 1e-4, eps) - ref_nce(s64, n, n, scale - 1e-4, eps)) / 2e-4;
      VLK_CHECK(std::fabs(dsc - out.dscale) <= 1e-3 * (std::fabs(dsc) + 1e-6)) << dsc << " vs " << out.dscale;
    }
  }
}

VLK_TEST(two_hop_kernels_reject_bad_input) {
  float f[4] = {1, 2, 3, NAN}, z[4] = {1, 2, 3, 4}, s[4] = {0, 0, 0, 0};
  int32_t arg[4] = {0, 0, 0, 7};
  TokenMaxSimilarityArgs a{f, z, 1, 1, 1, 4};
  VLK_CHECK(vlk::core::token_max_similarity(a, s, arg, ctx2()).code == Code::kNonFinite);
  a.b = 0;
  VLK_CHECK(vlk::core::token_max_similarity(a, s, arg, ctx2()).code == Code::kEmpty);
  f[3] = 4;
  TokenMaxSimilarityArgs b{f, z, 2, 2, 1, 1};
  VLK_CHECK(vlk::core::token_max_similarity_backward(b, s, arg, s, s, ctx2()).code == Code::kInvalidArg);
  InfoNceArgs n;
  n.scores = s;
  n.rows = 2;
  n.cols = 2;
  n.scale = 0;
  InfoNceOut out;
  VLK_CHECK(vlk::core::info_nce(n, &out, ctx2()).code == Code::kInvalidArg);
  n.scale = 1;
  n.label_smoothing = 1.0;
  VLK_CHECK(vlk::core::info_nce(n, &out, ctx2()).code == Code::kInvalidArg);
}

VLK_TEST(prototype_alignment_forward_and_backward) {
  for (const int64_t b : {int64_t{1}, int64_t{4}}) {
    const int64_t k = 3, kt = 5, d = 7;
    Rng rng(static_cast<uint64_t>(b + 900));
    std::vector<float> p(static_cast<size_t>(b * k * d)), t(static_cast<size_t>(b * kt * d)), dp(p.size());
    for (auto& x : p) x = rng.uniform();
    for (auto& x : t) x = rng.uniform();
    std::vector<double> p64(p.begin(), p.end());
    auto ref = [&]() {
      double s = 0;
      for (int64_t i = 0; i < b; ++i) {
        for (int64_t c = 0; c < d; ++c) {
          double mp = 0, mt = 0;
          for (int64_t j = 0; j < k; ++j) mp += p64[static_cast<size_t>((i * k + j) * d + c)];
          for (int64_t j = 0; j < kt; ++j) mt += t[static_cast<size_t>((i * kt + j) * d + c)];
          s += std::pow(mp / k - mt / kt, 2);
        }
      }
      return s / double(b * d);
    };
    vlk::core::PrototypeAlignmentArgs a{p.data(), t.data(), b, k, kt, d};
    double loss = 0;
    VLK_CHECK(vlk::core::prototype_alignment(a, &loss, dp.data()).ok());
    VLK_CHECK(std::fabs(loss - ref()) < 1e-12 * (1 + loss));
    std::vector<double> num(p.size());
    for (size_t i = 0; i < p.size(); ++i) {
      const double x = p64[i];
      p64[i] = x + 1e-5;
      const double lp = ref();
      p64[i] = x - 1e-5;
      const double lm = ref();
      p64[i] = x;
      num[i] = (lp - lm) / 2e-5;
    }
    VLK_CHECK(rel_err(num, dp) < 1e-3) << rel_err(num, dp);
  }
}
