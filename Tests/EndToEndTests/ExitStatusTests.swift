import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A file keyseal is pointed at that it did not create.
enum ForeignFile: String, CaseIterable, Sendable {
    case randomBytes = "random bytes"
    case empty = "an empty file"
    case otherDatabase = "another SQLite database"
    case otherWALDatabase = "another SQLite database in WAL mode"

    /// Creates the file at `work/name`, mode 0644 as a user's files usually are.
    func create(in sandbox: Sandbox, name: String) throws {
        let path = sandbox.work + "/" + name
        switch self {
        case .randomBytes:
            var generator = SystemRandomNumberGenerator()
            try sandbox.write(Data((0..<6000).map { _ in UInt8.random(in: 0...255, using: &generator) }), to: path, mode: 0o644)
        case .empty:
            try sandbox.write(Data(), to: path, mode: 0o644)
        case .otherDatabase:
            try sandbox.python("import sqlite3; c=sqlite3.connect('\(name)'); c.execute('create table t(a)'); c.execute(\"insert into t values ('x')\"); c.commit()")
            #expect(chmod(path, 0o644) == 0)
        case .otherWALDatabase:
            try sandbox.python("import sqlite3; c=sqlite3.connect('\(name)'); c.execute('pragma journal_mode=wal'); c.execute('create table t(a)'); c.commit(); c.close()")
            #expect(chmod(path, 0o644) == 0)
        }
    }
}

/// Every command that opens a vault, with what it needs on stdin.
let vaultCommands: [(arguments: [String], stdin: String)] = [
    (["list"], ""),
    (["list", "--json"], ""),
    (["get", "some-entry"], ""),
    (["add", "new-entry"], "new-value\n"),
    (["rm", "--yes", "some-entry"], ""),
]

@Suite("exit statuses, each provoked, each leaving every file as it was")
struct ExitStatusTests {
    // MARK: 66: no such vault or entry

    @Test("66 for a missing vault, with a hint to run keyseal init, and nothing created")
    func missingVault() async throws {
        let sandbox = try Sandbox()
        let missing = sandbox.work + "/nowhere/vault.db"
        for command in vaultCommands {
            let result = try await sandbox.run(command.arguments + ["--vault", missing], stdin: command.stdin)
            #expect(result.status == 66, "\(result)")
            #expect(result.stdout.isEmpty, "\(result)")
            #expect(result.err.contains("keyseal: error: no vault at \(missing)\n"), "\(result)")
            #expect(result.err.contains("keyseal: hint: ") && result.err.contains("keyseal init"), "\(result)")
        }
        #expect(try sandbox.snapshot(sandbox.work).isEmpty, "a missing vault must not be created")
    }

