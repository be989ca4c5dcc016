import Foundation
import Sealing
@testable import Storage

/// A fresh temporary directory per test, removed when the value goes away.
final class TemporaryDirectory {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory
            .appendingPathComponent("keyseal-tests-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { "\(path)/\(name)" }
}

enum Vectors {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Vectors").path
    static let golden = "\(directory)/v1-golden.vault"
    static let goldenV2 = "\(directory)/v2-golden.vault"
    static let negativeV2 = "\(directory)/v2-negative.tsv"
    static let goldenV3 = "\(directory)/v3-golden.vault"
    static let negativeV3 = "\(directory)/v3-negative.tsv"
    static let other = "\(directory)/v1-other.vault"
    static let negative = "\(directory)/v1-negative.tsv"

    /// A private copy of a committed vector, so no test writes to the original.
    static func copy(_ source: String, into directory: TemporaryDirectory, as name: String = "vault.db") throws -> String {
        let destination = directory.file(name)
        try FileManager.default.copyItem(atPath: source, toPath: destination)
        return destination
    }
}

func secret(_ text: String) -> SecretBytes {
    GoldenRecipe.secretBytes(text)
}

func string(_ secret: borrowing SecretBytes) -> String {
    secret.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
}

func bytes(of path: String) -> [UInt8] {
    (try? [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))) ?? []
}

func mode(of path: String) -> Int {
    ((try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions]) as? Int) ?? -1
}

/// Runs SQL on a vault file outside keyseal, as an attacker or a broken tool
/// would: a raw connection with none of keyseal's settings.
func tamper(_ path: String, _ sql: String) throws {
    let connection = try Connection(path: path, flags: 0x0000_0002)  // SQLITE_OPEN_READWRITE
    try connection.execute(sql)
}

/// A vault with the given entries, built with the weak test KDF.
func makeVault(in directory: TemporaryDirectory, passphrase: String = "correct horse",
               entries: [(String, String)] = []) throws -> UnlockedVault {
    let vault = try Vault.create(at: directory.file("vault.db"), passphrase: secret(passphrase), kdf: .insecureTesting)
    for (name, value) in entries {
        try vault.add(name: name, fields: EntryFields(kind: "token", headerTemplate: "Authorization: Bearer {secret}"),
                      secret: secret(value))
    }
    return vault
}

/// The secret of `name` as text. Kept out of `#expect` so the macro never has
/// to capture a non-copyable value.
func secretText(_ vault: UnlockedVault, _ name: String) throws -> String {
    let entry = try vault.open(name)
    return string(entry.secret)
}

/// The kept bearer token of `name` as text, or nil when it has none.
func keptText(_ vault: UnlockedVault, _ name: String) throws -> String? {
    let sealed = try vault.vault.sealedEntry(named: name)
    guard let kept = try vault.vault.keptToken(of: sealed) else { return nil }
    return string(try vault.open(kept, of: sealed))
}
