// Warning windows (issue 4): the default 14 days, the vault's (`config set
// warn-within`), an entry's own (`add`/`edit --warn-within`, no passphrase
// needed for edit), and the usage errors for windows and settings.
import Foundation
import Testing

@Suite("warning windows: the vault's, an entry's, and invalid ones")
struct ExpiryWindowTests {
    /// `header NAME`'s stderr and check's status and stdout, in one go.
    private func observe(_ sandbox: Sandbox, _ name: String) async throws -> (warning: String, check: RunResult) {
        let header = try await sandbox.ks(["header", name])
        #expect(header.status == 0 && header.out == "Authorization: Bearer tok-\(name)-0123456789\n", "\(header)")
        return (header.err, try await sandbox.ks(["check"]))
    }

    @Test("config set warn-within 2d makes a 3-day entry ok; edit --warn-within 5d makes it expiring again, for that entry only")
    func vaultAndEntryWindows() async throws {
        let sandbox = try Sandbox()
        try await sandbox.expiryVault([.soon, .yearly, .forever])
        try await sandbox.addExpiring("twin", secret: "tok-twin-0123456789", options: ["--expires", "3d"])
        let wording = try await sandbox.expectedWording("soon")
        let soonWarning = "keyseal: warning: \"soon\" \(wording)\n"

        let defaults = try await sandbox.ks(["config", "get", "warn-within"])
        #expect(defaults.status == 0 && defaults.out == "14d\n" && defaults.stderr.isEmpty, "\(defaults)")
        var (warned, check) = try await observe(sandbox, "soon")
        #expect(warned == soonWarning && check.status == 1, "\(warned)\n\(check)")

        let set = try await sandbox.ksNoPassphrase(["config", "set", "warn-within", "2d"])
        #expect(set.status == 0 && set.stdout.isEmpty && set.err == "keyseal: warn-within = 2d\n", "\(set)")
        let shown = try await sandbox.ks(["config", "get", "warn-within"])
        #expect(shown.status == 0 && shown.out == "2d\n" && shown.stderr.isEmpty, "\(shown)")
        (warned, check) = try await observe(sandbox, "soon")
        #expect(warned.isEmpty, "a warning outside the vault's window: \(warned)")
        #expect(check.status == 0 && check.stdout.isEmpty, "\(check)")
        let listed = try await sandbox.listedEntries()
        #expect(listed["soon"]?["state"] as? String == "ok" && listed["twin"]?["state"] as? String == "ok", "\(listed)")

        // The entry's own window wins over the vault's, and needs no passphrase.
        let edited = try await sandbox.ksNoPassphrase(["edit", "soon", "--warn-within", "5d"])
        #expect(edited.status == 0 && edited.stdout.isEmpty && edited.err == "keyseal: updated \"soon\"\n", "\(edited)")
        (warned, check) = try await observe(sandbox, "soon")
        #expect(warned == soonWarning, "\(warned)")
        #expect(check.status == 1 && check.out == "soon: expiring, \(wording)\n", "\(check)")
        let twin = try await observe(sandbox, "twin")
        #expect(twin.warning.isEmpty, "the other 3-day entry changed too: \(twin.warning)")
        var entries = try await sandbox.listedEntries()
        #expect(entries["soon"]?["warn_within"] as? Int == 5 * 86_400, "\(entries)")
        #expect(entries["soon"]?["state"] as? String == "expiring", "\(entries)")
        #expect(entries["twin"]?["warn_within"] is NSNull && entries["twin"]?["state"] as? String == "ok", "\(entries)")

        // "default" returns the entry to the vault's window.
        let reset = try await sandbox.ksNoPassphrase(["edit", "soon", "--warn-within", "default"])
        #expect(reset.status == 0 && reset.err == "keyseal: updated \"soon\"\n", "\(reset)")
        (warned, check) = try await observe(sandbox, "soon")
        #expect(warned.isEmpty && check.status == 0 && check.stdout.isEmpty, "\(warned)\n\(check)")
        entries = try await sandbox.listedEntries()
        #expect(entries["soon"]?["warn_within"] is NSNull && entries["soon"]?["state"] as? String == "ok", "\(entries)")

        // Unsetting the vault's window returns to 14 days.
        let unset = try await sandbox.ks(["config", "unset", "warn-within"])
        #expect(unset.status == 0 && unset.err == "keyseal: warn-within = 14d (default)\n", "\(unset)")
        (warned, check) = try await observe(sandbox, "soon")
        #expect(warned == soonWarning && check.status == 1, "\(warned)\n\(check)")
        let list = try await sandbox.ks(["config", "list"])
        #expect(list.status == 0 && list.out == "warn-within=14d (default)\nrefuse-expired=false (default)\nagent-timeout=15m (default)\nexchange-timeout=10s (default)\n", "\(list)")
    }

