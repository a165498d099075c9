// Training the combiner head in Node (core/compose): owns the weights, their gradients and AdamW
// state, and runs one contrastive step on a batch of (reference image, modification text, target
// image) features (seed 002's objective, CLIP4Cir's loss):
//   out = combiner(x_t, x_i)  (dropout on),  T = norm(x_target),  S = out T^T  (B x B)
//   loss = CE(scale S, diagonal) with label smoothing;  dout = dS T;  combiner backward; AdamW.
// Initialisation as PyTorch's nn.Linear (weights and biases uniform in +-1/sqrt(fan_in)) from a
// seed, so a run is reproducible.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "common/context.hpp"
#include "common/status.hpp"
#include "compose/combiner.hpp"
#include "optim/adamw.hpp"

namespace vlk {
namespace core {

struct CombinerTrainOptions {
  AdamWOptions adamw;
  float dropout = 0.5f;
  double scale = 100.0;          // logit scale (1 / temperature); CLIP4Cir uses 100
  double label_smoothing = 0.0;
};

class CombinerTrainer;

/// PTHA's two hops with combiner heads (the library's adaptation for one CLIP vector per item,
/// seed 001): hop 1 p = C1(mod, ref) is pulled towards sg(C1(reverse mod, target)) (MSE), hop 2
/// q = C2(mod, p) is contrasted with the targets; loss = L_itc + align_weight L_align. Inference:
/// q = C2(mod, C1(mod, ref)).
struct TwoHopOptions {
  CombinerTrainOptions base;
  double align_weight = 0.4;
};

class CombinerTrainer {
 public:
  /// d, p, h >= 1; weights initialised from seed.
  CombinerTrainer(int64_t d, int64_t p, int64_t h, uint64_t seed);

  int64_t d() const { return d_; }
  int64_t p() const { return p_; }
  int64_t h() const { return h_; }
  int64_t steps() const { return step_; }

  /// The 12 tensors in CombinerWeights order with their PyTorch names and shapes.
  struct Tensor {
    const char* name;
    std::vector<int64_t> shape;
    std::vector<float>* data;
  };
  std::vector<Tensor> tensors();
  CombinerWeights weights() const;
  /// The gradient buffers (filled by a backward) and one AdamW update of every tensor from them.
  CombinerGrads grads();
  void apply_adamw(const AdamWOptions& o);

  /// One step on B >= 2 triplets (row-major B x D each). Writes the batch loss (before the update).
  /// Errors: kEmpty/kInvalidArg (B < 2), kNonFinite (inputs), and the kernels'.
  Status step(const float* image, const float* text, const float* target, int64_t b, const CombinerTrainOptions& o,
              double* loss, const Context& ctx);

 private:
  int64_t d_, p_, h_;
  int64_t step_ = 0;
  uint64_t seed_;
  std::vector<float> w_[12], g_[12], m_[12], v_[12];
  CombinerCache cache_;
};

}  // namespace core
}  // namespace vlk

namespace vlk {
namespace core {

class TwoHopTrainer {
 public:
  TwoHopTrainer(int64_t d, int64_t p, int64_t h, uint64_t seed);
  CombinerTrainer& hop1() { return *hop1_; }
  CombinerTrainer& hop2() { return *hop2_; }
  int64_t steps() const { return step_; }
  /// One step on B >= 2 (reference, modification, target, reverse modification) rows. *loss is
  /// the total, *align the hop-1 term (before the update).
  Status step(const float* image, const float* text, const float* target, const float* reverse, int64_t b,
              const TwoHopOptions& o, double* loss, double* align, const Context& ctx);

 private:
  std::unique_ptr<CombinerTrainer> hop1_, hop2_;
  int64_t step_ = 0;
  uint64_t seed_;
  CombinerCache cache1_, cache2_;
};

}  // namespace core
}  // namespace vlk
