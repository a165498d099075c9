// Distance-weighted triplet loss (core/losses). See weighted_triplet.hpp. O(B^2) per direction,
// one thread (B is a training batch).
#include "losses/weighted_triplet.hpp"

#include <cmath>
#include <new>
#include <string>

namespace vlk {
namespace core {

namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// u in [0, 1) for one (direction, anchor, positive).
double draw(uint64_t seed, int dir, int64_t anchor, int64_t positive) {
  uint64_t h = splitmix64(seed);
  h = splitmix64(h ^ static_cast<uint64_t>(dir));
  h = splitmix64(h ^ static_cast<uint64_t>(anchor));
  h = splitmix64(h ^ static_cast<uint64_t>(positive));
  return double(h >> 11) * (1.0 / 9007199254740992.0);
}

}  // namespace

Status weighted_triplet(const WeightedTripletArgs& a, WeightedTripletOut* out) {
  if (out == nullptr) return Status(Code::kInvalidArg, "weightedTriplet: null output");
  if (a.b <= 0) return Status(Code::kEmpty, "scores: 0 x 0 is empty");
  if (a.scores == nullptr) return Status(Code::kInvalidArg, "scores: null");
  if (!std::isfinite(a.margin)) return Status(Code::kInvalidArg, "margin: " + std::to_string(a.margin) + " is not finite");
  if (!(a.n > 0) || !std::isfinite(a.n)) return Status(Code::kInvalidArg, "n: " + std::to_string(a.n) + " is not a finite number > 0");
  if (!(a.cutoff > 0 && a.cutoff < a.max_distance && a.max_distance <= 2)) {
    return Status(Code::kInvalidArg, "cutoff, maxDistance: need 0 < cutoff < maxDistance <= 2 (got " +
                                         std::to_string(a.cutoff) + ", " + std::to_string(a.max_distance) + ")");
  }
  const int64_t b = a.b;
  const float* s = a.scores;
  for (int64_t i = 0; i < b * b; ++i) {
    if (!std::isfinite(s[i])) {
      return Status(Code::kNonFinite, "scores: row " + std::to_string(i / b) + ", column " + std::to_string(i % b) +
                                          " is not finite");
    }
  }
  auto positive = [&](int64_t i, int64_t j) { return a.ids != nullptr ? a.ids[i] == a.ids[j] : i == j; };
  out->direction.clear();
  out->anchor.clear();
  out->positive.clear();
  out->negative.clear();
  if (out->dscores != nullptr) {
    for (int64_t i = 0; i < b * b; ++i) out->dscores[i] = 0.0f;
  }
  try {
    std::vector<double> w(static_cast<size_t>(b));
    double loss = 0;
    for (int dir = 0; dir < 2; ++dir) {
      for (int64_t an = 0; an < b; ++an) {
        // Score of the anchor with item j (row an, or column an).
        auto sc = [&](int64_t j) { return double(dir == 0 ? s[an * b + j] : s[j * b + an]); };
        double mx = -INFINITY;
        for (int64_t j = 0; j < b; ++j) {
          w[static_cast<size_t>(j)] = -INFINITY;
          if (positive(an, j)) continue;
          const double dist = std::fmax(std::sqrt(std::fmax(2.0 - 2.0 * sc(j), 0.0)), a.cutoff);
          if (!(dist < a.max_distance)) continue;
          const double lw = (2.0 - a.n) * std::log(dist) - ((a.n - 3.0) / 2.0) * std::log(1.0 - dist * dist / 4.0);
          w[static_cast<size_t>(j)] = lw;
          mx = std::fmax(mx, lw);
        }
        double total = 0;
        int64_t last = -1;
        for (int64_t j = 0; j < b; ++j) {
          double& v = w[static_cast<size_t>(j)];
          v = v == -INFINITY ? 0.0 : std::exp(v - mx);
          total += v;
          if (v > 0) last = j;
        }
        for (int64_t p = 0; p < b; ++p) {
          if (!positive(an, p)) continue;
          int64_t neg = -1;
          if (last >= 0) {
            const double target = draw(a.seed, dir, an, p) * total;
            double cum = 0;
            for (int64_t j = 0; j < b && neg < 0; ++j) {
              cum += w[static_cast<size_t>(j)];
              if (w[static_cast<size_t>(j)] > 0 && cum > target) neg = j;
            }
            if (neg < 0) neg = last;  // rounding left u * total at the very end
          }
          out->direction.push_back(dir);
          out->anchor.push_back(static_cast<int32_t>(an));
          out->positive.push_back(static_cast<int32_t>(p));
          out->negative.push_back(static_cast<int32_t>(neg));
          if (neg < 0) continue;
          const double h = a.margin + sc(neg) - sc(p);
          if (h > 0) {
            loss += h;
            if (out->dscores != nullptr) {
              float* dn = dir == 0 ? &out->dscores[an * b + neg] : &out->dscores[neg * b + an];
              float* dp = dir == 0 ? &out->dscores[an * b + p] : &out->dscores[p * b + an];
              *dn += 1.0f;
              *dp -= 1.0f;
            }
          }
        }
      }
    }
    out->loss = loss;
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "weightedTriplet: out of memory for the sampled triplets");
  }
  return Status::Ok();
}

}  // namespace core
}  // namespace vlk
