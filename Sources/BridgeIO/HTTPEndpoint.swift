internal import CLibevent
#if canImport(Glibc)
import Glibc
#endif

/// A tiny HTTP server on libevent's evhttp, for the admin endpoint (`/healthz`, `/metrics`).
/// Owns its `evhttp`; runs on the loop it was made with, on that loop's thread only.
public final class HTTPEndpoint {
    /// A reply: status, content type and body.
    public struct Reply {
        public var status: Int
        public var contentType: String
        public var body: String

        public init(status: Int, contentType: String = "text/plain; charset=utf-8", body: String) {
            self.status = status
            self.contentType = contentType
            self.body = body
        }
    }

    private var http: OpaquePointer!
    private let handler: (_ path: String, _ query: String) -> Reply

    /// Serves requests arriving on `socket` (already bound and listening) with `handler`.
    public init?(loop: EventLoop, socket: ListeningSocket, handler: @escaping (_ path: String, _ query: String) -> Reply) {
        self.handler = handler
        guard let http = evhttp_new(loop.base) else { return nil }
        self.http = http
        evhttp_set_allowed_methods(http, UInt16(EVHTTP_REQ_GET.rawValue | EVHTTP_REQ_HEAD.rawValue))
        evhttp_set_max_headers_size(http, 8192)
        evhttp_set_timeout(http, 10)
        evhttp_set_gencb(http, { request, context in
            guard let request, let context else { return }
            let endpoint = Unmanaged<HTTPEndpoint>.fromOpaque(context).takeUnretainedValue()
            endpoint.serve(request)
        }, Unmanaged.passUnretained(self).toOpaque())
        guard evhttp_accept_socket(http, socket.fd) == 0 else {
            evhttp_free(http)
            return nil
        }
    }

    deinit {
        evhttp_free(http)
    }

    private func serve(_ request: OpaquePointer) {
        let uri = evhttp_request_get_uri(request).map { String(cString: $0) } ?? "/"
        let parts = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let reply = handler(String(parts.first ?? "/"), parts.count > 1 ? String(parts[1]) : "")
        let headers = evhttp_request_get_output_headers(request)
        evhttp_add_header(headers, "Content-Type", reply.contentType)
        evhttp_add_header(headers, "Cache-Control", "no-store")
        let buffer = evbuffer_new()
        _ = reply.body.withCString { evbuffer_add(buffer, $0, strlen($0)) }
        evhttp_send_reply(request, Int32(reply.status), reply.status == 200 ? "OK" : "Error", buffer)
        evbuffer_free(buffer)
    }
}
