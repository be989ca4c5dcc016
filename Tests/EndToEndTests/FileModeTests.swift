import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("directories 0700 and files 0600 whatever the umask")
struct FileModeTests {
    /// The shell sets the loosest umask, then becomes keyseal.
    static let umask000 = "umask 000; exec \"$0\" \"$@\""

    @Test("under umask 000, init makes every missing directory 0700 and the vault 0600; add and rm keep it so")
    func umaskZero() async throws {
        let sandbox = try Sandbox()
        let top = sandbox.work + "/made"
        let directory = top + "/by/keyseal"
        let vault = directory + "/vault.db"

        let created = try await sandbox.shell(Self.umask000, ["init", "--kdf", "insecure-testing", "--vault", vault])
        #expect(created.status == 0, "\(created)")
        for made in [top, top + "/by", directory] {
            #expect(sandbox.mode(made) == 0o700, "\(made) is \(String(sandbox.mode(made) ?? 0, radix: 8))")
        }
        #expect(sandbox.mode(vault) == 0o600, "vault is \(String(sandbox.mode(vault) ?? 0, radix: 8))")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["vault.db"], "staging files left")

        let added = try await sandbox.shell(Self.umask000, ["add", "entry", "--vault", vault], stdin: "value\n")
        #expect(added.status == 0, "\(added)")
        #expect(sandbox.mode(vault) == 0o600, "vault is \(String(sandbox.mode(vault) ?? 0, radix: 8))")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["vault.db"], "a -journal was left")

        let removed = try await sandbox.shell(Self.umask000, ["rm", "--yes", "entry", "--vault", vault])
        #expect(removed.status == 0, "\(removed)")
        #expect(sandbox.mode(vault) == 0o600)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["vault.db"], "a -journal was left")
        #expect(sandbox.mode(directory) == 0o700)
    }

    @Test("a vault copied with a looser mode is tightened to 0600 when opened")
    func looseVaultIsTightened() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        #expect(chmod(sandbox.vault, 0o644) == 0)
        let listed = try await sandbox.run(["list", "--vault", sandbox.vault])
        #expect(listed.status == 0, "\(listed)")
        #expect(sandbox.mode(sandbox.vault) == 0o600)
    }

    @Test("an existing directory keeps the mode its owner gave it")
    func existingDirectoryIsLeftAlone() async throws {
        let sandbox = try Sandbox()
        let shared = sandbox.work + "/shared"
        try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: false)
        #expect(chmod(shared, 0o750) == 0)
        let created = try await sandbox.run(["init", "--kdf", "insecure-testing", "--vault", shared + "/vault.db"])
        #expect(created.status == 0, "\(created)")
        #expect(sandbox.mode(shared) == 0o750)
        #expect(sandbox.mode(shared + "/vault.db") == 0o600)
    }
}
