// k-means (core/cluster). See kmeans.hpp for the algorithm and every choice.
#include "cluster/kmeans.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <new>
#include <string>
#include <vector>

namespace vlk {
namespace core {

namespace {

constexpr int64_t kBlock = 1024;  // rows per block of the seeding and objective loops

struct SplitMix64 {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }
};

// fp32 lanes, added in float64 in a fixed order.
double sq_dist_f32(const float* a, const float* b, int64_t d) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= d; i += 8) {
    for (int l = 0; l < 8; ++l) {
      const float t = a[i + l] - b[i + l];
      acc[l] += t * t;
    }
  }
  for (int l = 0; i < d; ++i, ++l) {
    const float t = a[i] - b[i];
    acc[l] += t * t;
  }
  double s = 0;
  for (int l = 0; l < 8; ++l) s += double(acc[l]);
  return s;
}

double dot_f32(const float* a, const float* b, int64_t d) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= d; i += 8) {
    for (int l = 0; l < 8; ++l) acc[l] += a[i + l] * b[i + l];
  }
  for (int l = 0; i < d; ++i, ++l) acc[l] += a[i] * b[i];
  double s = 0;
  for (int l = 0; l < 8; ++l) s += double(acc[l]);
  return s;
}

// Exact-ish objective term in float64.
double term64(const float* x, const float* c, int64_t d, bool cosine) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  if (cosine) {
    for (; i + 4 <= d; i += 4) {
      s0 += double(x[i]) * double(c[i]);
      s1 += double(x[i + 1]) * double(c[i + 1]);
      s2 += double(x[i + 2]) * double(c[i + 2]);
      s3 += double(x[i + 3]) * double(c[i + 3]);
    }
    for (; i < d; ++i) s0 += double(x[i]) * double(c[i]);
    return std::max(0.0, 1.0 - ((s0 + s1) + (s2 + s3)));
  }
  for (; i + 4 <= d; i += 4) {
    const double t0 = double(x[i]) - double(c[i]), t1 = double(x[i + 1]) - double(c[i + 1]);
    const double t2 = double(x[i + 2]) - double(c[i + 2]), t3 = double(x[i + 3]) - double(c[i + 3]);
    s0 += t0 * t0;
    s1 += t1 * t1;
    s2 += t2 * t2;
    s3 += t3 * t3;
  }
  for (; i < d; ++i) {
    const double t = double(x[i]) - double(c[i]);
    s0 += t * t;
  }
  return (s0 + s1) + (s2 + s3);
}

void run_blocks(const Context& ctx, int64_t n, const std::function<void(int64_t)>& fn) {
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  if (ctx.pool != nullptr && ctx.threads > 1 && blocks > 1) {
    ctx.pool->parallel_for(blocks, ctx.threads, fn);
  } else {
    for (int64_t b = 0; b < blocks; ++b) fn(b);
  }
}

void normalize_row(const float* in, float* out, int64_t d) {
  double s = 0;
  for (int64_t i = 0; i < d; ++i) s += double(in[i]) * double(in[i]);
  const double inv = s > 0 ? 1.0 / std::sqrt(s) : 0.0;
  for (int64_t i = 0; i < d; ++i) out[i] = static_cast<float>(double(in[i]) * inv);
}

class Kmeans {
 public:
  Kmeans(const KmeansArgs& a, KmeansOut* out, const Context& ctx)
      : a_(a), out_(out), ctx_(ctx), n_(a.x.rows), d_(a.x.cols), k_(a.k), cosine_(a.metric == Metric::kCosine) {}

