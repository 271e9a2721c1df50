// The relay's hot path: moving bytes between a socket and libevent's buffers with as few system
// calls and TLS records as the data allows. Loop-thread only (like the buffers they touch).
#ifndef TB_CBRIDGERELAYIO_H
#define TB_CBRIDGERELAYIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <openssl/ssl.h>

struct evbuffer;

// Status of tb_read_socket besides the bytes it read.
enum {
    TB_READ_MORE = 0,     // the socket may have more later (it would block now, or the cap was hit)
    TB_READ_EOF = -1,     // the peer closed its side; nothing more will come
};

// Reads what a non-blocking socket has into `buffer` (a bufferevent's input), up to `max_chunks` reads of `chunk` bytes,
// each into contiguous space, so that a relayed chunk can become one full TLS record (libevent's
// own reads stop at 4 KiB). Stops early at a short read. Returns the bytes appended; *status is
// TB_READ_MORE, TB_READ_EOF, or an errno value for a socket error (reported after the bytes read
// before it, which are returned).
ssize_t tb_read_socket(struct evbuffer *buffer, int fd, size_t chunk, int max_chunks, int *status);

// Writes from the front of `source` straight to a plain socket, as much as it takes now.
// Returns the bytes written (drained from `source`); 0 when it would block or on an error, which
// the socket's bufferevent will meet and report when it writes the rest.
size_t tb_send_plain_now(struct evbuffer *source, int fd);

// The same through an established TLS connection: SSL_write of whole buffer chains, in order,
// until `source` is empty, `limit` bytes were written, or the connection cannot take more. A
// chain that got SSL_ERROR_WANT_WRITE stays at the front of `source`; the caller must queue
// `source` in the connection's bufferevent next, whose retry passes the same bytes again (it
// writes whole chains too, and sets SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER for a moved chain).
size_t tb_send_tls_now(struct evbuffer *source, SSL *ssl, size_t limit);

#endif
