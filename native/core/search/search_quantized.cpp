// Search over reduced-precision storage (core/search). See search_quantized.hpp for the bound and
// why the result is the fp32 top-k.
//
// Driver: queries are quantized like the gallery (per chunk) and packed in the kernel's groups;
// parts (query ranges x row ranges, as in search.cpp) run on the pool. Per (part, query) the
// accept callback keeps
//  - the largest lower bounds L seen (a buffer cut to the best k), whose k-th value t only rises;
//  - the candidates whose upper bound U reaches t (pruned as t rises);
// and sets the kernel's threshold to t minus the part's largest possible e, so rows that cannot
// reach t never leave the registers. At the end of the part the candidates are re-scored in fp32
// in decreasing U until the next U is below the k-th exact score. Parts over row ranges are merged
// like search's. Approximate mode uses the scan value as the key (e = 0) and re-scores nothing.
//
// Scan kernels per call (quant_kernels_for): AVX-512 BF16/VNNI on the avx512 path where the CPU has
// them; AVX2 + FMA on the avx2 path and on AVX-512 CPUs without them; portable otherwise.
#include "search/search_quantized.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <new>
#include <queue>
#include <string>
#include <utility>
#include <vector>

#include "isa/isa.hpp"
#include "search/search_detail.hpp"