  Status run() {
    VLK_RETURN_IF_ERROR(prepare());
    if (a_.init != nullptr) {
      for (int64_t j = 0; j < k_; ++j) {
        float* c = &cent_[j * d_];
        if (cosine_) {
          normalize_row(a_.init + j * d_, c, d_);
        } else {
          std::copy(a_.init + j * d_, a_.init + (j + 1) * d_, c);
        }
      }
    } else {
      VLK_RETURN_IF_ERROR(seed());
    }
    if (ctx_.cancelled()) return Status(Code::kAborted, "kmeans aborted");
    bool converged = false;
    int64_t done = 0;
    double prev = 0;
    if (a_.iterations == 0) {
      VLK_RETURN_IF_ERROR(assign());
      for (int64_t i = 0; i < n_; ++i) assign_[i] = idx_[i];
      prev = objective();
    }
    for (int64_t t = 1; t <= a_.iterations; ++t) {
      VLK_RETURN_IF_ERROR(assign());
      if (t > 1) {
        int64_t changed = 0;
        for (int64_t i = 0; i < n_; ++i) changed += idx_[i] != assign_[i];
        if (changed == 0) {
          converged = true;
          break;
        }
      }
      for (int64_t i = 0; i < n_; ++i) assign_[i] = idx_[i];
      repair();
      update();
      const double inertia = objective();
      done = t;
      if (out_->inertia_history != nullptr) out_->inertia_history[t - 1] = inertia;
      if (a_.progress != nullptr) a_.progress(a_.progress_ctx, t, inertia);
      if (ctx_.cancelled()) return Status(Code::kAborted, "kmeans aborted");
      const bool stop = inertia == 0 || (t > 1 && a_.tolerance > 0 && prev - inertia <= a_.tolerance * prev);
      prev = inertia;
      if (stop) break;
    }
    std::copy(cent_.begin(), cent_.end(), out_->centroids);
    for (int64_t i = 0; i < n_; ++i) out_->assignments[i] = assign_[i];
    out_->inertia = prev;
    out_->iterations_run = done;
    out_->converged = converged;
    return Status::Ok();
  }

 private:
  const float* row(int64_t i) const { return cosine_ ? &xn_[i * d_] : a_.x.row(i); }

  Status prepare() {
    try {
      if (cosine_) {
        xn_.resize(static_cast<size_t>(n_ * d_));
        for (int64_t i = 0; i < n_; ++i) normalize_row(a_.x.row(i), &xn_[i * d_], d_);
      }
      cent_.assign(static_cast<size_t>(k_ * d_), 0.0f);
      assign_.assign(static_cast<size_t>(n_), 0);
      idx_.resize(static_cast<size_t>(n_));
      score_.resize(static_cast<size_t>(n_));
      dist_.resize(static_cast<size_t>(n_));
      count_.resize(static_cast<size_t>(k_));
      order_.resize(static_cast<size_t>(n_));
      offset_.resize(static_cast<size_t>(k_ + 1));
      blocksum_.resize(static_cast<size_t>((n_ + kBlock - 1) / kBlock));
    } catch (const std::bad_alloc&) {
      return Status(Code::kOutOfMemory, "kmeans: out of memory for the working buffers");
    }
    return Status::Ok();
  }

  // k-means++.
  Status seed() {
    SplitMix64 rng{a_.seed};
    std::vector<char> chosen(static_cast<size_t>(n_), 0);
    int64_t first = static_cast<int64_t>(rng.uniform() * double(n_));
    if (first >= n_) first = n_ - 1;
    int64_t pick = first;
    for (int64_t j = 0; j < k_; ++j) {
      if (j > 0) {
        double total = 0;
        for (int64_t i = 0; i < n_; ++i) total += dist_[i];
        pick = -1;
        if (total > 0) {
          const double r = rng.uniform() * total;
          double cum = 0;
          int64_t last_positive = -1;
          for (int64_t i = 0; i < n_; ++i) {
            if (dist_[i] <= 0) continue;
            last_positive = i;
            cum += dist_[i];
            if (cum > r) {
              pick = i;
              break;
            }
          }
          if (pick < 0) pick = last_positive;  // r at the very top, lost to rounding
        } else {
          rng.uniform();  // one draw per seed whatever the branch
        }
        if (pick < 0) {
          for (int64_t i = 0; i < n_; ++i) {
            if (!chosen[i]) {
              pick = i;
              break;
            }
          }
        }
      }
      chosen[pick] = 1;
      float* c = &cent_[j * d_];
      std::copy(row(pick), row(pick) + d_, c);
      if (j + 1 == k_) break;
      const bool init = j == 0;
      run_blocks(ctx_, n_, [&](int64_t b) {
        const int64_t e = std::min(n_, (b + 1) * kBlock);
        for (int64_t i = b * kBlock; i < e; ++i) {
          double v;
          if (chosen[i]) {
            v = 0;
          } else if (cosine_) {
            v = std::max(0.0, 1.0 - dot_f32(row(i), c, d_));
          } else {
            v = sq_dist_f32(row(i), c, d_);
          }
          dist_[i] = init ? v : std::min(dist_[i], v);
        }
      });
      if (ctx_.cancelled()) return Status(Code::kAborted, "kmeans aborted");
    }
    return Status::Ok();
  }

