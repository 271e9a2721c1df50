// Umbrella for OpenSSL 3 (libssl-dev). Function-like macros do not import into Swift:
// their wrappers live in CBridgeShims.
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <openssl/evp.h>
#include <openssl/crypto.h>
#include <openssl/opensslv.h>