namespace vlk {
namespace core {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr double kU = 1.0 / 16777216.0;  // 2^-24
constexpr int64_t kMaxChunk = 4096;

// Smallest float >= v (v finite, >= 0), one ulp more for float64 error in v itself.
float round_up(double v) {
  float f = static_cast<float>(v);
  if (static_cast<double>(f) < v) f = std::nextafter(f, std::numeric_limits<float>::infinity());
  return std::nextafter(f, std::numeric_limits<float>::infinity());
}

// Largest float <= v.
float round_down(double v) {
  if (std::isnan(v)) return kNegInf;
  float f = static_cast<float>(v);
  if (static_cast<double>(f) > v) f = std::nextafter(f, kNegInf);
  return f;
}

uint16_t to_bf16(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  b += 0x7FFFu + ((b >> 16) & 1u);  // round to nearest even (values are finite)
  uint16_t h = static_cast<uint16_t>(b >> 16);
  if ((h & 0x7F80u) == 0) h &= 0x8000u;  // subnormal -> signed zero: what the hardware reads (DAZ)
  return h;
}

float from_bf16(uint16_t h) {
  const uint32_t b = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

// Quantizes one vector x (float64, dim values): codes into `out` as `step`-wide units with unit
// stride `ustride` elements; returns the reconstruction's and the residual's norms.
struct QuantRow {
  float scale = 1.0f;
  int32_t csum = 0;
  double hnorm2 = 0;  // |x^|^2
  double rnorm2 = 0;  // |x - x^|^2
};

template <typename Code>
QuantRow quantize_vector(Storage s, const double* x, int64_t dim, int64_t dpad, Code* out, int64_t ustride) {
  QuantRow r;
  const int step = quant_step(s);
  auto at = [&](int64_t d) -> Code& { return out[(d / step) * ustride + d % step]; };
  if (s == Storage::kBF16) {
    for (int64_t d = 0; d < dpad; ++d) {
      const uint16_t h = d < dim ? to_bf16(static_cast<float>(x[d])) : 0;
      at(d) = static_cast<Code>(h);
      if (d < dim) {
        const double v = from_bf16(h);
        r.hnorm2 += v * v;
        r.rnorm2 += (x[d] - v) * (x[d] - v);
      }
    }
    return r;
  }
  double m = 0;
  for (int64_t d = 0; d < dim; ++d) m = std::max(m, std::fabs(x[d]));
  r.scale = m > 0 ? static_cast<float>(m / 127.0) : 0.0f;
  if (r.scale > 0 && !std::isnormal(r.scale)) r.scale = std::numeric_limits<float>::min();
  for (int64_t d = 0; d < dpad; ++d) {
    int c = 0;
    if (d < dim && r.scale > 0) {
      c = static_cast<int>(std::nearbyint(x[d] / double(r.scale)));
      c = std::min(127, std::max(-127, c));
    }
    at(d) = static_cast<Code>(c);
    r.csum += c;
    if (d < dim) {
      const double v = double(r.scale) * c;
      r.hnorm2 += v * v;
      r.rnorm2 += (x[d] - v) * (x[d] - v);
    }
  }
  return r;
}

// x = the vector the codes approximate: g (ip, l2) or g / |g| (cosine); returns |g|^2 (float64).
double scan_vector(Metric metric, const float* g, int64_t dim, double* x) {
  double n2 = 0;
  for (int64_t d = 0; d < dim; ++d) n2 += double(g[d]) * double(g[d]);
  const double inv = metric == Metric::kCosine && n2 > 0 ? 1.0 / std::sqrt(n2) : 1.0;
  for (int64_t d = 0; d < dim; ++d) x[d] = metric == Metric::kCosine ? double(g[d]) * inv : double(g[d]);
  return n2;
}

}  // namespace

const char* storage_name(Storage s) {
  switch (s) {
    case Storage::kF32: return "f32";
    case Storage::kBF16: return "bf16";
    case Storage::kI8: return "i8";
  }
  return "f32";
}

Status parse_storage(const char* name, Storage* out) {
  const std::string s = name ? name : "";
  if (s == "f32") { *out = Storage::kF32; return Status::Ok(); }
  if (s == "bf16") { *out = Storage::kBF16; return Status::Ok(); }
  if (s == "i8") { *out = Storage::kI8; return Status::Ok(); }
  return Status(Code::kInvalidArg, "storage: unknown storage '" + s + "' (expected 'f32', 'bf16' or 'i8')");
}

void quantize_rows(Storage storage, Metric metric, const float* src, int64_t n, int64_t dim, int64_t row0,
                   void* codes, float* scale, int32_t* csum, float* norm2, float* rnorm, float* hnorm,
                   float* gnorm) {
  const int64_t dpad = quant_dpad(storage, dim);
  const int step = quant_step(storage);
  std::vector<double> x(static_cast<size_t>(dim));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t row = row0 + i;
    const int64_t p = row / kQuantPanel, j = row % kQuantPanel;
    const double n2 = scan_vector(metric, src + i * dim, dim, x.data());
    QuantRow r;
    const int64_t base = p * dpad * kQuantPanel + j * step;  // element of (unit 0, lane j)
    if (storage == Storage::kI8) {
      r = quantize_vector(storage, x.data(), dim, dpad, static_cast<int8_t*>(codes) + base, int64_t(kQuantPanel) * step);
      scale[row] = r.scale;
      csum[row] = r.csum;
    } else {
      r = quantize_vector(storage, x.data(), dim, dpad, static_cast<uint16_t*>(codes) + base,
                          int64_t(kQuantPanel) * step);
    }
    if (norm2 != nullptr) norm2[row] = static_cast<float>(n2);
    rnorm[row] = round_up(std::sqrt(r.rnorm2));
    hnorm[row] = round_up(std::sqrt(r.hnorm2));
    gnorm[row] = round_up(std::sqrt(n2));  // cosine: the scale get() restores (the bound does not use it)
  }
}

void dequantize_row(const QuantGallery& g, int64_t row, float* out) {
  const int64_t dpad = quant_dpad(g.storage, g.dim);
  const int step = quant_step(g.storage);
  const int64_t p = row / kQuantPanel, j = row % kQuantPanel;
  const int64_t base = p * dpad * kQuantPanel + j * step;
  for (int64_t d = 0; d < g.dim; ++d) {
    const int64_t e = base + (d / step) * kQuantPanel * step + d % step;
    out[d] = g.storage == Storage::kI8 ? g.scale[row] * static_cast<const int8_t*>(g.codes)[e]
                                       : from_bf16(static_cast<const uint16_t*>(g.codes)[e]);
  }
}

void get_codes_row(const QuantGallery& g, int64_t row, void* out) {
  const int64_t dpad = quant_dpad(g.storage, g.dim);
  const int step = quant_step(g.storage);
  const int64_t base = (row / kQuantPanel) * dpad * kQuantPanel + (row % kQuantPanel) * step;
  for (int64_t d = 0; d < g.dim; ++d) {
    const int64_t e = base + (d / step) * kQuantPanel * step + d % step;
    if (g.storage == Storage::kI8) {
      static_cast<int8_t*>(out)[d] = static_cast<const int8_t*>(g.codes)[e];
    } else {
      static_cast<uint16_t*>(out)[d] = static_cast<const uint16_t*>(g.codes)[e];
    }
  }
}

void set_codes_row(Storage storage, const void* src, float scale_value, int64_t dim, int64_t row, void* codes,
                   float* scale, int32_t* csum, float* norm2, float* rnorm, float* hnorm, float* gnorm) {
  const int64_t dpad = quant_dpad(storage, dim);
  const int step = quant_step(storage);
  const int64_t base = (row / kQuantPanel) * dpad * kQuantPanel + (row % kQuantPanel) * step;
  double h2 = 0;
  int32_t sum = 0;
  for (int64_t d = 0; d < dpad; ++d) {
    const int64_t e = base + (d / step) * kQuantPanel * step + d % step;
    if (storage == Storage::kI8) {
      const int8_t c = d < dim ? static_cast<const int8_t*>(src)[d] : 0;
      static_cast<int8_t*>(codes)[e] = c;
      sum += c;
      const double v = double(scale_value) * c;
      h2 += v * v;
    } else {
      const uint16_t c = d < dim ? static_cast<const uint16_t*>(src)[d] : 0;
      static_cast<uint16_t*>(codes)[e] = c;
      const double v = from_bf16(c);
      h2 += v * v;
    }
  }
  if (scale != nullptr) scale[row] = scale_value;
  if (csum != nullptr) csum[row] = sum;
  if (norm2 != nullptr) norm2[row] = static_cast<float>(h2);
  rnorm[row] = 0.0f;
  hnorm[row] = round_up(std::sqrt(h2));
  gnorm[row] = hnorm[row];
}

namespace {

// Per chunk of queries: packed codes, scales and the norms the bound needs.
struct QChunk {
  int64_t q0 = 0, nq = 0;
  std::vector<uint32_t> qpack;
  std::vector<float> qscale;  // kernel q_scale
  std::vector<float> qinv;    // cosine: fp32 inverse norm as search computes it
  std::vector<double> qn2;    // |q|^2 (float64)
  std::vector<double> qx;     // |x| (1 for cosine, else |q|)
  std::vector<double> qh;     // |q^|
  std::vector<double> qr;     // |x - q^|
  std::vector<int64_t> excl_off;
  std::vector<int32_t> excl;

