internal import CLibevent
#if canImport(Glibc)
import Glibc
#endif

/// One non-blocking name lookup through the loop's `evdns_base`. Cancel it if the answer is no
/// longer wanted; the completion then never runs.
public final class Resolution {
    /// What a lookup produced: addresses in the resolver's order, or the reason there are none.
    public enum Result {
        case addresses([SocketAddress])
        case failed(String)
    }

    private var request: OpaquePointer?
    private var completion: ((Result) -> Void)?

    /// Starts resolving `host` for TCP `port`. `completion` runs once on the loop's thread, possibly
    /// before this initialiser returns (numeric hosts and /etc/hosts entries answer at once).
    public init(loop: EventLoop, host: String, port: UInt16, completion: @escaping (Result) -> Void) {
        self.completion = completion
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_protocol = Int32(IPPROTO_TCP)
        // The callback owns one retain of this object until libevent calls it, which it does
        // exactly once: with the answer, an error, or EVUTIL_EAI_CANCEL after cancel().
        let context = Unmanaged.passRetained(self).toOpaque()
        let pending = evdns_getaddrinfo(loop.dns, host, String(port), &hints, { result, list, context in
            let resolution = Unmanaged<Resolution>.fromOpaque(context!).takeRetainedValue()
            resolution.request = nil
            defer { if let list { evutil_freeaddrinfo(list) } }
            guard let completion = resolution.completion else { return }
            resolution.completion = nil
            if result != 0 {
                completion(.failed(String(cString: evutil_gai_strerror(result))))
                return
            }
            var addresses: [SocketAddress] = []
            var entry = list
            while let current = entry {
                if let address = SocketAddress(UnsafePointer(current.pointee.ai_addr), length: Int(current.pointee.ai_addrlen)) {
                    addresses.append(address)
                }
                entry = current.pointee.ai_next
            }
            completion(addresses.isEmpty ? .failed("no address found") : .addresses(addresses))
        }, context)
        // NULL when the callback already ran.
        request = pending
    }

    /// Drops the answer. Safe to call at any time, also after completion.
    public func cancel() {
        completion = nil
        if let request {
            self.request = nil
            evdns_getaddrinfo_cancel(request)
        }
    }
}
