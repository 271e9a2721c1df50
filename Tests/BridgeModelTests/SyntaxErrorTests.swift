import Foundation
import Testing
@testable import BridgeModel

@Suite("TOML syntax errors")
struct SyntaxErrorTests {
    @Test("malformed TOML is one config error with line and column")
    func reportsLineAndColumn() throws {
        let errors = configErrors("workers = 2\n[log]\nlevel = verbose\n")
        #expect(errors.count == 1)
        let error = try #require(errors.first)
        #expect(error.key == "config")
        #expect(error.message.contains("line 3, column 9"))
        #expect(error.message.contains("double quotes"))
    }

    @Test("a key written twice is a syntax error, not a silent override")
    func duplicateKeyIsSyntaxError() {
        let errors = configErrors(upstreamConfig("min_version = \"TLS1.3\"\nmin_version = \"TLS1.2\""))
        #expect(errors.map(\.key) == ["config"])
        #expect(errors.first?.message.contains("line 5") == true)
    }

    @Test("a NUL byte is refused instead of silently ending the file")
    func nulByteIsRefused() {
        let errors = configErrors(minimalConfig + "\n\u{0}\nworkers = 0\n")
        #expect(errors.map(\.key) == ["config"])
        #expect(errors.first?.message.contains("NUL") == true)
    }

    @Test("an upstream written as a single [upstream] table is explained")
    func singleBracketUpstream() {
        let toml = minimalConfig.replacingOccurrences(of: "[[upstream]]", with: "[upstream]")
        #expect(message(for: "upstream", in: toml)?.contains("[[upstream]]") == true)
    }
}

/// Inputs the config fuzzer found to crash the TOML parser are refused with an error instead.
@Suite("TOML parser crash guards")
struct TOMLCrashGuardTests {
    @Test("table headers that do not start with a key", arguments: ["[=", "[.a]", "[#", "[é]", "[[[a]]]", "[[ é]]", "[\n"])
    func badHeader(text: String) {
        let errors = configErrors(minimalConfig + "\n" + text)
        #expect(errors.map(\.key) == ["config"])
        #expect(errors.first?.message.contains("header must start with a key") == true)
    }

    @Test func aBadHeaderAfterAByteOrderMark() {
        let errors = configErrors("\u{FEFF}[\u{FFFD}upstream]]\n" + minimalConfig)
        #expect(errors.map(\.key) == ["config"])
        #expect(errors.first?.message.contains("header must start with a key") == true)
    }

    @Test func anEmptyOrOddKeyIsNamedAsTOMLWritesIt() {
        let errors = configErrors("\"\" = 1\n\"a b\" = 2\n" + minimalConfig)
        #expect(errors.map(\.key) == ["\"\"", "\"a b\""])
        #expect(errors.allSatisfy { $0.message.hasPrefix("unknown key") })
    }

    @Test func aDateWithoutDigitsAfterT() {
        let errors = configErrors("c = 1979-05-27T:00Z\n" + minimalConfig)
        #expect(errors.map(\.key) == ["config"])
        #expect(errors.first?.message.contains("line 1") == true)
    }

    @Test("a closing brace where an array value is expected",
          arguments: ["a = [}]", "a = [ } ]", "a = [1, }]", "a = {b = [}]}", "a = [\n}]", "a = [[}]]", "a = [ # c\n }]"])
    func braceInArray(text: String) {
        let errors = configErrors(text + "\n" + minimalConfig)
        #expect(errors.map(\.key) == ["config"])
        let line = text.filter { $0 == "\n" }.count + 1
        #expect(errors.first?.message.contains("line \(line): a \"}\" where an array value") == true)
    }

    @Test("braces and brackets inside strings and comments, and valid arrays and inline tables, pass",
          arguments: ["a = \"[}\"", "a = '[,}'", "a = \"\"\"[\n}\"\"\"", "a = '''[}'''", "# [}", "a = [1, 2]",
                      "a = [ ]", "a = [1,]", "a = { b = 1, c = [2] }", "a = [{ b = 1 }, { c = 2 }]", "a = \"\\\"[}\""])
    func braceOutsideArrays(text: String) {
        #expect(TOMLPreflight.problem(in: text + "\n") == nil)
    }

    @Test("a date, a blank and a lone digit (toml++ asserts a time follows)", arguments: [
        "c = 1979-05-27 0", "c = [1979-05-27 0]", "c = [1979-05-27 0, 1]", "c = { b = 1979-05-27 0 }",
        "c = 1979-05-27 0 # x", "c = 1979-05-27 0\t", "c = 1979_-05-27 0", "c = 1979-05-27_ 0",
        "c = 1979-05-2\u{E9} 0", "c = 1979-05-27 0\u{A0}",
    ])
    func dateBlankDigit(text: String) {
        let errors = configErrors(text + "\n" + minimalConfig)
        #expect(errors.map(\.key) == ["config"])
        #expect(errors.first?.message.contains("line 1: a date, a blank and a single digit") == true)
    }

    @Test("dates, date-times with a blank, and such text in strings and comments pass", arguments: [
        "c = 1979-05-27 07:32:00", "c = 1979-05-27", "c = 1979-05-27 # 0", "c = \"1979-05-27 0 \"",
        "# 1979-05-27 0 times", "c = [1979-05-27, 1979-05-28]", "c = 1979-05-27 07:32:00Z",
    ])
    func datesThatParse(text: String) {
        #expect(TOMLPreflight.problem(in: text + "\n") == nil)
    }

    @Test("a trailing comma in an inline table is named as that, not as an array problem",
          arguments: ["a = {b=1,}", "a = { b = 1, }", "a = { b = [1, 2], }", "a = [{ b = 1, }]", "a = {,}"])
    func inlineTableTrailingComma(text: String) {
        let errors = configErrors(text + "\n" + minimalConfig)
        #expect(errors.map(\.key) == ["config"])
        let message = errors.first?.message ?? ""
        #expect(message.contains("line 1: a \",\" right before an inline table's closing \"}\""), "\(message)")
        #expect(!message.contains("array"), "\(message)")
    }

    @Test func ordinaryTablesAndDatesStillParse() {
        #expect(configErrors(minimalConfig).isEmpty)
        #expect(TOMLPreflight.problem(in: "[limits]\n[[upstream]]\n[ listener.routes ]\nd = 1979-05-27T07:32:00Z\n") == nil)
    }
}