  bool excluded(int64_t q, int32_t row) const {
    if (excl_off.empty()) return false;
    const auto b = excl.begin() + excl_off[static_cast<size_t>(q)];
    const auto e = excl.begin() + excl_off[static_cast<size_t>(q) + 1];
    return std::binary_search(b, e, row);
  }
};

struct Shared {
  const QuantSearchArgs* args;
  const QChunk* cq;
  const SearchKernels* fk;  // fp32 kernels for the re-score
  bool exact;
  double c;                 // gamma_{dpad+8}, with margin
  double tiny;              // flush-to-zero slack
  int64_t dpad;
};

struct Part {
  const Shared* sh = nullptr;
  int64_t q_begin = 0, nq = 0;  // chunk-relative
  int64_t r_begin = 0, r_end = 0;
  int64_t k = 0;
  // Largest per-row bound terms over the part's rows.
  double rmax = 0, hmax = 0, gmax = 0, n2max = 0;
  std::vector<float> thr;
  std::vector<float> t;                       // per query: k-th largest L so far (-inf before k)
  std::vector<std::vector<float>> lows;
  std::vector<std::vector<std::pair<float, int32_t>>> cands;  // (U, row)
  std::vector<size_t> ccap;
  std::vector<std::vector<Cand>> best;        // final, sorted best first, at most k
  std::vector<int32_t> rescored;
  bool aborted = false;
  bool bad = false;

  const QuantGallery& g() const { return sh->args->gallery; }

  // Largest e over the part's rows for query q (chunk index cq_i), in key space.
  double emax(int64_t qi) const {
    const QChunk& c = *sh->cq;
    const Metric m = g().metric;
    const double qh = c.qh[qi], qx = c.qx[qi], qr = c.qr[qi];
    const double equant = qx * rmax + hmax * qr;
    const double errA = sh->c * qh * hmax;
    if (m == Metric::kL2) {
      const double kmax = 2.0 * qh * hmax * 1.01 + n2max;
      return 2 * errA + 2 * equant + 2.02 * kU * (kmax + 2 * n2max) + 1e-12 * (c.qn2[qi] + kmax + 2 * n2max) +
             sh->tiny;
    }
    const double efp = m == Metric::kCosine ? 4 * sh->c : sh->c * qx * gmax;
    return errA + equant + efp + sh->tiny;
  }

