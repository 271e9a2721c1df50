#ifndef CFUZZCLIENTHELLO_H
#define CFUZZCLIENTHELLO_H

#include <stddef.h>
#include <stdint.h>

/// One fuzz input for client_hello.c: the extension parsers on the raw bytes, then two in-memory TLS
/// server handshakes (the bytes as the whole first flight, and wrapped as one ClientHello message)
/// with the bridge's ClientHello observer installed. A broken invariant aborts. Always returns 0.
int tb_fuzz_client_hello(const uint8_t *data, size_t size);

#endif
