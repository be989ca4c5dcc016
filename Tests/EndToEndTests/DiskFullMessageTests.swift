// Regression tests for what DiskFullStressTests found, one fault each, aimed
// with failing_io.c's FAILIO_MATCH and FAILIO_OPS at one file or one call.
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Regression tests for what the sweep found: each error names the file
/// that could not be written, in the words of its cause.
@Suite("disk full and I/O errors: each error names the file and the cause")
struct DiskFullMessageTests {
    /// A vault with one entry in `sandbox.work`, and the environment that
    /// fails the first `ops` call (any, if nil) on a file whose path holds
    /// `match`, with `code`, and every such call after it.
    static func setUp(_ sandbox: Sandbox, tag: String) async throws -> String {
        try await sandbox.initVault()
        try await sandbox.add("alpha", secret: Sentinel.make(tag))
        return try FailingIO.build(in: sandbox.root)
    }

    static func failing(_ library: String, _ sandbox: Sandbox, match: String, code: Int32 = ENOSPC, ops: String? = nil) -> [String: String?] {
        ["LD_PRELOAD": library, "FAILIO_DIR": sandbox.work, "FAILIO_AT": "1", "FAILIO_ERRNO": "\(code)",
         "FAILIO_MODE": "sticky", "FAILIO_MATCH": match, "FAILIO_OPS": ops]
    }

