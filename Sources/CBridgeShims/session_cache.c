#include "CBridgeShims.h"

#include <stdlib.h>
#include <openssl/crypto.h>

// One upstream's client-side TLS session cache: the newest resumable session (or TLS 1.3 ticket)
// the gateway gave us, shared by every worker thread under a lock. New connections offer it, so
// most handshakes to the gateway resume instead of doing a full key exchange.
typedef struct session_slot {
    CRYPTO_RWLOCK *lock;
    SSL_SESSION *session;
} session_slot;

static int slot_index = -1;
static CRYPTO_ONCE slot_once = CRYPTO_ONCE_STATIC_INIT;

static void free_slot(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp) {
    (void)parent; (void)ad; (void)idx; (void)argl; (void)argp;
    session_slot *slot = ptr;
    if (slot == NULL) return;
    SSL_SESSION_free(slot->session);
    CRYPTO_THREAD_lock_free(slot->lock);
    free(slot);
}

static void make_slot_index(void) {
    slot_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, free_slot);
}

static int remember_session(SSL *ssl, SSL_SESSION *session) {
    session_slot *slot = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), slot_index);
    if (slot == NULL || !SSL_SESSION_is_resumable(session)) return 0;
    CRYPTO_THREAD_write_lock(slot->lock);
    SSL_SESSION *previous = slot->session;
    slot->session = session;  // returning 1 below hands us the caller's reference
    CRYPTO_THREAD_unlock(slot->lock);
    SSL_SESSION_free(previous);
    return 1;
}

int tb_ssl_ctx_enable_session_resumption(SSL_CTX *ctx) {
    if (!CRYPTO_THREAD_run_once(&slot_once, make_slot_index) || slot_index < 0) return 0;
    session_slot *slot = calloc(1, sizeof(*slot));
    if (slot == NULL) return 0;
    slot->lock = CRYPTO_THREAD_lock_new();
    if (slot->lock == NULL || !SSL_CTX_set_ex_data(ctx, slot_index, slot)) {
        CRYPTO_THREAD_lock_free(slot->lock);
        free(slot);
        return 0;
    }
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, remember_session);
    return 1;
}

int tb_ssl_offer_cached_session(SSL *ssl) {
    if (slot_index < 0) return 0;
    session_slot *slot = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), slot_index);
    if (slot == NULL) return 0;
    int offered = 0;
    CRYPTO_THREAD_read_lock(slot->lock);
    if (slot->session != NULL && SSL_SESSION_is_resumable(slot->session)) {
        offered = SSL_set_session(ssl, slot->session);  // takes its own reference
    }
    CRYPTO_THREAD_unlock(slot->lock);
    return offered;
}
