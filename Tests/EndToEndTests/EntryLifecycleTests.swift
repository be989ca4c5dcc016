import Foundation
import Testing

/// show prints local times: the tests fix the zone.
private let utc: [String: String?] = ["TZ": "UTC"]

/// show's table as label -> value ("previous:" may repeat, so it is kept apart).
private func showFields(_ result: RunResult) -> (fields: [String: String], previous: [String]) {
    var fields: [String: String] = [:]
    var previous: [String] = []
    for line in result.out.split(separator: "\n") {
        guard let colon = line.firstIndex(of: ":") else { continue }
        let label = String(line[...colon])
        let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        if label == "previous:" { previous.append(value) } else { fields[label] = value }
    }
    return (fields, previous)
}

@Suite("rotate, show, get --previous, edit, rename and completions")
struct EntryLifecycleTests {
    @Test("rotate reads the new secret from stdin and keeps the old one, shown and printed, until --purge-previous")
    func rotate() async throws {
        let sandbox = try Sandbox()
        let first = Sentinel.make("rotate-1")
        let second = Sentinel.make("rotate-2")
        let third = Sentinel.make("rotate-3")
        let vault = sandbox.vault
        var runs = [try await sandbox.initVault()]
        let added = try await sandbox.add("svc", secret: first, options: ["--kind", "pat"])
        runs.append(added)
        let firstPrint = try #require(added.err.firstMatch(of: #/fingerprint ([0-9a-f]{12})/#)?.1, "\(added)")

        let rotated = try await sandbox.run(["rotate", "svc", "--vault", vault], stdin: second + "\n")
        runs.append(rotated)
        #expect(rotated.status == 0, "\(rotated)")
        #expect(rotated.stdout.isEmpty, "\(rotated)")
        #expect(rotated.err.wholeMatch(of: #/keyseal: rotated "svc" \(fingerprint [0-9a-f]{12}\), read back and verified; previous value kept for 30 days\n/#) != nil,
                "\(rotated)")

        let current = try await sandbox.run(["get", "svc", "--vault", vault])
        let previous = try await sandbox.run(["get", "svc", "--previous", "--vault", vault])
        let header = try await sandbox.run(["header", "svc", "--vault", vault])
        let show = try await sandbox.run(["show", "svc", "--vault", vault], env: utc)
        let json = try await sandbox.run(["show", "svc", "--json", "--vault", vault])
        runs += [current, previous, header, show, json]
        for result in [current, previous, header, show, json] {
            #expect(result.status == 0 && result.stderr.isEmpty, "\(result)")
        }
        #expect(current.out == second + "\n", "\(current)")
        #expect(previous.out == first + "\n", "\(previous)")
        #expect(header.out == "Authorization: Bearer \(second)\n", "\(header)")
        let shown = showFields(show)
        #expect(shown.previous.count == 1, "\(show)")
        #expect(shown.previous.first?.hasPrefix("version 1, ") == true, "\(show)")
        #expect(shown.previous.first?.hasSuffix("fingerprint \(firstPrint)") == true, "\(show)")
        let object = try #require(try JSONSerialization.jsonObject(with: json.stdout) as? [String: Any], "\(json)")
        let versions = try #require(object["previous"] as? [[String: Any]], "\(json)")
        #expect(versions.count == 1 && (versions.first?["fingerprint"] as? String)?.hasPrefix(String(firstPrint)) == true, "\(json)")

