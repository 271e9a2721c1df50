// swift-tools-version:6.0
import PackageDescription

// libFuzzer targets for tls-bridge, kept out of the main package because they build with
// -sanitize=fuzzer. Build and run them with scripts/fuzz.
//
// SwiftPM renames an executable's `main`, so `-sanitize=fuzzer` alone links a binary that never
// fuzzes. Each target's main.swift calls LLVMFuzzerRunDriver (declared in CFuzzDriver) instead.
let package = Package(
    name: "tls-bridge-fuzz",
    dependencies: [
        .package(name: "tls-bridge", path: ".."),
    ],
    targets: [
        .target(name: "CFuzzDriver"),
        .executableTarget(
            name: "fuzz-http",
            dependencies: [
                "CFuzzDriver",
                .product(name: "BridgeHTTP", package: "tls-bridge"),
            ]
        ),
        // LeakSanitizer suppressions for TOMLKit's own leaks (see the .c file).
        .target(name: "CFuzzConfigSupport"),
        .executableTarget(
            name: "fuzz-config",
            dependencies: [
                "CFuzzDriver", "CFuzzConfigSupport",
                .product(name: "BridgeModel", package: "tls-bridge"),
            ]
        ),
        // The ClientHello harness is C: it drives OpenSSL directly, like client_hello.c.
        .target(
            name: "CFuzzClientHello",
            dependencies: [
                .product(name: "CBridgeShims", package: "tls-bridge"),
            ]
        ),
        .executableTarget(
            name: "fuzz-clienthello",
            dependencies: ["CFuzzDriver", "CFuzzClientHello"]
        ),
    ]
)
