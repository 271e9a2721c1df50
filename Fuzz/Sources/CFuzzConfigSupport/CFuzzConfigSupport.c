// TOMLKit 0.6.0 frees nothing it allocates: a parsed TOMLTable has no deinit (the whole toml++
// document stays), and each `string` / `keys` read strdup's or mallocs a copy that is never freed.
// Every config parse therefore "leaks" inside TOMLKit. Those leaks are known and reported; they are
// suppressed here so LeakSanitizer still reports any leak whose allocation is not inside TOMLKit.
#include "CFuzzConfigSupport.h"

const char *__lsan_default_suppressions(void) {
    return "leak:/TOMLKit/Sources/\n";
}
