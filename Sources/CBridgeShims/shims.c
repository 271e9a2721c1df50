#include "CBridgeShims.h"

#include <string.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

int tb_ssl_ctx_set_min_proto_version(SSL_CTX *ctx, int version) { return SSL_CTX_set_min_proto_version(ctx, version); }
int tb_ssl_ctx_set_max_proto_version(SSL_CTX *ctx, int version) { return SSL_CTX_set_max_proto_version(ctx, version); }
int tb_ssl_ctx_get_min_proto_version(SSL_CTX *ctx) { return (int)SSL_CTX_get_min_proto_version(ctx); }
int tb_ssl_set_tlsext_host_name(SSL *ssl, const char *name) { return SSL_set_tlsext_host_name(ssl, name); }
int tb_ssl_ctx_set1_groups_list(SSL_CTX *ctx, const char *groups) { return SSL_CTX_set1_groups_list(ctx, groups); }
void tb_ssl_ctx_release_buffers(SSL_CTX *ctx) { SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS); }
void tb_ssl_ctx_set_client_session_cache(SSL_CTX *ctx) { SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT); }

uint64_t tb_ssl_op_no_compression(void) { return SSL_OP_NO_COMPRESSION; }
uint64_t tb_ssl_op_no_renegotiation(void) { return SSL_OP_NO_RENEGOTIATION; }
uint64_t tb_ssl_op_no_ticket(void) { return SSL_OP_NO_TICKET; }
uint64_t tb_ssl_op_cipher_server_preference(void) { return SSL_OP_CIPHER_SERVER_PREFERENCE; }

int tb_ssl_ctx_set_servername_callback(SSL_CTX *ctx, tb_servername_callback callback, void *arg) {
    if (!SSL_CTX_set_tlsext_servername_callback(ctx, callback)) return 0;
    return (int)SSL_CTX_set_tlsext_servername_arg(ctx, arg);
}

static int accept_any_chain(int preverify_ok, X509_STORE_CTX *store) {
    (void)preverify_ok; (void)store;
    return 1;
}

void tb_ssl_ctx_verify_client(SSL_CTX *ctx, int accept_any) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, accept_any ? accept_any_chain : NULL);
}

void tb_ssl_ctx_verify_server_by_pin(SSL_CTX *ctx) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any_chain);
}

int tb_ssl_ctx_set_dh_auto(SSL_CTX *ctx) { return (int)SSL_CTX_set_dh_auto(ctx, 1); }

int tb_x509_sha256_hex(const X509 *cert, char *out65) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (cert == NULL || !X509_digest(cert, EVP_sha256(), digest, &length) || length != 32) return 0;
    static const char hex[] = "0123456789ABCDEF";
    for (unsigned int i = 0; i < length; i++) {
        out65[2 * i] = hex[digest[i] >> 4];
        out65[2 * i + 1] = hex[digest[i] & 0x0f];
    }
    out65[64] = '\0';
    return 1;
}

int tb_ssl_ctx_cipher_count(const SSL_CTX *ctx) {
    STACK_OF(SSL_CIPHER) *list = SSL_CTX_get_ciphers(ctx);
    return list == NULL ? 0 : sk_SSL_CIPHER_num(list);
}

const SSL_CIPHER *tb_ssl_ctx_cipher_at(const SSL_CTX *ctx, int index) {
    STACK_OF(SSL_CIPHER) *list = SSL_CTX_get_ciphers(ctx);
    return list == NULL ? NULL : sk_SSL_CIPHER_value(list, index);
}

int tb_ssl_ctx_trusted_cert_count(SSL_CTX *ctx) {
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    if (store == NULL) return 0;
    STACK_OF(X509_OBJECT) *objects = X509_STORE_get0_objects(store);
    int count = 0;
    for (int i = 0; i < sk_X509_OBJECT_num(objects); i++) {
        if (X509_OBJECT_get_type(sk_X509_OBJECT_value(objects, i)) == X509_LU_X509) count++;
    }
    return count;
}

EVP_PKEY *tb_load_private_key(const char *path, const char *password) {
    BIO *bio = BIO_new_file(path, "r");
    if (bio == NULL) return NULL;
    // With no callback, OpenSSL takes the user pointer as the NUL-terminated passphrase.
    // An empty string (not NULL) makes an encrypted key fail instead of prompting on a terminal.
    EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)(password ? password : ""));
    BIO_free(bio);
    return key;
}

void tb_cleanse(void *buffer, size_t len) { OPENSSL_cleanse(buffer, len); }

