# CMake toolchain for linux-arm64 cross builds with Debian's aarch64 toolchain
# (apt-get install g++-aarch64-linux-gnu qemu-user): the C++ core tests then run under
# qemu-aarch64 with the target's libraries from /usr/aarch64-linux-gnu (ctest uses the emulator).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(VLK_CROSS_PREFIX "aarch64-linux-gnu-" CACHE STRING "cross toolchain prefix")
set(CMAKE_C_COMPILER "${VLK_CROSS_PREFIX}gcc")
set(CMAKE_CXX_COMPILER "${VLK_CROSS_PREFIX}g++")

set(VLK_CROSS_SYSROOT "/usr/aarch64-linux-gnu" CACHE PATH "target libraries (qemu -L)")
set(CMAKE_FIND_ROOT_PATH "${VLK_CROSS_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L "${VLK_CROSS_SYSROOT}")
