import Foundation
import Testing
@testable import BridgeModel

@Suite("Workers")
struct WorkersTests {
    @Test("\"auto\" means one worker per available processor")
    func auto() throws {
        let config = try ConfigLoader.parse("workers = \"auto\"\n" + minimalConfig, baseDirectory: nil)
        #expect(config.workers == ProcessInfo.processInfo.activeProcessorCount)
    }

    @Test("a positive count is used as is")
    func explicitCount() throws {
        #expect(try ConfigLoader.parse("workers = 7\n" + minimalConfig, baseDirectory: nil).workers == 7)
    }

    @Test("fewer than one worker or another word is refused", arguments: [
        ("0", "0 is less than 1"), ("-2", "-2 is less than 1"), ("\"many\"", "\"many\" is not a number of threads"),
        ("\"4\"", "\"4\" is not a number of threads"),
    ])
    func refused(value: String, expected: String) {
        #expect(message(for: "workers", in: "workers = \(value)\n" + minimalConfig)?.hasPrefix(expected) == true)
    }
}
