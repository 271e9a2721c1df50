internal import COpenSSL
internal import CLibevent

/// Reads OpenSSL's per-thread error queue into operator-readable text, emptying it.
///
/// Call it right after a failed OpenSSL call on the same thread; what it returns belongs in a log
/// record or a startup error, never in a place a peer can see.
func drainOpenSSLErrors() -> String {
    var messages: [String] = []
    while true {
        let code = ERR_get_error()
        if code == 0 { break }
        messages.append(openSSLErrorText(code))
    }
    return messages.joined(separator: "; ")
}

/// One error code as text: OpenSSL's reason string, or the bare number for the small raw
/// `SSL_get_error` values libevent mixes into its own error list.
func openSSLErrorText(_ code: UInt) -> String {
    if code < 256 {
        return "SSL error \(code)"
    }
    var buffer = [CChar](repeating: 0, count: 256)
    ERR_error_string_n(code, &buffer, buffer.count)
    let full = string(fromBuffer: buffer)
    // "error:0A00010B:SSL routines::wrong version number" → keep the library and reason parts.
    let parts = full.split(separator: ":", omittingEmptySubsequences: false)
    if parts.count >= 5 {
        let library = parts[2]
        let reason = parts[4...].joined(separator: ":")
        return library.isEmpty ? reason : "\(reason) (\(library))"
    }
    return full
}

/// The OpenSSL errors libevent moved off the thread's queue into a failed bufferevent. libevent
/// mixes raw `SSL_get_error` codes (small numbers) into that list; they are kept only when there is
/// nothing better to say. `reasons` are the SSL library's reason codes, for `StreamFailure`.
func drainBuffereventErrors(_ bev: OpaquePointer) -> (text: String, reasons: [Int32]) {
    var messages: [String] = []
    var rawCodes: [String] = []
    var reasons: [Int32] = []
    while true {
        let code = bufferevent_get_openssl_error(bev)
        if code == 0 { break }
        if code < 256 {
            rawCodes.append(openSSLErrorText(code))
        } else {
            messages.append(openSSLErrorText(code))
            if ERR_GET_LIB(code) == ERR_LIB_SSL { reasons.append(ERR_GET_REASON(code)) }
        }
    }
    let queued = drainOpenSSLErrors()
    if !queued.isEmpty { messages.append(queued) }
    return ((messages.isEmpty ? rawCodes : messages).joined(separator: "; "), reasons)
}

/// Reads a NUL-terminated C string owned by OpenSSL.
func string(fromC pointer: UnsafePointer<CChar>?) -> String? {
    guard let pointer else { return nil }
    return String(cString: pointer)
}

/// Reads a NUL-terminated string out of a buffer a C function filled.
func string(fromBuffer buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
