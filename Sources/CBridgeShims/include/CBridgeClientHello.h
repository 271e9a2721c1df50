// What a TLS client offered in its ClientHello (see client_hello.c), kept per connection so that
// a failed downstream handshake can be logged with the client's side of the story.
#ifndef TB_CBRIDGECLIENTHELLO_H
#define TB_CBRIDGECLIENTHELLO_H
#include <stdint.h>
#include <openssl/ssl.h>

#define TB_HELLO_MAX_CIPHERS 12

typedef struct tb_client_hello {
    int max_version;            // highest version offered (e.g. TLS1_VERSION), from supported_versions if present
    int has_sni;                // 1 when the server_name extension carried a host name
    char sni[256];              // that name, NUL-terminated (truncated if longer)
    int sni_length;             // bytes of the name in `sni`: a hostile name may hold a NUL of its own
    int cipher_count;           // how many suites are in `ciphers` (at most TB_HELLO_MAX_CIPHERS)
    int total_ciphers;          // how many suites the client offered in all (signalling values excluded)
    uint16_t ciphers[TB_HELLO_MAX_CIPHERS];   // the first suites offered, IANA code points
} tb_client_hello;

// Installs the ClientHello observer on a server context. Never rejects a hello.
int tb_ssl_ctx_observe_client_hello(SSL_CTX *ctx);
// Copies what was observed for this connection; returns 0 when no ClientHello was seen.
int tb_ssl_client_hello(const SSL *ssl, tb_client_hello *out);
// OpenSSL's name for a suite code point, or NULL when this build does not know it.
const char *tb_cipher_name_for_code(const SSL *ssl, uint16_t code);

// The extension parsers the observer uses, exposed for the fuzz target (Fuzz/Sources/fuzz-clienthello).
// `data`/`length` are an extension's body as OpenSSL hands it over: unvalidated client bytes.
// supported_versions: the highest version listed, up to TLS1_3_VERSION (GREASE skipped), or 0.
int tb_parse_supported_versions_max(const unsigned char *data, size_t length);
// server_name: 1 and the first entry's host name in `out` (NUL-terminated, truncated to outlen - 1
// bytes) when it is a host_name entry that fits in `length`; else 0 and `out` untouched.
int tb_parse_server_name(const unsigned char *data, size_t length, char *out, size_t outlen);
#endif
