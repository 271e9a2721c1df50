// Certificate minting for the local CA. See CBridgeMint.h for the contract of each function.

#include "CBridgeMint.h"

#include <arpa/inet.h>
#include <string.h>
#include <time.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

EVP_PKEY *tb_mint_rsa_key(unsigned int bits) {
    return EVP_RSA_gen(bits);
}

// 16 random bytes, top bit cleared so the DER INTEGER is positive without a pad byte; never zero
// (RFC 5280 wants a positive serial, and some old clients choke on 0).
static int set_random_serial(X509 *cert) {
    unsigned char bytes[16];
    if (RAND_bytes(bytes, sizeof bytes) != 1) return 0;
    bytes[0] &= 0x7f;
    bytes[0] |= 0x40;  // keep the full 16-byte length: a short serial looks like a counter
    BIGNUM *number = BN_bin2bn(bytes, sizeof bytes, NULL);
    OPENSSL_cleanse(bytes, sizeof bytes);
    if (number == NULL) return 0;
    ASN1_INTEGER *serial = BN_to_ASN1_INTEGER(number, NULL);
    BN_free(number);
    if (serial == NULL) return 0;
    int ok = X509_set_serialNumber(cert, serial);
    ASN1_INTEGER_free(serial);
    return ok;
}

X509 *tb_mint_begin_certificate(EVP_PKEY *subject_key, const char *common_name, const X509_NAME *issuer_name,
                                int64_t not_before, int64_t not_after) {
    if (subject_key == NULL || common_name == NULL) return NULL;
    X509 *cert = X509_new();
    X509_NAME *subject = X509_NAME_new();
    int ok = cert != NULL && subject != NULL
        && X509_set_version(cert, X509_VERSION_3)
        && set_random_serial(cert)
        && X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_UTF8,
                                      (const unsigned char *)common_name, -1, -1, 0)
        && X509_set_subject_name(cert, subject)
        && X509_set_issuer_name(cert, issuer_name != NULL ? issuer_name : subject)
        && X509_set_pubkey(cert, subject_key)
        && ASN1_TIME_set(X509_getm_notBefore(cert), (time_t)not_before) != NULL
        && ASN1_TIME_set(X509_getm_notAfter(cert), (time_t)not_after) != NULL;
    X509_NAME_free(subject);
    if (!ok) {
        X509_free(cert);
        return NULL;
    }
    return cert;
}

int tb_mint_add_extension(X509 *cert, X509 *issuer, int nid, const char *value) {
    if (cert == NULL || value == NULL) return 0;
    X509V3_CTX context;
    X509V3_set_ctx_nodb(&context);
    X509V3_set_ctx(&context, issuer != NULL ? issuer : cert, cert, NULL, NULL, 0);
    X509_EXTENSION *extension = X509V3_EXT_conf_nid(NULL, &context, nid, value);
    if (extension == NULL) return 0;
    int ok = X509_add_ext(cert, extension, -1);
    X509_EXTENSION_free(extension);
    return ok;
}

// One subjectAltName entry. Built by hand rather than from "DNS:a,IP:b" text so that no name can
// smuggle a second entry (or another type) in through a comma.
static GENERAL_NAME *general_name(const char *name) {
    unsigned char address[16];
    int length = 0;
    if (inet_pton(AF_INET, name, address) == 1) {
        length = 4;
    } else if (inet_pton(AF_INET6, name, address) == 1) {
        length = 16;
    }
    GENERAL_NAME *entry = GENERAL_NAME_new();
    if (entry == NULL) return NULL;
    if (length > 0) {
        ASN1_OCTET_STRING *ip = ASN1_OCTET_STRING_new();
        if (ip == NULL || !ASN1_OCTET_STRING_set(ip, address, length)) {
            ASN1_OCTET_STRING_free(ip);
            GENERAL_NAME_free(entry);
            return NULL;
        }
        GENERAL_NAME_set0_value(entry, GEN_IPADD, ip);
    } else {
        ASN1_IA5STRING *dns = ASN1_IA5STRING_new();
        if (dns == NULL || !ASN1_STRING_set(dns, name, -1)) {
            ASN1_IA5STRING_free(dns);
            GENERAL_NAME_free(entry);
            return NULL;
        }
        GENERAL_NAME_set0_value(entry, GEN_DNS, dns);
    }
    return entry;
}

