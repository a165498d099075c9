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
// Token-max items (tokens > 1): filters by item; the L buffer is deduplicated per item before its
// k-th value is taken; at the end the kept rows are grouped per item (U = their largest) and each
// item is re-scored over its kept rows; the merge keeps one entry per item (items straddle parts).
//
// One-shot calls (search_reduced): the gallery is quantized for the call (quantize_gallery, rows
// split over the pool, its fp32 rows used in place for the re-score), then searched as above.
//
// Scan kernels per call (quant_kernels_for): AVX-512 BF16/VNNI on the avx512 path where the CPU has
// them; AVX2 + FMA on the avx2 path and on AVX-512 CPUs without them; portable otherwise.
#include "search/search_quantized.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
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

// Token-max: one entry per item, its best (rows of one item may have entered a list several times).
void dedupe_items(std::vector<Cand>& c) {
  std::sort(c.begin(), c.end(), [](Cand a, Cand b) {
    return cand_idx(a) != cand_idx(b) ? cand_idx(a) < cand_idx(b) : a > b;
  });
  c.erase(std::unique(c.begin(), c.end(), [](Cand a, Cand b) { return cand_idx(a) == cand_idx(b); }), c.end());
}

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

// Quantizes row `row` from src (dim floats); x: dim doubles of scratch. Returns false, writing
// nothing, when the row's squared norm is not finite or above kMaxNorm2 (NaN, infinity, overflow).
bool quantize_one(Storage storage, Metric metric, const float* src, int64_t dim, int64_t dpad, int64_t row,
                  void* codes, float* scale, int32_t* csum, float* norm2, float* rnorm, float* hnorm, float* gnorm,
                  double* x) {
  const int step = quant_step(storage);
  const int64_t p = row / kQuantPanel, j = row % kQuantPanel;
  double n2 = 0;
  for (int64_t d = 0; d < dim; ++d) n2 += double(src[d]) * double(src[d]);
  if (!(n2 <= double(kMaxNorm2))) return false;
  scan_vector(metric, src, dim, x);
  QuantRow r;
  const int64_t base = p * dpad * kQuantPanel + j * step;  // element of (unit 0, lane j)
  if (storage == Storage::kI8) {
    r = quantize_vector(storage, x, dim, dpad, static_cast<int8_t*>(codes) + base, int64_t(kQuantPanel) * step);
    scale[row] = r.scale;
    csum[row] = r.csum;
  } else {
    r = quantize_vector(storage, x, dim, dpad, static_cast<uint16_t*>(codes) + base, int64_t(kQuantPanel) * step);
  }
  if (norm2 != nullptr) norm2[row] = static_cast<float>(n2);
  rnorm[row] = round_up(std::sqrt(r.rnorm2));
  hnorm[row] = round_up(std::sqrt(r.hnorm2));
  gnorm[row] = round_up(std::sqrt(n2));  // cosine: the scale get() restores (the bound does not use it)
  return true;
}

// One-shot quantization (quantize_gallery): what quantize_vector does (the same bf16 codes; int8
// codes by the reciprocal of the scale, so one may differ by one at a rounding tie), in loops the
// compiler vectorizes: eight independent float64 partial sums per norm, branch-free bf16 rounding,
// int8 rounding to nearest even by the 1.5 * 2^52 trick instead of a nearbyint call. The norms
// are float64 sums of the exact terms of the codes made here, in another order, rounded up to fp32
// with a spare ulp (round_up): they bound the same quantities (no summation order is assumed).
class FastQuantizer {
 public:
  FastQuantizer(Storage storage, Metric metric, int64_t dim)
      : storage_(storage), metric_(metric), dim_(dim), dpad_(quant_dpad(storage, dim)),
        codes_(static_cast<size_t>(quant_dpad(storage, dim)) * 2, 0) {}

