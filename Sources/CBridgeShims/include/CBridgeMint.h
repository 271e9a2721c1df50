// Local CA: key generation and certificate issuing (see mint.c).
#ifndef TB_CBRIDGEMINT_H
#define TB_CBRIDGEMINT_H
#include <openssl/ssl.h>
#endif
