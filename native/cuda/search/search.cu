// Exact batched top-k search on the GPU (native/cuda/search): cuda::search, core::search's contract
// (see cuda_api.hpp). First version, compile-tested only (no GPU was available when it was
// written); bench/gpu/run.sh is its proof run.
//
// Pipeline per call (device 0, one stream):
//  1. prep: queries and gallery uploaded in fp32, converted to bf16 (dimension padded to 16) with
//     the per-row norms the bound needs (computed in float64, rounded up): |x|, |x - x^|, |x^|,
//     and the fp32 values core uses for cosine (1/|g| from the same fma chain).
//  2. scan A (bf16 tensor cores, WMMA 16x16x16, fp32 accumulate): 64 queries x 64 rows per block
//     step; per query and 256-row chunk the largest lower bound L = A - e is kept (Q x N/256
//     floats: the score matrix itself never reaches global memory). The k-th largest chunk maximum
//     t is a lower bound of the k-th exact score (k distinct rows reach it).
//  3. scan B: the same tiles; every row whose upper bound U = A + e reaches t is appended to its
//     query's candidate list.
//  4. re-score: each candidate's exact score, computed like core (fp32 fma chain over d ascending;
//     cosine (dot * qinv) * ginv; l2 the float64 distance with core's four partial sums), then the
//     best k by (score, lower row) from a bitonic sort in shared memory.
// Any row outside the candidates has S <= U < t <= the k-th exact score, so the result equals
// core::search. Queries whose candidates exceed the list are finished on the CPU by the caller's
// core::search (exact either way). Precision::kBf16 skips the bound (e = 0) and the re-score.
// Bound: e = |x_q| |r_g| + |g^| |r_q| + c (|q^| |g^| + |x_q| |x_g|) (+ 4c for cosine), with
// c = (Dp + 16) 2^-21, generous for tensor-core accumulation (products exact, fp32 sums that may
// truncate) and core's fp32 chain (gamma_D).
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "cuda/common/cuda_api.hpp"
#include "search/search_detail.hpp"

