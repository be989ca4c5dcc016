import Foundation
import Testing

/// One way of naming the vault. Paths are relative to the sandbox's HOME and
/// made absolute there, except where `relative` says otherwise.
struct VaultPathCase: Sendable, CustomTestStringConvertible {
    let label: String
    var flag: String? = nil
    var keysealVault: String? = nil
    var xdgDataHome: String? = nil
    /// XDG_DATA_HOME given as written, not under HOME (to test a relative one).
    var rawXDGDataHome: String? = nil
    let expected: String

    var testDescription: String { label }

    func environment(home: String) -> [String: String?] {
        var environment: [String: String?] = [:]
        if let keysealVault { environment["KEYSEAL_VAULT"] = keysealVault.isEmpty ? "" : home + "/" + keysealVault }
        if let xdgDataHome { environment["XDG_DATA_HOME"] = home + "/" + xdgDataHome }
        if let rawXDGDataHome { environment["XDG_DATA_HOME"] = rawXDGDataHome }
        return environment
    }
}

@Suite("which vault: --vault, then KEYSEAL_VAULT, then XDG_DATA_HOME, then HOME")
struct VaultPathTests {
    static let cases = [
        VaultPathCase(label: "--vault wins over KEYSEAL_VAULT and XDG_DATA_HOME",
                      flag: "flag/vault.db", keysealVault: "env/vault.db", xdgDataHome: "xdg", expected: "flag/vault.db"),
        VaultPathCase(label: "KEYSEAL_VAULT wins over XDG_DATA_HOME",
                      keysealVault: "env/vault.db", xdgDataHome: "xdg", expected: "env/vault.db"),
        VaultPathCase(label: "$XDG_DATA_HOME/keyseal/vault.db", xdgDataHome: "xdg", expected: "xdg/keyseal/vault.db"),
        VaultPathCase(label: "$HOME/.local/share/keyseal/vault.db without XDG_DATA_HOME",
                      expected: ".local/share/keyseal/vault.db"),
        VaultPathCase(label: "an empty KEYSEAL_VAULT is unset", keysealVault: "", xdgDataHome: "xdg",
                      expected: "xdg/keyseal/vault.db"),
        VaultPathCase(label: "a relative XDG_DATA_HOME is ignored, as the XDG spec says",
                      rawXDGDataHome: "relative-xdg", expected: ".local/share/keyseal/vault.db"),
    ]

    @Test("the vault is created, listed and read where the rules say", arguments: cases)
    func resolution(_ pathCase: VaultPathCase) async throws {
        let sandbox = try Sandbox()
        let environment = pathCase.environment(home: sandbox.home)
        let flag = pathCase.flag.map { ["--vault", sandbox.home + "/" + $0] } ?? []
        let expected = sandbox.home + "/" + pathCase.expected

        let created = try await sandbox.run(["init", "--kdf", "insecure-testing"] + flag, env: environment)
        #expect(created.status == 0, "\(created)")
        #expect(created.err == "keyseal: created a vault at \(expected) (Argon2id insecure-testing)\n", "\(created)")
        #expect(sandbox.mode(expected) == 0o600, "no vault at \(expected)")

        // Nothing anywhere else: only the expected file exists under HOME and the work directory.
        let everything = try allFiles(under: sandbox.home) + allFiles(under: sandbox.work)
        #expect(everything == [expected], "files: \(everything)")

        let added = try await sandbox.run(["add", "entry"] + flag, stdin: "resolved-value\n", env: environment)
        #expect(added.status == 0, "\(added)")
        let json = try await sandbox.run(["list", "--json"] + flag, env: environment)
        #expect(json.status == 0, "\(json)")
        let root = try #require(try JSONSerialization.jsonObject(with: json.stdout) as? [String: Any], "\(json)")
        #expect(root["vault"] as? String == expected, "\(json)")
        let got = try await sandbox.run(["get", "-n", "entry"] + flag, env: environment)
        #expect(got.status == 0 && got.out == "resolved-value", "\(got)")
    }

    @Test("with neither HOME nor XDG_DATA_HOME nor KEYSEAL_VAULT, --vault still works")
    func explicitVaultNeedsNoHome() async throws {
        let sandbox = try Sandbox()
        let result = try await sandbox.run(["init", "--kdf", "insecure-testing", "--vault", sandbox.vault], env: ["HOME": nil])
        #expect(result.status == 0, "\(result)")
        #expect(sandbox.mode(sandbox.vault) == 0o600)
    }

    private func allFiles(under directory: String) throws -> [String] {
        let enumerator = try #require(FileManager.default.enumerator(atPath: directory))
        var files: [String] = []
        while let relative = enumerator.nextObject() as? String {
            var isDirectory: ObjCBool = false
            let path = directory + "/" + relative
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
                files.append(path)
            }
        }
        return files.sorted()
    }
}
