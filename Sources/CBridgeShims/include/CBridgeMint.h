// Local CA: key generation and certificate issuing (see mint.c).
//
// The Swift side (BridgeIO's LocalCA) decides policy: which names, which validity, which digest.
// These functions only do what is variadic, macro-heavy or stack-typed in OpenSSL. Each returns NULL
// or 0 on failure with OpenSSL's error queue filled; drain it on the same thread. Every returned
// object is owned by the caller, who frees it with the function named next to it. All are
// thread-safe as long as no two threads modify the same certificate at once.
#ifndef TB_CBRIDGEMINT_H
#define TB_CBRIDGEMINT_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>

// A fresh RSA key of `bits` bits, public exponent 65537 (EVP_RSA_gen is a variadic macro).
// Blocks for up to a few seconds at 3072 bits. Free with EVP_PKEY_free.
EVP_PKEY *tb_mint_rsa_key(unsigned int bits);

// A new, unsigned X.509 v3 certificate: serial of 16 random bytes (positive, non-zero), subject
// CN=`common_name`, issuer `issuer_name` (NULL: the subject itself, for a self-signed CA), the public
// half of `subject_key`, valid from `not_before` to `not_after` (seconds since the epoch, UTC).
// Fails when the name is not a valid CN (longer than 64 characters). Free with X509_free.
X509 *tb_mint_begin_certificate(EVP_PKEY *subject_key, const char *common_name, const X509_NAME *issuer_name,
                                int64_t not_before, int64_t not_after);

// Adds one extension written as in openssl.cnf ("critical,CA:TRUE,pathlen:0", "hash", "keyid:always").
// `issuer` is the certificate that will sign `cert` (for authorityKeyIdentifier); NULL means `cert`
// signs itself. Returns 1 on success.
int tb_mint_add_extension(X509 *cert, X509 *issuer, int nid, const char *value);

// Adds a subjectAltName holding each of `names`, which are separated by '\n': an IPv4 or IPv6
// literal (as inet_pton reads it) becomes an IP entry, anything else a DNS entry. The caller has
// validated the names. Returns 1 on success.
int tb_mint_add_subject_alt_names(X509 *cert, const char *names);

// Signs `cert` with `issuer_key`: SHA-256, or SHA-1 when `legacy_sha1` is not 0. Returns 1 on success.
int tb_mint_sign(X509 *cert, EVP_PKEY *issuer_key, int legacy_sha1);

// 1 when `cert` may issue certificates: basicConstraints CA:TRUE, and keyCertSign if it has a keyUsage.
int tb_mint_is_ca(X509 *cert);
// The validity of `cert` as seconds since the epoch (UTC). Returns 1 on success.
int tb_mint_certificate_times(const X509 *cert, int64_t *not_before, int64_t *not_after);

// PEM text of a certificate, or of a private key (unencrypted PKCS#8). NUL-terminated; free with
// tb_mint_free_text, which wipes it first.
char *tb_mint_certificate_pem(X509 *cert);
char *tb_mint_private_key_pem(EVP_PKEY *key);
void tb_mint_free_text(char *text);

// Writes PEM to the open descriptor `fd` (which stays open): `cert`, then `chain_cert`, then `key`,
// each only when not NULL. The key never passes through a Swift string. Returns 1 on success.
int tb_mint_write_pem(int fd, X509 *cert, X509 *chain_cert, EVP_PKEY *key);

// A new certificate stack holding one more reference to `cert`, for SSL_use_cert_and_key's chain.
// Free with tb_mint_chain_free, which drops the stack's references.
STACK_OF(X509) *tb_mint_chain_of(X509 *cert);
void tb_mint_chain_free(STACK_OF(X509) *chain);

#endif
