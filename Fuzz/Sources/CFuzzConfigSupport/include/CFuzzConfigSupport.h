#ifndef CFUZZCONFIGSUPPORT_H
#define CFUZZCONFIGSUPPORT_H

/// LeakSanitizer suppressions for fuzz-config (defined in CFuzzConfigSupport.c; LSan calls it).
const char *__lsan_default_suppressions(void);

#endif
