// Fuzzes BridgeHTTP: request heads, response heads and chunked bodies. See HTTPInvariants.swift
// for what is checked on every input. Run with scripts/fuzz.
import CFuzzDriver

var arguments = CommandLine.argc
var argumentValues: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
// The callback is a global function in another file: closures written here would be main-actor
// isolated, which is not what a C callback should be.
_ = LLVMFuzzerRunDriver(&arguments, &argumentValues, fuzzHTTP)
