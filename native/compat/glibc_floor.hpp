// glibc/libstdc++ symbol-version floor for Linux builds (compat layer, force-included with -include
// into every translation unit of the addon): binds the few symbols that a newer toolchain versions
// above GLIBC 2.28 / GLIBCXX 3.4.25 to their older, still exported versions. No declarations, only
// assembler directives; scripts/check-glibc.mjs verifies the result. The rest: glibc_floor.cpp.
#pragma once

// libstdc++'s configuration header defines __GLIBCXX__ and, through <features.h>, __GLIBC__ (not
// defined under musl, where this header then does nothing).
#if defined(__cplusplus) && __has_include(<bits/c++config.h>)
#include <bits/c++config.h>
#endif

#if defined(__GLIBC__) && (defined(__x86_64__) || defined(__aarch64__))

// The oldest symbol version of each architecture's glibc.
#if defined(__x86_64__)
#define VLK_GLIBC_BASE "GLIBC_2.2.5"
#else
#define VLK_GLIBC_BASE "GLIBC_2.17"
#endif

#define VLK_SYMVER(sym, ver) __asm__(".symver " #sym "," #sym "@" ver)

// glibc 2.29 re-versioned these without the SVID error wrappers; the code is built with
// -fno-math-errno and never reads errno after them, so the old entry points behave the same.
VLK_SYMVER(exp, VLK_GLIBC_BASE);
VLK_SYMVER(exp2, VLK_GLIBC_BASE);
VLK_SYMVER(log, VLK_GLIBC_BASE);
VLK_SYMVER(log2, VLK_GLIBC_BASE);
VLK_SYMVER(pow, VLK_GLIBC_BASE);

// glibc 2.34 moved these from libdl into libc under a new version; the old version is the same
// function (in libdl.so.2 before 2.34, which the module links explicitly for that reason).
VLK_SYMVER(dlopen, VLK_GLIBC_BASE);
VLK_SYMVER(dladdr, VLK_GLIBC_BASE);
VLK_SYMVER(dlsym, VLK_GLIBC_BASE);
VLK_SYMVER(dlclose, VLK_GLIBC_BASE);
VLK_SYMVER(dlerror, VLK_GLIBC_BASE);

// The fstat64 shim in glibc_floor.cpp calls the pre-2.33 entry point.
VLK_SYMVER(__fxstat64, VLK_GLIBC_BASE);

#endif  // __GLIBC__

#if defined(__GLIBC__) && defined(__GLIBCXX__)
// GCC 12 re-versioned condition_variable::wait (GLIBCXX_3.4.30) only to let pthread_cancel unwind
// through it; the 3.4.11 entry point is the same wait, and the addon never cancels threads.
__asm__(".symver _ZNSt18condition_variable4waitERSt11unique_lockISt5mutexE,"
        "_ZNSt18condition_variable4waitERSt11unique_lockISt5mutexE@GLIBCXX_3.4.11");
#endif
