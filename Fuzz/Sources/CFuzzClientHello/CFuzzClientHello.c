// The fuzz harness for the ClientHello observer (Sources/CBridgeShims/client_hello.c).
//
// The observer runs inside OpenSSL's ClientHello callback, before OpenSSL has checked the contents of
// any extension, so whatever a client sends reaches it. Each input is used four ways:
//   1. as the body of a supported_versions and of a server_name extension, and as a cipher list in
//      both formats (2-byte code points, 3-byte SSLv2 specs), for the parsers;
//   2. as the client's whole first flight (records and all) to a server SSL on a memory BIO;
//   3. as a ClientHello body, wrapped in correct handshake and record headers, so that OpenSSL's
//      framing checks pass far more often and the observer sees the fuzzer's extensions;
//   4. as the body of an SSLv2-compatible ClientHello (after its message type), in a 2-byte SSLv2
//      record header, so that the observer's v2 path (3-byte cipher specs) is reached as often.
// OpenSSL itself is not instrumented; coverage comes from this file and client_hello.c.
#include "CFuzzClientHello.h"
#include "CBridgeClientHello.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define REQUIRE(condition, what) do { \
    if (!(condition)) { fprintf(stderr, "invariant broken: %s\n", what); abort(); } \
} while (0)

static SSL_CTX *server_context;

// A server like a legacy listener: every version from TLS 1.0, security level 0, a throw-away
// P-256 certificate, and the bridge's observer.
static SSL_CTX *make_server_context(void) {
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = X509_new();
    REQUIRE(ctx != NULL && key != NULL && cert != NULL, "cannot set up the server context");
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
    X509_NAME *name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"fuzz.test", -1, -1, 0);
    X509_set_issuer_name(cert, name);
    X509_set_pubkey(cert, key);
    REQUIRE(X509_sign(cert, key, EVP_sha256()) > 0, "cannot sign the certificate");
    REQUIRE(SSL_CTX_use_certificate(ctx, cert) == 1 && SSL_CTX_use_PrivateKey(ctx, key) == 1, "cannot use the key");
    X509_free(cert);
    EVP_PKEY_free(key);
    SSL_CTX_set_security_level(ctx, 0);
    SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
    SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0");
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    REQUIRE(tb_ssl_ctx_observe_client_hello(ctx) == 1, "cannot install the observer");
    return ctx;
}

// The cipher list parser against a plain re-count: every entry but a signalling value is counted,
// the first TB_HELLO_MAX_CIPHERS are kept as read, and nothing else in the struct is touched.
static void check_cipher_list(const uint8_t *data, size_t size, int is_v2) {
    tb_client_hello hello;
    memset(&hello, 0xa5, sizeof(hello));
    tb_parse_cipher_list(data, size, is_v2, &hello);
    size_t width = is_v2 ? 3 : 2;
    int expected = 0;
    for (size_t i = 0; i + width <= size; i += width) {
        uint32_t code = is_v2 ? ((uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2])
                              : ((uint32_t)data[i] << 8 | data[i + 1]);
        int signalling = code == 0x00ff || code == 0x5600 || (code <= 0xffff && (code & 0x0f0f) == 0x0a0a);
        if (signalling) continue;
        if (expected < TB_HELLO_MAX_CIPHERS) REQUIRE(hello.ciphers[expected] == code, "cipher list entry");
        expected++;
    }
    REQUIRE(hello.total_ciphers == expected, "cipher list total");
    REQUIRE(hello.cipher_count == (expected < TB_HELLO_MAX_CIPHERS ? expected : TB_HELLO_MAX_CIPHERS), "cipher list count");
    // Put the three fields back to the fill pattern: then not one byte may differ from it.
    hello.cipher_count = hello.total_ciphers = (int)0xa5a5a5a5;
    memset(hello.ciphers, 0xa5, sizeof(hello.ciphers));
    const unsigned char *bytes = (const unsigned char *)&hello;
    for (size_t i = 0; i < sizeof(hello); i++) REQUIRE(bytes[i] == 0xa5, "cipher list parser wrote outside its fields");
}

static void check_parsers(const uint8_t *data, size_t size) {
    int best = tb_parse_supported_versions_max(data, size);
    REQUIRE(best >= 0 && best <= TLS1_3_VERSION, "supported_versions max out of range");
    REQUIRE(best == 0 || (best & 0x0f0f) != 0x0a0a, "supported_versions returned GREASE");

    // An output buffer of exactly outlen bytes on the heap (AddressSanitizer sees a byte too far),
    // its size steered by the input.
    size_t outlen = size == 0 ? 1 : 1 + data[size - 1] % 300;
    char *out = malloc(outlen);
    REQUIRE(out != NULL, "malloc");
    memset(out, 'x', outlen);
    if (tb_parse_server_name(data, size, out, outlen)) {
        size_t declared = size >= 5 ? ((size_t)data[3] << 8 | data[4]) : 0;
        size_t copied = declared < outlen - 1 ? declared : outlen - 1;
        REQUIRE(size >= 5 && data[2] == 0 && 5 + declared <= size, "server_name accepted a bad entry");
        REQUIRE(out[copied] == '\0' && memcmp(out, data + 5, copied) == 0, "server_name copied wrongly");
    } else {
        for (size_t i = 0; i < outlen; i++) REQUIRE(out[i] == 'x', "server_name wrote on failure");
    }
    free(out);
    char none = 'x';
    REQUIRE(tb_parse_server_name(data, size, &none, 0) == 0 && none == 'x', "server_name with outlen 0");

    for (int is_v2 = 0; is_v2 <= 1; is_v2++) check_cipher_list(data, size, is_v2);
}