        let purged = try await sandbox.run(["rotate", "svc", "--purge-previous", "--vault", vault], stdin: third + "\n")
        runs.append(purged)
        #expect(purged.status == 0, "\(purged)")
        #expect(purged.err.hasSuffix("; previous values discarded\n"), "\(purged)")
        let none = try await sandbox.run(["get", "svc", "--previous", "--vault", vault])
        let afterShow = try await sandbox.run(["show", "svc", "--vault", vault], env: utc)
        let afterGet = try await sandbox.run(["get", "svc", "--vault", vault])
        runs += [none, afterShow, afterGet]
        #expect(none.status == 66, "\(none)")
        #expect(none.stdout.isEmpty, "\(none)")
        #expect(none.err == "keyseal: error: entry \"svc\" has no previous value\nkeyseal: hint: run \"keyseal show NAME\" to see the versions kept\n",
                "\(none)")
        #expect(afterShow.status == 0 && showFields(afterShow).previous.isEmpty, "\(afterShow)")
        #expect(afterGet.status == 0 && afterGet.out == third + "\n", "\(afterGet)")

        let unknown = try await sandbox.run(["rotate", "nope", "--vault", vault], stdin: "x\n")
        let empty = try await sandbox.run(["rotate", "svc", "--vault", vault], stdin: "\n")
        runs += [unknown, empty]
        #expect(unknown.status == 66 && unknown.err.contains("keyseal list"), "\(unknown)")
        #expect(empty.status == 64 && empty.err.hasPrefix("keyseal: error: the secret is empty\n"), "\(empty)")
        for secret in [first, second, third] { try sandbox.expectSealed(secret, runs: runs) }
    }

    @Test("edit changes what show prints and keeps the secret; edit with nothing to change is 64")
    func edit() async throws {
        let sandbox = try Sandbox()
        let secret = Sentinel.make("edit")
        let vault = sandbox.vault
        var runs = [try await sandbox.initVault()]
        runs.append(try await sandbox.add("svc", secret: secret, options: ["--kind", "pat", "--description", "before"]))
        let before = try await sandbox.run(["show", "svc", "--vault", vault], env: utc)

        let edited = try await sandbox.run(["edit", "svc", "--expires", "2099-01-31", "--description", "x", "--url", "https://h.example",
                                            "--vault", vault], env: utc)
        runs += [before, edited]
        #expect(edited.status == 0, "\(edited)")
        #expect(edited.stdout.isEmpty, "\(edited)")
        #expect(edited.err == "keyseal: updated \"svc\"\n", "\(edited)")

        let after = try await sandbox.run(["show", "svc", "--vault", vault], env: utc)
        runs.append(after)
        #expect(before.status == 0 && after.status == 0, "\(before)\n\(after)")
        let old = showFields(before).fields
        let new = showFields(after).fields
        #expect(old["description:"] == "before" && old["url:"] == "none" && old["expires:"] == "never", "\(before)")
        #expect(new["description:"] == "x", "\(after)")
        #expect(new["url:"] == "https://h.example", "\(after)")
        #expect(new["expires:"]?.hasPrefix("2099-01-31 ") == true, "\(after)")
        for label in ["name:", "kind:", "header:", "created:", "fingerprint:"] {
            #expect(old[label] == new[label], "\(label) changed:\n\(before)\n\(after)")
        }

        // The secret is sealed again under the new fields, and still opens.
        let header = try await sandbox.run(["header", "svc", "--vault", vault])
        runs.append(header)
        #expect(header.status == 0 && header.out == "Authorization: Bearer \(secret)\n", "\(header)")

        // A new template, then a new kind whose default replaces the default template only.
        let template = try await sandbox.run(["edit", "svc", "--header", "PRIVATE-TOKEN: {secret}", "--vault", vault])
        let templated = try await sandbox.run(["header", "svc", "--vault", vault])
        let kind = try await sandbox.run(["edit", "svc", "--kind", "api-key", "--vault", vault])
        let kept = try await sandbox.run(["header", "svc", "--vault", vault])
        runs += [template, templated, kind, kept]
        #expect(template.status == 0 && kind.status == 0, "\(template)\n\(kind)")
        #expect(templated.out == "PRIVATE-TOKEN: \(secret)\n", "\(templated)")
        #expect(kept.out == "PRIVATE-TOKEN: \(secret)\n", "\(kept)")

        let unchanged = try sandbox.snapshot(sandbox.work)
        let nothing = try await sandbox.run(["edit", "svc", "--vault", vault])
        let contradiction = try await sandbox.run(["edit", "svc", "--url", "https://h.example", "--no-url", "--vault", vault])
        let badURL = try await sandbox.run(["edit", "svc", "--url", "ftp://h.example", "--vault", vault])
        let badExpiry = try await sandbox.run(["edit", "svc", "--expires", "2001-01-01", "--vault", vault])
        let unknown = try await sandbox.run(["edit", "nope", "--description", "y", "--vault", vault])
        runs += [nothing, contradiction, badURL, badExpiry, unknown]
        #expect(nothing.status == 64 && nothing.err == "keyseal: error: nothing to change\n"
            + "keyseal: hint: give --description, --expires, --url, --no-url, --cacert, --no-cacert, --header, --kind, --warn-within or --max-age\n", "\(nothing)")
        for result in [contradiction, badURL, badExpiry] {
            #expect(result.status == 64 && result.err.hasPrefix("keyseal: error: "), "\(result)")
        }
        #expect(unknown.status == 66 && unknown.err.contains("keyseal list"), "\(unknown)")
        for result in [nothing, contradiction, badURL, badExpiry, unknown] { #expect(result.stdout.isEmpty, "\(result)") }
        #expect(try sandbox.snapshot(sandbox.work) == unchanged, "a refused edit changed the vault")
        try sandbox.expectSealed(secret, runs: runs)
    }

    @Test("rename moves the entry: the new name works, the old is 66, an existing target is 73")
    func rename() async throws {
        let sandbox = try Sandbox()
        let secret = Sentinel.make("rename")
        let other = Sentinel.make("rename-other")
        let vault = sandbox.vault
        var runs = [try await sandbox.initVault()]
        runs.append(try await sandbox.add("a", secret: secret, options: ["--header", "X-API-Key: {secret}"]))
        runs.append(try await sandbox.add("c", secret: other))

        let renamed = try await sandbox.run(["rename", "a", "b", "--vault", vault])
        runs.append(renamed)
        #expect(renamed.status == 0, "\(renamed)")
        #expect(renamed.stdout.isEmpty, "\(renamed)")
        #expect(renamed.err == "keyseal: renamed \"a\" to \"b\"\n", "\(renamed)")

        let newName = try await sandbox.run(["header", "b", "--vault", vault])
        let oldName = try await sandbox.run(["header", "a", "--vault", vault])
        runs += [newName, oldName]
        #expect(newName.status == 0 && newName.out == "X-API-Key: \(secret)\n" && newName.stderr.isEmpty, "\(newName)")
        #expect(oldName.status == 66 && oldName.stdout.isEmpty, "\(oldName)")
        #expect(oldName.err == "keyseal: error: no entry named \"a\"\nkeyseal: hint: run \"keyseal list\" to see the entries\n", "\(oldName)")

        let unchanged = try sandbox.snapshot(sandbox.work)
        let onto = try await sandbox.run(["rename", "b", "c", "--vault", vault])
        let missing = try await sandbox.run(["mv", "nope", "d", "--vault", vault])
        let badName = try await sandbox.run(["rename", "b", "", "--vault", vault])
        runs += [onto, missing, badName]
        #expect(onto.status == 73 && onto.stdout.isEmpty, "\(onto)")
        #expect(onto.err.hasPrefix("keyseal: error: ") && onto.err.contains("\"c\""), "\(onto)")
        #expect(missing.status == 66 && missing.err.contains("keyseal list"), "\(missing)")
        #expect(badName.status == 64, "\(badName)")
        #expect(try sandbox.snapshot(sandbox.work) == unchanged, "a refused rename changed the vault")
        let stillThere = try await sandbox.run(["get", "c", "--vault", vault])
        #expect(stillThere.out == other + "\n", "\(stillThere)")

        let back = try await sandbox.run(["mv", "b", "a", "--vault", vault])
        let again = try await sandbox.run(["header", "a", "--vault", vault])
        runs += [back, again, stillThere]
        #expect(back.status == 0 && again.out == "X-API-Key: \(secret)\n", "\(back)\n\(again)")
        try sandbox.expectSealed(secret, runs: runs)
        try sandbox.expectSealed(other, runs: runs)
    }

    @Test("completions for bash, zsh and fish", arguments: ["bash", "zsh", "fish"])
    func completions(_ shell: String) async throws {
        let sandbox = try Sandbox()
        let result = try await sandbox.run(["completions", shell])
        #expect(result.status == 0, "\(result)")
        #expect(result.stderr.isEmpty, "\(result)")
        #expect(result.stdout.count > 200, "\(result)")
        #expect(result.out.contains("keyseal"), "\(result)")
        for subcommand in ["header", "curl", "rotate"] {
            #expect(result.out.contains(subcommand), "\(subcommand) missing")
        }
    }

    @Test("64 for completions of another shell, or of none", arguments: [["tcsh"], ["Bash"], []])
    func completionsRefused(_ arguments: [String]) async throws {
        let sandbox = try Sandbox()
        let result = try await sandbox.run(["completions"] + arguments)
        #expect(result.status == 64, "\(result)")
        #expect(result.stdout.isEmpty, "\(result)")
        #expect(result.err.hasPrefix("keyseal: error: "), "\(result)")
        if let shell = arguments.first {
            #expect(result.err == "keyseal: error: no completions for \"\(shell)\"\nkeyseal: hint: choose bash, zsh or fish\n", "\(result)")
        }
    }
}
