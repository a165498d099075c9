// Training the combiner head (core/compose). See combiner_trainer.hpp.
#include "compose/combiner_trainer.hpp"

#include <algorithm>
#include <cmath>
#include <new>
#include <string>

#include "common/checked_size.hpp"
#include "linalg/gemm.hpp"
#include "losses/info_nce.hpp"

namespace vlk {
namespace core {

namespace {

// Tensor order = CombinerWeights / CombinerGrads order.
const char* kNames[12] = {"text_projection_layer.weight", "text_projection_layer.bias",
                          "image_projection_layer.weight", "image_projection_layer.bias",
                          "combiner_layer.weight",         "combiner_layer.bias",
                          "dynamic_scalar.0.weight",       "dynamic_scalar.0.bias",
                          "dynamic_scalar.3.weight",       "dynamic_scalar.3.bias",
                          "output_layer.weight",           "output_layer.bias"};

uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

CombinerTrainer::CombinerTrainer(int64_t d, int64_t p, int64_t h, uint64_t seed) : d_(d), p_(p), h_(h), seed_(seed) {
  // (out, in) of each Linear; biases follow their weight.
  const int64_t shapes[6][2] = {{p, d}, {p, d}, {h, 2 * p}, {h, 2 * p}, {1, h}, {d, h}};
  uint64_t s = seed;
  for (int layer = 0; layer < 6; ++layer) {
    const int64_t out = shapes[layer][0], in = shapes[layer][1];
    const double bound = 1.0 / std::sqrt(double(in));
    auto& w = w_[2 * layer];
    auto& b = w_[2 * layer + 1];
    w.resize(static_cast<size_t>(out * in));
    b.resize(static_cast<size_t>(out));
    for (auto& x : w) x = static_cast<float>((double(splitmix(s) >> 11) * 0x1.0p-53 * 2 - 1) * bound);
    for (auto& x : b) x = static_cast<float>((double(splitmix(s) >> 11) * 0x1.0p-53 * 2 - 1) * bound);
  }
  for (int i = 0; i < 12; ++i) {
    g_[i].assign(w_[i].size(), 0.0f);
    m_[i].assign(w_[i].size(), 0.0f);
    v_[i].assign(w_[i].size(), 0.0f);
  }
}

std::vector<CombinerTrainer::Tensor> CombinerTrainer::tensors() {
  const std::vector<int64_t> shapes[12] = {{p_, d_}, {p_}, {p_, d_}, {p_}, {h_, 2 * p_}, {h_},
                                           {h_, 2 * p_}, {h_}, {1, h_}, {1}, {d_, h_}, {d_}};
  std::vector<Tensor> t;
  for (int i = 0; i < 12; ++i) t.push_back(Tensor{kNames[i], shapes[i], &w_[i]});
  return t;
}

CombinerWeights CombinerTrainer::weights() const {
  return CombinerWeights{d_,          p_,          h_,          w_[0].data(), w_[1].data(),  w_[2].data(),
                         w_[3].data(), w_[4].data(), w_[5].data(), w_[6].data(), w_[7].data(),  w_[8].data(),
                         w_[9].data(), w_[10].data(), w_[11].data()};
}

CombinerGrads CombinerTrainer::grads() {
  return CombinerGrads{g_[0].data(), g_[1].data(), g_[2].data(), g_[3].data(), g_[4].data(),  g_[5].data(),
                       g_[6].data(), g_[7].data(), g_[8].data(), g_[9].data(), g_[10].data(), g_[11].data()};
}

void CombinerTrainer::apply_adamw(const AdamWOptions& o) {
  ++step_;
  for (int i = 0; i < 12; ++i) {
    adamw_step(w_[i].data(), g_[i].data(), m_[i].data(), v_[i].data(), static_cast<int64_t>(w_[i].size()), step_, o);
  }
}

// Normalised rows of `target` into `out`.
static void normalize_rows(const float* target, int64_t b, int64_t d, float* out) {
  for (int64_t i = 0; i < b; ++i) {
    double n2 = 0;
    for (int64_t j = 0; j < d; ++j) n2 += double(target[i * d + j]) * target[i * d + j];
    const double inv = 1.0 / std::max(std::sqrt(n2), 1e-12);
    for (int64_t j = 0; j < d; ++j) out[i * d + j] = static_cast<float>(target[i * d + j] * inv);
  }
}

// Contrastive loss of rows `q` against normalised targets `tn`: loss and dq (B x D).
static Status contrastive(const float* q, const float* tn, int64_t b, int64_t d, const CombinerTrainOptions& o,
                          double* loss, float* dq, const Context& ctx) {
  std::vector<float> s(static_cast<size_t>(b * b)), ds(static_cast<size_t>(b * b));
  GemmArgs g;
  g.trans_b = true;
  g.m = b;
  g.n = b;
  g.k = d;
  g.a = q;
  g.lda = d;
  g.b = tn;
  g.ldb = d;
  g.c = s.data();
  g.ldc = b;
  VLK_RETURN_IF_ERROR(gemm(g, ctx));
  InfoNceArgs na;
  na.scores = s.data();
  na.rows = na.cols = b;
  na.scale = o.scale;
  na.label_smoothing = o.label_smoothing;
  InfoNceOut no;
  no.dscores = ds.data();
  VLK_RETURN_IF_ERROR(info_nce(na, &no, ctx));
  *loss = no.loss;
  GemmArgs gd;
  gd.m = b;
  gd.n = d;
  gd.k = b;
  gd.a = ds.data();
  gd.lda = b;
  gd.b = tn;
  gd.ldb = d;
  gd.c = dq;
  gd.ldc = d;
  return gemm(gd, ctx);
}

TwoHopTrainer::TwoHopTrainer(int64_t d, int64_t p, int64_t h, uint64_t seed)
    : hop1_(new CombinerTrainer(d, p, h, seed)), hop2_(new CombinerTrainer(d, p, h, seed ^ 0x5DEECE66Dull)), seed_(seed) {}

Status TwoHopTrainer::step(const float* image, const float* text, const float* target, const float* reverse, int64_t b,
                           const TwoHopOptions& o, double* loss, double* align, const Context& ctx) {
  if (b < 2) return Status(Code::kInvalidArg, "batch: " + std::to_string(b) + " triplets (a contrastive step needs >= 2)");
  if (image == nullptr || text == nullptr || target == nullptr || reverse == nullptr || loss == nullptr) {
    return Status(Code::kInvalidArg, "two-hop step: null input");
  }
  VLK_RETURN_IF_ERROR(check_alloc("two-hop step: the B x B logits and their gradient", {2, b, b}, sizeof(float)));
  try {
    const int64_t d = hop1_->d();
    const CombinerWeights w1 = hop1_->weights(), w2 = hop2_->weights();
    CombinerOptions fo;
    fo.dropout = o.base.dropout;
    fo.seed = seed_ ^ (0xA24BAED4963EE407ull * static_cast<uint64_t>(step_ + 1));
    // Hop 1: p = C1(mod, ref) (kept for backward) and p' = C1(reverse mod, target) (no gradient).
    std::vector<float> p(static_cast<size_t>(b * d)), pr(p.size()), q(p.size()), tn(p.size()), dq(p.size()), dp(p.size());
    VLK_RETURN_IF_ERROR(combiner_forward(w1, text, image, b, p.data(), fo, &cache1_, ctx));
    CombinerOptions fr = fo;
    fr.seed = fo.seed ^ 0x632BE59BD9B4E019ull;
    VLK_RETURN_IF_ERROR(combiner_forward(w1, reverse, target, b, pr.data(), fr, nullptr, ctx));
    // Hop 2: q = C2(mod, p), contrasted with the targets.
    CombinerOptions f2 = fo;
    f2.seed = fo.seed ^ 0x9E3779B97F4A7C15ull;
    VLK_RETURN_IF_ERROR(combiner_forward(w2, text, p.data(), b, q.data(), f2, &cache2_, ctx));
    normalize_rows(target, b, d, tn.data());
    double itc = 0;
    VLK_RETURN_IF_ERROR(contrastive(q.data(), tn.data(), b, d, o.base, &itc, dq.data(), ctx));
    VLK_RETURN_IF_ERROR(combiner_backward(w2, cache2_, dq.data(), hop2_->grads(), nullptr, dp.data(), ctx));
    // Hop-1 alignment: MSE(p, sg(p')) over B x D.
    double mse = 0;
    const double scale = 2.0 * o.align_weight / double(b * d);
    for (size_t i = 0; i < p.size(); ++i) {
      const double diff = double(p[i]) - pr[i];
      mse += diff * diff;
      dp[i] = static_cast<float>(dp[i] + scale * diff);
    }
    mse /= double(b * d);
    VLK_RETURN_IF_ERROR(combiner_backward(w1, cache1_, dp.data(), hop1_->grads(), nullptr, nullptr, ctx));
    hop1_->apply_adamw(o.base.adamw);
    hop2_->apply_adamw(o.base.adamw);
    ++step_;
    *loss = itc + o.align_weight * mse;
    if (align != nullptr) *align = mse;
    return Status::Ok();
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "two-hop step: out of memory for a batch of " + std::to_string(b));
  }
}

Status CombinerTrainer::step(const float* image, const float* text, const float* target, int64_t b,
                             const CombinerTrainOptions& o, double* loss, const Context& ctx) {
  if (b < 2) return Status(Code::kInvalidArg, "batch: " + std::to_string(b) + " triplets (a contrastive step needs >= 2)");
  if (image == nullptr || text == nullptr || target == nullptr || loss == nullptr) {
    return Status(Code::kInvalidArg, "train step: null input");
  }
  // The contrastive logits are B x B whatever D is.
  VLK_RETURN_IF_ERROR(check_alloc("train step: the B x B logits and their gradient", {2, b, b}, sizeof(float)));
  for (int64_t i = 0; i < b * d_; ++i) {
    if (!std::isfinite(target[i])) return Status(Code::kNonFinite, "targets: entry " + std::to_string(i) + " is not finite");
  }
  try {
    const int64_t d = d_;
    const CombinerWeights w = weights();
    std::vector<float> out(static_cast<size_t>(b * d)), tn(out.size()), dout(out.size());
    CombinerOptions fo;
    fo.dropout = o.dropout;
    fo.seed = seed_ ^ (0xA24BAED4963EE407ull * static_cast<uint64_t>(step_ + 1));
    VLK_RETURN_IF_ERROR(combiner_forward(w, text, image, b, out.data(), fo, &cache_, ctx));
    normalize_rows(target, b, d, tn.data());
    VLK_RETURN_IF_ERROR(contrastive(out.data(), tn.data(), b, d, o, loss, dout.data(), ctx));
    VLK_RETURN_IF_ERROR(combiner_backward(w, cache_, dout.data(), grads(), nullptr, nullptr, ctx));
    apply_adamw(o.adamw);
    return Status::Ok();
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "train step: out of memory for a batch of " + std::to_string(b));
  }
}

}  // namespace core
}  // namespace vlk
