// swift-tools-version:6.0
// keyseal: a sealed vault for API keys, bearer tokens and PATs.
// Dependencies point one way: keyseal -> Agent, Storage, Policy; Agent -> Sealing;
// Storage -> Sealing, CSQLite;
// Sealing -> CSodium. Policy imports nothing of ours. See docs/ and ../shared/DESIGN.md.
import PackageDescription

let package = Package(
    name: "keyseal",
    products: [
        .executable(name: "keyseal", targets: ["keyseal"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CSodium",
            pkgConfig: "libsodium",
            providers: [.apt(["libsodium-dev"])]
        ),
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        .target(name: "Sealing", dependencies: ["CSodium"]),
        .target(name: "Storage", dependencies: ["Sealing", "CSQLite"]),
        .target(name: "Policy"),
        .target(name: "Agent", dependencies: ["Sealing"]),
        .executableTarget(
            name: "keyseal",
            dependencies: [
                "Sealing", "Storage", "Policy", "Agent",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "SealingTests", dependencies: ["Sealing"]),
        // The vectors are read from the source tree (#filePath), not bundled.
        .testTarget(name: "StorageTests", dependencies: ["Storage", "Sealing"], exclude: ["Vectors"]),
        .testTarget(name: "PolicyTests", dependencies: ["Policy"]),
        .testTarget(name: "AgentTests", dependencies: ["Agent", "Sealing"]),
        // The fuzz targets (scripts/fuzz links them with libFuzzer) and the
        // replay of every kept corpus and crash input (Tests/Fuzz).
        .testTarget(name: "FuzzTests", dependencies: ["keyseal", "Policy", "Agent", "Storage", "Sealing"]),
        // Runs the built binary; depending on it makes `swift test` build it first.
        // Also reads the header fast path against argument-parser (@testable).
        // Support/ holds C that the disk-full tests compile themselves (an LD_PRELOAD library).
        .testTarget(name: "EndToEndTests", dependencies: [
            "keyseal", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], exclude: ["Support"]),
    ]
)