    @Test("add --warn-within 30d sets the entry's window at creation; list --json shows it in seconds")
    func addWithWindow() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.addExpiring("monthly", secret: "tok-monthly-0123456789", options: ["--expires", "20d", "--warn-within", "30d"])
        try await sandbox.addExpiring("plain", secret: "tok-plain-0123456789", options: ["--expires", "20d"])
        let entries = try await sandbox.listedEntries()
        #expect(entries["monthly"]?["warn_within"] as? Int == 30 * 86_400, "\(entries)")
        #expect(entries["monthly"]?["state"] as? String == "expiring", "\(entries)")
        #expect(entries["plain"]?["warn_within"] is NSNull && entries["plain"]?["state"] as? String == "ok", "\(entries)")

        let (warned, check) = try await observe(sandbox, "monthly")
        let wording = try await sandbox.expectedWording("monthly")
        #expect(warned == "keyseal: warning: \"monthly\" \(wording)\n", "\(warned)")
        #expect(check.status == 1 && check.out == "monthly: expiring, \(wording)\n", "\(check)")
        let plain = try await observe(sandbox, "plain")
        #expect(plain.warning.isEmpty, "\(plain.warning)")

        let show = try await sandbox.ks(["show", "monthly", "--json"])
        let shown = try jsonObject(show)
        #expect(show.status == 0 && shown["warn_within"] as? Int == 30 * 86_400, "\(show)")
    }

    @Test("an invalid window is 64 for config set, add and edit, and changes nothing", arguments: ["0d", "soon", "2027-01-01"])
    func invalidWindow(_ text: String) async throws {
        let sandbox = try Sandbox()
        try await sandbox.expiryVault([.soon])
        let message = "keyseal: error: \"\(text)\" is not a duration\nkeyseal: hint: for example 7d, 2w, 36h or 1mo\n"
        let before = try sandbox.snapshot(sandbox.work)

        let set = try await sandbox.ks(["config", "set", "warn-within", text])
        let added = try await sandbox.ks(["add", "new", "--expires", "30d", "--warn-within", text], stdin: "tok-new\n")
        let edited = try await sandbox.ks(["edit", "soon", "--warn-within", text])
        let editedAndResealed = try await sandbox.ksNoPassphrase(["edit", "soon", "--warn-within", text, "--description", "x"])
        for result in [set, added, edited, editedAndResealed] {
            #expect(result.status == 64, "\(result)")
            #expect(result.stdout.isEmpty, "\(result)")
            #expect(result.err == message, "\(result)")
        }
        let after = try sandbox.snapshot(sandbox.work)
        #expect(after == before, "a refused window changed the vault")
        let shown = try await sandbox.ks(["config", "get", "warn-within"])
        #expect(shown.out == "14d\n", "\(shown)")
        let entries = try await sandbox.listedEntries()
        #expect(entries.keys.sorted() == ["soon"], "\(entries.keys)")
        #expect(entries["soon"]?["warn_within"] is NSNull, "\(entries)")
    }

    @Test("config: refuse-expired takes only true or false, and an unknown key is 64")
    func invalidSettings() async throws {
        let sandbox = try Sandbox()
        try await sandbox.expiryVault([.old])
        let before = try sandbox.snapshot(sandbox.work)

        let maybe = try await sandbox.ks(["config", "set", "refuse-expired", "maybe"])
        #expect(maybe.status == 64, "\(maybe)")
        #expect(maybe.stdout.isEmpty, "\(maybe)")
        #expect(maybe.err == "keyseal: error: refuse-expired is true or false, not \"maybe\"\n", "\(maybe)")

        for arguments in [["config", "set", "nosuchkey", "1"], ["config", "get", "nosuchkey"], ["config", "unset", "nosuchkey"]] {
            let unknown = try await sandbox.ks(arguments)
            #expect(unknown.status == 64, "\(unknown)")
            #expect(unknown.stdout.isEmpty, "\(unknown)")
            #expect(unknown.err.hasPrefix("keyseal: error: ") && unknown.err.contains("nosuchkey"), "\(unknown)")
            #expect(unknown.err.contains("warn-within") && unknown.err.contains("refuse-expired"), "\(unknown)")
        }
        let after = try sandbox.snapshot(sandbox.work)
        #expect(after == before, "a refused setting changed the vault")
        // The expired entry is still used with a warning, not refused.
        let header = try await sandbox.ks(["header", "old"])
        #expect(header.status == 0 && header.err.hasSuffix("; using it anyway\n"), "\(header)")
    }
}
