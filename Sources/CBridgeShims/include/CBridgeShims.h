// Prefixed C wrappers for what does not import into Swift: OpenSSL's function-like macros,
// its SSL_OP_* constants, and a few small helpers that are simpler to express in C than to
// drive through OpaquePointer from Swift. Every function here is thread-safe unless it says so.
#ifndef TB_CBRIDGESHIMS_H
#define TB_CBRIDGESHIMS_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>

// Protocol bounds (SSL_CTX_set_min_proto_version and friends are macros).
int tb_ssl_ctx_set_min_proto_version(SSL_CTX *ctx, int version);
int tb_ssl_ctx_set_max_proto_version(SSL_CTX *ctx, int version);
int tb_ssl_set_tlsext_host_name(SSL *ssl, const char *name);
int tb_ssl_ctx_set1_groups_list(SSL_CTX *ctx, const char *groups);
void tb_ssl_ctx_set_client_session_cache(SSL_CTX *ctx);

// Option bits for SSL_CTX_set_options.
uint64_t tb_ssl_op_no_compression(void);
uint64_t tb_ssl_op_no_renegotiation(void);
uint64_t tb_ssl_op_no_ticket(void);

// Returns 1 when the cipher is one the upstream side must never use: 3DES, DES, RC4, no
// encryption, no authentication, MD5 MAC, or fewer than 128 bits.
int tb_cipher_is_weak(const SSL_CIPHER *cipher);
// The cipher list a context would offer, and its length (for inspection, not ownership).
int tb_ssl_ctx_cipher_count(const SSL_CTX *ctx);
const SSL_CIPHER *tb_ssl_ctx_cipher_at(const SSL_CTX *ctx, int index);
// Number of certificates in the context's trust store.
int tb_ssl_ctx_trusted_cert_count(SSL_CTX *ctx);

// Loads a PEM private key; `password` may be NULL for an unencrypted key. Returns NULL with the
// OpenSSL error queue filled on failure. The caller owns the key (EVP_PKEY_free).
EVP_PKEY *tb_load_private_key(const char *path, const char *password);
// Wipes `len` bytes at `buffer` in a way the compiler cannot drop.
void tb_cleanse(void *buffer, size_t len);

// Writes `name` as an RFC 2253 string into `buffer` (NUL-terminated, truncated to fit).
// Returns the length written, or -1.
int tb_x509_name_rfc2253(const X509_NAME *name, char *buffer, size_t size);
// The first certificate the peer sent, even when verification failed; not owned by the caller.
X509 *tb_ssl_peer_leaf_unverified(const SSL *ssl);
// Reads a PEM certificate file's first certificate; the caller owns it (X509_free).
X509 *tb_read_certificate(const char *path);
// Seconds from now until the certificate's notAfter (negative when expired), and until notBefore.
int tb_certificate_validity(const X509 *cert, int64_t *seconds_to_not_before, int64_t *seconds_to_not_after);

// Client certificate tracking: after tb_ssl_ctx_track_client_certificate(ctx), every SSL made from
// that context records whether it sent a non-empty Certificate message in its handshake.
int tb_ssl_ctx_track_client_certificate(SSL_CTX *ctx);
int tb_ssl_sent_client_certificate(const SSL *ssl);

// Certificate minting for the local CA (mint.c) and ClientHello summaries (client_hello.c).
#include "CBridgeMint.h"
#include "CBridgeClientHello.h"

#endif