  // Row `row` from src into the gallery arrays; false (nothing written) when its squared norm is not
  // finite or above kMaxNorm2.
  bool row(const float* src, int64_t row, void* codes, float* scale, int32_t* csum, float* norm2, float* rnorm,
           float* hnorm, float* gnorm) {
    constexpr int L = 8;
    const int64_t dim = dim_;
    const int64_t body = dim / L * L;
    const bool i8 = storage_ == Storage::kI8;
    const bool cosine = metric_ == Metric::kCosine;
    // |g|^2 first where the codes need it (cosine: the direction g / |g|; i8: the scale from the
    // largest |g_d|); bf16 ip / l2 sums it in the same pass as the codes.
    double a[L] = {}, mx[L] = {};
    double n2 = 0;
    const bool first_pass = cosine || i8;
    if (first_pass) {
      for (int64_t d = 0; d < body; d += L) {
        for (int l = 0; l < L; ++l) {
          const double x = src[d + l];
          a[l] += x * x;
          const double ax = std::fabs(x);
          mx[l] = ax > mx[l] ? ax : mx[l];
        }
      }
      for (int64_t d = body; d < dim; ++d) {
        const double x = src[d];
        a[d - body] += x * x;
        const double ax = std::fabs(x);
        mx[0] = ax > mx[0] ? ax : mx[0];
      }
      n2 = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
      if (!(n2 <= double(kMaxNorm2))) return false;
    }
    const double inv = cosine && n2 > 0 ? 1.0 / std::sqrt(n2) : 1.0;
    double h[L] = {}, r[L] = {};
    float row_scale = 1.0f;
    int32_t sum = 0;
    if (!i8) {
      uint16_t* c = reinterpret_cast<uint16_t*>(codes_.data());
      auto one = [&](int64_t d, int l) {
        const double x = cosine ? double(src[d]) * inv : double(src[d]);
        if (!first_pass) a[l] += x * x;
        const float xf = static_cast<float>(x);
        uint32_t b;
        std::memcpy(&b, &xf, sizeof b);
        b += 0x7FFFu + ((b >> 16) & 1u);  // round to nearest even (finite values)
        uint32_t hb = b >> 16;
        hb = (hb & 0x7F80u) == 0 ? (hb & 0x8000u) : hb;  // subnormal -> signed zero, as to_bf16
        c[d] = static_cast<uint16_t>(hb);
        const uint32_t vb = hb << 16;
        float vf;
        std::memcpy(&vf, &vb, sizeof vf);
        const double v = vf;
        h[l] += v * v;
        r[l] += (x - v) * (x - v);
      };
      for (int64_t d = 0; d < body; d += L) {
        for (int l = 0; l < L; ++l) one(d + l, l);
      }
      for (int64_t d = body; d < dim; ++d) one(d, static_cast<int>(d - body));
      for (int64_t d = dim; d < dpad_; ++d) c[d] = 0;
      if (!first_pass) {
        n2 = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
        if (!(n2 <= double(kMaxNorm2))) return false;  // nothing written to the gallery yet
      }
    } else {
      double m = 0;
      for (int l = 0; l < L; ++l) m = mx[l] > m ? mx[l] : m;
      if (cosine) m *= inv;  // rounding is monotone: the largest |g_d| * inv, as quantize_vector's
      row_scale = m > 0 ? static_cast<float>(m / 127.0) : 0.0f;
      if (row_scale > 0 && !std::isnormal(row_scale)) row_scale = std::numeric_limits<float>::min();
      const double sc = row_scale, rs = row_scale > 0 ? 1.0 : 0.0, rinv = row_scale > 0 ? 1.0 / sc : 0.0;
      int8_t* c = reinterpret_cast<int8_t*>(codes_.data());
      int32_t sums[L] = {};
      auto one = [&](int64_t d, int l) {
        const double x = cosine ? double(src[d]) * inv : double(src[d]);
        // x / scale to the nearest integer (|x / scale| <= 128): 1.5 * 2^52 rounds to an integer,
        // ties to even. By the reciprocal: a code may differ from quantize_vector's by one where
        // x / scale is within an ulp of a half; the bound terms below are of the codes made here.
        double q = x * rinv;
        q = (q + 6755399441055744.0) - 6755399441055744.0;
        q = q < -127.0 ? -127.0 : (q > 127.0 ? 127.0 : q);
        q *= rs;
        const int ci = static_cast<int>(q);
        c[d] = static_cast<int8_t>(ci);
        sums[l] += ci;
        const double v = sc * q;
        h[l] += v * v;
        r[l] += (x - v) * (x - v);
      };
      for (int64_t d = 0; d < body; d += L) {
        for (int l = 0; l < L; ++l) one(d + l, l);
      }
      for (int64_t d = body; d < dim; ++d) one(d, static_cast<int>(d - body));
      for (int64_t d = dim; d < dpad_; ++d) c[d] = 0;
      for (int l = 0; l < L; ++l) sum += sums[l];
    }
    // Units (2 bf16 or 4 int8 codes, 32 bits) to the panel: unit u of lane j at [u * 32 + j].
    const int64_t units = dpad_ / quant_step(storage_);
    uint32_t* dst = static_cast<uint32_t*>(codes) + (row / kQuantPanel) * units * kQuantPanel + row % kQuantPanel;
    const uint8_t* src_units = codes_.data();
    for (int64_t u = 0; u < units; ++u) std::memcpy(dst + u * kQuantPanel, src_units + u * 4, 4);
    const double h2 = ((h[0] + h[1]) + (h[2] + h[3])) + ((h[4] + h[5]) + (h[6] + h[7]));
    const double r2 = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    if (i8) {
      scale[row] = row_scale;
      csum[row] = sum;
    }
    if (norm2 != nullptr) norm2[row] = static_cast<float>(n2);
    rnorm[row] = round_up(std::sqrt(r2));
    hnorm[row] = round_up(std::sqrt(h2));
    gnorm[row] = round_up(std::sqrt(n2));
    return true;
  }

