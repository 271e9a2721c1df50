// Fuzzes ConfigLoader.parse with arbitrary bytes as TOML text. See ConfigInvariants.swift for what is
// checked on every input. Run with scripts/fuzz.
import CFuzzConfigSupport  // linked for its LeakSanitizer suppressions
import CFuzzDriver
import Glibc

// TOMLKit leaks on every parse (see CFuzzConfigSupport.c), so libFuzzer's per-input leak check would
// run a full LeakSanitizer scan after every input (~80 exec/s instead of ~1000). It is turned off;
// the check at exit, with the TOMLKit suppressions, still reports any other leak.
var flags = Array(UnsafeBufferPointer(start: CommandLine.unsafeArgv, count: Int(CommandLine.argc)))
flags.insert(strdup("-detect_leaks=0"), at: 1)
flags.append(nil)
var arguments = Int32(flags.count - 1)
var argumentValues: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = UnsafeMutablePointer.allocate(capacity: flags.count)
argumentValues!.initialize(from: flags, count: flags.count)
// The callback is a global function in another file (a closure here would be main-actor isolated).
_ = LLVMFuzzerRunDriver(&arguments, &argumentValues, fuzzConfig)