  void set_thr(int64_t q) {
    const int64_t qi = q_begin + q;
    const float tq = t[static_cast<size_t>(q)];
    if (tq == kNegInf) return;
    if (!sh->exact) {
      thr[static_cast<size_t>(q)] = g().metric == Metric::kL2 ? round_down(double(tq) + sh->cq->qn2[qi]) : tq;
      // The kernel's test is strict; keys equal to t can still win on a lower row: step down.
      thr[static_cast<size_t>(q)] = std::nextafter(thr[static_cast<size_t>(q)], kNegInf);
      return;
    }
    const double e = emax(qi) * (1 + 1e-6);
    const double base = g().metric == Metric::kL2 ? double(tq) + sh->cq->qn2[qi] : double(tq);
    thr[static_cast<size_t>(q)] = std::nextafter(round_down(base - e), kNegInf);
  }

  void cut_lows(int64_t q) {
    std::vector<float>& l = lows[static_cast<size_t>(q)];
    std::nth_element(l.begin(), l.begin() + (k - 1), l.end(), std::greater<float>());
    l.resize(static_cast<size_t>(k));
    t[static_cast<size_t>(q)] = l[static_cast<size_t>(k - 1)];
    set_thr(q);
  }

  void prune(int64_t q) {
    auto& c = cands[static_cast<size_t>(q)];
    const float tq = t[static_cast<size_t>(q)];
    c.erase(std::remove_if(c.begin(), c.end(), [tq](const std::pair<float, int32_t>& p) { return p.first < tq; }),
            c.end());
    if (c.size() * 2 > ccap[static_cast<size_t>(q)]) ccap[static_cast<size_t>(q)] *= 2;
  }

  void accept(int64_t q, int64_t row0, const float* keys, uint32_t lanes) {
    const QuantSearchArgs& a = *sh->args;
    const QChunk& c = *sh->cq;
    const QuantGallery& gal = a.gallery;
    const int64_t qi = q_begin + q;
    const Metric m = gal.metric;
    const float kthr = thr[static_cast<size_t>(q)];
    while (lanes != 0) {
      const int j = __builtin_ctz(lanes);
      lanes &= lanes - 1;
      if (!(keys[j] > kthr)) continue;
      const int64_t row = row0 + j;
      if (a.allow != nullptr && ((a.allow[row >> 6] >> (row & 63)) & 1u) == 0) continue;
      if (c.excluded(qi, static_cast<int32_t>(row))) continue;
      const double key = keys[j];
      double lo, hi;
      if (!sh->exact) {
        lo = hi = m == Metric::kL2 ? key - c.qn2[qi] : key;
      } else {
        const double hn = gal.hnorm[row], rn = gal.rnorm[row];
        const double equant = c.qx[qi] * rn + hn * c.qr[qi];
        const double errA = sh->c * c.qh[qi] * hn;
        if (m == Metric::kL2) {
          const double n2 = gal.norm2[row];
          const double ak = std::fabs(key);
          const double e = 2 * errA + 2 * equant + 2.02 * kU * (ak + 2 * n2) + 1e-12 * (c.qn2[qi] + ak + 2 * n2) +
                           sh->tiny;
          lo = key - c.qn2[qi] - e;
          hi = key - c.qn2[qi] + e;
        } else {
          const double efp = m == Metric::kCosine ? 4 * sh->c : sh->c * c.qx[qi] * gal.gnorm[row];
          const double e = errA + equant + efp + sh->tiny;
          lo = key - e;
          hi = key + e;
        }
      }
      // To fp32, outward: move by more than half an ulp first, so round-to-nearest cannot cross
      // back (cheaper than nextafter; loosens each bound by about one ulp).
      const float lf = static_cast<float>(lo - std::fabs(lo) * 1.2e-7 - 1e-37);
      const float uf = static_cast<float>(hi + std::fabs(hi) * 1.2e-7 + 1e-37);
      const float tq = t[static_cast<size_t>(q)];
      if (uf < tq) continue;
      auto& lv = lows[static_cast<size_t>(q)];
      lv.push_back(lf);
      if (lv.size() >= static_cast<size_t>(2 * k + 16)) cut_lows(q);
      auto& cv = cands[static_cast<size_t>(q)];
      cv.emplace_back(uf, static_cast<int32_t>(row));
      if (cv.size() >= ccap[static_cast<size_t>(q)]) prune(q);
    }
  }

  static void accept_thunk(void* self, int64_t q, int64_t row0, const float* keys, uint32_t lanes) {
    static_cast<Part*>(self)->accept(q, row0, keys, lanes);
  }

