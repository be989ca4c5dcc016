import Foundation
import Testing

/// A vault carrying a trigger planted by another tool (python3's sqlite3):
/// every command refuses it with exit 65 and a clear message before it
/// writes, so the trigger never runs on keyseal's own writes.
@Suite("a vault holding a schema object keyseal did not create is refused")
struct HostileSchemaTests {
    @Test("65 for a trigger, at get, add and header; the file unchanged and the trigger never fired")
    func plantedTriggerIsRefused() async throws {
        let sandbox = try Sandbox()
        let secret = Sentinel.make("hostile-schema")
        var runs = [try await sandbox.initVault()]
        runs.append(try await sandbox.add("victim", secret: secret))
        try sandbox.python("""
            import sqlite3
            c = sqlite3.connect(\(sandbox.vault.debugDescription), isolation_level=None)
            c.executescript("CREATE TABLE loot (ciphertext); CREATE TRIGGER steal AFTER INSERT ON entries "
                            "BEGIN INSERT INTO loot VALUES (new.ciphertext); END;")
            c.close()
            """)
        let before = try sandbox.snapshot(sandbox.work)
        for arguments in [["get", "victim"], ["add", "second", "--kind", "token"], ["header", "victim"]] {
            let result = try await sandbox.run(arguments + ["--vault", sandbox.vault], stdin: "other-value\n")
            runs.append(result)
            #expect(result.status == 65, "\(result)")
            #expect(result.stdout.isEmpty, "\(result)")
            #expect(result.err.contains("keyseal: error: the vault \(sandbox.vault) is damaged: it holds a trigger \"steal\" that keyseal did not create"),
                    "\(result)")
            #expect(result.err.contains("keyseal: hint: "), "\(result)")
        }
        #expect(try sandbox.snapshot(sandbox.work) == before)
        try sandbox.expectSealed(secret, runs: runs)
    }
}