  Status assign() {
    SearchArgs s;
    s.queries = MatrixView<const float>(row(0), n_, d_, cosine_ ? d_ : a_.x.stride);
    s.gallery = MatrixView<const float>(cent_.data(), k_, d_);
    s.k = 1;
    s.metric = cosine_ ? Metric::kInnerProduct : Metric::kL2;
    SearchOut o;
    o.indices = idx_.data();
    o.scores = score_.data();
    Status st = search(s, o, ctx_);
    if (!st.ok()) {
      if (st.code == Code::kNonFinite) {
        return Status(Code::kNonFinite, "kmeans: centroid or distance overflow (" + st.message + ")");
      }
      return st;
    }
    for (int64_t i = 0; i < n_; ++i) {
      dist_[i] = cosine_ ? std::max(0.0, 1.0 - double(score_[i])) : double(score_[i]);
    }
    return Status::Ok();
  }

  void repair() {
    std::fill(count_.begin(), count_.end(), 0);
    for (int64_t i = 0; i < n_; ++i) ++count_[assign_[i]];
    for (int64_t j = 0; j < k_; ++j) {
      if (count_[j] != 0) continue;
      int64_t best = -1;
      double far = -1;
      for (int64_t i = 0; i < n_; ++i) {
        if (count_[assign_[i]] >= 2 && dist_[i] > far) {
          far = dist_[i];
          best = i;
        }
      }
      // best >= 0: k <= n, so while a cluster is empty another has >= 2 members.
      --count_[assign_[best]];
      assign_[best] = static_cast<int32_t>(j);
      count_[j] = 1;
      dist_[best] = 0;
    }
  }

  void update() {
    offset_[0] = 0;
    for (int64_t j = 0; j < k_; ++j) offset_[j + 1] = offset_[j] + count_[j];
    std::vector<int64_t> fill(offset_.begin(), offset_.end() - 1);
    for (int64_t i = 0; i < n_; ++i) order_[fill[assign_[i]]++] = i;
    const int64_t chunk = 16;  // clusters per task
    const int64_t tasks = (k_ + chunk - 1) / chunk;
    auto fn = [&](int64_t t) {
      std::vector<double> sum(static_cast<size_t>(d_));
      const int64_t je = std::min(k_, (t + 1) * chunk);
      for (int64_t j = t * chunk; j < je; ++j) {
        std::fill(sum.begin(), sum.end(), 0.0);
        for (int64_t m = offset_[j]; m < offset_[j + 1]; ++m) {
          const float* x = row(order_[m]);
          for (int64_t e = 0; e < d_; ++e) sum[e] += double(x[e]);
        }
        float* c = &cent_[j * d_];
        if (cosine_) {
          double s = 0;
          for (int64_t e = 0; e < d_; ++e) s += sum[e] * sum[e];
          if (!(s > 0)) continue;  // keep the previous centroid
          const double inv = 1.0 / std::sqrt(s);
          for (int64_t e = 0; e < d_; ++e) c[e] = static_cast<float>(sum[e] * inv);
        } else {
          const double inv = 1.0 / double(offset_[j + 1] - offset_[j]);
          for (int64_t e = 0; e < d_; ++e) c[e] = static_cast<float>(sum[e] * inv);
        }
      }
    };
    if (ctx_.pool != nullptr && ctx_.threads > 1 && tasks > 1) {
      ctx_.pool->parallel_for(tasks, ctx_.threads, fn);
    } else {
      for (int64_t t = 0; t < tasks; ++t) fn(t);
    }
  }

