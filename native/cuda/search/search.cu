// Exact batched top-k search on the GPU (native/cuda/search): cuda::search, core::search's contract,
// and the resident form (upload_gallery once, search_resident per batch; see cuda_api.hpp).
// search() is upload_gallery + search_resident. Compile-tested only so far (no GPU was available
// when it was written); bench/gpu/run.sh is its proof run.
//
// Pipeline (device 0, the default stream):
//  0. upload_gallery: the gallery's fp32 rows copied once, converted on the device by prep_rows.
//  1. prep: queries (per call) and gallery (once) in fp32, converted to bf16 (dimension padded to
//     16) with the per-row norms the bound needs (computed in float64, rounded up): |x|, |x - x^|,
//     |x^|, and the fp32 values core uses for cosine (1/|g| from the same fma chain).
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
// core::search. Queries whose candidates exceed the list are finished on the CPU by core::search
// (exact either way). Precision::kBf16 skips the bound (e = 0) and the re-score.
// Filters: a row a query may not return (allow bit clear, or in the query's exclusion list, sorted
// per query on the host and binary-searched) is skipped in both scans before its bounds are taken,
// so it neither raises t nor becomes a candidate; with fewer than k allowed rows t is -inf and every
// allowed row is a candidate, the rest of the row padding (-1, NaN), as in core.
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
#include <utility>
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
constexpr int kCandCap = 4096;   // candidates per query (sorted in shared memory)
constexpr int kThreads = 128;    // 4 warps
// kMaxK (cuda_api.hpp) bounds k; kMaxRows keeps the chunk maxima per query within one shared-memory
// sort in kth_of_chunks.
static_assert(kMaxRows / kChunk <= 8192, "kth_of_chunks sorts at most 8192 chunk maxima");

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
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
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
  // Filter (null: none): allow bits over gallery rows; per query q, the sorted rows
  // excl_rows[excl_off[q] .. excl_off[q + 1]) it must not return.
  const unsigned long long* allow;
  const long long* excl_off;
  const int* excl_rows;
};

// Whether query q may return gallery row r.
__device__ inline bool allowed(const ScanParams& p, int64_t q, int64_t r) {
  if (p.allow != nullptr && ((p.allow[r >> 6] >> (r & 63)) & 1ull) == 0) return false;
  if (p.excl_off != nullptr) {
    long long lo = p.excl_off[q], hi = p.excl_off[q + 1];
    while (lo < hi) {
      const long long mid = lo + (hi - lo) / 2;
      const int v = p.excl_rows[mid];
      if (v == r) return false;
      if (v < r) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
  }
  return true;
}

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
          if (!allowed(p, q, r)) continue;
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

// Splits one allocation into a matrix's per-row values.
Status norms_in(DeviceBuffer* b, int64_t rows, RowNorms* r) {
  VLK_RETURN_IF_ERROR(alloc(b, static_cast<size_t>(rows) * (4 * sizeof(float) + sizeof(double)), "row norms"));
  char* base = b->as<char>();
  r->n2 = reinterpret_cast<double*>(base);
  r->xnorm = reinterpret_cast<float*>(base + rows * sizeof(double));
  r->rnorm = r->xnorm + rows;
  r->hnorm = r->rnorm + rows;
  r->inv = r->hnorm + rows;
  return Status::Ok();
}

// Copies m (any stride) to fresh device memory, contiguous rows.
Status upload_rows(const MatrixView<const float>& m, DeviceBuffer* dst, const char* what) {
  VLK_RETURN_IF_ERROR(alloc(dst, static_cast<size_t>(m.rows) * m.cols * sizeof(float), what));
  VLK_CUDA_TRY(cudaMemcpy2D(dst->p, m.cols * sizeof(float), m.data, m.stride * sizeof(float), m.cols * sizeof(float),
                            m.rows, cudaMemcpyHostToDevice));
  return Status::Ok();
}

// bf16 codes (rows padded with zero rows to a multiple of `pad`) and norms of fp32 rows already on
// the device.
Status prepare(const float* f32, int64_t rows, int dim, int dp, int64_t pad, bool cosine, DeviceBuffer* codes,
               DeviceBuffer* norms_buf, RowNorms* norms, const char* what) {
  const int64_t padded = (rows + pad - 1) / pad * pad;
  VLK_RETURN_IF_ERROR(alloc(codes, static_cast<size_t>(padded) * dp * 2, what));
  VLK_CUDA_TRY(cudaMemset(codes->p, 0, static_cast<size_t>(padded) * dp * 2));
  VLK_RETURN_IF_ERROR(norms_in(norms_buf, rows, norms));
  prep_rows<<<static_cast<unsigned>((rows * 32 + 255) / 256), 256>>>(f32, rows, dim, dp, cosine,
                                                                      codes->as<__nv_bfloat16>(), *norms);
  VLK_CUDA_TRY(cudaGetLastError());
  return Status::Ok();
}

// The checks every GPU search makes after core::validate_search.
Status check_device_call(const core::SearchArgs& args) {
  const DeviceInfo& info = device_info();
  if (!info.usable) return Status(Code::kNoDevice, "device 'cuda': " + info.reason);
  if (args.tokens != 1) {
    return Status(Code::kInvalidArg, "tokens: " + std::to_string(args.tokens) +
                                         " rows per item run on the CPU only (use device 'cpu' or 'auto')");
  }
  if (args.k > kMaxK) {
    return Status(Code::kInvalidArg, "k: " + std::to_string(args.k) + " is above " + std::to_string(kMaxK) +
                                         ", the largest k device 'cuda' selects (use device 'cpu' or 'auto')");
  }
  return Status::Ok();
}

}  // namespace

