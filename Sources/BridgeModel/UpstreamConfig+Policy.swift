/// The upstream cipher policy applied to a loaded entry, for checks outside this module (the config
/// fuzz target): a config `ConfigLoader` accepted must give an empty list here.
extension UpstreamConfig {
    /// The lowest OpenSSL security level an upstream context may run at. Level 2 refuses RSA and DH
    /// keys under 2048 bits, SHA-1 signatures and RC4; a cipher string may not lower it
    /// (`@SECLEVEL=0`/`1`), and each built upstream context is checked against it.
    public static let minimumSecurityLevel = 2

    /// The tokens of `ciphers` and `ciphersuites` that the upstream floor refuses, as written.
    public var refusedCipherTokens: [String] {
        (ciphers.map(CipherPolicy.weakTokens(inCipherString:)) ?? [])
            + (ciphersuites.map(CipherPolicy.weakTokens(inCipherSuites:)) ?? [])
    }
}
