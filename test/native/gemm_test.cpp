// C++ core tests of gemm (test/native): every transpose combination, alpha/beta, awkward sizes,
// against float64 (error within the fp32 bound), bit-identical across thread counts; bad
// arguments; and the rate of a combiner-sized product (printed).
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "common/context.hpp"
#include "common/thread_pool.hpp"
#include "isa/isa.hpp"
#include "linalg/gemm.hpp"
#include "test_util.hpp"
#include "vlk_test.hpp"

namespace {

using vlk::Context;
using vlk::Isa;
using vlk::core::GemmArgs;
using vlk_test::Rng;

Context ctx(Isa isa, int threads) {
  Context c;
  c.pool = &vlk::global_pool();
  c.threads = threads;
  c.isa = isa;
  return c;
}

}  // namespace

VLK_TEST(gemm_matches_float64_every_transpose) {
  struct S {
    int64_t m, n, k;
  };
  std::vector<Isa> isas{Isa::kScalar};
  if (vlk::detected_isa() >= Isa::kAvx2) isas.push_back(Isa::kAvx2);
  if (vlk::detected_isa() >= Isa::kAvx512) isas.push_back(Isa::kAvx512);
  for (const S s : {S{1, 1, 1}, S{7, 5, 3}, S{33, 70, 513}, S{130, 600, 300}, S{3, 1100, 17}}) {
    for (int ta = 0; ta < 2; ++ta) {
      for (int tb = 0; tb < 2; ++tb) {
        Rng rng(static_cast<uint64_t>(s.m * 31 + s.n * 7 + s.k + ta * 2 + tb));
        const int64_t lda = (ta ? s.m : s.k) + 3, ldb = (tb ? s.k : s.n) + 1, ldc = s.n + 2;
        std::vector<float> a(static_cast<size_t>((ta ? s.k : s.m) * lda)), b(static_cast<size_t>((tb ? s.n : s.k) * ldb));
        std::vector<float> c0(static_cast<size_t>(s.m * ldc));
        for (auto& x : a) x = rng.uniform();
        for (auto& x : b) x = rng.uniform();
        for (auto& x : c0) x = rng.uniform();
        const float alpha = 0.75f, beta = -0.5f;
        std::vector<float> first;
        for (Isa isa : isas) {
          for (int threads : {1, 2}) {
            std::vector<float> c = c0;
            GemmArgs g;
            g.trans_a = ta;
            g.trans_b = tb;
            g.m = s.m;
            g.n = s.n;
            g.k = s.k;
            g.alpha = alpha;
            g.beta = beta;
            g.a = a.data();
            g.lda = lda;
            g.b = b.data();
            g.ldb = ldb;
            g.c = c.data();
            g.ldc = ldc;
            VLK_CHECK(vlk::core::gemm(g, ctx(isa, threads)).ok());
            for (int64_t i = 0; i < s.m; ++i) {
              for (int64_t j = 0; j < s.n; ++j) {
                double ref = 0, mag = 0;
                for (int64_t p = 0; p < s.k; ++p) {
                  const double av = ta ? a[static_cast<size_t>(p * lda + i)] : a[static_cast<size_t>(i * lda + p)];
                  const double bv = tb ? b[static_cast<size_t>(j * ldb + p)] : b[static_cast<size_t>(p * ldb + j)];
                  ref += av * bv;
                  mag += std::fabs(av * bv);
                }
                const double want = alpha * ref + beta * c0[static_cast<size_t>(i * ldc + j)];
                const double got = c[static_cast<size_t>(i * ldc + j)];
                VLK_CHECK(std::fabs(got - want) <= 1e-6 * (s.k + 4) * (mag + 1)) << i << "," << j << ": " << got << " vs " << want;
                if (std::fabs(got - want) > 1e-6 * (s.k + 4) * (mag + 1)) return;
              }
            }
            // Thread counts give bit-identical results on one ISA.
            if (threads == 1) first = c;
            else VLK_CHECK(c == first) << "threads changed the result";
          }
        }
      }
    }
  }
}

VLK_TEST(gemm_rejects_bad_arguments) {
  float x[4] = {};
  GemmArgs g;
  g.m = g.n = g.k = 2;
  g.a = x;
  g.lda = 1;  // short
  g.b = x;
  g.ldb = 2;
  g.c = x;
  g.ldc = 2;
  VLK_CHECK(vlk::core::gemm(g, ctx(Isa::kScalar, 1)).code == vlk::Code::kInvalidArg);
  g.lda = 2;
  g.c = nullptr;
  VLK_CHECK(vlk::core::gemm(g, ctx(Isa::kScalar, 1)).code == vlk::Code::kInvalidArg);
}

VLK_TEST(gemm_rate_combiner_sized) {
  // 128 x 4096 x 4096 (a combiner hidden layer at D = 512): prints GFLOP/s; checks nothing about speed.
  const int64_t m = 128, n = 4096, k = 4096;
  std::vector<float> a(static_cast<size_t>(m * k), 0.5f), b(static_cast<size_t>(k * n), 0.25f), c(static_cast<size_t>(m * n));
  GemmArgs g;
  g.trans_b = true;  // x W^T, the layout of a PyTorch Linear
  g.m = m;
  g.n = n;
  g.k = k;
  g.a = a.data();
  g.lda = k;
  g.b = b.data();
  g.ldb = k;
  g.c = c.data();
  g.ldc = n;
  const auto t0 = std::chrono::steady_clock::now();
  VLK_CHECK(vlk::core::gemm(g, ctx(vlk::detected_isa(), 2)).ok());
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  VLK_CHECK(c[0] == 0.125f * k);
  std::printf("  gemm 128x4096x4096 (x W^T): %.1f ms, %.0f GFLOP/s\n", s * 1e3, 2.0 * m * n * k / s / 1e9);
}