static void check_summary(const SSL *ssl) {
    tb_client_hello hello;
    memset(&hello, 0xa5, sizeof(hello));
    if (!tb_ssl_client_hello(ssl, &hello)) return;
    REQUIRE(hello.has_sni == 0 || hello.has_sni == 1, "has_sni");
    REQUIRE(hello.has_sni == 1 || hello.sni[0] == '\0', "sni without has_sni");
    REQUIRE(memchr(hello.sni, '\0', sizeof(hello.sni)) != NULL, "sni not terminated");
    // The summary escapes sni[0..<sni_length] byte by byte: it must stay inside the buffer, before its NUL.
    REQUIRE(hello.sni_length >= 0 && (size_t)hello.sni_length < sizeof(hello.sni), "sni_length out of the buffer");
    REQUIRE(hello.has_sni == 1 || hello.sni_length == 0, "sni_length without has_sni");
    REQUIRE(hello.sni[hello.sni_length] == '\0', "sni_length is not where the copy ends");
    REQUIRE(hello.max_version >= 0 && hello.max_version <= 0xffff, "max_version");
    REQUIRE(hello.cipher_count >= 0 && hello.cipher_count <= TB_HELLO_MAX_CIPHERS, "cipher_count");
    REQUIRE(hello.total_ciphers >= hello.cipher_count, "total_ciphers below cipher_count");
    REQUIRE(hello.is_v2 == 0 || hello.is_v2 == 1, "is_v2");
    REQUIRE(hello.is_v2 == 0 || hello.has_sni == 0, "an SSLv2-format hello has no extensions, so no SNI");
    for (int i = 0; i < hello.cipher_count; i++) {
        // Only an SSLv2-format hello has 3-byte kinds; they are never asked for a TLS name.
        REQUIRE(hello.ciphers[i] <= 0xffffff && (hello.is_v2 == 1 || hello.ciphers[i] <= 0xffff), "cipher code width");
        if (hello.ciphers[i] > 0xffff) continue;
        const char *name = tb_cipher_name_for_code(ssl, (uint16_t)hello.ciphers[i]);
        if (name != NULL) REQUIRE(strlen(name) < 128, "cipher name");
    }
}

// One server handshake step over memory BIOs, fed `flight`; then the observer's summary is checked.
static void handshake(const uint8_t *flight, size_t size) {
    SSL *ssl = SSL_new(server_context);
    BIO *in = BIO_new(BIO_s_mem());
    BIO *out = BIO_new(BIO_s_mem());
    REQUIRE(ssl != NULL && in != NULL && out != NULL, "cannot make the server SSL");
    if (size > 0) REQUIRE(BIO_write(in, flight, (int)size) == (int)size, "BIO_write");
    BIO_set_mem_eof_return(in, -1);  // no more bytes yet: want-read, as on a socket
    SSL_set_bio(ssl, in, out);
    int result = SSL_accept(ssl);
    if (result <= 0) {
        int error = SSL_get_error(ssl, result);
        REQUIRE(error == SSL_ERROR_WANT_READ || error == SSL_ERROR_SSL || error == SSL_ERROR_SYSCALL,
                "unexpected SSL_accept error");
    }
    check_summary(ssl);
    SSL_free(ssl);
    ERR_clear_error();
}

int tb_fuzz_client_hello(const uint8_t *data, size_t size) {
    if (server_context == NULL) server_context = make_server_context();
    check_parsers(data, size);
    handshake(data, size);

    // The same bytes as one ClientHello body: record(handshake(client_hello, body)).
    if (size <= 16384 - 4) {
        uint8_t *flight = malloc(size + 9);
        REQUIRE(flight != NULL, "malloc");
        size_t message = size + 4;
        flight[0] = 0x16; flight[1] = 0x03; flight[2] = 0x01;
        flight[3] = (uint8_t)(message >> 8); flight[4] = (uint8_t)message;
        flight[5] = 0x01;
        flight[6] = (uint8_t)(size >> 16); flight[7] = (uint8_t)(size >> 8); flight[8] = (uint8_t)size;
        if (size > 0) memcpy(flight + 9, data, size);
        handshake(flight, size + 9);
        free(flight);
    }

    // The same bytes as an SSLv2-compatible ClientHello: a 2-byte header (high bit set, 15-bit
    // length), message type 1, then the input as version, the three lengths, specs, id, challenge.
    if (size + 1 <= 0x7fff) {
        uint8_t *flight = malloc(size + 3);
        REQUIRE(flight != NULL, "malloc");
        size_t message = size + 1;
        flight[0] = (uint8_t)(0x80 | (message >> 8)); flight[1] = (uint8_t)message;
        flight[2] = 0x01;
        if (size > 0) memcpy(flight + 3, data, size);
        handshake(flight, size + 3);
        free(flight);
    }
    return 0;
}
