#ifndef CFUZZDRIVER_H
#define CFUZZDRIVER_H

#include <stddef.h>
#include <stdint.h>

/// libFuzzer's entry point for programs that keep their own main (provided by -sanitize=fuzzer).
/// Parses libFuzzer's flags from argc/argv, then calls `callback` with each input; returns when
/// fuzzing ends (or exits the process on a crash).
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
