import Foundation
import Testing

/// keyseal stores no control characters, but a vault edited outside it can
/// hold some: neither `list` nor `list --json` may pass them to a terminal.
@Suite("terminal safety of listings")
struct TerminalSafetyTests {
    @Test("control, bidi and tag characters from an edited file are shown escaped")
    func escapesInjectedCharacters() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.add("entry", secret: "entry-value")
        let injected = "a\u{1B}[2Jb\u{202E}c\u{85}d\u{E0001}e"
        try sandbox.python("""
            import sqlite3
            c = sqlite3.connect('vault.db')
            c.execute("UPDATE entries SET description = ?", ("\(injected.unicodeScalars.map { String(format: "\\U%08x", $0.value) }.joined())",))
            c.commit()
            """)

        let table = try await sandbox.run(["list", "--vault", sandbox.vault])
        #expect(table.status == 0, "\(table)")
        #expect(!table.out.unicodeScalars.contains { [0x1B, 0x202E, 0x85, 0xE0001].contains($0.value) }, "\(table)")
        #expect(table.out.contains(#"a\u{1b}[2Jb\u{202e}c\u{85}d\u{e0001}e"#), "\(table)")

        let json = try await sandbox.run(["list", "--json", "--vault", sandbox.vault])
        #expect(json.status == 0, "\(json)")
        #expect(!json.out.unicodeScalars.contains { [0x1B, 0x202E, 0x85, 0xE0001].contains($0.value) }, "\(json)")
        let parsed = try #require(try JSONSerialization.jsonObject(with: json.stdout) as? [String: Any])
        let entries = try #require(parsed["entries"] as? [[String: Any]])
        #expect(entries.first?["description"] as? String == injected)

        // Opening the entry notices the edit: the description is bound.
        let get = try await sandbox.run(["get", "entry", "--vault", sandbox.vault])
        #expect(get.status == 65, "\(get)")
    }
}
