import Foundation
import Testing

@Suite("round trip: init, add, list, get, rm")
struct RoundTripTests {
    @Test("a secret goes in, is listed without its value, comes out exactly, and is removed")
    func roundTrip() async throws {
        let sandbox = try Sandbox()
        let vault = sandbox.vault
        let secret = "ghp_RoundTrip0123456789abcdef"

        let created = try await sandbox.initVault()
        #expect(created.stdout.isEmpty, "\(created)")
        #expect(created.err == "keyseal: created a vault at \(vault) (Argon2id insecure-testing)\n", "\(created)")

        let added = try await sandbox.run(
            ["add", "gh-ci", "--kind", "pat", "--description", "CI token for gh", "--vault", vault],
            stdin: secret + "\n")
        #expect(added.status == 0, "\(added)")
        #expect(added.stdout.isEmpty, "\(added)")
        #expect(added.err.hasPrefix("keyseal: stored \"gh-ci\" (pat, fingerprint "), "\(added)")
        #expect(added.err.hasSuffix(", read back and verified\n"), "\(added)")
        #expect(!added.stderr.contains(secret), "\(added)")

        // list: a header and one row with name, kind and description; never the value.
        let listed = try await sandbox.run(["list", "--vault", vault])
        #expect(listed.status == 0, "\(listed)")
        #expect(listed.stderr.isEmpty, "\(listed)")
        #expect(!listed.stdout.contains(secret), "\(listed)")
        let lines = listed.out.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.count == 3 && lines.last == "", "\(listed)")
        let header = lines[0].split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        #expect(header == ["NAME", "KIND", "STATE", "EXPIRES", "DAYS", "LAST-USED", "FINGERPRINT", "DESCRIPTION"], "\(listed)")
        #expect(lines.count > 1 && lines[1].hasPrefix("gh-ci  "), "\(listed)")
        #expect(lines.count > 1 && lines[1].contains("  pat  "), "\(listed)")
        #expect(lines.count > 1 && lines[1].contains("  never  "), "\(listed)")
        #expect(lines.count > 1 && lines[1].hasSuffix("  CI token for gh"), "\(listed)")

        let aliased = try await sandbox.run(["ls", "--vault", vault])
        #expect(aliased.status == 0 && aliased.stdout == listed.stdout, "\(aliased)")

        // list --json: the documented schema.
        let json = try await sandbox.run(["list", "--json", "--vault", vault])
        #expect(json.status == 0, "\(json)")
        #expect(json.stderr.isEmpty, "\(json)")
        #expect(!json.stdout.contains(secret), "\(json)")
        #expect(json.out.hasSuffix("}\n"), "\(json)")
        let root = try #require(try JSONSerialization.jsonObject(with: json.stdout) as? [String: Any], "\(json)")
        #expect(Set(root.keys) == ["vault", "checked_at", "entries"])
        #expect(root["vault"] as? String == vault)
        let entries = try #require(root["entries"] as? [[String: Any]])
        try #require(entries.count == 1, "\(json)")
        let entry = entries[0]
        #expect(Set(entry.keys) == Set(documentedEntryKeys), "\(json)")
        #expect(entry["name"] as? String == "gh-ci")
        #expect(entry["kind"] as? String == "pat")
        #expect(entry["description"] as? String == "CI token for gh")
        #expect(entry["header_template"] as? String == "Authorization: Bearer {secret}")
        #expect(entry["url"] is NSNull)
        #expect(entry["expires"] is NSNull)
        #expect(entry["last_used"] is NSNull)
        #expect(entry["state"] as? String == "never")
        #expect(entry["days_left"] is NSNull)
        #expect(entry["warn_within"] is NSNull)
        let iso8601 = #/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/#
        let created8601 = try #require(entry["created"] as? String)
        #expect(created8601.wholeMatch(of: iso8601) != nil, "\(created8601)")
        #expect(entry["updated"] as? String == created8601)
        let fingerprint = try #require(entry["fingerprint"] as? String)
        #expect(fingerprint.wholeMatch(of: #/[0-9a-f]{32}/#) != nil, "\(fingerprint)")
        #expect(lines.count > 1 && lines[1].contains("  \(fingerprint.prefix(12))  "), "\(listed)")
        #expect(added.err.contains("fingerprint \(fingerprint.prefix(12))"), "\(added)")

