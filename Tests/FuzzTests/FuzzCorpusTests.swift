import Foundation
import Testing
import Storage

/// Replays every kept fuzz input (Tests/Fuzz/Corpus/<target>/ and
/// Tests/Fuzz/Crashes/<target>/) through the functions scripts/fuzz runs
/// under libFuzzer, so a crash once found stays fixed.
@Suite(.serialized) struct FuzzCorpusTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fuzz")

    static func inputs(_ kind: String, _ target: String) -> [URL] {
        let directory = root.appendingPathComponent(kind).appendingPathComponent(target)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map { directory.appendingPathComponent($0) }
    }

    @Test(arguments: FuzzTargets.all.map(\.name))
    func replaysCorpusAndCrashes(target: String) throws {
        let run = try #require(FuzzTargets.named(target))
        let corpus = Self.inputs("Corpus", target)
        let crashes = Self.inputs("Crashes", target)
        // Every target is seeded: an empty corpus would make this test vacuous.
        #expect(corpus.count >= 5, "Tests/Fuzz/Corpus/\(target) holds \(corpus.count) inputs")
        for file in corpus + crashes {
            let data = try Data(contentsOf: file)
            data.withUnsafeBytes { run($0) }
        }
        print("fuzz replay \(target): \(corpus.count) corpus inputs, \(crashes.count) crash inputs")
    }

    /// The vault target reaches decryption: its first seed unlocks with the
    /// passphrase the target uses and opens every entry.
    @Test func vaultSeedUnlocksWithTheTargetsPassphrase() throws {
        let seed = Self.root.appendingPathComponent("Corpus/vault/seed-00-two-entries.db").path
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ksfuzz-seed-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.copyItem(atPath: seed, toPath: directory + "/vault.db")
        let unlocked = try Vault.open(at: directory + "/vault.db").unlock(passphrase: fuzzPassphrase())
        let names = try unlocked.vault.entries().map(\.name).sorted()
        #expect(names == ["github", "other"])
        let github = try unlocked.open("github")
        #expect(github.secret.withUnsafeBytes { String(decoding: $0, as: UTF8.self) } == "ghp_secret1")
    }
}
