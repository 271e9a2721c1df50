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
// The context's lowest protocol version; 0 means no lower bound.
int tb_ssl_ctx_get_min_proto_version(SSL_CTX *ctx);
int tb_ssl_set_tlsext_host_name(SSL *ssl, const char *name);
int tb_ssl_ctx_set1_groups_list(SSL_CTX *ctx, const char *groups);
// Frees a connection's read/write buffers while it is idle (most sessions are, most of the time).
void tb_ssl_ctx_release_buffers(SSL_CTX *ctx);
void tb_ssl_ctx_set_client_session_cache(SSL_CTX *ctx);

// Server side: the SNI callback (a macro in OpenSSL), and accepting any client chain so that
// the caller can decide by fingerprint after the handshake.
typedef int (*tb_servername_callback)(SSL *ssl, int *alert, void *arg);
int tb_ssl_ctx_set_servername_callback(SSL_CTX *ctx, tb_servername_callback callback, void *arg);
void tb_ssl_ctx_verify_client(SSL_CTX *ctx, int accept_any_chain);
// Client side toward a pinned backend: any chain passes here, the caller compares the fingerprint.
void tb_ssl_ctx_verify_server_by_pin(SSL_CTX *ctx);
int tb_ssl_ctx_set_dh_auto(SSL_CTX *ctx);
// SHA-256 of the certificate's DER, as 64 upper-case hex digits plus NUL (buffer of 65 bytes).
int tb_x509_sha256_hex(const X509 *cert, char *out65);
// Client-side session resumption toward one upstream (session_cache.c): the newest session the
// server issued is kept per context, shared by all threads, and offered by new connections.
int tb_ssl_ctx_enable_session_resumption(SSL_CTX *ctx);
int tb_ssl_offer_cached_session(SSL *ssl);

// Option bits for SSL_CTX_set_options.
uint64_t tb_ssl_op_no_compression(void);
uint64_t tb_ssl_op_no_renegotiation(void);
uint64_t tb_ssl_op_no_ticket(void);
uint64_t tb_ssl_op_cipher_server_preference(void);

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
// The peer's own certificate, also when verification failed (a client then keeps it only in the
// peer chain; a server's peer chain lacks it). Not owned by the caller.
X509 *tb_ssl_peer_leaf_unverified(const SSL *ssl);
// Reads every certificate of a PEM file: the first into *leaf (owned by the caller, X509_free),
// the rest as the chain (owned by the caller, tb_free_certificate_chain; never NULL on success).
// Returns NULL and leaves *leaf NULL when the file holds no certificate.
STACK_OF(X509) *tb_load_certificate_chain(const char *path, X509 **leaf);
void tb_free_certificate_chain(STACK_OF(X509) *chain);
// Reads a PEM certificate file's first certificate; the caller owns it (X509_free).
X509 *tb_read_certificate(const char *path);
// Seconds from now until the certificate's notAfter (negative when expired), and until notBefore.
int tb_certificate_validity(const X509 *cert, int64_t *seconds_to_not_before, int64_t *seconds_to_not_after);

// Client certificate tracking: after tb_ssl_ctx_track_client_certificate(ctx), every SSL made from
// that context records whether it sent a non-empty Certificate message in its handshake.
int tb_ssl_ctx_track_client_certificate(SSL_CTX *ctx);
int tb_ssl_sent_client_certificate(const SSL *ssl);
// ... and whether the server asked for one (a CertificateRequest arrived).
int tb_ssl_received_certificate_request(const SSL *ssl);

// Certificate minting for the local CA (mint.c) and ClientHello summaries (client_hello.c).
#include "CBridgeMint.h"
#include "CBridgeClientHello.h"
#include "CBridgeRelayIO.h"
#include "CBridgeSpawn.h"

#endif
