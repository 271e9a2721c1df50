#include "CBridgeRelayIO.h"

#include <errno.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <openssl/err.h>
#include <event2/event-config.h>

// Two shortcuts here lean on how libevent 2.1 works inside: tb_read_socket writes into a
// bufferevent's input outside libevent's own reads (unfreezing its end, as libevent does), and
// tb_send_tls_now calls SSL_write on the SSL that bufferevent_openssl owns while nothing is queued.
// Neither is part of libevent's contract: check both against another version before allowing it.
#if !defined(EVENT__NUMERIC_VERSION) || EVENT__NUMERIC_VERSION < 0x02010000 || EVENT__NUMERIC_VERSION >= 0x02020000
#error "relay_io.c relies on libevent 2.1 internals; review tb_read_socket and tb_send_tls_now for this libevent version"
#endif

ssize_t tb_read_socket(struct evbuffer *buffer, int fd, size_t chunk, int max_chunks, int *status) {
    ssize_t total = 0;
    *status = TB_READ_MORE;
    // A bufferevent keeps its input's end frozen outside its own reads; this is such a read.
    evbuffer_unfreeze(buffer, 0);
    for (int i = 0; i < max_chunks; i++) {
        struct evbuffer_iovec space;
        if (evbuffer_reserve_space(buffer, (ev_ssize_t)chunk, &space, 1) != 1) {
            *status = ENOMEM;
            break;
        }
        ssize_t got;
        do {
            got = read(fd, space.iov_base, space.iov_len);
        } while (got < 0 && errno == EINTR);
        if (got > 0) {
            space.iov_len = (size_t)got;
            evbuffer_commit_space(buffer, &space, 1);
            total += got;
            if ((size_t)got < chunk) break;  // drained for now: no need for a read that would block
            continue;
        }
        evbuffer_commit_space(buffer, &space, 0);
        if (got == 0) {
            *status = TB_READ_EOF;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
            *status = errno;
        }
        break;
    }
    evbuffer_freeze(buffer, 0);
    return total;
}

size_t tb_send_plain_now(struct evbuffer *source, int fd) {
    int written = evbuffer_write_atmost(source, fd, -1);
    return written > 0 ? (size_t)written : 0;
}

size_t tb_send_tls_now(struct evbuffer *source, SSL *ssl, size_t limit) {
    size_t total = 0;
    while (total < limit && evbuffer_get_length(source) > 0) {
        struct evbuffer_iovec chain;
        if (evbuffer_peek(source, -1, NULL, &chain, 1) < 1 || chain.iov_len == 0) break;
        int length = chain.iov_len > INT32_MAX ? INT32_MAX : (int)chain.iov_len;
        ERR_clear_error();
        int written = SSL_write(ssl, chain.iov_base, length);
        if (written <= 0) {
            // Would block, or failed: the bufferevent takes over and meets the same condition.
            ERR_clear_error();
            break;
        }
        evbuffer_drain(source, (size_t)written);
        total += (size_t)written;
    }
    return total;
}
