// Non-owning row-major matrix view (core/common). Core never copies or writes caller data through it.
#pragma once

#include <cstdint>

namespace vlk {

/// rows x cols, row-major, `stride` elements between row starts (stride >= cols). Unaligned is fine.
template <class T>
struct MatrixView {
  T* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t stride = 0;

  MatrixView() = default;
  MatrixView(T* d, int64_t r, int64_t c) : data(d), rows(r), cols(c), stride(c) {}
  MatrixView(T* d, int64_t r, int64_t c, int64_t s) : data(d), rows(r), cols(c), stride(s) {}

  T* row(int64_t i) const { return data + i * stride; }
};

}  // namespace vlk
