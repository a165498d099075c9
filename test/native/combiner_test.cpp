// C++ core tests of the combiner head (test/native): forward against a float64 re-implementation,
// and every gradient (12 weight tensors and both inputs) against central finite differences of
// that float64 forward, with and without dropout (same masks), B = 1 and 3; bad weights.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "common/context.hpp"
#include "common/thread_pool.hpp"
#include "compose/combiner.hpp"
#include "compose/combiner_trainer.hpp"
#include "optim/adamw.hpp"
#include "isa/isa.hpp"
#include "test_util.hpp"
#include "vlk_test.hpp"

namespace {

using vlk::Context;
using vlk::core::CombinerCache;
using vlk::core::CombinerGrads;
using vlk::core::CombinerOptions;
using vlk::core::CombinerWeights;
using vlk_test::Rng;

struct Params {
  int64_t d, p, h;
  // Order: w_tp, b_tp, w_ip, b_ip, w_c, b_c, w_g1, b_g1, w_g2, b_g2, w_o, b_o, x_t, x_i.
  std::vector<std::vector<double>> t;
  std::vector<double>& at(int i) { return t[static_cast<size_t>(i)]; }
};

const char* kNames[] = {"w_tp", "b_tp", "w_ip", "b_ip", "w_c", "b_c", "w_g1", "b_g1", "w_g2", "b_g2", "w_o", "b_o", "x_t", "x_i"};

Params make(int64_t d, int64_t p, int64_t h, int64_t b, uint64_t seed) {
  Rng rng(seed);
  Params q{d, p, h, {}};
  const int64_t sizes[] = {p * d, p, p * d, p, h * 2 * p, h, h * 2 * p, h, h, 1, d * h, d, b * d, b * d};
  for (int64_t n : sizes) {
    std::vector<double> v(static_cast<size_t>(n));
    for (auto& x : v) x = 0.6 * rng.uniform();
    q.t.push_back(v);
  }
  return q;
}

// float64 forward with given dropout masks (empty: none); returns out (B x D).
std::vector<double> ref_forward(Params& q, int64_t b, const CombinerCache* masks) {
  const int64_t d = q.d, p = q.p, h = q.h;
  auto lin = [&](const std::vector<double>& x, int64_t nin, const std::vector<double>& w, const std::vector<double>& bias,
                 int64_t nout) {
    std::vector<double> o(static_cast<size_t>(b * nout));
    for (int64_t i = 0; i < b; ++i)
      for (int64_t j = 0; j < nout; ++j) {
        double s = bias[static_cast<size_t>(j)];
        for (int64_t c = 0; c < nin; ++c) s += x[static_cast<size_t>(i * nin + c)] * w[static_cast<size_t>(j * nin + c)];
        o[static_cast<size_t>(i * nout + j)] = s;
      }
    return o;
  };
  auto act = [&](std::vector<double> v, const std::vector<float>* m) {
    for (size_t e = 0; e < v.size(); ++e) {
      v[e] = v[e] > 0 ? v[e] : 0;
      if (m != nullptr && !m->empty()) v[e] *= (*m)[e];
    }
    return v;
  };
  const std::vector<double> pt = act(lin(q.at(12), d, q.at(0), q.at(1), p), masks ? &masks->mask_t : nullptr);
  const std::vector<double> pi = act(lin(q.at(13), d, q.at(2), q.at(3), p), masks ? &masks->mask_i : nullptr);
  std::vector<double> c(static_cast<size_t>(b * 2 * p));
  for (int64_t i = 0; i < b; ++i)
    for (int64_t j = 0; j < p; ++j) {
      c[static_cast<size_t>(i * 2 * p + j)] = pt[static_cast<size_t>(i * p + j)];
      c[static_cast<size_t>(i * 2 * p + p + j)] = pi[static_cast<size_t>(i * p + j)];
    }
  const std::vector<double> hh = act(lin(c, 2 * p, q.at(4), q.at(5), h), masks ? &masks->mask_h : nullptr);
  const std::vector<double> g = act(lin(c, 2 * p, q.at(6), q.at(7), h), masks ? &masks->mask_g : nullptr);
  std::vector<double> y = lin(hh, h, q.at(10), q.at(11), d);
  std::vector<double> out(y.size());
  for (int64_t i = 0; i < b; ++i) {
    double z = q.at(9)[0];
    for (int64_t j = 0; j < h; ++j) z += g[static_cast<size_t>(i * h + j)] * q.at(8)[static_cast<size_t>(j)];
    const double lam = 1 / (1 + std::exp(-z));
    double n2 = 0;
    for (int64_t j = 0; j < d; ++j) {
      double& v = y[static_cast<size_t>(i * d + j)];
      v += lam * q.at(12)[static_cast<size_t>(i * d + j)] + (1 - lam) * q.at(13)[static_cast<size_t>(i * d + j)];
      n2 += v * v;
    }
    for (int64_t j = 0; j < d; ++j) out[static_cast<size_t>(i * d + j)] = y[static_cast<size_t>(i * d + j)] / std::sqrt(n2);
  }
  return out;
}

double rel(const std::vector<double>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += a[i] * a[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

}  // namespace

VLK_TEST(combiner_forward_and_backward_match_float64) {
  Context ctx;
  ctx.pool = &vlk::global_pool();
  ctx.threads = 2;
  ctx.isa = vlk::detected_isa();
  for (const int64_t b : {int64_t{1}, int64_t{3}}) {
    for (const float dropout : {0.0f, 0.5f}) {
      const int64_t d = 5, p = 6, h = 7;
      Params q = make(d, p, h, b, static_cast<uint64_t>(b * 10 + (dropout > 0)));
      std::vector<std::vector<float>> f;
      for (auto& v : q.t) f.emplace_back(v.begin(), v.end());
      CombinerWeights w{d, p, h, f[0].data(), f[1].data(), f[2].data(), f[3].data(), f[4].data(), f[5].data(),
                        f[6].data(), f[7].data(), f[8].data(), f[9].data(), f[10].data(), f[11].data()};
      std::vector<float> out(static_cast<size_t>(b * d));
      CombinerCache cache;
      CombinerOptions opt;
      opt.dropout = dropout;
      opt.seed = 1234;
      VLK_CHECK(vlk::core::combiner_forward(w, f[12].data(), f[13].data(), b, out.data(), opt, &cache, ctx).ok());
      const std::vector<double> want = ref_forward(q, b, dropout > 0 ? &cache : nullptr);
      VLK_CHECK(rel(want, out) < 1e-5) << "forward " << rel(want, out);
      // L = sum r . out for a fixed random r: dout = r.
      Rng rng(99);
      std::vector<float> r(out.size());
      for (auto& x : r) x = rng.uniform();
      std::vector<std::vector<float>> grads;
      for (auto& v : f) grads.emplace_back(v.size());
      CombinerGrads g{grads[0].data(), grads[1].data(), grads[2].data(), grads[3].data(), grads[4].data(), grads[5].data(),
                      grads[6].data(), grads[7].data(), grads[8].data(), grads[9].data(), grads[10].data(), grads[11].data()};
      VLK_CHECK(vlk::core::combiner_backward(w, cache, r.data(), g, grads[12].data(), grads[13].data(), ctx).ok());
      auto loss = [&]() {
        const std::vector<double> o = ref_forward(q, b, dropout > 0 ? &cache : nullptr);
        double l = 0;
        for (size_t i = 0; i < o.size(); ++i) l += r[i] * o[i];
        return l;
      };
      for (int t = 0; t < 14; ++t) {
        std::vector<double> num(q.at(t).size());
        for (size_t i = 0; i < num.size(); ++i) {
          const double x = q.at(t)[i];
          q.at(t)[i] = x + 1e-6;
          const double lp = loss();
          q.at(t)[i] = x - 1e-6;
          const double lm = loss();
          q.at(t)[i] = x;
          num[i] = (lp - lm) / 2e-6;
        }
        VLK_CHECK(rel(num, grads[static_cast<size_t>(t)]) < 1e-3)
            << kNames[t] << " (B " << b << ", dropout " << dropout << "): " << rel(num, grads[static_cast<size_t>(t)]);
      }
    }
  }
}

VLK_TEST(combiner_rejects_bad_weights) {
  std::vector<float> x(100, 0.1f);
  CombinerWeights w{2, 3, 4, x.data(), x.data(), x.data(), x.data(), x.data(), x.data(), x.data(), x.data(),
                    x.data(), x.data(), x.data(), nullptr};
  const vlk::Status st = vlk::core::validate_combiner(w);
  VLK_CHECK(st.code == vlk::Code::kInvalidArg && st.message.find("output_layer.bias") != std::string::npos) << st.message;
  w.b_o = x.data();
  x[0] = NAN;
  VLK_CHECK(vlk::core::validate_combiner(w).code == vlk::Code::kNonFinite);
}

VLK_TEST(combiner_trainer_lowers_the_loss_and_adamw_matches_pytorch) {
  // AdamW against the formula, two steps, one element.
  {
    float p = 1.0f, m = 0.0f, v = 0.0f;
    const float g1 = 0.5f, g2 = -0.25f;
    vlk::core::AdamWOptions o;
    o.lr = 0.1;
    o.weight_decay = 0.01;
    vlk::core::adamw_step(&p, &g1, &m, &v, 1, 1, o);
    double pe = 1.0 - 0.1 * 0.01 * 1.0;
    double me = 0.1 * 0.5, ve = 0.001 * 0.25;
    pe -= 0.1 * (me / 0.1) / (std::sqrt(ve / 0.001) + 1e-8);
    VLK_CHECK(std::fabs(p - pe) < 1e-6) << p << " vs " << pe;
    vlk::core::adamw_step(&p, &g2, &m, &v, 1, 2, o);
    pe -= 0.1 * 0.01 * pe;
    me = 0.9 * me + 0.1 * g2;
    ve = 0.999 * ve + 0.001 * g2 * g2;
    pe -= 0.1 * (me / (1 - 0.81)) / (std::sqrt(ve / (1 - 0.999 * 0.999)) + 1e-8);
    VLK_CHECK(std::fabs(p - pe) < 1e-6) << p << " vs " << pe;
  }
  // A fixed batch: the loss must fall well below its start.
  Context ctx;
  ctx.pool = &vlk::global_pool();
  ctx.threads = 2;
  ctx.isa = vlk::detected_isa();
  const int64_t d = 16, b = 32;
  vlk::core::CombinerTrainer tr(d, 4 * d, 8 * d, 5);
  Rng rng(3);
  std::vector<float> im(static_cast<size_t>(b * d)), tx(im.size()), tg(im.size());
  for (auto& x : im) x = rng.uniform();
  for (auto& x : tx) x = rng.uniform();
  for (auto& x : tg) x = rng.uniform();
  vlk::core::CombinerTrainOptions o;
  o.adamw.lr = 1e-3;
  o.dropout = 0.0f;
  o.scale = 10;
  double first = 0, last = 0;
  for (int s = 0; s < 60; ++s) {
    double loss = 0;
    VLK_CHECK(tr.step(im.data(), tx.data(), tg.data(), b, o, &loss, ctx).ok());
    if (s == 0) first = loss;
    last = loss;
  }
  VLK_CHECK(last < 0.5 * first) << first << " -> " << last;
  VLK_CHECK(tr.steps() == 60);
}