  double objective() {
    run_blocks(ctx_, n_, [&](int64_t b) {
      const int64_t e = std::min(n_, (b + 1) * kBlock);
      double s = 0;
      for (int64_t i = b * kBlock; i < e; ++i) s += term64(row(i), &cent_[assign_[i] * d_], d_, cosine_);
      blocksum_[b] = s;
    });
    double total = 0;
    for (double v : blocksum_) total += v;
    return total;
  }

  const KmeansArgs& a_;
  KmeansOut* out_;
  const Context& ctx_;
  const int64_t n_, d_, k_;
  const bool cosine_;
  std::vector<float> xn_, cent_, score_;
  std::vector<int32_t> assign_, idx_;
  std::vector<double> dist_, blocksum_;
  std::vector<int64_t> count_, order_, offset_;
};

Status check_finite(const char* name, MatrixView<const float> m) {
  for (int64_t i = 0; i < m.rows; ++i) {
    const float* r = m.row(i);
    for (int64_t e = 0; e < m.cols; ++e) {
      if (!std::isfinite(r[e])) {
        return Status(Code::kNonFinite, std::string(name) + ": row " + std::to_string(i) + ", element " +
                                            std::to_string(e) + " is not finite");
      }
    }
  }
  return Status::Ok();
}

}  // namespace

Status kmeans(const KmeansArgs& a, KmeansOut* out, const Context& ctx) {
  if (a.x.rows <= 0 || a.x.cols <= 0) {
    return Status(Code::kEmpty, "kmeans: data must have >= 1 row and dim >= 1 (got " + std::to_string(a.x.rows) +
                                    " x " + std::to_string(a.x.cols) + ")");
  }
  if (a.x.data == nullptr || a.x.stride < a.x.cols) return Status(Code::kInvalidArg, "kmeans: null or short data");
  if (a.x.rows > INT32_MAX) {
    return Status(Code::kShape, "kmeans: " + std::to_string(a.x.rows) + " rows exceed the int32 assignments");
  }
  if (a.k < 1 || a.k > a.x.rows) {
    return Status(Code::kInvalidK, "k: " + std::to_string(a.k) + " is not in 1.." + std::to_string(a.x.rows) +
                                       " (the number of rows)");
  }
  if (a.metric != Metric::kL2 && a.metric != Metric::kCosine) {
    return Status(Code::kInvalidArg, std::string("metric: '") + metric_name(a.metric) + "' is not 'l2' or 'cosine'");
  }
  if (a.iterations < 0) {
    return Status(Code::kInvalidArg, "iterations: " + std::to_string(a.iterations) + " is not >= 0");
  }
  if (!(a.tolerance >= 0) || !std::isfinite(a.tolerance)) {
    return Status(Code::kInvalidArg, "tolerance: " + std::to_string(a.tolerance) + " is not a finite number >= 0");
  }
  if (out == nullptr || out->centroids == nullptr || out->assignments == nullptr) {
    return Status(Code::kInvalidArg, "kmeans: null output");
  }
  VLK_RETURN_IF_ERROR(check_finite("data", a.x));
  if (a.init != nullptr) VLK_RETURN_IF_ERROR(check_finite("init", MatrixView<const float>(a.init, a.k, a.x.cols)));
  if (ctx.cancelled()) return Status(Code::kAborted, "kmeans aborted");
  try {
    Kmeans km(a, out, ctx);
    return km.run();
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "kmeans: out of memory");
  }
}

}  // namespace core
}  // namespace vlk
