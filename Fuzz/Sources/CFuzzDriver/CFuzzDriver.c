// -sanitize=fuzzer links libFuzzer's own main (FuzzerMain.o), which refers to
// LLVMFuzzerTestOneInput. SwiftPM's --defsym main=<module>_main still decides which main runs, so
// that one is never called: the Swift main calls LLVMFuzzerRunDriver with its own callback. This
// definition only satisfies the linker (without it, ld.gold crashes while reporting the undefined
// symbol: "internal error in format_file_lineno"). If it ever runs, the build is wrong: trap.
#include "CFuzzDriver.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    (void)data;
    (void)size;
    __builtin_trap();
}
