/// The upstream cipher policy applied to a loaded entry, for checks outside this module (the config
/// fuzz target): a config `ConfigLoader` accepted must give an empty list here.
extension UpstreamConfig {
    /// The tokens of `ciphers` and `ciphersuites` that the upstream floor refuses, as written.
    public var refusedCipherTokens: [String] {
        (ciphers.map(CipherPolicy.weakTokens(inCipherString:)) ?? [])
            + (ciphersuites.map(CipherPolicy.weakTokens(inCipherSuites:)) ?? [])
    }
}
