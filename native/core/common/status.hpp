// Status codes shared by every layer: core returns Status, the binding turns it into a JS error
// whose .code is the string below, lib/errors.ts mirrors the same list (a test checks they match).
#pragma once

#include <string>
#include <utility>

namespace vlk {

// X(enumerator, js_code). Order is ABI for nothing; only the strings are contract.
#define VLK_STATUS_CODES(X)                            \
  X(kOk, "OK")                                         \
  X(kType, "ERR_VLK_TYPE")                             \
  X(kDimMismatch, "ERR_VLK_DIM_MISMATCH")              \
  X(kShape, "ERR_VLK_SHAPE")                           \
  X(kInvalidK, "ERR_VLK_INVALID_K")                    \
  X(kNonFinite, "ERR_VLK_NON_FINITE")                  \
  X(kEmpty, "ERR_VLK_EMPTY")                           \
  X(kInvalidArg, "ERR_VLK_INVALID_ARG")                \
  X(kUnsupportedIsa, "ERR_VLK_UNSUPPORTED_ISA")        \
  X(kOutOfMemory, "ERR_VLK_OUT_OF_MEMORY")             \
  X(kAborted, "ABORT_ERR")                             \
  X(kIo, "ERR_VLK_IO")                                 \
  X(kCorrupt, "ERR_VLK_CORRUPT")                       \
  X(kNoDevice, "ERR_VLK_NO_DEVICE")                    \
  X(kInternal, "ERR_VLK_INTERNAL")

enum class Code {
#define VLK_X(name, str) name,
  VLK_STATUS_CODES(VLK_X)
#undef VLK_X
};

/// The JS-facing string of a code ("ERR_VLK_SHAPE", ...). Never null.
const char* code_string(Code code);

/// Number of codes, and the i-th code (for the binding's `_errorCodes()` export).
int code_count();
Code code_at(int i);

/// Result of a core operation. No exception leaves core: allocation failures become kOutOfMemory.
struct Status {
  Code code = Code::kOk;
  std::string message;

  Status() = default;
  Status(Code c, std::string m) : code(c), message(std::move(m)) {}
  static Status Ok() { return Status(); }
  bool ok() const { return code == Code::kOk; }
};

}  // namespace vlk

#define VLK_RETURN_IF_ERROR(expr)        \
  do {                                   \
    ::vlk::Status vlk_status_ = (expr);  \
    if (!vlk_status_.ok()) return vlk_status_; \
  } while (0)