// The resident gallery's device memory.
struct DeviceGallery::Impl {
  DeviceBuffer f32;    // rows x dim, contiguous
  DeviceBuffer codes;  // padded to kTileN rows x dp, bf16
  DeviceBuffer norms;  // gn's storage
  RowNorms gn{};
  int dp = 0;
};

DeviceGallery::DeviceGallery(int64_t rows, int64_t dim, core::Metric metric, int64_t device_bytes,
                             std::unique_ptr<Impl> impl)
    : rows_(rows), dim_(dim), metric_(metric), device_bytes_(device_bytes), impl_(std::move(impl)) {}

DeviceGallery::~DeviceGallery() = default;

Status upload_gallery(const MatrixView<const float>& g, Metric metric, std::shared_ptr<DeviceGallery>* out) {
  out->reset();
  if (g.rows < 0 || g.cols < 0 || g.stride < g.cols) {
    return Status(Code::kShape, "gallery: negative size or stride smaller than cols");
  }
  if (g.rows == 0 || g.cols == 0) {
    return Status(Code::kEmpty, "gallery: " + std::to_string(g.rows) + " x " + std::to_string(g.cols) + " is empty");
  }
  if (g.data == nullptr) return Status(Code::kInvalidArg, "gallery: null data pointer");
  if (g.rows > kMaxRows) {
    return Status(Code::kInvalidArg, "gallery: " + std::to_string(g.rows) +
                                         " rows exceed what device 'cuda' scans in one call (2,097,152)");
  }
  if (g.cols > (int64_t{1} << 24)) {
    return Status(Code::kInvalidArg, "gallery: dim " + std::to_string(g.cols) + " exceeds what device 'cuda' takes (16,777,216)");
  }
  const DeviceInfo& info = device_info();
  if (!info.usable) return Status(Code::kNoDevice, "device 'cuda': " + info.reason);
  {
    const std::string bad = core::find_non_finite("gallery", g);
    if (!bad.empty()) return Status(Code::kNonFinite, bad);
  }
  try {
    const int64_t n = g.rows;
    const int dim = static_cast<int>(g.cols);
    const int dp = (dim + 15) / 16 * 16;
    VLK_CUDA_TRY(cudaSetDevice(0));
    auto impl = std::make_unique<DeviceGallery::Impl>();
    impl->dp = dp;
    VLK_RETURN_IF_ERROR(upload_rows(g, &impl->f32, "gallery"));
    VLK_RETURN_IF_ERROR(prepare(impl->f32.as<float>(), n, dim, dp, kTileN, metric == Metric::kCosine, &impl->codes,
                                &impl->norms, &impl->gn, "gallery codes"));
    VLK_CUDA_TRY(cudaStreamSynchronize(0));  // the gallery is complete (and any fault shows) here
    const int64_t n_pad = (n + kTileN - 1) / kTileN * kTileN;
    const int64_t bytes = n * dim * int64_t(sizeof(float)) + n_pad * dp * 2 +
                          n * int64_t(4 * sizeof(float) + sizeof(double));
    *out = std::make_shared<DeviceGallery>(n, g.cols, metric, bytes, std::move(impl));
    return Status::Ok();
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "upload_gallery: out of host memory");
  }
}

