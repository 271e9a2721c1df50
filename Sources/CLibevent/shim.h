// Umbrella for libevent 2.1. The system headers come first on purpose: event-config.h defines
// _GNU_SOURCE, which would otherwise give fd_set a different shape than Swift's Glibc module has.
#include <sys/types.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <event2/event.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <event2/dns.h>
#include <event2/util.h>
#include <event2/thread.h>
#include <event2/http.h>
