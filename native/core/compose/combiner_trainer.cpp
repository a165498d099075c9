// Training the combiner head (core/compose). See combiner_trainer.hpp.
#include "compose/combiner_trainer.hpp"

#include <algorithm>
#include <cmath>
#include <new>
#include <string>

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

Status CombinerTrainer::step(const float* image, const float* text, const float* target, int64_t b,
                             const CombinerTrainOptions& o, double* loss, const Context& ctx) {
  if (b < 2) return Status(Code::kInvalidArg, "batch: " + std::to_string(b) + " triplets (a contrastive step needs >= 2)");
  if (image == nullptr || text == nullptr || target == nullptr || loss == nullptr) {
    return Status(Code::kInvalidArg, "train step: null input");
  }
  for (int64_t i = 0; i < b * d_; ++i) {
    if (!std::isfinite(target[i])) return Status(Code::kNonFinite, "targets: entry " + std::to_string(i) + " is not finite");
  }
  try {
    const int64_t d = d_;
    const CombinerWeights w = weights();
    std::vector<float> out(static_cast<size_t>(b * d));
    CombinerOptions fo;
    fo.dropout = o.dropout;
    fo.seed = seed_ ^ (0xA24BAED4963EE407ull * static_cast<uint64_t>(step_ + 1));
    VLK_RETURN_IF_ERROR(combiner_forward(w, text, image, b, out.data(), fo, &cache_, ctx));
    // Normalised targets.
    std::vector<float> tn(static_cast<size_t>(b * d));
    for (int64_t i = 0; i < b; ++i) {
      double n2 = 0;
      for (int64_t j = 0; j < d; ++j) n2 += double(target[i * d + j]) * target[i * d + j];
      const double inv = 1.0 / std::max(std::sqrt(n2), 1e-12);
      for (int64_t j = 0; j < d; ++j) tn[static_cast<size_t>(i * d + j)] = static_cast<float>(target[i * d + j] * inv);
    }
    // S = out T^T.
    std::vector<float> s(static_cast<size_t>(b * b)), ds(static_cast<size_t>(b * b));
    GemmArgs g;
    g.trans_b = true;
    g.m = b;
    g.n = b;
    g.k = d;
    g.a = out.data();
    g.lda = d;
    g.b = tn.data();
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
    // dout = dS T.
    std::vector<float> dout(static_cast<size_t>(b * d));
    GemmArgs gd;
    gd.m = b;
    gd.n = d;
    gd.k = b;
    gd.a = ds.data();
    gd.lda = b;
    gd.b = tn.data();
    gd.ldb = d;
    gd.c = dout.data();
    gd.ldc = d;
    VLK_RETURN_IF_ERROR(gemm(gd, ctx));
    CombinerGrads gr{g_[0].data(), g_[1].data(), g_[2].data(), g_[3].data(), g_[4].data(),  g_[5].data(),
                     g_[6].data(), g_[7].data(), g_[8].data(), g_[9].data(), g_[10].data(), g_[11].data()};
    VLK_RETURN_IF_ERROR(combiner_backward(w, cache_, dout.data(), gr, nullptr, nullptr, ctx));
    ++step_;
    for (int i = 0; i < 12; ++i) {
      // Biases and the gate's scalar get no weight decay? PyTorch's AdamW decays every parameter
      // given to it; CLIP4Cir passes all of them, so do the same.
      adamw_step(w_[i].data(), g_[i].data(), m_[i].data(), v_[i].data(), static_cast<int64_t>(w_[i].size()), step_,
                 o.adamw);
    }
    return Status::Ok();
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "train step: out of memory for a batch of " + std::to_string(b));
  }
}

}  // namespace core
}  // namespace vlk
