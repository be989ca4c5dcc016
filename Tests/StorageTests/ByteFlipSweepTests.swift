import Foundation
import Testing
import Sealing
@testable import Storage

/// Every byte of the golden vault, flipped one at a time: each copy must be
/// refused with a clear error, or open with every secret exact. No crash, no
/// hang, and never a wrong plaintext.
@Suite struct ByteFlipSweep {
    enum Outcome: Hashable, CustomStringConvertible {
        case intact
        case unboundMetadataChanged
        case refused(String)

        var description: String {
            switch self {
            case .intact: "intact"
            case .unboundMetadataChanged: "secrets exact, unbound metadata changed"
            case let .refused(reason): "refused (\(reason))"
            }
        }
    }

    @Test func everyByteFlipIsRefusedOrHarmless() async throws {
        let source = try TemporaryDirectory()
        let expected = try Self.makeSweptVault(in: source)
        let original = bytes(of: source.file("vault.db"))
        #expect(original.count >= 4096)
        let workers = max(1, min(4, ProcessInfo.processInfo.activeProcessorCount))
        let counts = try await withThrowingTaskGroup(of: [Outcome: Int].self) { group in
            for worker in 0..<workers {
                group.addTask {
                    let directory = try TemporaryDirectory()
                    var counts: [Outcome: Int] = [:]
                    for offset in stride(from: worker, to: original.count, by: workers) {
                        var flipped = original
                        flipped[offset] ^= 0xFF
                        let path = directory.file("flip-\(offset).db")
                        try Data(flipped).write(to: URL(fileURLWithPath: path))
                        counts[Self.outcome(path: path, offset: offset, expected: expected), default: 0] += 1
                        for suffix in ["", "-journal"] { try? FileManager.default.removeItem(atPath: path + suffix) }
                    }
                    return counts
                }
            }
            var total: [Outcome: Int] = [:]
            for try await partial in group { total.merge(partial, uniquingKeysWith: +) }
            return total
        }
        #expect(counts.values.reduce(0, +) == original.count)
        let summary = counts.sorted { $0.value > $1.value }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        print("byte-flip sweep over \(original.count) bytes: \(summary)")
    }

    /// A small vault in the current format (weak test KDF): the golden
    /// entries, one of them rotated so a previous value is stored too.
    static func makeSweptVault(in directory: TemporaryDirectory) throws -> [String: EntryMetadata] {
        let vault = try Vault.create(at: directory.file("vault.db"), passphrase: secret(GoldenRecipe.passphrase),
                                     kdf: .insecureTesting, now: GoldenRecipe.createdAt)
        for item in GoldenRecipe.items {
            let value = item.name == rotated ? "value-before-rotation" : item.secret
            try vault.add(name: item.name, fields: item.fields, secret: secret(value), now: GoldenRecipe.createdAt)
        }
        try vault.rotate(rotated, to: secret(GoldenRecipe.items.first { $0.name == rotated }!.secret), now: GoldenRecipe.createdAt + 60)
        return Dictionary(uniqueKeysWithValues: try vault.vault.entries().map { ($0.name, $0) })
    }

    static let rotated = "gitlab"

    /// Opens a flipped copy the way `keyseal get` would, entry by entry.
    static func outcome(path: String, offset: Int, expected: [String: EntryMetadata]) -> Outcome {
        do {
            let unlocked = try Vault.open(at: path).unlock(passphrase: secret(GoldenRecipe.passphrase))
            var metadataChanged = false
            for item in GoldenRecipe.items {
                let entry = try unlocked.open(item.name)
                let value = string(entry.secret)
                if value != item.secret {
                    Issue.record("flipping byte \(offset) returned a wrong secret for \(item.name)")
                }
                if entry.metadata != expected[item.name] { metadataChanged = true }
            }
            let previous = string(try unlocked.openPrevious(rotated, now: GoldenRecipe.createdAt + 120))
            if previous != "value-before-rotation" {
                Issue.record("flipping byte \(offset) returned a wrong previous value")
            }
            if try unlocked.vault.entries().count != GoldenRecipe.items.count { metadataChanged = true }
            return metadataChanged ? .unboundMetadataChanged : .intact
        } catch {
            return .refused(category(error))
        }
    }

    static func category(_ error: StorageError) -> String {
        switch error {
        case .notAVault: "not a vault"
        case .newerFormat: "newer format"
        case .damaged: "damaged"
        case .unlockFailed: "unlock failed"
        case .entryTampered: "entry tampered"
        case .entryNotFound: "entry missing"
        case .noPreviousValue: "previous value missing"
        case let .io(_, detail): "i/o error: \(detail)"
        default: "\(error)"
        }
    }
}