int tb_x509_name_rfc2253(const X509_NAME *name, char *buffer, size_t size) {
    if (name == NULL || buffer == NULL || size == 0) return -1;
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL) return -1;
    int result = -1;
    if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
        char *data = NULL;
        long length = BIO_get_mem_data(bio, &data);
        size_t copy = (size_t)length < size - 1 ? (size_t)length : size - 1;
        memcpy(buffer, data, copy);
        buffer[copy] = '\0';
        result = (int)copy;
    }
    BIO_free(bio);
    return result;
}

X509 *tb_ssl_peer_leaf_unverified(const SSL *ssl) {
    X509 *leaf = SSL_get0_peer_certificate(ssl);
    if (leaf != NULL) return leaf;
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
    if (chain == NULL || sk_X509_num(chain) == 0) return NULL;
    return sk_X509_value(chain, 0);
}

STACK_OF(X509) *tb_load_certificate_chain(const char *path, X509 **leaf) {
    *leaf = NULL;
    BIO *bio = BIO_new_file(path, "r");
    if (bio == NULL) return NULL;
    STACK_OF(X509) *chain = sk_X509_new_null();
    X509 *cert = NULL;
    while (chain != NULL && (cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (*leaf == NULL) {
            *leaf = cert;
        } else if (!sk_X509_push(chain, cert)) {
            X509_free(cert);
        }
    }
    ERR_clear_error();  // the loop always ends on "no start line"
    BIO_free(bio);
    if (*leaf == NULL) {
        sk_X509_pop_free(chain, X509_free);
        return NULL;
    }
    return chain;
}

void tb_free_certificate_chain(STACK_OF(X509) *chain) {
    if (chain != NULL) sk_X509_pop_free(chain, X509_free);
}

X509 *tb_read_certificate(const char *path) {
    BIO *bio = BIO_new_file(path, "r");
    if (bio == NULL) return NULL;
    X509 *cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    return cert;
}

static int64_t seconds_from_now(const ASN1_TIME *when) {
    int days = 0, seconds = 0;
    if (!ASN1_TIME_diff(&days, &seconds, NULL, when)) return 0;
    return (int64_t)days * 86400 + seconds;
}

int tb_certificate_validity(const X509 *cert, int64_t *seconds_to_not_before, int64_t *seconds_to_not_after) {
    if (cert == NULL) return 0;
    *seconds_to_not_before = seconds_from_now(X509_get0_notBefore(cert));
    *seconds_to_not_after = seconds_from_now(X509_get0_notAfter(cert));
    return 1;
}

// --- client certificate tracking -------------------------------------------------------------

static int sent_certificate_index = -1;
static CRYPTO_ONCE sent_certificate_once = CRYPTO_ONCE_STATIC_INIT;

static void make_sent_certificate_index(void) {
    sent_certificate_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

// Sees every handshake message this side writes. A Certificate message (type 11) whose certificate
// list is not empty means a client certificate went out. TLS 1.3 puts a one-byte-length request
// context before the 3-byte list length; TLS 1.2 does not.
static void on_handshake_message(int write_p, int version, int content_type, const void *buf, size_t len,
                                 SSL *ssl, void *arg) {
    (void)arg;
    if (content_type != SSL3_RT_HANDSHAKE || len < 1) return;
    const unsigned char *bytes = buf;
    uintptr_t flags = (uintptr_t)SSL_get_ex_data(ssl, sent_certificate_index);
    if (!write_p) {
        // The server asked for a client certificate.
        if (bytes[0] == SSL3_MT_CERTIFICATE_REQUEST) SSL_set_ex_data(ssl, sent_certificate_index, (void *)(flags | 2));
        return;
    }
    if (len < 7 || bytes[0] != SSL3_MT_CERTIFICATE) return;
    size_t offset = 4;
    if (version == TLS1_3_VERSION) {
        offset += 1 + bytes[4];
    }
    if (offset + 3 > len) return;
    size_t list_length = ((size_t)bytes[offset] << 16) | ((size_t)bytes[offset + 1] << 8) | bytes[offset + 2];
    if (list_length > 0) SSL_set_ex_data(ssl, sent_certificate_index, (void *)(flags | 1));
}

int tb_ssl_ctx_track_client_certificate(SSL_CTX *ctx) {
    if (!CRYPTO_THREAD_run_once(&sent_certificate_once, make_sent_certificate_index) || sent_certificate_index < 0) {
        return 0;
    }
    SSL_CTX_set_msg_callback(ctx, on_handshake_message);
    return 1;
}

int tb_ssl_sent_client_certificate(const SSL *ssl) {
    if (sent_certificate_index < 0) return 0;
    return ((uintptr_t)SSL_get_ex_data(ssl, sent_certificate_index) & 1) != 0;
}

int tb_ssl_received_certificate_request(const SSL *ssl) {
    if (sent_certificate_index < 0) return 0;
    return ((uintptr_t)SSL_get_ex_data(ssl, sent_certificate_index) & 2) != 0;
}