namespace vlk {
namespace cuda {

namespace {

using core::Metric;

constexpr int kTileQ = 64;       // queries per block
constexpr int kTileN = 64;       // gallery rows per block step
constexpr int kChunk = 256;      // rows per chunk maximum (scan A)
constexpr int kMaxK = 1024;      // largest k selected on the GPU
constexpr int kCandCap = 4096;   // candidates per query (sorted in shared memory)
constexpr int kThreads = 128;    // 4 warps

#define VLK_CUDA_TRY(expr)                                                                         \
  do {                                                                                             \
    const cudaError_t vlk_e = (expr);                                                              \
    if (vlk_e != cudaSuccess) return cuda_status(vlk_e, #expr);                                    \
  } while (0)

Status cuda_status(cudaError_t e, const char* what) {
  cudaGetLastError();
  if (e == cudaErrorMemoryAllocation) {
    return Status(Code::kOutOfMemory, std::string("CUDA: out of device memory (") + what + ")");
  }
  return Status(Code::kInternal, std::string("CUDA: ") + cudaGetErrorString(e) + " (" + what + ")");
}

// Device memory freed on scope exit.
struct DeviceBuffer {
  void* p = nullptr;
  ~DeviceBuffer() {
    if (p != nullptr) cudaFree(p);
  }
  template <typename T>
  T* as() const {
    return static_cast<T*>(p);
  }
};

Status alloc(DeviceBuffer* b, size_t bytes, const char* what) {
  const cudaError_t e = cudaMalloc(&b->p, bytes == 0 ? 16 : bytes);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return Status(Code::kOutOfMemory,
                  std::string("CUDA: cannot allocate ") + std::to_string(bytes) + " bytes of device memory for " + what);
  }
  return Status::Ok();
}

// Per-row values of a prepared matrix (queries or gallery).
struct RowNorms {
  float* xnorm;   // |x| (cosine: 1 or 0), rounded up
  float* rnorm;   // |x - x^|, rounded up
  float* hnorm;   // |x^|, rounded up
  float* inv;     // cosine: core's 1 / sqrt(fp32 fma-chain |v|^2), else unused
  double* n2;     // |v|^2 (float64)
};

__device__ inline float up(double v) { return __double2float_ru(v) * (1.0f + 1.0f / 8388608.0f); }

// One warp per row: bf16 codes of x (x = v, or v/|v| for cosine), padded with zeros to dp, and the
// norms. fp32 chain for inv is computed by lane 0 in order (d ascending), exactly like core.
__global__ void prep_rows(const float* __restrict v, int64_t rows, int dim, int dp, bool cosine,
                          __nv_bfloat16* __restrict out, RowNorms norms) {
  const int64_t row = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (row >= rows) return;
  const float* src = v + row * dim;
  double n2 = 0;
  for (int d = lane; d < dim; d += 32) n2 += double(src[d]) * double(src[d]);
  for (int o = 16; o > 0; o >>= 1) n2 += __shfl_xor_sync(0xffffffffu, n2, o);
  const double scale = cosine && n2 > 0 ? 1.0 / sqrt(n2) : 1.0;
  double h2 = 0, r2 = 0;
  for (int d = lane; d < dp; d += 32) {
    const double x = d < dim ? double(src[d]) * scale : 0.0;
    __nv_bfloat16 b = __float2bfloat16_rn(static_cast<float>(x));
    float bf = __bfloat162float(b);
    if (bf != 0.0f && fabsf(bf) < 1.17549435e-38f) {  // subnormal: flush (what the math units read)
      b = __float2bfloat16_rn(0.0f);
      bf = 0.0f;
    }
    out[row * dp + d] = b;
    h2 += double(bf) * bf;
    r2 += (x - bf) * (x - bf);
  }
  for (int o = 16; o > 0; o >>= 1) {
    h2 += __shfl_xor_sync(0xffffffffu, h2, o);
    r2 += __shfl_xor_sync(0xffffffffu, r2, o);
  }
  if (lane == 0) {
    float f2 = 0.0f;
    for (int d = 0; d < dim; ++d) f2 = fmaf(src[d], src[d], f2);
    norms.inv[row] = f2 > 0.0f ? 1.0f / sqrtf(f2) : 0.0f;
    norms.n2[row] = n2;
    norms.xnorm[row] = cosine ? (n2 > 0 ? 1.0f : 0.0f) : up(sqrt(n2));
    norms.rnorm[row] = up(sqrt(r2));
    norms.hnorm[row] = up(sqrt(h2));
  }
}

struct ScanParams {
  const __nv_bfloat16* q;  // Q x dp
  const __nv_bfloat16* g;  // N x dp
  int64_t nq, n;
  int dp;
  Metric metric;
  bool exact;
  float c;                 // bound constant
  RowNorms qn, gn;
  // scan A: chunk maxima (Q x chunks); scan B: thresholds and candidate lists.
  float* chunk_max;
  int64_t chunks;
  const float* tau;
  int* cand_count;
  int* cand_rows;
  float* cand_upper;
};

// Bounds of one (query, row) pair in the key space (larger is better; l2: -distance).
__device__ inline void bounds(const ScanParams& p, int64_t q, int64_t r, float a, float* lo, float* hi) {
  const float qx = p.qn.xnorm[q], qr = p.qn.rnorm[q], qh = p.qn.hnorm[q];
  const float gx = p.gn.xnorm[r], gr = p.gn.rnorm[r], gh = p.gn.hnorm[r];
  if (!p.exact) {
    float key = a;
    if (p.metric == Metric::kL2) key = static_cast<float>(-(p.qn.n2[q] + p.gn.n2[r] - 2.0 * a));
    *lo = *hi = key;
    return;
  }
  double e = double(qx) * gr + double(gh) * qr + double(p.c) * (double(qh) * gh + double(qx) * gx);
  if (p.metric == Metric::kCosine) e += 4.0 * p.c;
  if (p.metric == Metric::kL2) {
    const double base = -(p.qn.n2[q] + p.gn.n2[r] - 2.0 * double(a));
    const double e2 = 2.0 * e + 1e-12 * (p.qn.n2[q] + p.gn.n2[r] + 2.0 * fabs(double(a)));
    *lo = __double2float_rd(base - e2);
    *hi = __double2float_ru(base + e2);
  } else {
    *lo = __double2float_rd(double(a) - e);
    *hi = __double2float_ru(double(a) + e);
  }
}

// kPass 0: chunk maxima of the lower bounds; 1: collect rows whose upper bound reaches tau.
// Grid: x = query tiles, y = gallery slices (whole chunks). Block: 4 warps, warp w computes queries
// 16w..16w+15 of the tile against 64 rows per step.
template <int kPass>
__global__ void __launch_bounds__(kThreads) scan(ScanParams p, int64_t chunks_per_slice) {
  using namespace nvcuda;
  __shared__ float tile[kTileQ][kTileN + 4];
  const int warp = threadIdx.x / 32;
  const int64_t q0 = static_cast<int64_t>(blockIdx.x) * kTileQ;
  const int64_t chunk_begin = static_cast<int64_t>(blockIdx.y) * chunks_per_slice;
  const int64_t chunk_end = min(p.chunks, chunk_begin + chunks_per_slice);
  // Thread t owns query q0 + t / 2, half (t % 2) of each 64-row step.
  const int my_q = threadIdx.x / 2;
  const int half = threadIdx.x % 2;
  const int64_t q = q0 + my_q;
  const bool q_ok = q < p.nq;
  const float tau = (kPass == 1 && q_ok) ? p.tau[q] : 0.0f;
  for (int64_t chunk = chunk_begin; chunk < chunk_end; ++chunk) {
    float best = -INFINITY;
    for (int step = 0; step < kChunk / kTileN; ++step) {
      const int64_t r0 = chunk * kChunk + int64_t(step) * kTileN;
      if (r0 >= p.n) break;
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[4];
      for (int j = 0; j < 4; ++j) wmma::fill_fragment(acc[j], 0.0f);
      // Both code matrices are padded with zero rows (queries to kTileQ, gallery to kTileN), so
      // every fragment load is in bounds; padding lanes are skipped below.
      const __nv_bfloat16* qa = p.q + (q0 + warp * 16) * p.dp;
      for (int k0 = 0; k0 < p.dp; k0 += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> af;
        wmma::load_matrix_sync(af, qa + k0, p.dp);
        for (int j = 0; j < 4; ++j) {
          wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> bf;
          wmma::load_matrix_sync(bf, p.g + (r0 + j * 16) * p.dp + k0, p.dp);
          wmma::mma_sync(acc[j], af, bf, acc[j]);
        }
      }
      for (int j = 0; j < 4; ++j) {
        wmma::store_matrix_sync(&tile[warp * 16][j * 16], acc[j], kTileN + 4, wmma::mem_row_major);
      }
      __syncthreads();
      if (q_ok) {
        for (int c = half * 32; c < half * 32 + 32; ++c) {
          const int64_t r = r0 + c;
          if (r >= p.n) break;
          const float a = tile[my_q][c];
          float lo, hi;
          bounds(p, q, r, a, &lo, &hi);
          if (kPass == 0) {
            best = fmaxf(best, lo);
          } else if (hi >= tau) {
            const int slot = atomicAdd(&p.cand_count[q], 1);
            if (slot < kCandCap) {
              p.cand_rows[q * kCandCap + slot] = static_cast<int>(r);
              p.cand_upper[q * kCandCap + slot] = hi;
            }
          }
        }
      }
      __syncthreads();
    }
    if (kPass == 0) {
      best = fmaxf(best, __shfl_xor_sync(0xffffffffu, best, 1));
      if (q_ok && half == 0) p.chunk_max[q * p.chunks + chunk] = best;
    }
  }
}

// Packed candidate: order-preserving key bits over the inverted row (larger is better), as core.
__device__ inline unsigned long long pack(float key, int row) {
  key += 0.0f;
  unsigned int b = __float_as_uint(key);
  b = (b & 0x80000000u) ? ~b : (b | 0x80000000u);
  return (static_cast<unsigned long long>(b) << 32) | (0xFFFFFFFFu - static_cast<unsigned int>(row));
}

__device__ inline float unpack_key(unsigned long long c) {
  const unsigned int o = static_cast<unsigned int>(c >> 32);
  const unsigned int b = (o & 0x80000000u) ? (o & 0x7FFFFFFFu) : ~o;
  return __uint_as_float(b);
}

// Block-wide bitonic sort, descending, of n (a power of two) values in shared memory.
template <typename T>
__device__ void bitonic_desc(T* v, int n) {
  for (int size = 2; size <= n; size <<= 1) {
    for (int stride = size >> 1; stride > 0; stride >>= 1) {
      for (int i = threadIdx.x; i < n; i += blockDim.x) {
        const int j = i ^ stride;
        if (j > i) {
          const bool desc = (i & size) == 0;
          if ((v[i] < v[j]) == desc) {
            const T t = v[i];
            v[i] = v[j];
            v[j] = t;
          }
        }
      }
      __syncthreads();
    }
  }
}

// tau[q]: the k-th largest chunk maximum (one block per query; chunks <= 8192).
__global__ void kth_of_chunks(const float* __restrict chunk_max, int64_t chunks, int k, float* __restrict tau) {
  extern __shared__ float vals[];
  const int64_t q = blockIdx.x;
  int n = 1;
  while (n < chunks) n <<= 1;
  for (int i = threadIdx.x; i < n; i += blockDim.x) vals[i] = i < chunks ? chunk_max[q * chunks + i] : -INFINITY;
  __syncthreads();
  bitonic_desc(vals, n);
  if (threadIdx.x == 0) tau[q] = k <= chunks ? vals[k - 1] : -INFINITY;
}

// Exact core-equivalent key of (query row, gallery row).
__device__ float exact_key(const float* __restrict qv, const float* __restrict gv, int dim, Metric metric, float qinv,
                           float ginv) {
  if (metric == Metric::kL2) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int i = 0;
    for (; i + 4 <= dim; i += 4) {
      const double d0 = double(qv[i]) - double(gv[i]);
      const double d1 = double(qv[i + 1]) - double(gv[i + 1]);
      const double d2 = double(qv[i + 2]) - double(gv[i + 2]);
      const double d3 = double(qv[i + 3]) - double(gv[i + 3]);
      s0 += d0 * d0;
      s1 += d1 * d1;
      s2 += d2 * d2;
      s3 += d3 * d3;
    }
    for (; i < dim; ++i) {
      const double di = double(qv[i]) - double(gv[i]);
      s0 += di * di;
    }
    return static_cast<float>(-((s0 + s1) + (s2 + s3)));
  }
  float acc = 0.0f;
  for (int d = 0; d < dim; ++d) acc = fmaf(qv[d], gv[d], acc);
  if (metric == Metric::kCosine) acc = (acc * qinv) * ginv;
  return acc;
}

// One block per query: candidates -> exact keys (or scan keys, kBf16) -> best k.
__global__ void rescore_select(const float* __restrict qf, const float* __restrict gf, int dim, Metric metric,
                               bool exact, const RowNorms qn, const RowNorms gn, const int* __restrict cand_count,
                               const int* __restrict cand_rows, const float* __restrict cand_upper,
                               const __nv_bfloat16* __restrict qb, const __nv_bfloat16* __restrict gb, int dp, int k,
                               int* __restrict out_idx, float* __restrict out_score, int* __restrict out_count) {
  __shared__ unsigned long long keys[kCandCap];
  const int64_t q = blockIdx.x;
  const int n = min(cand_count[q], kCandCap);
  if (cand_count[q] > kCandCap) {  // the caller finishes this query on the CPU
    if (threadIdx.x == 0) out_count[q] = -1;
    return;
  }
  int np = 1;
  while (np < n) np <<= 1;
  const float* qv = qf + q * dim;
  for (int i = threadIdx.x; i < np; i += blockDim.x) {
    if (i >= n) {
      keys[i] = 0ull;
      continue;
    }
    const int r = cand_rows[q * kCandCap + i];
    float key;
    if (exact) {
      key = exact_key(qv, gf + static_cast<int64_t>(r) * dim, dim, metric, qn.inv[q], gn.inv[r]);
    } else {
      key = cand_upper[q * kCandCap + i];  // e = 0: the scan's own key
    }
    keys[i] = pack(key, r);
  }
  __syncthreads();
  bitonic_desc(keys, np);
  const int have = min(k, n);
  for (int j = threadIdx.x; j < k; j += blockDim.x) {
    if (j < have) {
      const unsigned long long c = keys[j];
      out_idx[q * k + j] = static_cast<int>(0xFFFFFFFFu - static_cast<unsigned int>(c));
      const float key = unpack_key(c);
      out_score[q * k + j] = metric == Metric::kL2 ? 0.0f - key : key;
    } else {
      out_idx[q * k + j] = -1;
      out_score[q * k + j] = __int_as_float(0x7fc00000);
    }
  }
  if (threadIdx.x == 0) out_count[q] = have;
}

}  // namespace

Status search(const core::SearchArgs& args, const core::SearchOut& out, const Context& ctx, Precision precision) {
  VLK_RETURN_IF_ERROR(core::validate_search(args));
  const DeviceInfo& info = device_info();
  if (!info.usable) return Status(Code::kNoDevice, "device 'cuda': " + info.reason);
  if (args.filter.active()) {
    return Status(Code::kInvalidArg, "device 'cuda': filters (exclude / allow) run on the CPU only (use device 'cpu' or 'auto')");
  }
  if (args.k > kMaxK) {
    return Status(Code::kInvalidArg, "k: " + std::to_string(args.k) + " is above " + std::to_string(kMaxK) +
                                         ", the largest k device 'cuda' selects (use device 'cpu' or 'auto')");
  }
  if (ctx.cancelled()) return Status(Code::kAborted, "search aborted");
  {
    const std::string bad = core::find_non_finite("queries", args.queries);
    if (!bad.empty()) return Status(Code::kNonFinite, bad);
    const std::string badg = core::find_non_finite("gallery", args.gallery);
    if (!badg.empty()) return Status(Code::kNonFinite, badg);
  }
  const int64_t nq = args.queries.rows, n = args.gallery.rows, k = args.k;
  const int dim = static_cast<int>(args.queries.cols);
  const int dp = (dim + 15) / 16 * 16;
  const bool exact = precision == Precision::kExact;
  VLK_CUDA_TRY(cudaSetDevice(0));
  // Contiguous fp32 copies (views may have a stride).
  auto upload = [&](const MatrixView<const float>& m, DeviceBuffer* dst, const char* what) -> Status {
    VLK_RETURN_IF_ERROR(alloc(dst, static_cast<size_t>(m.rows) * m.cols * sizeof(float), what));
    VLK_CUDA_TRY(cudaMemcpy2D(dst->p, m.cols * sizeof(float), m.data, m.stride * sizeof(float), m.cols * sizeof(float),
                              m.rows, cudaMemcpyHostToDevice));
    return Status::Ok();
  };
  DeviceBuffer qf, gf, qb, gb, qnorm_buf, gnorm_buf;
  VLK_RETURN_IF_ERROR(upload(args.queries, &qf, "queries"));
  VLK_RETURN_IF_ERROR(upload(args.gallery, &gf, "gallery"));
  const int64_t nq_pad = (nq + kTileQ - 1) / kTileQ * kTileQ, n_pad = (n + kTileN - 1) / kTileN * kTileN;
  VLK_RETURN_IF_ERROR(alloc(&qb, static_cast<size_t>(nq_pad) * dp * 2, "query codes"));
  VLK_RETURN_IF_ERROR(alloc(&gb, static_cast<size_t>(n_pad) * dp * 2, "gallery codes"));
  VLK_CUDA_TRY(cudaMemset(qb.p, 0, static_cast<size_t>(nq_pad) * dp * 2));
  VLK_CUDA_TRY(cudaMemset(gb.p, 0, static_cast<size_t>(n_pad) * dp * 2));
  auto norms_in = [](DeviceBuffer* b, int64_t rows, RowNorms* r) -> Status {
    VLK_RETURN_IF_ERROR(alloc(b, static_cast<size_t>(rows) * (4 * sizeof(float) + sizeof(double)), "row norms"));
    char* base = b->as<char>();
    r->n2 = reinterpret_cast<double*>(base);
    r->xnorm = reinterpret_cast<float*>(base + rows * sizeof(double));
    r->rnorm = r->xnorm + rows;
    r->hnorm = r->rnorm + rows;
    r->inv = r->hnorm + rows;
    return Status::Ok();
  };
  RowNorms qn{}, gn{};
  VLK_RETURN_IF_ERROR(norms_in(&qnorm_buf, nq, &qn));
  VLK_RETURN_IF_ERROR(norms_in(&gnorm_buf, n, &gn));
  const bool cosine = args.metric == Metric::kCosine;
  prep_rows<<<static_cast<unsigned>((nq * 32 + 255) / 256), 256>>>(qf.as<float>(), nq, dim, dp, cosine,
                                                                     qb.as<__nv_bfloat16>(), qn);
  prep_rows<<<static_cast<unsigned>((n * 32 + 255) / 256), 256>>>(gf.as<float>(), n, dim, dp, cosine,
                                                                    gb.as<__nv_bfloat16>(), gn);
  VLK_CUDA_TRY(cudaGetLastError());

  // Chunks: kChunk rows each, at most 8192 per query (the k-th selection sorts them in shared memory).
  int64_t chunks = (n + kChunk - 1) / kChunk;
  if (chunks > 8192) return Status(Code::kInvalidArg, "gallery: " + std::to_string(n) + " rows exceed what device 'cuda' scans in one call (2,097,152)");
  DeviceBuffer chunk_max, tau, cand_count, cand_rows, cand_upper, oi, os, oc;
  VLK_RETURN_IF_ERROR(alloc(&chunk_max, static_cast<size_t>(nq * chunks) * sizeof(float), "chunk maxima"));
  VLK_RETURN_IF_ERROR(alloc(&tau, static_cast<size_t>(nq) * sizeof(float), "thresholds"));
  VLK_RETURN_IF_ERROR(alloc(&cand_count, static_cast<size_t>(nq) * sizeof(int), "candidate counts"));
  VLK_RETURN_IF_ERROR(alloc(&cand_rows, static_cast<size_t>(nq) * kCandCap * sizeof(int), "candidates"));
  VLK_RETURN_IF_ERROR(alloc(&cand_upper, static_cast<size_t>(nq) * kCandCap * sizeof(float), "candidate bounds"));
  VLK_RETURN_IF_ERROR(alloc(&oi, static_cast<size_t>(nq * k) * sizeof(int), "results"));
  VLK_RETURN_IF_ERROR(alloc(&os, static_cast<size_t>(nq * k) * sizeof(float), "results"));
  VLK_RETURN_IF_ERROR(alloc(&oc, static_cast<size_t>(nq) * sizeof(int), "results"));
  VLK_CUDA_TRY(cudaMemset(cand_count.p, 0, static_cast<size_t>(nq) * sizeof(int)));

  ScanParams p{};
  p.q = qb.as<__nv_bfloat16>();
  p.g = gb.as<__nv_bfloat16>();
  p.nq = nq;
  p.n = n;
  p.dp = dp;
  p.metric = args.metric;
  p.exact = exact;
  p.c = static_cast<float>((dp + 16) * std::ldexp(1.0, -21));
  p.qn = qn;
  p.gn = gn;
  p.chunk_max = chunk_max.as<float>();
  p.chunks = chunks;
  p.tau = tau.as<float>();
  p.cand_count = cand_count.as<int>();
  p.cand_rows = cand_rows.as<int>();
  p.cand_upper = cand_upper.as<float>();
  // Enough blocks to fill the device: split the gallery into slices of whole chunks.
  const int64_t qtiles = (nq + kTileQ - 1) / kTileQ;
  const int64_t want_blocks = 8 * 132;
  int64_t slices = std::max<int64_t>(1, std::min<int64_t>(chunks, (want_blocks + qtiles - 1) / qtiles));
  const int64_t per_slice = (chunks + slices - 1) / slices;
  slices = (chunks + per_slice - 1) / per_slice;
  const dim3 grid(static_cast<unsigned>(qtiles), static_cast<unsigned>(slices));
  scan<0><<<grid, kThreads>>>(p, per_slice);
  VLK_CUDA_TRY(cudaGetLastError());
  int64_t np2 = 1;
  while (np2 < chunks) np2 <<= 1;
  kth_of_chunks<<<static_cast<unsigned>(nq), 256, static_cast<size_t>(np2) * sizeof(float)>>>(
      chunk_max.as<float>(), chunks, static_cast<int>(k), tau.as<float>());
  VLK_CUDA_TRY(cudaGetLastError());
  if (ctx.cancelled()) return Status(Code::kAborted, "search aborted");
  scan<1><<<grid, kThreads>>>(p, per_slice);
  VLK_CUDA_TRY(cudaGetLastError());
  rescore_select<<<static_cast<unsigned>(nq), 256>>>(qf.as<float>(), gf.as<float>(), dim, args.metric, exact, qn, gn,
                                                     cand_count.as<int>(), cand_rows.as<int>(), cand_upper.as<float>(),
                                                     qb.as<__nv_bfloat16>(), gb.as<__nv_bfloat16>(), dp,
                                                     static_cast<int>(k), oi.as<int>(), os.as<float>(), oc.as<int>());
  VLK_CUDA_TRY(cudaGetLastError());
  std::vector<int> counts(static_cast<size_t>(nq));
  VLK_CUDA_TRY(cudaMemcpy(out.indices, oi.p, static_cast<size_t>(nq * k) * sizeof(int), cudaMemcpyDeviceToHost));
  VLK_CUDA_TRY(cudaMemcpy(out.scores, os.p, static_cast<size_t>(nq * k) * sizeof(float), cudaMemcpyDeviceToHost));
  VLK_CUDA_TRY(cudaMemcpy(counts.data(), oc.p, static_cast<size_t>(nq) * sizeof(int), cudaMemcpyDeviceToHost));
  // Queries whose candidates overflowed the list: exact on the CPU, one at a time.
  for (int64_t i = 0; i < nq; ++i) {
    if (counts[static_cast<size_t>(i)] >= 0) {
      if (out.counts != nullptr) out.counts[i] = counts[static_cast<size_t>(i)];
      continue;
    }
    core::SearchArgs one = args;
    one.queries = MatrixView<const float>(args.queries.row(i), 1, args.queries.cols, args.queries.stride);
    core::SearchOut o{out.indices + i * k, out.scores + i * k, out.counts != nullptr ? out.counts + i : nullptr};
    VLK_RETURN_IF_ERROR(core::search(one, o, ctx));
  }
  return Status::Ok();
}

}  // namespace cuda
}  // namespace vlk
