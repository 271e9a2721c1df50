// swift-tools-version:6.0
import PackageDescription

// Layers, bottom to top (only BridgeIO, BridgeChain and BridgeReport see C; BridgeEngine sees it
// only through BridgeIO):
//   CLibevent, COpenSSL, CBridgeShims  – the C libraries and prefixed shims for their macros
//   BridgeModel                        – configuration, policies, validation, session records (pure Swift)
//   BridgeHTTP                         – strict, bounded HTTP/1.x head parsing and body framing (pure Swift)
//   BridgeIO                           – Swift owners of the C objects (event loop, streams, TLS contexts)
//   BridgeChain                        – the session log's chain digest, for its writer and its checker
//   BridgeEngine                       – sessions, the dialer, workers, the running bridge
//   BridgeReport                       – reading session logs (plain/gzip via CZlib): report, chain check
//   BridgeDemo                         – `tls-bridge demo`: a test gateway, the bridge and two clients on loopback
//   tls-bridge                         – the command line
let package = Package(
    name: "tls-bridge",
    products: [
        .executable(name: "tls-bridge", targets: ["tls-bridge"]),
        // For the fuzz package under Fuzz/, which builds with -sanitize=fuzzer on its own.
        .library(name: "BridgeHTTP", targets: ["BridgeHTTP"]),
        .library(name: "BridgeModel", targets: ["BridgeModel"]),
        .library(name: "CBridgeShims", targets: ["CBridgeShims"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CLibevent",
            pkgConfig: "libevent_openssl",
            providers: [.apt(["libevent-dev"])]
        ),
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .target(
            name: "CBridgeShims",
            dependencies: ["COpenSSL", "CLibevent"]
        ),
        .target(
            name: "BridgeModel",
            dependencies: [
                .product(name: "TOMLKit", package: "TOMLKit"),
            ]
        ),
        .target(
            name: "BridgeHTTP"
        ),
        .target(
            name: "BridgeIO",
            dependencies: ["CLibevent", "COpenSSL", "CBridgeShims", "BridgeModel"]
        ),
        .target(
            name: "BridgeChain",
            dependencies: ["COpenSSL"]
        ),
        .target(
            name: "BridgeEngine",
            dependencies: [
                "BridgeModel", "BridgeIO", "BridgeHTTP", "BridgeChain",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "BridgeReport",
            dependencies: ["BridgeModel", "BridgeChain", "CZlib"]
        ),
        .target(
            name: "BridgeDemo",
            dependencies: ["BridgeModel", "BridgeIO"]
        ),
        .executableTarget(
            name: "tls-bridge",
            dependencies: [
                "BridgeModel", "BridgeIO", "BridgeEngine", "BridgeReport", "BridgeDemo",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "BridgeModelTests",
            dependencies: ["BridgeModel"]
        ),
        .testTarget(
            name: "BridgeHTTPTests",
            dependencies: ["BridgeHTTP"]
        ),
        .testTarget(
            name: "BridgeIOTests",
            dependencies: ["BridgeIO", "BridgeModel", "CBridgeShims", "CLibevent"]
        ),
        .testTarget(
            name: "BridgeEngineTests",
            dependencies: ["BridgeEngine", "BridgeIO", "BridgeModel", "BridgeHTTP"]
        ),
        .testTarget(
            name: "BridgeReportTests",
            dependencies: ["BridgeReport", "BridgeModel", "CZlib"]
        ),
    ]
)