int tb_mint_add_subject_alt_names(X509 *cert, const char *names) {
    if (cert == NULL || names == NULL) return 0;
    GENERAL_NAMES *list = sk_GENERAL_NAME_new_null();
    char *copy = OPENSSL_strdup(names);
    int ok = list != NULL && copy != NULL;
    char *cursor = copy;
    while (ok && cursor != NULL && *cursor != '\0') {
        char *end = strchr(cursor, '\n');
        if (end != NULL) *end = '\0';
        if (*cursor != '\0') {
            GENERAL_NAME *entry = general_name(cursor);
            ok = entry != NULL && sk_GENERAL_NAME_push(list, entry) > 0;
            if (!ok) GENERAL_NAME_free(entry);
        }
        cursor = end != NULL ? end + 1 : NULL;
    }
    ok = ok && sk_GENERAL_NAME_num(list) > 0
        && X509_add1_ext_i2d(cert, NID_subject_alt_name, list, 0, X509V3_ADD_DEFAULT) == 1;
    OPENSSL_free(copy);
    GENERAL_NAMES_free(list);
    return ok;
}

int tb_mint_sign(X509 *cert, EVP_PKEY *issuer_key, int legacy_sha1) {
    if (cert == NULL || issuer_key == NULL) return 0;
    return X509_sign(cert, issuer_key, legacy_sha1 ? EVP_sha1() : EVP_sha256()) > 0;
}

int tb_mint_is_ca(X509 *cert) {
    if (cert == NULL) return 0;
    // X509_get_extension_flags caches the parsed extensions first; an unparsable one sets EXFLAG_INVALID.
    uint32_t flags = X509_get_extension_flags(cert);
    if ((flags & EXFLAG_INVALID) || !(flags & EXFLAG_BCONS) || !(flags & EXFLAG_CA)) return 0;
    if ((flags & EXFLAG_KUSAGE) && !(X509_get_key_usage(cert) & KU_KEY_CERT_SIGN)) return 0;
    return 1;
}

static int epoch_seconds(const ASN1_TIME *when, int64_t *out) {
    struct tm parts;
    memset(&parts, 0, sizeof parts);
    if (when == NULL || ASN1_TIME_to_tm(when, &parts) != 1) return 0;
    *out = (int64_t)timegm(&parts);
    return 1;
}

int tb_mint_certificate_times(const X509 *cert, int64_t *not_before, int64_t *not_after) {
    if (cert == NULL || not_before == NULL || not_after == NULL) return 0;
    return epoch_seconds(X509_get0_notBefore(cert), not_before)
        && epoch_seconds(X509_get0_notAfter(cert), not_after);
}

// Copies a memory BIO's contents into a NUL-terminated OpenSSL allocation.
static char *bio_text(BIO *bio) {
    char *data = NULL;
    long length = BIO_get_mem_data(bio, &data);
    if (length < 0) return NULL;
    char *text = OPENSSL_malloc((size_t)length + 1);
    if (text == NULL) return NULL;
    memcpy(text, data, (size_t)length);
    text[length] = '\0';
    return text;
}

char *tb_mint_certificate_pem(X509 *cert) {
    if (cert == NULL) return NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL) return NULL;
    char *text = PEM_write_bio_X509(bio, cert) == 1 ? bio_text(bio) : NULL;
    BIO_free(bio);
    return text;
}

char *tb_mint_private_key_pem(EVP_PKEY *key) {
    if (key == NULL) return NULL;
    // A secure-memory BIO wipes its buffer when freed, so no copy of the key is left in the heap.
    BIO *bio = BIO_new(BIO_s_secmem());
    if (bio == NULL) return NULL;
    char *text = PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1 ? bio_text(bio) : NULL;
    BIO_free(bio);
    return text;
}

void tb_mint_free_text(char *text) {
    if (text == NULL) return;
    OPENSSL_clear_free(text, strlen(text));
}

int tb_mint_write_pem(int fd, X509 *cert, X509 *chain_cert, EVP_PKEY *key) {
    BIO *bio = BIO_new_fd(fd, BIO_NOCLOSE);
    if (bio == NULL) return 0;
    int ok = (cert == NULL || PEM_write_bio_X509(bio, cert) == 1)
        && (chain_cert == NULL || PEM_write_bio_X509(bio, chain_cert) == 1)
        && (key == NULL || PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1)
        && BIO_flush(bio) == 1;
    BIO_free(bio);
    return ok;
}

STACK_OF(X509) *tb_mint_chain_of(X509 *cert) {
    if (cert == NULL) return NULL;
    STACK_OF(X509) *chain = sk_X509_new_null();
    if (chain == NULL) return NULL;
    if (!X509_up_ref(cert)) {
        sk_X509_free(chain);
        return NULL;
    }
    if (sk_X509_push(chain, cert) <= 0) {
        X509_free(cert);
        sk_X509_free(chain);
        return NULL;
    }
    return chain;
}

void tb_mint_chain_free(STACK_OF(X509) *chain) {
    sk_X509_pop_free(chain, X509_free);
}
