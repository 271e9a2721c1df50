// What a TLS client offered in its ClientHello (see client_hello.c), kept per connection so that
// a failed downstream handshake can be logged with the client's side of the story.
#ifndef TB_CBRIDGECLIENTHELLO_H
#define TB_CBRIDGECLIENTHELLO_H
#include <stdint.h>
#include <openssl/ssl.h>

#define TB_HELLO_MAX_CIPHERS 12

typedef struct tb_client_hello {
    int max_version;            // highest version offered (e.g. TLS1_VERSION), from supported_versions if present
    int is_v2;                  // 1 for an SSLv2-compatible hello (Java 6, OpenSSL 0.9.8): 3-byte cipher specs, no extensions
    int has_sni;                // 1 when the server_name extension carried a host name
    char sni[256];              // that name, NUL-terminated (truncated if longer)
    int sni_length;             // bytes of the name in `sni`: a hostile name may hold a NUL of its own
    int cipher_count;           // how many suites are in `ciphers` (at most TB_HELLO_MAX_CIPHERS)
    int total_ciphers;          // how many suites the client offered in all (signalling values excluded)
    // The first suites offered: IANA code points (at most 0xFFFF), or, from an SSLv2-compatible hello,
    // SSL 2.0 cipher kinds as their 3-byte value (at least 0x010000: their first byte is never 0).
    uint32_t ciphers[TB_HELLO_MAX_CIPHERS];
} tb_client_hello;

// Installs the ClientHello observer on a server context. Never rejects a hello.
int tb_ssl_ctx_observe_client_hello(SSL_CTX *ctx);
// Copies what was observed for this connection; returns 0 when no ClientHello was seen.
int tb_ssl_client_hello(const SSL *ssl, tb_client_hello *out);
// OpenSSL's name for a suite code point, or NULL when this build does not know it.
const char *tb_cipher_name_for_code(const SSL *ssl, uint16_t code);

// The parsers the observer uses, exposed for unit tests and the fuzz target (Fuzz/Sources/fuzz-clienthello).
// `data`/`length` are what OpenSSL hands over (an extension's body, the cipher list): unvalidated client bytes.
// Cipher list: 2-byte code points, or with `is_v2` 3-byte SSLv2 cipher specs (a spec whose first byte is 0
// is the TLS suite named by the other two). Sets `hello`'s cipher_count, total_ciphers and ciphers, in the
// client's order, skipping signalling values (renegotiation SCSV, fallback SCSV, GREASE); a trailing
// partial entry is ignored. Touches nothing else in `hello`.
void tb_parse_cipher_list(const unsigned char *data, size_t length, int is_v2, tb_client_hello *hello);
// supported_versions: the highest version listed, up to TLS1_3_VERSION (GREASE skipped), or 0.
int tb_parse_supported_versions_max(const unsigned char *data, size_t length);
// server_name: 1 and the first entry's host name in `out` (NUL-terminated, truncated to outlen - 1
// bytes) when it is a host_name entry that fits in `length`; else 0 and `out` untouched.
int tb_parse_server_name(const unsigned char *data, size_t length, char *out, size_t outlen);
#endif
