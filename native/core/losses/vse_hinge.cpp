// VSE++ hinge loss (core/losses). See vse_hinge.hpp. O(B^2), one thread.
#include "losses/vse_hinge.hpp"

#include <cmath>
#include <string>

namespace vlk {
namespace core {

Status vse_hinge(const VseHingeArgs& a, VseHingeOut* out) {
  if (out == nullptr) return Status(Code::kInvalidArg, "vseHinge: null output");
  if (a.b <= 0) return Status(Code::kEmpty, "scores: 0 x 0 is empty");
  if (a.scores == nullptr) return Status(Code::kInvalidArg, "scores: null");
  if (!std::isfinite(a.margin)) return Status(Code::kInvalidArg, "margin: " + std::to_string(a.margin) + " is not finite");
  const int64_t b = a.b;
  const float* s = a.scores;
  for (int64_t i = 0; i < b * b; ++i) {
    if (!std::isfinite(s[i])) {
      return Status(Code::kNonFinite, "scores: row " + std::to_string(i / b) + ", column " + std::to_string(i % b) +
                                          " is not finite");
    }
  }
  auto negative = [&](int64_t i, int64_t j) { return i != j && !(a.ids != nullptr && a.ids[i] == a.ids[j]); };
  auto at = [&](int64_t i, int64_t j) { return double(s[i * b + j]); };
  if (out->dscores != nullptr) {
    for (int64_t i = 0; i < b * b; ++i) out->dscores[i] = 0.0f;
  }
  auto add = [&](int64_t i, int64_t j, double v) {
    if (out->dscores != nullptr) out->dscores[i * b + j] = static_cast<float>(double(out->dscores[i * b + j]) + v);
  };
  double loss = 0;
  // Direction 0: row i (image anchor, caption negatives); direction 1: column j (caption anchor).
  for (int dir = 0; dir < 2; ++dir) {
    for (int64_t i = 0; i < b; ++i) {
      auto sc = [&](int64_t j) { return dir == 0 ? at(i, j) : at(j, i); };
      const double pos = at(i, i);
      int64_t best = -1;
      for (int64_t j = 0; j < b; ++j) {
        if (negative(i, j) && (best < 0 || sc(j) > sc(best))) best = j;
      }
      int32_t* arg = dir == 0 ? out->hardest_caption : out->hardest_image;
      if (arg != nullptr) arg[i] = static_cast<int32_t>(best);
      if (best < 0) continue;
      for (int64_t j = 0; j < b; ++j) {
        if (!negative(i, j) || (a.max_violation && j != best)) continue;
        const double h = a.margin + sc(j) - pos;
        if (h > 0) {
          loss += h;
          if (dir == 0) add(i, j, 1.0);
          else add(j, i, 1.0);
          add(i, i, -1.0);
        }
      }
    }
  }
  out->loss = loss;
  return Status::Ok();
}

}  // namespace core
}  // namespace vlk
