// glibc/libstdc++ symbol-version floor (compat layer, Linux glibc builds only): module-local
// definitions of the three symbols a newer toolchain references that glibc 2.28 / GCC 8's libstdc++
// do not export at all. Hidden, so they satisfy this module's own references and nothing else.
#include <new>

#if defined(__GLIBC__) && (defined(__x86_64__) || defined(__aarch64__))

// GCC 11+'s std::allocator calls this on an impossible size (GLIBCXX_3.4.29); it throws what
// libstdc++'s own definition throws.
namespace std {
[[noreturn]] __attribute__((visibility("hidden"))) void __throw_bad_array_new_length() {
  throw bad_array_new_length();
}
}  // namespace std

extern "C" {

// libstdc++ headers read glibc 2.32's __libc_single_threaded to skip atomics in shared_ptr and
// friends. Zero means "maybe threaded": every reference count stays atomic, which is always correct
// (the addon runs on a thread pool anyway).
__attribute__((visibility("hidden"))) char __libc_single_threaded = 0;

// Before glibc 2.33 fstat64 was a header inline over __fxstat64 (bound to its old version in
// glibc_floor.hpp); the struct layout is the same, `ver` is the kernel stat ABI of the target.
struct stat64;
int __fxstat64(int ver, int fd, struct stat64* buf);
#if defined(__x86_64__)
constexpr int kStatVer = 1;
#else
constexpr int kStatVer = 0;
#endif
__attribute__((visibility("hidden"))) int fstat64(int fd, struct stat64* buf) {
  return __fxstat64(kStatVer, fd, buf);
}

}  // extern "C"

#endif