        // get: exactly the secret and one newline; -n / --no-newline without it.
        let got = try await sandbox.run(["get", "gh-ci", "--vault", vault])
        #expect(got.status == 0, "\(got)")
        #expect(got.stdout == Data((secret + "\n").utf8), "\(got)")
        #expect(got.stderr.isEmpty, "\(got)")
        for flag in ["-n", "--no-newline"] {
            let bare = try await sandbox.run(["get", flag, "gh-ci", "--vault", vault])
            #expect(bare.status == 0, "\(bare)")
            #expect(bare.stdout == Data(secret.utf8), "\(bare)")
            #expect(bare.stderr.isEmpty, "\(bare)")
        }

        // rm --yes, then the entry is gone.
        let removed = try await sandbox.run(["rm", "--yes", "gh-ci", "--vault", vault])
        #expect(removed.status == 0, "\(removed)")
        #expect(removed.stdout.isEmpty, "\(removed)")
        #expect(removed.err == "keyseal: removed \"gh-ci\"\n", "\(removed)")

        let empty = try await sandbox.run(["list", "--json", "--vault", vault])
        #expect(empty.status == 0, "\(empty)")
        #expect(empty.out.hasPrefix("{\"vault\":\"\(vault)\",\"checked_at\":\""), "\(empty)")
        #expect(empty.out.hasSuffix("\",\"entries\":[]}\n"), "\(empty)")

        let gone = try await sandbox.run(["get", "gh-ci", "--vault", vault])
        #expect(gone.status == 66, "\(gone)")
        #expect(gone.stdout.isEmpty, "\(gone)")
        #expect(gone.err.contains("keyseal: error: no entry named \"gh-ci\"\n"), "\(gone)")
        #expect(gone.err.contains("keyseal: hint: ") && gone.err.contains("keyseal list"), "\(gone)")
    }

    @Test("the remove alias and -y remove one entry and leave the others")
    func removeAlias() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.add("keep", secret: "keep-value")
        try await sandbox.add("drop", secret: "drop-value", options: ["--kind", "api-key"])

        let removed = try await sandbox.run(["remove", "-y", "drop", "--vault", sandbox.vault])
        #expect(removed.status == 0, "\(removed)")
        #expect(removed.err == "keyseal: removed \"drop\"\n", "\(removed)")

        let json = try await sandbox.run(["list", "--json", "--vault", sandbox.vault])
        let root = try #require(try JSONSerialization.jsonObject(with: json.stdout) as? [String: Any], "\(json)")
        let names = (root["entries"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
        #expect(names == ["keep"], "\(json)")

        let kept = try await sandbox.run(["get", "-n", "keep", "--vault", sandbox.vault])
        #expect(kept.status == 0 && kept.out == "keep-value", "\(kept)")
    }

    @Test("each kind gets its default header template; --header overrides it")
    func headerTemplates() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.add("a-key", secret: "k1", options: ["--kind", "api-key"])
        try await sandbox.add("a-pat", secret: "k2", options: ["--kind", "pat"])
        try await sandbox.add("a-token", secret: "k3")
        try await sandbox.add("custom", secret: "k4", options: ["--header", "X-API-Key: {secret}"])

        let json = try await sandbox.run(["list", "--json", "--vault", sandbox.vault])
        let root = try #require(try JSONSerialization.jsonObject(with: json.stdout) as? [String: Any], "\(json)")
        let entries = try #require(root["entries"] as? [[String: Any]])
        let byName = Dictionary(entries.map {
            ($0["name"] as? String ?? "", [$0["kind"] as? String ?? "", $0["header_template"] as? String ?? ""])
        }, uniquingKeysWith: { first, _ in first })
        #expect(byName["a-key"] == ["api-key", "Authorization: {secret}"])
        #expect(byName["a-pat"] == ["pat", "Authorization: Bearer {secret}"])
        #expect(byName["a-token"] == ["token", "Authorization: Bearer {secret}"])
        #expect(byName["custom"] == ["token", "X-API-Key: {secret}"])
        #expect(entries.map { $0["name"] as? String } == ["a-key", "a-pat", "a-token", "custom"], "sorted by name")
    }
}