    @Test("a backup that cannot be written is named, not its temporary file, and nothing is left")
    func backupNamesItsTarget() async throws {
        let sandbox = try Sandbox()
        let library = try await Self.setUp(sandbox, tag: "dfm-backup")
        let target = sandbox.work + "/copy.db"
        let failed = try await sandbox.run(["backup", "--vault", sandbox.vault, target], env: Self.failing(library, sandbox, match: ".tmp"))
        #expect(failed.status == 1)
        #expect(failed.err == """
            keyseal: error: cannot write the backup \(target): no space left on the device
            keyseal: hint: free some space; nothing was changed

            """, "\(failed)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: sandbox.work).sorted() == ["vault.db"])
    }

    @Test("passwd: an automatic backup that cannot be written is named; a change that fails after it says where the copy is")
    func passwdNamesItsCopy() async throws {
        let sandbox = try Sandbox()
        let library = try await Self.setUp(sandbox, tag: "dfm-passwd")
        let newPassphrase = sandbox.root + "/new-passphrase"
        try sandbox.write("a new passphrase\n", to: newPassphrase)
        let script = "exec \"$0\" \"$@\" 3<\"\(newPassphrase)\""
        let arguments = ["passwd", "--vault", sandbox.vault, "--new-passphrase-fd", "3", "--kdf", "insecure-testing"]

        let copyFailed = try await sandbox.shell(script, arguments, env: Self.failing(library, sandbox, match: "/vault.db.backups/"))
        #expect(copyFailed.status == 1)
        #expect(copyFailed.err.hasPrefix("keyseal: error: cannot write the automatic backup \(sandbox.vault).backups/"), "\(copyFailed)")
        #expect(copyFailed.err.contains("-before-passwd.db: no space left on the device\nkeyseal: hint: free some space; nothing was changed\n"), "\(copyFailed)")
        #expect(!copyFailed.err.contains(".tmp"), "\(copyFailed)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: sandbox.vault + ".backups").isEmpty)

        let changeFailed = try await sandbox.shell(script, arguments, env: Self.failing(library, sandbox, match: "/vault.db-journal", code: EIO))
        #expect(changeFailed.status == 1)
        let copies = try FileManager.default.contentsOfDirectory(atPath: sandbox.vault + ".backups")
        try #require(copies.count == 1, "\(copies)")
        #expect(changeFailed.err == """
            keyseal: error: cannot write the vault \(sandbox.vault): disk I/O error (Input/output error)
            keyseal: hint: check the disk (dmesg); the vault is unchanged: what was written is undone, at the latest when the vault is next opened
            keyseal: the passphrase was not changed; the copy of the vault taken before is kept at \(sandbox.vault).backups/\(copies[0])

            """, "\(changeFailed)")
        let old = try await sandbox.run(["verify", "--vault", sandbox.vault])
        #expect(old.status == 0, "the old passphrase no longer opens the vault: \(old)")
    }

    @Test("restore: a failure after the automatic backup says where the copy is, and the vault is as it was")
    func restoreNamesItsCopy() async throws {
        let sandbox = try Sandbox()
        let library = try await Self.setUp(sandbox, tag: "dfm-restore")
        let backup = sandbox.root + "/older.db"
        let backedUp = try await sandbox.run(["backup", "--vault", sandbox.vault, backup])
        try #require(backedUp.status == 0, "\(backedUp)")
        try await sandbox.add("beta", secret: Sentinel.make("dfm-restore-beta"))
        let failed = try await sandbox.run(["restore", backup, "--vault", sandbox.vault],
                                           env: Self.failing(library, sandbox, match: "/vault.db-journal"))
        #expect(failed.status == 1)
        let copies = try FileManager.default.contentsOfDirectory(atPath: sandbox.vault + ".backups")
        try #require(copies.count == 1 && copies[0].hasSuffix("-before-restore.db"), "\(copies)")
        #expect(failed.err == """
            keyseal: the vault as it was is kept at \(sandbox.vault).backups/\(copies[0])
            keyseal: error: no space left to write the vault \(sandbox.vault)
            keyseal: hint: free some space; the vault is unchanged

            """, "\(failed)")
        let listed = try await sandbox.run(["list", "--vault", sandbox.vault])
        #expect(listed.status == 0 && listed.out.contains("beta"), "the restore was half done: \(listed)")
    }

    @Test("import: a full disk is reported as such, not as a bad line of the dotenv file")
    func importBlamesTheDisk() async throws {
        let sandbox = try Sandbox()
        let library = try await Self.setUp(sandbox, tag: "dfm-import")
        let source = sandbox.root + "/new.env"
        try sandbox.write("GAMMA=dfm-import-gamma\n", to: source)
        let failed = try await sandbox.run(["import", "--vault", sandbox.vault, "--apply", "--from", "dotenv", source],
                                           env: Self.failing(library, sandbox, match: "/vault.db-journal"))
        #expect(failed.status == 1, "\(failed)")
        #expect(failed.err == """
            keyseal: error: no space left to write the vault \(sandbox.vault)
            keyseal: hint: free some space; the vault is unchanged

            """, "\(failed)")
        let listed = try await sandbox.run(["list", "--vault", sandbox.vault])
        #expect(!listed.out.contains("GAMMA"))
    }

    @Test("key add: a key file that cannot be written is named, and removed")
    func keyAddNamesTheKeyFile() async throws {
        let sandbox = try Sandbox()
        let library = try await Self.setUp(sandbox, tag: "dfm-key")
        let keyFile = sandbox.work + "/vault.key"
        let failed = try await sandbox.run(["key", "add", "--vault", sandbox.vault, "--keyfile", keyFile],
                                           env: Self.failing(library, sandbox, match: "/vault.key"))
        #expect(failed.status == 1)
        #expect(failed.err == """
            keyseal: error: cannot write the key file \(keyFile): No space left on device
            keyseal: hint: free some space; nothing was changed

            """, "\(failed)")
        #expect(!FileManager.default.fileExists(atPath: keyFile))
    }

    @Test("ENOSPC from fsync is a full disk, EIO from a write an I/O error", arguments: [(ENOSPC, "fdatasync"), (EIO, "pwrite64")])
    func errnoIsQuoted(code: Int32, op: String) async throws {
        let sandbox = try Sandbox()
        let library = try await Self.setUp(sandbox, tag: "dfm-errno-\(op)")
        let failed = try await sandbox.run(["add", "beta", "--vault", sandbox.vault], stdin: Sentinel.make("dfm-errno-\(op)-beta") + "\n",
                                           env: Self.failing(library, sandbox, match: "/vault.db-journal", code: code, ops: op))
        #expect(failed.status == 1)
        let expected = code == ENOSPC
            ? "keyseal: error: no space left to write the vault \(sandbox.vault)\nkeyseal: hint: free some space; the vault is unchanged\n"
            : "keyseal: error: cannot write the vault \(sandbox.vault): disk I/O error (Input/output error)\n"
                + "keyseal: hint: check the disk (dmesg); the vault is unchanged: what was written is undone, at the latest when the vault is next opened\n"
        #expect(failed.err == expected, "\(failed)")
        let listed = try await sandbox.run(["list", "--vault", sandbox.vault])
        #expect(listed.status == 0 && !listed.out.contains("beta"), "\(listed)")
    }
}
