// Fuzzes the ClientHello observer in CBridgeShims (client_hello.c): its parsers (two extensions, the
// cipher list in both formats) on raw bytes, and a real in-memory TLS server handshake fed the input as
// the client's first flight, as a TLS ClientHello body and as an SSLv2-compatible one. The
// checks are in CFuzzClientHello. Run with scripts/fuzz.
import CFuzzClientHello
import CFuzzDriver

var arguments = CommandLine.argc
var argumentValues: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
_ = LLVMFuzzerRunDriver(&arguments, &argumentValues, tb_fuzz_client_hello)
