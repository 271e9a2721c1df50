// Fuzzes the ClientHello observer in CBridgeShims (client_hello.c): its two extension parsers on raw
// bytes, and a real in-memory TLS server handshake fed the input as the client's first flight. The
// checks are in CFuzzClientHello. Run with scripts/fuzz.
import CFuzzClientHello
import CFuzzDriver

var arguments = CommandLine.argc
var argumentValues: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
_ = LLVMFuzzerRunDriver(&arguments, &argumentValues, tb_fuzz_client_hello)
