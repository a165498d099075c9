// Whether the addon under test is a sanitizer build (scripts/test-asan.sh sets VLK_SANITIZED), and
// the factor time bounds stretch by there: instrumented kernels run several times slower, and ASan's
// quarantine keeps freed memory resident, so RSS bounds say nothing about leaks under it (the C++
// core tests run with LeakSanitizer instead: scripts/test-sanitizers.sh).
export const sanitized: string | undefined = process.env.VLK_SANITIZED || undefined;
export const timeScale = sanitized ? 10 : 1;