Status search_resident(const DeviceGallery& gallery, const core::SearchArgs& args, const core::SearchOut& out,
                       const Context& ctx, Precision precision) {
  // args.gallery gives the shape only; validate_search wants a pointer, so stand one in for null.
  static const float kNoData = 0.0f;
  core::SearchArgs a = args;
  if (a.gallery.data == nullptr) a.gallery = MatrixView<const float>(&kNoData, a.gallery.rows, a.gallery.cols);
  VLK_RETURN_IF_ERROR(core::validate_search(a));
  if (a.gallery.rows != gallery.rows() || a.gallery.cols != gallery.dim()) {
    return Status(Code::kInvalidArg, "gallery: " + std::to_string(a.gallery.rows) + " x " +
                                         std::to_string(a.gallery.cols) + " is not the resident gallery's " +
                                         std::to_string(gallery.rows()) + " x " + std::to_string(gallery.dim()));
  }
  if (a.metric != gallery.metric()) {
    return Status(Code::kInvalidArg, std::string("metric: '") + core::metric_name(a.metric) +
                                         "' differs from the resident gallery's '" +
                                         core::metric_name(gallery.metric()) + "'");
  }
  VLK_RETURN_IF_ERROR(check_device_call(a));
  if (ctx.cancelled()) return Status(Code::kAborted, "search aborted");
  {
    const std::string bad = core::find_non_finite("queries", a.queries);
    if (!bad.empty()) return Status(Code::kNonFinite, bad);
  }
  const DeviceGallery::Impl& gi = gallery.impl();
  const int64_t nq = a.queries.rows, n = gallery.rows(), k = a.k;
  const int dim = static_cast<int>(gallery.dim());
  const int dp = gi.dp;
  const bool exact = precision == Precision::kExact;
  try {
    VLK_CUDA_TRY(cudaSetDevice(0));
    DeviceBuffer qf, qb, qnorm_buf;
    VLK_RETURN_IF_ERROR(upload_rows(a.queries, &qf, "queries"));
    RowNorms qn{};
    VLK_RETURN_IF_ERROR(prepare(qf.as<float>(), nq, dim, dp, kTileQ, a.metric == Metric::kCosine, &qb, &qnorm_buf,
                                &qn, "query codes"));

    // The filter on the device: allow bits as given; exclusion lists rebased to 0 and sorted per query.
    DeviceBuffer allow_buf, excl_off_buf, excl_rows_buf;
    if (a.filter.allow != nullptr) {
      const size_t words = static_cast<size_t>((n + 63) / 64);
      VLK_RETURN_IF_ERROR(alloc(&allow_buf, words * sizeof(uint64_t), "allow bits"));
      VLK_CUDA_TRY(cudaMemcpy(allow_buf.p, a.filter.allow, words * sizeof(uint64_t), cudaMemcpyHostToDevice));
    }
    if (a.filter.exclude_offsets != nullptr) {
      const int64_t* off = a.filter.exclude_offsets;
      std::vector<long long> offsets(static_cast<size_t>(nq) + 1, 0);
      std::vector<int> rows(static_cast<size_t>(off[nq] - off[0]));
      for (int64_t i = 0; i < nq; ++i) {
        const int64_t b = off[i] - off[0], e = off[i + 1] - off[0];
        for (int64_t j = b; j < e; ++j) rows[static_cast<size_t>(j)] = a.filter.exclude_rows[off[0] + j];
        std::sort(rows.begin() + b, rows.begin() + e);
        offsets[static_cast<size_t>(i) + 1] = e;
      }
      VLK_RETURN_IF_ERROR(alloc(&excl_off_buf, offsets.size() * sizeof(long long), "exclude offsets"));
      VLK_CUDA_TRY(cudaMemcpy(excl_off_buf.p, offsets.data(), offsets.size() * sizeof(long long), cudaMemcpyHostToDevice));
      VLK_RETURN_IF_ERROR(alloc(&excl_rows_buf, rows.size() * sizeof(int), "exclude rows"));
      if (!rows.empty()) {
        VLK_CUDA_TRY(cudaMemcpy(excl_rows_buf.p, rows.data(), rows.size() * sizeof(int), cudaMemcpyHostToDevice));
      }
    }

    // Chunks: kChunk rows each, at most 8192 per query (kMaxRows; the k-th selection sorts them in
    // shared memory).
    const int64_t chunks = (n + kChunk - 1) / kChunk;
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
    p.g = gi.codes.as<__nv_bfloat16>();
    p.nq = nq;
    p.n = n;
    p.dp = dp;
    p.metric = a.metric;
    p.exact = exact;
    p.c = static_cast<float>((dp + 16) * std::ldexp(1.0, -21));
    p.qn = qn;
    p.gn = gi.gn;
    p.chunk_max = chunk_max.as<float>();
    p.chunks = chunks;
    p.tau = tau.as<float>();
    p.cand_count = cand_count.as<int>();
    p.cand_rows = cand_rows.as<int>();
    p.cand_upper = cand_upper.as<float>();
    p.allow = a.filter.allow != nullptr ? allow_buf.as<unsigned long long>() : nullptr;
    p.excl_off = a.filter.exclude_offsets != nullptr ? excl_off_buf.as<long long>() : nullptr;
    p.excl_rows = a.filter.exclude_offsets != nullptr ? excl_rows_buf.as<int>() : nullptr;
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
    rescore_select<<<static_cast<unsigned>(nq), 256>>>(qf.as<float>(), gi.f32.as<float>(), dim, a.metric, exact, qn,
                                                       gi.gn, cand_count.as<int>(), cand_rows.as<int>(),
                                                       cand_upper.as<float>(), qb.as<__nv_bfloat16>(),
                                                       gi.codes.as<__nv_bfloat16>(), dp, static_cast<int>(k),
                                                       oi.as<int>(), os.as<float>(), oc.as<int>());
    VLK_CUDA_TRY(cudaGetLastError());
    std::vector<int> counts(static_cast<size_t>(nq));
    VLK_CUDA_TRY(cudaMemcpy(out.indices, oi.p, static_cast<size_t>(nq * k) * sizeof(int), cudaMemcpyDeviceToHost));
    VLK_CUDA_TRY(cudaMemcpy(out.scores, os.p, static_cast<size_t>(nq * k) * sizeof(float), cudaMemcpyDeviceToHost));
    VLK_CUDA_TRY(cudaMemcpy(counts.data(), oc.p, static_cast<size_t>(nq) * sizeof(int), cudaMemcpyDeviceToHost));
    // Queries whose candidates overflowed the list: exact on the CPU, one at a time, against the
    // caller's host rows or, without them, a copy of the device's.
    std::vector<float> host_rows;
    MatrixView<const float> host = args.gallery;
    for (int64_t i = 0; i < nq; ++i) {
      if (counts[static_cast<size_t>(i)] >= 0) {
        if (out.counts != nullptr) out.counts[i] = counts[static_cast<size_t>(i)];
        continue;
      }
      if (host.data == nullptr) {
        host_rows.resize(static_cast<size_t>(n) * dim);
        VLK_CUDA_TRY(cudaMemcpy(host_rows.data(), gi.f32.p, host_rows.size() * sizeof(float), cudaMemcpyDeviceToHost));
        host = MatrixView<const float>(host_rows.data(), n, dim);
      }
      core::SearchArgs one = args;
      one.gallery = host;
      one.queries = MatrixView<const float>(a.queries.row(i), 1, a.queries.cols, a.queries.stride);
      int64_t single_off[2] = {0, 0};
      if (a.filter.exclude_offsets != nullptr) {  // query i's own exclusion list, as one query's CSR
        single_off[0] = a.filter.exclude_offsets[i];
        single_off[1] = a.filter.exclude_offsets[i + 1];
        one.filter.exclude_offsets = single_off;
      }
      core::SearchOut o{out.indices + i * k, out.scores + i * k, out.counts != nullptr ? out.counts + i : nullptr};
      VLK_RETURN_IF_ERROR(core::search(one, o, ctx));
    }
    return Status::Ok();
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "device 'cuda': out of host memory");
  }
}

Status search(const core::SearchArgs& args, const core::SearchOut& out, const Context& ctx, Precision precision) {
  VLK_RETURN_IF_ERROR(core::validate_search(args));
  VLK_RETURN_IF_ERROR(check_device_call(args));
  if (ctx.cancelled()) return Status(Code::kAborted, "search aborted");
  {
    const std::string bad = core::find_non_finite("queries", args.queries);
    if (!bad.empty()) return Status(Code::kNonFinite, bad);
  }
  std::shared_ptr<DeviceGallery> gallery;
  VLK_RETURN_IF_ERROR(upload_gallery(args.gallery, args.metric, &gallery));
  return search_resident(*gallery, args, out, ctx, precision);
}

}  // namespace cuda
}  // namespace vlk