 private:
  Storage storage_;
  Metric metric_;
  int64_t dim_, dpad_;
  std::vector<uint8_t> codes_;  // one row's codes, row-major (dpad bf16 or int8 codes)
};

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
  std::vector<double> x(static_cast<size_t>(dim));
  for (int64_t i = 0; i < n; ++i) {
    quantize_one(storage, metric, src + i * dim, dim, dpad, row0 + i, codes, scale, csum, norm2, rnorm, hnorm, gnorm,
                 x.data());
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
  int64_t tokens = 1;                         // rows per item
  std::vector<float> thr;
  std::vector<float> t;                       // per query: k-th largest L over distinct items so
                                              // far (-inf before k items), never below tfloor
  std::vector<float> tfloor;                  // per query: a key the caller knows is beaten
                                              // (search_reduced's later blocks); -inf: none
  std::vector<std::vector<Cand>> lows;        // (L, item) packed
  std::vector<std::vector<std::pair<float, int32_t>>> cands;  // (U, row)
  std::vector<size_t> ccap;
  std::vector<std::vector<Cand>> best;        // final, sorted best first, at most k
  std::vector<int32_t> rescored;
  // finish()'s scratch (one query at a time).
  std::vector<std::pair<float, int32_t>> item_scratch, group_scratch;
  std::vector<int32_t> first_scratch, rows_scratch;
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

  // t = the k-th largest L over distinct items (tokens > 1: each item once, with its largest L,
  // or two rows of one item would count as two items); keeps those k.
  void cut_lows(int64_t q) {
    std::vector<Cand>& l = lows[static_cast<size_t>(q)];
    if (tokens > 1) {
      dedupe_items(l);
      if (static_cast<int64_t>(l.size()) < k) return;  // fewer than k distinct items so far
    }
    std::nth_element(l.begin(), l.begin() + (k - 1), l.end(), std::greater<Cand>());
    l.resize(static_cast<size_t>(k));
    t[static_cast<size_t>(q)] = std::max(tfloor[static_cast<size_t>(q)], cand_key(l[static_cast<size_t>(k - 1)]));
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
      const int64_t item = tokens > 1 ? row / tokens : row;
      if (a.allow != nullptr && ((a.allow[item >> 6] >> (item & 63)) & 1u) == 0) continue;
      if (c.excluded(qi, static_cast<int32_t>(item))) continue;
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
      lv.push_back(make_cand(lf, item));
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
    // cv: the kept rows (U >= the final t), as (U, row). Per item (tokens > 1: its kept rows
    // grouped, U = the largest), in decreasing U, ties by lower item: items[i] = (U, item) over
    // rows[first[i] .. first[i + 1]).
    auto& cv = cands[static_cast<size_t>(q)];
    std::vector<std::pair<float, int32_t>>& items = item_scratch;
    std::vector<int32_t>& first = first_scratch;
    std::vector<int32_t>& rows = rows_scratch;
    items.clear();
    first.clear();
    rows.clear();
    if (tokens > 1) {
      std::sort(cv.begin(), cv.end(), [](const std::pair<float, int32_t>& x, const std::pair<float, int32_t>& y) {
        return x.second < y.second;
      });
      // Rows by item; within an item any order. `order` then sorts the items.
      std::vector<std::pair<float, int32_t>>& grouped = group_scratch;  // (U, index of its first row)
      grouped.clear();
      for (size_t i = 0; i < cv.size();) {
        const int64_t item = cv[i].second / tokens;
        float u = cv[i].first;
        const size_t b = i;
        for (; i < cv.size() && cv[i].second / tokens == item; ++i) u = std::max(u, cv[i].first);
        grouped.emplace_back(u, static_cast<int32_t>(b));
      }
      std::sort(grouped.begin(), grouped.end(),
                [&](const std::pair<float, int32_t>& x, const std::pair<float, int32_t>& y) {
                  return x.first != y.first ? x.first > y.first : cv[x.second].second < cv[y.second].second;
                });
      for (const auto& gi : grouped) {
        const int64_t item = cv[static_cast<size_t>(gi.second)].second / tokens;
        items.emplace_back(gi.first, static_cast<int32_t>(item));
        first.push_back(static_cast<int32_t>(rows.size()));
        for (size_t i = static_cast<size_t>(gi.second); i < cv.size() && cv[i].second / tokens == item; ++i) {
          rows.push_back(cv[i].second);
        }
      }
    } else {
      std::sort(cv.begin(), cv.end(), [](const std::pair<float, int32_t>& x, const std::pair<float, int32_t>& y) {
        return x.first != y.first ? x.first > y.first : x.second < y.second;
      });
      for (const auto& p : cv) {
        items.push_back(p);
        first.push_back(static_cast<int32_t>(rows.size()));
        rows.push_back(p.second);
      }
    }
    first.push_back(static_cast<int32_t>(rows.size()));
    std::vector<Cand>& out = best[static_cast<size_t>(q)];
    out.clear();
    if (!sh->exact) {
      for (const auto& p : items) out.push_back(make_cand(p.first, p.second));
      std::sort(out.begin(), out.end(), std::greater<Cand>());
      if (out.size() > static_cast<size_t>(k)) out.resize(static_cast<size_t>(k));
      return;
    }
    const SearchKernels& fk = *sh->fk;
    const int64_t d = gal.dim;
    const float* qrow = a.queries.row(c.q0 + qi);
    const float qinv = c.qinv[static_cast<size_t>(qi)];
    const int nr = std::min(fk.panel_width, 16);
    const float* ptrs[64] = {};
    int owner[64] = {};
    float dots[64], n2s[64];
    Cand item_best[64];
    int fill = 0;
    // Scores the rows in ptrs[0..fill) exactly as core::search keys them and folds each into its
    // item's best (search keeps an item's largest packed candidate, i.e. its largest key; here the
    // packed index is the item's slot in the step, the same for all its rows).
    auto flush = [&]() {
      fk.score_rows(ptrs, fill, qrow, d, dots, n2s);
      for (int j = 0; j < fill; ++j) {
        float key = dots[j];
        if (gal.metric == Metric::kCosine) {
          key = (key * qinv) * (n2s[j] > 0.0f ? 1.0f / std::sqrt(n2s[j]) : 0.0f);
        } else if (gal.metric == Metric::kL2) {
          key = static_cast<float>(-l2_exact(qrow, ptrs[j], d));
        }
        const Cand cd = make_cand(key, owner[j]);
        item_best[owner[j]] = std::max(item_best[owner[j]], cd);
      }
      fill = 0;
    };
    std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;  // k best, worst on top
    size_t i = 0;
    int32_t count = 0;
    while (i < items.size()) {
      if (static_cast<int64_t>(heap.size()) >= k && items[i].first < cand_key(heap.top())) break;
      // Whole items per step: as many as fill a batch of nr rows (at least one, at most 16).
      size_t m = 0;
      int64_t step_rows = 0;
      while (i + m < items.size() && m < 16) {
        const int64_t nrows = first[i + m + 1] - first[i + m];
        if (m > 0 && step_rows + nrows > nr) break;
        step_rows += nrows;
        ++m;
      }
      for (size_t b = 0; b < m; ++b) {
        item_best[b] = 0;  // below every candidate
        for (int32_t e = first[i + b]; e < first[i + b + 1]; ++e) {
          ptrs[fill] = gal.f32 + int64_t(rows[static_cast<size_t>(e)]) * d;
          owner[fill] = static_cast<int>(b);
          if (++fill == nr) flush();
        }
      }
      if (fill > 0) flush();
      for (size_t b = 0; b < m; ++b) {
        // Repacked with the item's own index (ties: lower item first).
        const Cand cd = make_cand(cand_key(item_best[b]), items[i + b].second);
        if (static_cast<int64_t>(heap.size()) < k) {
          heap.push(cd);
        } else if (cd > heap.top()) {
          heap.pop();
          heap.push(cd);
        }
      }
      count += static_cast<int32_t>(m);
      i += m;
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

// Every excluded item in 0..items-1 (the messages are core::search's).
Status check_exclude_rows(const int64_t* off, const int32_t* rows, int64_t nq, int64_t items) {
  if (off == nullptr) return Status::Ok();
  for (int64_t q = 0; q < nq; ++q) {
    for (int64_t j = off[q]; j < off[q + 1]; ++j) {
      if (rows[j] < 0 || rows[j] >= items) {
        return Status(Code::kInvalidArg, "exclude: query " + std::to_string(q) + " lists row " +
                                             std::to_string(rows[j]) + ", outside 0.." + std::to_string(items - 1));
      }
    }
  }
  return Status::Ok();
}

}  // namespace

// search_quantized with an optional floor per query (key space: larger is better, l2 -distance):
// rows whose upper bound is below it are dropped as if the k-th bound were there, so a query may
// get fewer than k items, and only those that may score at least the floor. search_reduced passes
// the k-th key of the blocks before (whose items are lower, so they win ties): an item of this block
// below it cannot enter the merged top k.
static Status search_quantized_floor(const QuantSearchArgs& a, const QuantSearchOut& out, const Context& ctx,
                              const float* floor) {
  const QuantGallery& g = a.gallery;
  if (a.tokens < 1 || g.rows < 0 || g.rows % a.tokens != 0) {
    return Status(Code::kShape, "gallery: " + std::to_string(g.rows) + " rows are not a whole number of items of " +
                                    std::to_string(a.tokens) + " tokens");
  }
  const int64_t items = g.rows / a.tokens;
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
  if (a.exclude_offsets != nullptr) {
    const int64_t* off = a.exclude_offsets;
    if (off[0] < 0) {
      return Status(Code::kInvalidArg, "exclude: offsets[0] is " + std::to_string(off[0]) + " (must be >= 0)");
    }
    for (int64_t i = 0; i < a.queries.rows; ++i) {
      if (off[i + 1] < off[i]) {
        return Status(Code::kInvalidArg, "exclude: offsets decrease at query " + std::to_string(i) + " (" +
                                             std::to_string(off[i]) + " then " + std::to_string(off[i + 1]) + ")");
      }
    }
    if (off[a.queries.rows] > off[0] && a.exclude_rows == nullptr) {
      return Status(Code::kInvalidArg, "exclude: offsets given without rows");
    }
    VLK_RETURN_IF_ERROR(check_exclude_rows(off, a.exclude_rows, a.queries.rows, items));
  }
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
          st->tokens = a.tokens;
          const size_t nqs = static_cast<size_t>(st->nq);
          st->thr.assign(nqs, kNegInf);
          st->tfloor.assign(nqs, kNegInf);
          if (floor != nullptr) {
            for (size_t q = 0; q < nqs; ++q) st->tfloor[q] = floor[q0 + qb + static_cast<int64_t>(q)];
          }
          st->t = st->tfloor;
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
        for (int64_t q = 0; q < part.nq; ++q) part.set_thr(q);  // from the floor, if any
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
          // An item whose rows straddle two parts is in both lists, with the same exact key.
          if (a.tokens > 1 && gparts > 1) dedupe_items(merged);
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

Status search_quantized(const QuantSearchArgs& args, const QuantSearchOut& out, const Context& ctx) {
  return search_quantized_floor(args, out, ctx, nullptr);
}

QuantGalleryBuffers::~QuantGalleryBuffers() { std::free(codes); }

namespace {

// quantize_gallery's work without its messages: Ok, kAborted, or kNonFinite with *bad_row set to the
// first row (of v) whose squared norm is not finite or too large. Reuses out's buffers when they
// are large enough (search_reduced quantizes block after block into one set).
Status quantize_into(Storage storage, Metric metric, const MatrixView<const float>& v, QuantGalleryBuffers* out,
                     const Context& ctx, int64_t* bad_row) {
  *bad_row = -1;
  const int64_t n = v.rows, dim = v.cols;
  // Whole panels plus room for the kernels' lanes, as FlatIndex sizes its blocks.
  const int64_t padded = (n + 63) / 64 * 64;
  const int64_t panel_bytes = quant_panel_bytes(storage, dim);
  const size_t bytes = static_cast<size_t>(padded / kQuantPanel * panel_bytes);
  if (out->codes == nullptr || out->codes_bytes < bytes) {
    std::free(out->codes);
    out->codes = nullptr;
    out->codes_bytes = 0;
    out->codes = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (out->codes == nullptr) throw std::bad_alloc();
    out->codes_bytes = bytes;
  }
  // Every row writes all its codes (padding dimensions included); only the lanes past the last row
  // need zeros.
  const size_t tail = static_cast<size_t>((n / kQuantPanel) * panel_bytes);
  std::memset(static_cast<uint8_t*>(out->codes) + tail, 0, bytes - tail);
  const size_t np = static_cast<size_t>(padded);
  out->rnorm.assign(np, 0.0f);
  out->hnorm.assign(np, 0.0f);
  out->gnorm.assign(np, 0.0f);
  out->scale.clear();
  out->csum.clear();
  out->norm2.clear();
  if (storage == Storage::kI8) {
    out->scale.assign(np, 0.0f);
    out->csum.assign(np, 0);
  }
  if (metric == Metric::kL2) out->norm2.assign(np, 0.0f);
  const bool dense = v.stride == v.cols;
  out->dense.clear();
  if (!dense) out->dense.resize(static_cast<size_t>(n * dim));

  float* scale = out->scale.empty() ? nullptr : out->scale.data();
  int32_t* csum = out->csum.empty() ? nullptr : out->csum.data();
  float* norm2 = out->norm2.empty() ? nullptr : out->norm2.data();
  // Tasks of whole panels (each panel's codes written by one task), claimed dynamically.
  constexpr int64_t kTaskRows = 64 * kQuantPanel;
  const int64_t ntasks = (n + kTaskRows - 1) / kTaskRows;
  std::vector<int64_t> bad(static_cast<size_t>(ntasks), -1);  // first bad row of a task
  std::vector<uint8_t> aborted(static_cast<size_t>(ntasks), 0), oom(static_cast<size_t>(ntasks), 0);
  auto task = [&](int64_t ti) {
    if (ctx.cancelled()) {
      aborted[static_cast<size_t>(ti)] = 1;
      return;
    }
    try {
      FastQuantizer fq(storage, metric, dim);
      const int64_t r1 = std::min(n, (ti + 1) * kTaskRows);
      for (int64_t r = ti * kTaskRows; r < r1; ++r) {
        const float* src = v.row(r);
        if (!dense) {
          float* dst = out->dense.data() + r * dim;
          std::memcpy(dst, src, static_cast<size_t>(dim) * sizeof(float));
          src = dst;
        }
        if (!fq.row(src, r, out->codes, scale, csum, norm2, out->rnorm.data(), out->hnorm.data(),
                    out->gnorm.data())) {
          bad[static_cast<size_t>(ti)] = r;
          return;
        }
      }
    } catch (const std::bad_alloc&) {
      oom[static_cast<size_t>(ti)] = 1;
    }
  };
  if (ctx.pool != nullptr && ntasks > 1 && ctx.threads > 1) {
    ctx.pool->parallel_for(ntasks, ctx.threads, task);
  } else {
    for (int64_t i = 0; i < ntasks; ++i) task(i);
  }
  for (int64_t i = 0; i < ntasks; ++i) {
    if (aborted[static_cast<size_t>(i)] != 0) return Status(Code::kAborted, "search aborted");
  }
  for (int64_t i = 0; i < ntasks; ++i) {
    if (oom[static_cast<size_t>(i)] != 0) throw std::bad_alloc();
  }
  for (int64_t i = 0; i < ntasks; ++i) {
    if (bad[static_cast<size_t>(i)] >= 0) {
      *bad_row = bad[static_cast<size_t>(i)];
      return Status(Code::kNonFinite, "gallery: row " + std::to_string(*bad_row) + " is not finite or too large");
    }
  }
  QuantGallery& g = out->gallery;
  g = QuantGallery();
  g.storage = storage;
  g.metric = metric;
  g.rows = n;
  g.dim = dim;
  g.codes = out->codes;
  g.scale = scale;
  g.csum = csum;
  g.norm2 = norm2;
  g.rnorm = out->rnorm.data();
  g.hnorm = out->hnorm.data();
  g.gnorm = out->gnorm.data();
  g.f32 = dense ? v.data : out->dense.data();
  return Status::Ok();
}

// A gallery fault as core::search reports it: the first NaN / infinity of the whole gallery in
// row-major order, else the first row too large (`row`, of the whole gallery).
Status gallery_fault(const MatrixView<const float>& gallery, int64_t row) {
  const std::string msg = find_non_finite("gallery", gallery);
  if (!msg.empty()) return Status(Code::kNonFinite, msg);
  return too_large("gallery", row);
}

// Gallery rows search_reduced quantizes at a time: bounded extra memory (bf16: 2 bytes a value of
// the block, not of the gallery) and buffers that stay mapped from block to block.
constexpr int64_t kReducedBlockRows = int64_t(1) << 16;

}  // namespace

Status quantize_gallery(Storage storage, Metric metric, const MatrixView<const float>& v, QuantGalleryBuffers* out,
                        const Context& ctx) {
  if (storage == Storage::kF32) return Status(Code::kInvalidArg, "quantize_gallery: storage 'f32' has no codes");
  if (out == nullptr) return Status(Code::kInvalidArg, "quantize_gallery: null output");
  if (v.rows < 0 || v.cols < 0 || v.stride < v.cols) {
    return Status(Code::kShape, "gallery: negative size or stride smaller than cols");
  }
  if (v.rows == 0 || v.cols == 0) {
    return Status(Code::kEmpty, "gallery: " + std::to_string(v.rows) + " x " + std::to_string(v.cols) + " is empty");
  }
  if (v.data == nullptr) return Status(Code::kInvalidArg, "gallery: null data pointer");
  if (v.rows > std::numeric_limits<int32_t>::max()) {
    return Status(Code::kShape, "gallery: " + std::to_string(v.rows) + " rows exceed the int32 index range");
  }
  if (ctx.cancelled()) return Status(Code::kAborted, "search aborted");
  try {
    int64_t bad_row = -1;
    const Status st = quantize_into(storage, metric, v, out, ctx, &bad_row);
    if (bad_row >= 0) return gallery_fault(v, bad_row);
    return st;
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "gallery: out of memory quantizing " + std::to_string(v.rows) + " x " +
                                          std::to_string(v.cols) + " to " + storage_name(storage));
  }
}

Status search_reduced(const SearchArgs& args, Storage storage, const SearchOut& out, const Context& ctx,
                      int32_t* rescored) {
  if (storage == Storage::kF32) {
    VLK_RETURN_IF_ERROR(search(args, out, ctx));
    for (int64_t q = 0; rescored != nullptr && q < args.queries.rows; ++q) rescored[q] = 0;
    return Status::Ok();
  }
  // core::search's checks, in its order, before the gallery is touched.
  VLK_RETURN_IF_ERROR(validate_search(args));
  if (out.indices == nullptr || out.scores == nullptr) {
    return Status(Code::kInvalidArg, "search: null output buffer");
  }
  if (ctx.threads < 1) {
    return Status(Code::kInvalidArg, "threads: " + std::to_string(ctx.threads) + " is not an integer >= 1");
  }
  if (ctx.cancelled()) return Status(Code::kAborted, "search aborted");
  {
    const std::string bad = find_non_finite("queries", args.queries);
    if (!bad.empty()) return Status(Code::kNonFinite, bad);
  }
  const int64_t nq = args.queries.rows, d = args.queries.cols, k = args.k, tokens = args.tokens;
  const int64_t items = args.gallery.rows / tokens;
  const int64_t* xoff = args.filter.exclude_offsets;
  const int32_t* xrows = args.filter.exclude_rows;
  VLK_RETURN_IF_ERROR(check_exclude_rows(xoff, xrows, nq, items));
  {
    // Query norms as search checks them (the same fp32 chain).
    const SearchKernels& fk = search_kernels(ctx.isa);
    float dot[64], n2s[64];
    for (int64_t q = 0; q < nq; ++q) {
      const float* row = args.queries.row(q);
      const float* p1[1] = {row};
      fk.score_rows(p1, 1, row, d, dot, n2s);
      if (!(n2s[0] <= kMaxNorm2)) return too_large("queries", q);
    }
  }
  try {
    // Blocks of whole items, a multiple of 64 of them (so the allow bitset of a block is a word
    // offset of the caller's) and so of 32 rows (whole panels). Items never straddle blocks, and
    // blocks come in item order, so merging the blocks' lists keeps ties on the lower item.
    int64_t block_items = std::max<int64_t>(64, kReducedBlockRows / tokens / 64 * 64);
    if (block_items >= items) block_items = items;
    const bool one_block = block_items == items;
    QuantGalleryBuffers qb;
    std::vector<std::vector<Cand>> lists(one_block ? 0 : static_cast<size_t>(nq));
    // Per query the k-th key of the blocks so far (-inf before k): later blocks only need items
    // that beat it.
    std::vector<float> floor(static_cast<size_t>(nq), -std::numeric_limits<float>::infinity());
    std::vector<int32_t> bidx, bcnt, bres;
    std::vector<float> bsc;
    std::vector<int64_t> boff;
    std::vector<int32_t> brows;
    if (rescored != nullptr) std::fill(rescored, rescored + nq, 0);
    for (int64_t i0 = 0; i0 < items; i0 += block_items) {
      const int64_t i1 = std::min(items, i0 + block_items), nb = i1 - i0, kb = std::min(k, nb);
      const MatrixView<const float> sub(args.gallery.row(i0 * tokens), nb * tokens, d, args.gallery.stride);
      int64_t bad_row = -1;
      const Status st = quantize_into(storage, args.metric, sub, &qb, ctx, &bad_row);
      if (bad_row >= 0) return gallery_fault(args.gallery, i0 * tokens + bad_row);
      VLK_RETURN_IF_ERROR(st);
      QuantSearchArgs qa;
      qa.queries = args.queries;
      qa.gallery = qb.gallery;
      qa.k = kb;
      qa.tokens = tokens;
      qa.allow = args.filter.allow == nullptr ? nullptr : args.filter.allow + (i0 >> 6);
      if (xoff != nullptr && !one_block) {  // this block's excluded items, local
        boff.assign(static_cast<size_t>(nq) + 1, 0);
        brows.clear();
        for (int64_t q = 0; q < nq; ++q) {
          for (int64_t j = xoff[q]; j < xoff[q + 1]; ++j) {
            if (xrows[j] >= i0 && xrows[j] < i1) brows.push_back(static_cast<int32_t>(xrows[j] - i0));
          }
          boff[static_cast<size_t>(q) + 1] = static_cast<int64_t>(brows.size());
        }
        qa.exclude_offsets = boff.data();
        qa.exclude_rows = brows.data();
      } else {
        qa.exclude_offsets = xoff;
        qa.exclude_rows = xrows;
      }
      QuantSearchOut qo;
      if (one_block) {
        qo.indices = out.indices;
        qo.scores = out.scores;
        qo.counts = out.counts;
        qo.rescored = rescored;
        return search_quantized(qa, qo, ctx);
      }
      bidx.assign(static_cast<size_t>(nq * kb), -1);
      bsc.assign(static_cast<size_t>(nq * kb), 0.0f);
      bcnt.assign(static_cast<size_t>(nq), 0);
      bres.assign(static_cast<size_t>(nq), 0);
      qo.indices = bidx.data();
      qo.scores = bsc.data();
      qo.counts = bcnt.data();
      qo.rescored = bres.data();
      VLK_RETURN_IF_ERROR(search_quantized_floor(qa, qo, ctx, floor.data()));
      for (int64_t q = 0; q < nq; ++q) {
        std::vector<Cand>& l = lists[static_cast<size_t>(q)];
        for (int64_t j = 0; j < bcnt[static_cast<size_t>(q)]; ++j) {
          const size_t e = static_cast<size_t>(q * kb + j);
          const float key = args.metric == Metric::kL2 ? -bsc[e] : bsc[e];  // back to "larger is better"
          l.push_back(make_cand(key, i0 + bidx[e]));
        }
        if (static_cast<int64_t>(l.size()) >= k) {
          std::nth_element(l.begin(), l.begin() + (k - 1), l.end(), std::greater<Cand>());
          l.resize(static_cast<size_t>(k));
          floor[static_cast<size_t>(q)] = cand_key(l[static_cast<size_t>(k - 1)]);
        }
        if (rescored != nullptr) rescored[q] += bres[static_cast<size_t>(q)];
      }
    }
    for (int64_t q = 0; q < nq; ++q) {
      std::vector<Cand>& l = lists[static_cast<size_t>(q)];
      std::sort(l.begin(), l.end(), std::greater<Cand>());
      const int64_t have = static_cast<int64_t>(l.size());
      for (int64_t j = 0; j < k; ++j) {
        const bool valid = j < have;
        out.indices[q * k + j] = valid ? cand_idx(l[static_cast<size_t>(j)]) : -1;
        float key = valid ? cand_key(l[static_cast<size_t>(j)]) : std::numeric_limits<float>::quiet_NaN();
        if (valid && args.metric == Metric::kL2) key = 0.0f - key;  // +0 at distance 0, as search
        out.scores[q * k + j] = key;
      }
      if (out.counts != nullptr) out.counts[q] = static_cast<int32_t>(have);
    }
    return Status::Ok();
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "search: out of memory");
  }
}

}  // namespace core
}  // namespace vlk
