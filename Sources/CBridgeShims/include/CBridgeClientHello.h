// What a TLS client offered in its ClientHello (see client_hello.c).
#ifndef TB_CBRIDGECLIENTHELLO_H
#define TB_CBRIDGECLIENTHELLO_H
#include <openssl/ssl.h>
#endif