    @Test("66 for an unknown entry, with a hint to run keyseal list, the vault untouched")
    func unknownEntry() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.add("known", secret: "known-value")
        let before = try sandbox.snapshot(sandbox.work)
        for arguments in [["get", "unknown"], ["get", "Known"], ["rm", "--yes", "unknown"], ["rm", "unknown"]] {
            let result = try await sandbox.run(arguments + ["--vault", sandbox.vault])
            #expect(result.status == 66, "\(result)")
            #expect(result.stdout.isEmpty, "\(result)")
            #expect(result.err.contains("keyseal: error: no entry named \"\(arguments.last!)\"\n"), "\(result)")
            #expect(result.err.contains("keyseal: hint: run \"keyseal list\""), "\(result)")
            #expect(try sandbox.snapshot(sandbox.work) == before, "the vault changed: \(result)")
        }
    }

    // MARK: 73: already exists

    @Test("73 for init over an existing vault, the vault untouched and still opening")
    func initOverVault() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.add("kept", secret: "kept-value")
        let before = try sandbox.snapshot(sandbox.work)

        let again = try await sandbox.run(["init", "--kdf", "insecure-testing", "--vault", sandbox.vault])
        #expect(again.status == 73, "\(again)")
        #expect(again.stdout.isEmpty, "\(again)")
        #expect(again.err.contains("keyseal: error: a vault already exists at \(sandbox.vault)\n"), "\(again)")
        #expect(again.err.contains("keyseal: hint: "), "\(again)")
        #expect(try sandbox.snapshot(sandbox.work) == before, "the vault changed")

        let got = try await sandbox.run(["get", "-n", "kept", "--vault", sandbox.vault])
        #expect(got.status == 0 && got.out == "kept-value", "\(got)")
    }

    @Test("73 for init over a file that is not a vault, the file untouched", arguments: ForeignFile.allCases)
    func initOverForeignFile(_ file: ForeignFile) async throws {
        let sandbox = try Sandbox()
        try file.create(in: sandbox, name: "precious")
        let before = try sandbox.snapshot(sandbox.work)
        let result = try await sandbox.run(["init", "--kdf", "insecure-testing", "--vault", sandbox.work + "/precious"])
        #expect(result.status == 73, "\(result)")
        #expect(result.stdout.isEmpty, "\(result)")
        #expect(try sandbox.snapshot(sandbox.work) == before, "the file changed")
        #expect(sandbox.mode(sandbox.work + "/precious") == 0o644)
    }

    @Test("73 for add of an existing name, the vault untouched and the old value kept")
    func addExistingName() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.add("taken", secret: "first-value")
        let before = try sandbox.snapshot(sandbox.work)

        let result = try await sandbox.run(["add", "taken", "--vault", sandbox.vault], stdin: "second-value\n")
        #expect(result.status == 73, "\(result)")
        #expect(result.stdout.isEmpty, "\(result)")
        #expect(result.err.contains("keyseal: error: an entry named \"taken\" already exists\n"), "\(result)")
        #expect(result.err.contains("keyseal: hint: ") && result.err.contains("keyseal rm"), "\(result)")
        #expect(try sandbox.snapshot(sandbox.work) == before, "the vault changed")

        let got = try await sandbox.run(["get", "-n", "taken", "--vault", sandbox.vault])
        #expect(got.status == 0 && got.out == "first-value", "\(got)")
    }

    // MARK: 77: cannot unlock

    @Test("77 for a wrong passphrase, from get, add and rm, the vault untouched")
    func wrongPassphrase() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.add("entry", secret: "entry-value")
        let before = try sandbox.snapshot(sandbox.work)
        let wrong = sandbox.root + "/wrong"
        for passphrase in ["Correct horse battery staple\n", "correct horse battery staple\n\n", "correct horse battery stapl"] {
            try sandbox.write(passphrase, to: wrong, mode: 0o600)
            for command in [(["get", "entry"], ""), (["add", "new-entry"], "new-value\n"), (["rm", "--yes", "entry"], "")] {
                let result = try await sandbox.run(command.0 + ["--vault", sandbox.vault], stdin: command.1,
                                                   env: ["KEYSEAL_PASSPHRASE_FILE": wrong])
                #expect(result.status == 77, "\(result)")
                #expect(result.stdout.isEmpty, "\(result)")
                #expect(result.err.contains("keyseal: error: the passphrase does not unlock this vault\n"), "\(result)")
                #expect(result.err.contains("keyseal: hint: "), "\(result)")
                #expect(try sandbox.snapshot(sandbox.work) == before, "the vault changed: \(result)")
            }
        }
    }

    @Test("77 for a passphrase file other users can read, with a hint to chmod 600",
          arguments: [0o644, 0o640, 0o604, 0o660] as [mode_t])
    func looseInPassphraseFile(mode: mode_t) async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.add("entry", secret: "entry-value")
        let before = try sandbox.snapshot(sandbox.work)
        let loose = sandbox.root + "/loose-passphrase"
        try sandbox.write(sandbox.passphrase + "\n", to: loose, mode: mode)

        let result = try await sandbox.run(["get", "entry", "--vault", sandbox.vault], env: ["KEYSEAL_PASSPHRASE_FILE": loose])
        #expect(result.status == 77, "\(result)")
        #expect(result.stdout.isEmpty, "\(result)")
        #expect(result.err.contains("keyseal: error: KEYSEAL_PASSPHRASE_FILE \(loose) is open to other users (mode 0\(String(mode, radix: 8)))\n"), "\(result)")
        #expect(result.err.contains("keyseal: hint: run: chmod 600 \(loose)\n"), "\(result)")
        #expect(try sandbox.snapshot(sandbox.work) == before, "the vault changed")
        #expect(sandbox.mode(loose) == mode, "keyseal must not fix the file's mode itself")
    }

    @Test("77 when there is no passphrase source and no terminal to ask on, nothing created or changed")
    func noPassphraseSource() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.add("entry", secret: "entry-value")
        let before = try sandbox.snapshot(sandbox.work)
        let noSource: [String: String?] = ["KEYSEAL_PASSPHRASE_FILE": nil]

        for command in [(["get", "entry"], ""), (["add", "new-entry"], "new-value\n"), (["rm", "--yes", "entry"], "")] {
            let result = try await sandbox.run(command.0 + ["--vault", sandbox.vault], stdin: command.1, env: noSource)
            #expect(result.status == 77, "\(result)")
            #expect(result.stdout.isEmpty, "\(result)")
            #expect(result.err.contains("keyseal: error: no terminal to ask for the passphrase\n"), "\(result)")
            #expect(result.err.contains("--passphrase-fd") && result.err.contains("KEYSEAL_PASSPHRASE_FILE"), "\(result)")
            #expect(try sandbox.snapshot(sandbox.work) == before, "the vault changed: \(result)")
        }

        let fresh = sandbox.work + "/fresh.db"
        let created = try await sandbox.run(["init", "--kdf", "insecure-testing", "--vault", fresh], env: noSource)
        #expect(created.status == 77, "\(created)")
        #expect(sandbox.mode(fresh) == nil, "no vault may be created without a passphrase")
        #expect(try sandbox.snapshot(sandbox.work) == before, "stray files left")
    }

    @Test("64 for an empty new passphrase at init, nothing created")
    func emptyNewPassphrase() async throws {
        let sandbox = try Sandbox()
        let empty = sandbox.root + "/empty-passphrase"
        try sandbox.write("\n", to: empty, mode: 0o600)
        let result = try await sandbox.run(["init", "--kdf", "insecure-testing", "--vault", sandbox.vault],
                                           env: ["KEYSEAL_PASSPHRASE_FILE": empty])
        #expect(result.status == 64, "\(result)")
        #expect(result.err.contains("keyseal: error: the passphrase is empty\n"), "\(result)")
        #expect(try sandbox.snapshot(sandbox.work).isEmpty)
    }

    @Test("77 for an empty passphrase when unlocking, vault unchanged")
    func emptyUnlockPassphrase() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.add("entry", secret: "entry-value")
        let before = try sandbox.snapshot(sandbox.work)
        let empty = sandbox.root + "/empty-passphrase"
        try sandbox.write("\n", to: empty, mode: 0o600)
        let result = try await sandbox.run(["get", "entry", "--vault", sandbox.vault], env: ["KEYSEAL_PASSPHRASE_FILE": empty])
        #expect(result.status == 77, "\(result)")
        #expect(result.stdout.isEmpty, "\(result)")
        #expect(result.err.contains("keyseal: error: the passphrase is empty\n"), "\(result)")
        #expect(try sandbox.snapshot(sandbox.work) == before, "the vault changed")
    }

    // MARK: 65: not a vault, newer, damaged

    @Test("65 for a file that is not a vault, from every command, the file's bytes untouched",
          arguments: ForeignFile.allCases)
    func notAVault(_ file: ForeignFile) async throws {
        let sandbox = try Sandbox()
        try file.create(in: sandbox, name: "foreign")
        let path = sandbox.work + "/foreign"
        let before = try sandbox.snapshot(sandbox.work)
        for command in vaultCommands {
            let result = try await sandbox.run(command.arguments + ["--vault", path], stdin: command.stdin)
            #expect(result.status == 65, "\(result)")
            #expect(result.stdout.isEmpty, "\(result)")
            #expect(result.err.contains("keyseal: error: \(path) is not a keyseal vault\n"), "\(result)")
            #expect(result.err.contains("keyseal: hint: "), "\(result)")
            #expect(try sandbox.snapshot(sandbox.work) == before, "the file changed: \(result)")
        }
    }

    @Test("a file that is not a vault keeps its mode: keyseal never changes a file it did not create",
          arguments: ForeignFile.allCases)
    func notAVaultKeepsItsMode(_ file: ForeignFile) async throws {
        let sandbox = try Sandbox()
        try file.create(in: sandbox, name: "foreign")
        let path = sandbox.work + "/foreign"
        #expect(sandbox.mode(path) == 0o644)
        let result = try await sandbox.run(["list", "--vault", path])
        #expect(result.status == 65, "\(result)")
        #expect(sandbox.mode(path) == 0o644, "keyseal changed the mode of a file that is not a vault")
    }

    @Test("65 for a directory given as the vault")
    func directoryAsVault() async throws {
        let sandbox = try Sandbox()
        for command in vaultCommands {
            let result = try await sandbox.run(command.arguments + ["--vault", sandbox.home], stdin: command.stdin)
            #expect(result.status == 65, "\(result)")
            #expect(result.err.contains("is not a keyseal vault"), "\(result)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: sandbox.home).isEmpty)
    }

    @Test("65 for a vault of a newer format, from every command, the file untouched")
    func newerFormat() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.add("some-entry", secret: "some-value")
        try FileManager.default.copyItem(atPath: sandbox.vault, toPath: sandbox.work + "/newer.db")
        try sandbox.python("import sqlite3; c=sqlite3.connect('newer.db'); c.execute('PRAGMA user_version = 99'); c.commit(); c.close()")
        let path = sandbox.work + "/newer.db"
        let before = try sandbox.snapshot(sandbox.work)
        try #require(before["newer.db"] != before["vault.db"], "user_version did not change")

        for command in vaultCommands {
            let result = try await sandbox.run(command.arguments + ["--vault", path], stdin: command.stdin)
            #expect(result.status == 65, "\(result)")
            #expect(result.stdout.isEmpty, "\(result)")
            #expect(result.err.contains("keyseal: error: \(path) is vault format 99, newer than this keyseal reads (format 3)\n"), "\(result)")
            #expect(result.err.contains("keyseal: hint: upgrade keyseal"), "\(result)")
            #expect(try sandbox.snapshot(sandbox.work) == before, "the file changed: \(result)")
        }
    }

    @Test("65 for a vault cut to half its size, from every command, the file untouched")
    func truncatedVault() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        let padding = String(repeating: "p", count: 900)
        for index in 1...8 {
            try await sandbox.add("entry-\(index)", secret: "value-\(index)", options: ["--description", "\(index) \(padding)"])
        }
        let whole = try #require(sandbox.bytes(sandbox.vault))
        try #require(whole.count >= 6 * 4096, "the vault is too small to cut: \(whole.count) bytes")
        let path = sandbox.work + "/half.db"
        try sandbox.write(whole.prefix(whole.count / 2), to: path, mode: 0o600)
        try FileManager.default.removeItem(atPath: sandbox.vault)
        let before = try sandbox.snapshot(sandbox.work)

        let commands = vaultCommands.map { ($0.arguments.map { $0 == "some-entry" ? "entry-8" : $0 }, $0.stdin) }
            + [(["get", "entry-1"], "")]
        for command in commands {
            let result = try await sandbox.run(command.0 + ["--vault", path], stdin: command.1)
            #expect(result.status == 65, "\(result)")
            #expect(result.stdout.isEmpty, "\(result)")
            #expect(result.err.contains("keyseal: error: the vault \(path) is damaged"), "\(result)")
            #expect(result.err.contains("keyseal: hint: restore the vault from a backup"), "\(result)")
            #expect(try sandbox.snapshot(sandbox.work) == before, "the file changed: \(result)")
        }
    }

    // MARK: 64: bad usage or input

    @Test("64 for an invalid entry name, the vault untouched",
          arguments: ["", "\n", "a\nb", "a\tb", " leading", "trailing ", "\u{1b}[31mred", "zero\u{200b}width"])
    func invalidName(_ name: String) async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        let before = try sandbox.snapshot(sandbox.work)
        let result = try await sandbox.run(["add", name, "--vault", sandbox.vault], stdin: "value\n")
        #expect(result.status == 64, "\(result)")
        #expect(result.stdout.isEmpty, "\(result)")
        #expect(result.err.hasPrefix("keyseal: error: invalid entry name "), "\(result)")
        #expect(result.err.contains("keyseal: hint: "), "\(result)")
        #expect(try sandbox.snapshot(sandbox.work) == before, "the vault changed")
    }

    @Test("64 for an unknown --kind, listing the known ones, the vault untouched",
          arguments: ["nope", "Bearer", "PAT", "", "api_key"])
    func unknownKind(_ kind: String) async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        let before = try sandbox.snapshot(sandbox.work)
        let result = try await sandbox.run(["add", "entry", "--kind", kind, "--vault", sandbox.vault], stdin: "value\n")
        #expect(result.status == 64, "\(result)")
        #expect(result.stdout.isEmpty, "\(result)")
        #expect(result.err.contains("keyseal: error: unknown kind \"\(kind)\""), "\(result)")
        #expect(result.err.contains("keyseal: hint: choose one of api-key, pat, token, bearer\n"), "\(result)")
        #expect(try sandbox.snapshot(sandbox.work) == before, "the vault changed")
    }

    @Test("64 for a bad --header template, the vault untouched", arguments: [
        ("X-API-Key: no placeholder", "exactly one {secret}, this one has 0"),
        ("X-API-Key: {secret}{secret}", "exactly one {secret}, this one has 2"),
        ("Bad Name: {secret}", "\"Bad Name\" is not a valid header name"),
        ("X(1): {secret}", "is not a valid header name"),
        (": {secret}", "\"\" is not a valid header name"),
        ("no colon {secret}", "needs a name, a colon and a value"),
        ("X: {secret}\r\nInjected: 1", "printable ASCII"),
        ("X: {secret}\u{e9}", "printable ASCII"),
    ])
    func badHeader(template: String, reason: String) async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        let before = try sandbox.snapshot(sandbox.work)
        let result = try await sandbox.run(["add", "entry", "--header", template, "--vault", sandbox.vault], stdin: "value\n")
        #expect(result.status == 64, "\(result)")
        #expect(result.stdout.isEmpty, "\(result)")
        #expect(result.err.hasPrefix("keyseal: error: "), "\(result)")
        #expect(result.err.contains(reason), "\(result)")
        #expect(result.err.contains("keyseal: hint: for example --header 'X-API-Key: {secret}'"), "\(result)")
        #expect(try sandbox.snapshot(sandbox.work) == before, "the vault changed")
    }

    @Test("64 for rm without --yes when there is no terminal to confirm on, the entry kept")
    func removeWithoutConfirmation() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.add("entry", secret: "entry-value")
        let before = try sandbox.snapshot(sandbox.work)
        // "y" on stdin is not a confirmation: only a terminal can confirm.
        for alias in ["rm", "remove"] {
            let result = try await sandbox.run([alias, "entry", "--vault", sandbox.vault], stdin: "y\n")
            #expect(result.status == 64, "\(result)")
            #expect(result.stdout.isEmpty, "\(result)")
            #expect(result.err.contains("keyseal: error: refusing to remove \"entry\" without confirmation\n"), "\(result)")
            #expect(result.err.contains("keyseal: hint: add --yes"), "\(result)")
            #expect(try sandbox.snapshot(sandbox.work) == before, "the vault changed")
        }
        let got = try await sandbox.run(["get", "-n", "entry", "--vault", sandbox.vault])
        #expect(got.status == 0 && got.out == "entry-value", "\(got)")
    }

    @Test("64 for the insecure-testing KDF unless a test suite asks for it, nothing created")
    func weakKDFNeedsTheSwitch() async throws {
        let sandbox = try Sandbox()
        for value in [nil, "0", "yes", ""] as [String?] {
            let result = try await sandbox.run(["init", "--kdf", "insecure-testing", "--vault", sandbox.vault],
                                               env: ["KEYSEAL_TEST_ALLOW_WEAK_KDF": value])
            #expect(result.status == 64, "\(result)")
            #expect(result.err.contains("keyseal: error: the insecure-testing preset is for test suites only\n"), "\(result)")
        }
        #expect(try sandbox.snapshot(sandbox.work).isEmpty, "a vault was created")
    }

    @Test("64 for arguments the parser refuses", arguments: [
        ["frobnicate"],
        ["get"],
        ["add"],
        ["init", "--kdf", "bogus"],
        ["get", "entry", "--passphrase-fd", "three"],
        ["list", "--no-such-flag"],
    ])
    func parserRefuses(_ arguments: [String]) async throws {
        let sandbox = try Sandbox()
        let result = try await sandbox.run(arguments + ["--vault", sandbox.vault])
        #expect(result.status == 64, "\(result)")
        #expect(result.stdout.isEmpty, "\(result)")
        #expect(result.err.hasPrefix("keyseal: error: "), "\(result)")
        #expect(result.err.contains("keyseal: hint: see \"keyseal help\""), "\(result)")
        #expect(try sandbox.snapshot(sandbox.work).isEmpty)
    }

    @Test("64 for an empty --vault, rather than silently using the default vault")
    func emptyVaultOption() async throws {
        let sandbox = try Sandbox()
        for command in [["init", "--kdf", "insecure-testing"], ["list"], ["get", "entry"]] {
            let result = try await sandbox.run(command + ["--vault", ""])
            #expect(result.status == 64, "\(result)")
            #expect(result.err.contains("keyseal: error: --vault needs a path\n"), "\(result)")
        }
        #expect(try sandbox.snapshot(sandbox.home).isEmpty, "something was created under HOME")
    }
}
