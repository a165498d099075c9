// Status code table (core/common). See status.hpp.
#include "common/status.hpp"

namespace vlk {

namespace {
constexpr const char* kCodeStrings[] = {
#define VLK_X(name, str) str,
    VLK_STATUS_CODES(VLK_X)
#undef VLK_X
};
constexpr int kCodeCount = static_cast<int>(sizeof(kCodeStrings) / sizeof(kCodeStrings[0]));
}  // namespace

const char* code_string(Code code) {
  const int i = static_cast<int>(code);
  return (i >= 0 && i < kCodeCount) ? kCodeStrings[i] : "ERR_VLK_INTERNAL";
}

int code_count() { return kCodeCount; }

Code code_at(int i) { return static_cast<Code>(i); }

}  // namespace vlk
