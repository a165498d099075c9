// Word-region dot-product micro-kernel of scan_similarity (core/search, internal). Included by each
// scan_kernel_<isa>.cpp, compiled with its ISA's flags: plain C++ the compiler vectorizes over the
// 16 words of a block (as gemm_kernel.hpp). The words of one query are packed once, transposed,
// in blocks of 16 (wt[b][e * 16 + t], zero-padded); region rows stream straight from the bank
// (no gather, no packing):
//   out[r * lp + t] = sum_e v[r, e] * w[t, e]        fp32 multiply then add, e ascending (the
//                                                    same rounding on every ISA path)
// lp = 16 * blocks. Rows are taken 8, then 4, then 1 at a time so the accumulators stay in
// registers.
#pragma once

#include <cstdint>

namespace vlk {
namespace core {

struct ScanKernels {
  void (*dots)(const float* wt, int64_t blocks, const float* v, int64_t rows, int64_t ldv, int64_t d, float* out);
};

const ScanKernels& scan_kernels_scalar();
const ScanKernels& scan_kernels_avx2();
const ScanKernels& scan_kernels_avx512();

namespace {

constexpr int kScanLanes = 16;

// 16 fp32 lanes as a GCC/Clang vector: one zmm (avx512), two ymm (avx2), four xmm (scalar build).
typedef float ScanVec __attribute__((vector_size(64), aligned(4)));

template <int RB>
void scan_rows(const float* __restrict wt, const float* __restrict v, int64_t ldv, int64_t d, float* __restrict out,
               int64_t ldo) {
  ScanVec acc[RB];
  for (int i = 0; i < RB; ++i) acc[i] = ScanVec{};
  for (int64_t e = 0; e < d; ++e) {
    ScanVec we;
    __builtin_memcpy(&we, wt + e * kScanLanes, sizeof(we));
    for (int i = 0; i < RB; ++i) acc[i] += v[i * ldv + e] * we;  // multiply, then add (no fma)
  }
  for (int i = 0; i < RB; ++i) __builtin_memcpy(out + i * ldo, &acc[i], sizeof(ScanVec));
}

void scan_dots(const float* wt, int64_t blocks, const float* v, int64_t rows, int64_t ldv, int64_t d, float* out) {
  const int64_t lp = blocks * kScanLanes;
  for (int64_t b = 0; b < blocks; ++b) {
    const float* w = wt + b * d * kScanLanes;
    int64_t r = 0;
    for (; r + 8 <= rows; r += 8) scan_rows<8>(w, v + r * ldv, ldv, d, out + r * lp + b * kScanLanes, lp);
    for (; r + 4 <= rows; r += 4) scan_rows<4>(w, v + r * ldv, ldv, d, out + r * lp + b * kScanLanes, lp);
    for (; r < rows; ++r) scan_rows<1>(w, v + r * ldv, ldv, d, out + r * lp + b * kScanLanes, lp);
  }
}

}  // namespace

}  // namespace core
}  // namespace vlk