  // Exact re-score (or, approximate, the scan keys) into best[q].
  void finish(int64_t q) {
    const QuantSearchArgs& a = *sh->args;
    const QChunk& c = *sh->cq;
    const QuantGallery& gal = a.gallery;
    const int64_t qi = q_begin + q;
    auto& lv = lows[static_cast<size_t>(q)];
    if (lv.size() >= static_cast<size_t>(k)) cut_lows(q);
    prune(q);
    auto& cv = cands[static_cast<size_t>(q)];
    std::vector<Cand>& out = best[static_cast<size_t>(q)];
    out.clear();
    if (!sh->exact) {
      for (const auto& p : cv) out.push_back(make_cand(p.first, p.second));
      std::sort(out.begin(), out.end(), std::greater<Cand>());
      if (out.size() > static_cast<size_t>(k)) out.resize(static_cast<size_t>(k));
      return;
    }
    std::sort(cv.begin(), cv.end(), [](const std::pair<float, int32_t>& x, const std::pair<float, int32_t>& y) {
      return x.first != y.first ? x.first > y.first : x.second < y.second;
    });
    const SearchKernels& fk = *sh->fk;
    const int64_t d = gal.dim;
    const float* qrow = a.queries.row(c.q0 + qi);
    const int nr = std::min(fk.panel_width, 16);
    const float* ptrs[64] = {};
    float dots[64], n2s[64];
    std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;  // k best, worst on top
    size_t i = 0;
    int32_t count = 0;
    while (i < cv.size()) {
      if (static_cast<int64_t>(heap.size()) >= k && cv[i].first < cand_key(heap.top())) break;
      const int rows = static_cast<int>(std::min<size_t>(static_cast<size_t>(nr), cv.size() - i));
      for (int j = 0; j < rows; ++j) ptrs[j] = gal.f32 + int64_t(cv[i + j].second) * d;
      fk.score_rows(ptrs, rows, qrow, d, dots, n2s);
      for (int j = 0; j < rows; ++j) {
        const int32_t row = cv[i + j].second;
        float key = dots[j];
        if (gal.metric == Metric::kCosine) {
          key = (key * c.qinv[static_cast<size_t>(qi)]) * (n2s[j] > 0.0f ? 1.0f / std::sqrt(n2s[j]) : 0.0f);
        } else if (gal.metric == Metric::kL2) {
          key = static_cast<float>(-l2_exact(qrow, ptrs[j], d));
        }
        const Cand cd = make_cand(key, row);
        if (static_cast<int64_t>(heap.size()) < k) {
          heap.push(cd);
        } else if (cd > heap.top()) {
          heap.pop();
          heap.push(cd);
        }
      }
      count += rows;
      i += static_cast<size_t>(rows);
    }
    rescored[static_cast<size_t>(q)] = count;
    while (!heap.empty()) {
      out.push_back(heap.top());
      heap.pop();
    }
    std::reverse(out.begin(), out.end());
  }
};

// The scan kernels of an ISA path: AVX-512 BF16/VNNI where the CPU has them, else AVX2 + FMA (also
// on AVX-512 CPUs without BF16/VNNI), else portable.
const QuantKernels& quant_kernels_for(Isa isa) {
  if (isa == Isa::kAvx512 && cpu_has_avx512_bf16_vnni()) return quant_kernels_avx512();
  if (isa == Isa::kAvx2 || isa == Isa::kAvx512) return quant_kernels_avx2();
  return quant_kernels_scalar();
}

Status prepare_chunk(const QuantSearchArgs& a, const QuantKernels& qk, const SearchKernels& fk, int64_t q0,
                     int64_t nq, QChunk* c) {
  const QuantGallery& g = a.gallery;
  const int64_t d = g.dim;
  const int64_t dpad = quant_dpad(g.storage, d);
  const int step = quant_step(g.storage);
  const int64_t units = dpad / step;
  const int mr = qk.query_group;
  c->q0 = q0;
  c->nq = nq;
  c->qpack.assign(static_cast<size_t>(((nq + mr - 1) / mr) * mr * units), 0u);
  c->qscale.assign(static_cast<size_t>(nq), 1.0f);
  c->qinv.assign(static_cast<size_t>(nq), 0.0f);
  c->qn2.assign(static_cast<size_t>(nq), 0.0);
  c->qx.assign(static_cast<size_t>(nq), 0.0);
  c->qh.assign(static_cast<size_t>(nq), 0.0);
  c->qr.assign(static_cast<size_t>(nq), 0.0);
  std::vector<double> x(static_cast<size_t>(d));
  std::vector<uint8_t> codes(static_cast<size_t>(dpad) * 2);
  for (int64_t q = 0; q < nq; ++q) {
    const float* qrow = a.queries.row(q0 + q);
    const float* p1[1] = {qrow};
    float dot[64], n2s[64];  // score_rows writes a whole panel width
    fk.score_rows(p1, 1, qrow, d, dot, n2s);
    const float n2f = n2s[0];
    if (!(n2f <= kMaxNorm2)) return too_large("queries", q0 + q);
    c->qinv[static_cast<size_t>(q)] = n2f > 0.0f ? 1.0f / std::sqrt(n2f) : 0.0f;
    const double n2 = scan_vector(g.metric, qrow, d, x.data());
    c->qn2[static_cast<size_t>(q)] = n2;
    c->qx[static_cast<size_t>(q)] = g.metric == Metric::kCosine ? (n2 > 0 ? 1.0 : 0.0) : std::sqrt(n2);
    QuantRow r;
    if (g.storage == Storage::kI8) {
      r = quantize_vector(g.storage, x.data(), d, dpad, reinterpret_cast<int8_t*>(codes.data()), step);
    } else {
      r = quantize_vector(g.storage, x.data(), d, dpad, reinterpret_cast<uint16_t*>(codes.data()), step);
    }
    c->qh[static_cast<size_t>(q)] = double(round_up(std::sqrt(r.hnorm2)));
    c->qr[static_cast<size_t>(q)] = double(round_up(std::sqrt(r.rnorm2)));
    const float two = g.metric == Metric::kL2 ? 2.0f : 1.0f;
    c->qscale[static_cast<size_t>(q)] = (g.storage == Storage::kI8 ? r.scale : 1.0f) * two;
    const int64_t g0 = q / mr * mr;
    const int64_t m = std::min<int64_t>(mr, nq - g0);
    uint32_t* dst = c->qpack.data() + g0 * units;
    for (int64_t u = 0; u < units; ++u) {
      uint32_t w;
      if (g.storage == Storage::kI8) {
        const int8_t* cc = reinterpret_cast<const int8_t*>(codes.data()) + u * 4;
        w = 0;
        for (int t4 = 0; t4 < 4; ++t4) w |= static_cast<uint32_t>(static_cast<uint8_t>(cc[t4] + 128)) << (8 * t4);
      } else {
        const uint16_t* cc = reinterpret_cast<const uint16_t*>(codes.data()) + u * 2;
        w = static_cast<uint32_t>(cc[0]) | (static_cast<uint32_t>(cc[1]) << 16);
      }
      dst[u * m + (q - g0)] = w;
    }
  }
  if (a.exclude_offsets != nullptr) {
    const int64_t* off = a.exclude_offsets;
    c->excl_off.assign(static_cast<size_t>(nq) + 1, 0);
    for (int64_t q = 0; q < nq; ++q) {
      const int32_t* b = a.exclude_rows + off[q0 + q];
      const int32_t* e = a.exclude_rows + off[q0 + q + 1];
      const size_t start = c->excl.size();
      c->excl.insert(c->excl.end(), b, e);
      std::sort(c->excl.begin() + static_cast<std::ptrdiff_t>(start), c->excl.end());
      c->excl_off[static_cast<size_t>(q) + 1] = static_cast<int64_t>(c->excl.size());
    }
  }
  return Status::Ok();
}

}  // namespace

Status search_quantized(const QuantSearchArgs& a, const QuantSearchOut& out, const Context& ctx) {
  const QuantGallery& g = a.gallery;
  if (a.queries.rows <= 0 || a.queries.cols <= 0) {
    return Status(Code::kEmpty, "queries: " + std::to_string(a.queries.rows) + " x " +
                                    std::to_string(a.queries.cols) + " is empty");
  }
  if (a.queries.cols != g.dim) {
    return Status(Code::kDimMismatch, "queries have dim " + std::to_string(a.queries.cols) +
                                          " but the index has dim " + std::to_string(g.dim));
  }
  if (a.k < 1) return Status(Code::kInvalidK, "k: " + std::to_string(a.k) + " is not >= 1");
  if (out.indices == nullptr || out.scores == nullptr) return Status(Code::kInvalidArg, "search: null output");
  if (ctx.cancelled()) return Status(Code::kAborted, "search aborted");
  {
    const std::string bad = find_non_finite("queries", a.queries);
    if (!bad.empty()) return Status(Code::kNonFinite, bad);
  }
  try {
    const QuantKernels& qk = quant_kernels_for(ctx.isa);
    const SearchKernels& fk = search_kernels(ctx.isa);
    const int64_t nq_all = a.queries.rows, n = g.rows, k = a.k;
    const int64_t dpad = quant_dpad(g.storage, g.dim);
    const int64_t units = dpad / quant_step(g.storage);
    const int mr = qk.query_group;
    const int64_t width = ctx.threads;
    const int64_t panels = (n + kQuantPanel - 1) / kQuantPanel;

    Shared sh;
    sh.args = &a;
    sh.fk = &fk;
    sh.exact = g.f32 != nullptr;
    sh.dpad = dpad;
    const double nu = double(dpad + 8) * kU;
    sh.c = 1.01 * nu / (1.0 - nu);
    sh.tiny = double(dpad + 8) * std::ldexp(1.0, -124);

    const int64_t groups_all = (nq_all + mr - 1) / mr;
    const bool split_queries = width > 1 && groups_all >= 4 * width;
    const int64_t gparts = split_queries ? 1 : std::max<int64_t>(1, std::min(width, panels));
    const int64_t per_part = (panels + gparts - 1) / gparts;
    int64_t chunk = std::min<int64_t>(kMaxChunk, nq_all);
    if (chunk >= mr) chunk -= chunk % mr;

    for (int64_t q0 = 0; q0 < nq_all; q0 += chunk) {
      const int64_t nq = std::min(chunk, nq_all - q0);
      QChunk cq;
      VLK_RETURN_IF_ERROR(prepare_chunk(a, qk, fk, q0, nq, &cq));
      sh.cq = &cq;
      const int64_t groups = (nq + mr - 1) / mr;
      const int64_t qparts = split_queries ? std::min(width, groups) : 1;
      const int64_t nparts = qparts * gparts;
      std::vector<std::unique_ptr<Part>> parts(static_cast<size_t>(nparts));
      for (int64_t s = 0; s < qparts; ++s) {
        const int64_t qb = std::min(nq, (groups * s / qparts) * mr);
        const int64_t qe = std::min(nq, (groups * (s + 1) / qparts) * mr);
        for (int64_t p = 0; p < gparts; ++p) {
          auto st = std::make_unique<Part>();
          st->sh = &sh;
          st->q_begin = qb;
          st->nq = qe - qb;
          st->r_begin = std::min(n, p * per_part * kQuantPanel);
          st->r_end = std::min(n, (p + 1) * per_part * kQuantPanel);
          st->k = k;
          const size_t nqs = static_cast<size_t>(st->nq);
          st->thr.assign(nqs, kNegInf);
          st->t.assign(nqs, kNegInf);
          st->lows.resize(nqs);
          st->cands.resize(nqs);
          st->ccap.assign(nqs, static_cast<size_t>(4 * k + 64));
          st->best.resize(nqs);
          st->rescored.assign(nqs, 0);
          parts[static_cast<size_t>(s * gparts + p)] = std::move(st);
        }
      }
      auto task = [&](int64_t pi) {
        Part& part = *parts[static_cast<size_t>(pi)];
        for (int64_t r = part.r_begin; r < part.r_end; ++r) {
          part.rmax = std::max(part.rmax, double(g.rnorm[r]));
          part.hmax = std::max(part.hmax, double(g.hnorm[r]));
          part.gmax = std::max(part.gmax, double(g.gnorm[r]));
          if (g.norm2 != nullptr) part.n2max = std::max(part.n2max, double(g.norm2[r]));
        }
        QuantScanArgs sa;
        sa.units = units;
        sa.qpack = cq.qpack.data() + part.q_begin * units;
        sa.nq = part.nq;
        sa.q_scale = cq.qscale.data() + part.q_begin;
        sa.thr = part.thr.data();
        sa.sink = &part;
        sa.accept = &Part::accept_thunk;
        const int64_t panel_elems = dpad * kQuantPanel;
        const size_t esz = g.storage == Storage::kI8 ? 1 : 2;
        // The gallery's last panel may be partial: rows past g.rows can be written by an add while
        // this search runs (they are not in its snapshot), and the kernels load whole panels, so
        // that panel is scanned from a private copy of its valid rows (zeros elsewhere).
        std::vector<uint8_t> tail_codes;
        float tail_scale[kQuantPanel] = {}, tail_off[kQuantPanel] = {};
        int32_t tail_csum[kQuantPanel] = {};
        for (int64_t r0 = part.r_begin; r0 < part.r_end; r0 += kQuantPanel) {
          if (ctx.cancelled()) {
            part.aborted = true;
            return;
          }
          const int64_t p = r0 / kQuantPanel;
          const int nrows = static_cast<int>(std::min<int64_t>(kQuantPanel, part.r_end - r0));
          const uint8_t* panel = static_cast<const uint8_t*>(g.codes) + static_cast<size_t>(p * panel_elems) * esz;
          sa.nrows = nrows;
          sa.row0 = r0;
          sa.panel = panel;
          sa.lane_scale = g.storage == Storage::kI8 ? g.scale + r0 : nullptr;
          sa.lane_csum = g.storage == Storage::kI8 ? g.csum + r0 : nullptr;
          sa.lane_off = g.metric == Metric::kL2 ? g.norm2 + r0 : nullptr;
          if (nrows < kQuantPanel) {
            const size_t row_bytes = static_cast<size_t>(quant_step(g.storage)) * esz;  // one unit of one row
            tail_codes.assign(static_cast<size_t>(panel_elems) * esz + 64, 0);
            // 64-byte aligned start inside the vector for the kernels' aligned loads.
            uint8_t* dst = tail_codes.data() + ((64 - reinterpret_cast<uintptr_t>(tail_codes.data()) % 64) % 64);
            for (int64_t u = 0; u < units; ++u) {
              std::memcpy(dst + static_cast<size_t>(u * kQuantPanel) * row_bytes, panel + static_cast<size_t>(u * kQuantPanel) * row_bytes,
                          static_cast<size_t>(nrows) * row_bytes);
            }
            sa.panel = dst;
            for (int j = 0; j < nrows; ++j) {
              if (g.storage == Storage::kI8) {
                tail_scale[j] = g.scale[r0 + j];
                tail_csum[j] = g.csum[r0 + j];
              }
              if (g.metric == Metric::kL2) tail_off[j] = g.norm2[r0 + j];
            }
            if (sa.lane_scale != nullptr) sa.lane_scale = tail_scale;
            if (sa.lane_csum != nullptr) sa.lane_csum = tail_csum;
            if (sa.lane_off != nullptr) sa.lane_off = tail_off;
          }
          if (g.storage == Storage::kI8) {
            qk.scan_i8(sa);
          } else {
            qk.scan_bf16(sa);
          }
        }
        for (int64_t q = 0; q < part.nq; ++q) part.finish(q);
      };
      if (ctx.pool != nullptr && nparts > 1) {
        ctx.pool->parallel_for(nparts, static_cast<int>(width), [&](int64_t i) {
          try {
            task(i);
          } catch (const std::bad_alloc&) {
            parts[static_cast<size_t>(i)]->bad = true;
          }
        });
      } else {
        for (int64_t i = 0; i < nparts; ++i) task(i);
      }
      for (const auto& p : parts) {
        if (p->aborted) return Status(Code::kAborted, "search aborted");
        if (p->bad) return Status(Code::kOutOfMemory, "search: out of memory");
      }
      std::vector<Cand> merged;
      for (int64_t s = 0; s < qparts; ++s) {
        const Part& first = *parts[static_cast<size_t>(s * gparts)];
        for (int64_t q = 0; q < first.nq; ++q) {
          merged.clear();
          int32_t rescored = 0;
          for (int64_t p = 0; p < gparts; ++p) {
            const Part& part = *parts[static_cast<size_t>(s * gparts + p)];
            merged.insert(merged.end(), part.best[static_cast<size_t>(q)].begin(),
                          part.best[static_cast<size_t>(q)].end());
            rescored += part.rescored[static_cast<size_t>(q)];
          }
          std::sort(merged.begin(), merged.end(), std::greater<Cand>());
          const int64_t have = std::min<int64_t>(k, static_cast<int64_t>(merged.size()));
          const int64_t row = q0 + first.q_begin + q;
          for (int64_t j = 0; j < k; ++j) {
            const bool valid = j < have;
            out.indices[row * k + j] = valid ? cand_idx(merged[static_cast<size_t>(j)]) : -1;
            float key = valid ? cand_key(merged[static_cast<size_t>(j)]) : std::numeric_limits<float>::quiet_NaN();
            if (valid && g.metric == Metric::kL2) key = 0.0f - key;
            out.scores[row * k + j] = key;
          }
          if (out.counts != nullptr) out.counts[row] = static_cast<int32_t>(have);
          if (out.rescored != nullptr) out.rescored[row] = rescored;
        }
      }
    }
    return Status::Ok();
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "search: out of memory");
  }
}

}  // namespace core
}  // namespace vlk
