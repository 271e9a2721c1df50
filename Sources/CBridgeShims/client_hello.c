#include "CBridgeClientHello.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/tls1.h>

static int hello_index = -1;
static CRYPTO_ONCE hello_once = CRYPTO_ONCE_STATIC_INIT;

static void free_hello(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp) {
    (void)parent; (void)ad; (void)idx; (void)argl; (void)argp;
    free(ptr);
}

static void make_hello_index(void) {
    hello_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, free_hello);
}

// supported_versions (TLS 1.3 clients): a 1-byte length, then 2-byte versions; GREASE values skipped.
int tb_parse_supported_versions_max(const unsigned char *data, size_t length) {
    if (length < 1) return 0;
    size_t list = data[0];
    int best = 0;
    for (size_t i = 1; i + 1 < length && i < list + 1; i += 2) {
        int version = (data[i] << 8) | data[i + 1];
        if ((version & 0x0f0f) == 0x0a0a) continue;
        if (version > best && version <= TLS1_3_VERSION) best = version;
    }
    return best;
}

// server_name: list length (2), then entries of type (1) + length (2) + name.
int tb_parse_server_name(const unsigned char *data, size_t length, char *out, size_t outlen) {
    if (outlen == 0 || length < 5 || data[2] != TLSEXT_NAMETYPE_host_name) return 0;
    size_t name_length = ((size_t)data[3] << 8) | data[4];
    if (5 + name_length > length) return 0;
    size_t copy = name_length < outlen - 1 ? name_length : outlen - 1;
    memcpy(out, data + 5, copy);
    out[copy] = '\0';
    return 1;
}

void tb_parse_cipher_list(const unsigned char *data, size_t length, int is_v2, tb_client_hello *hello) {
    size_t width = is_v2 ? 3 : 2;
    hello->cipher_count = 0;
    hello->total_ciphers = 0;
    for (size_t i = 0; data != NULL && i + width <= length; i += width) {
        uint32_t code = 0;
        for (size_t k = 0; k < width; k++) code = (code << 8) | data[i + k];
        // Signalling values, not suites: renegotiation info, fallback SCSV, GREASE. In a v2 spec they
        // can only appear as TLS suites (first byte 0), where the value is the 2-byte code.
        if (code == 0x00ff || code == 0x5600 || (code <= 0xffff && (code & 0x0f0f) == 0x0a0a)) continue;
        if (hello->cipher_count < TB_HELLO_MAX_CIPHERS) hello->ciphers[hello->cipher_count++] = code;
        hello->total_ciphers++;
    }
}

static int max_supported_version(const unsigned char *data, size_t length) {
    return tb_parse_supported_versions_max(data, length);
}

static void read_server_name(const unsigned char *data, size_t length, tb_client_hello *hello) {
    if (!tb_parse_server_name(data, length, hello->sni, sizeof(hello->sni))) return;
    hello->has_sni = 1;
    // The parser accepted bytes 3-4 as the name's length; what was copied is that, capped.
    size_t name_length = ((size_t)data[3] << 8) | data[4];
    hello->sni_length = (int)(name_length < sizeof(hello->sni) - 1 ? name_length : sizeof(hello->sni) - 1);
}

static int observe_client_hello(SSL *ssl, int *alert, void *arg) {
    (void)alert; (void)arg;
    tb_client_hello *hello = SSL_get_ex_data(ssl, hello_index);
    if (hello == NULL) {
        hello = calloc(1, sizeof(*hello));
        if (hello == NULL || !SSL_set_ex_data(ssl, hello_index, hello)) {
            free(hello);
            return SSL_CLIENT_HELLO_SUCCESS;
        }
    }
    memset(hello, 0, sizeof(*hello));
    hello->max_version = (int)SSL_client_hello_get0_legacy_version(ssl);
    const unsigned char *data = NULL;
    size_t length = 0;
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_supported_versions, &data, &length)) {
        int best = max_supported_version(data, length);
        if (best > hello->max_version) hello->max_version = best;
    }
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &data, &length)) {
        read_server_name(data, length, hello);
    }
    // An SSLv2-compatible hello has no extensions (so no SNI) and lists 3-byte cipher specs.
    hello->is_v2 = SSL_client_hello_isv2(ssl) ? 1 : 0;
    const unsigned char *suites = NULL;
    size_t suites_length = SSL_client_hello_get0_ciphers(ssl, &suites);
    tb_parse_cipher_list(suites, suites_length, hello->is_v2, hello);
    return SSL_CLIENT_HELLO_SUCCESS;
}

int tb_ssl_ctx_observe_client_hello(SSL_CTX *ctx) {
    if (!CRYPTO_THREAD_run_once(&hello_once, make_hello_index) || hello_index < 0) return 0;
    SSL_CTX_set_client_hello_cb(ctx, observe_client_hello, NULL);
    return 1;
}

int tb_ssl_client_hello(const SSL *ssl, tb_client_hello *out) {
    if (hello_index < 0) return 0;
    const tb_client_hello *hello = SSL_get_ex_data(ssl, hello_index);
    if (hello == NULL) return 0;
    *out = *hello;
    return 1;
}

const char *tb_cipher_name_for_code(const SSL *ssl, uint16_t code) {
    unsigned char bytes[2] = { (unsigned char)(code >> 8), (unsigned char)(code & 0xff) };
    const SSL_CIPHER *cipher = SSL_CIPHER_find((SSL *)ssl, bytes);
    return cipher == NULL ? NULL : SSL_CIPHER_get_name(cipher);
}
