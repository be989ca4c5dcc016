import Foundation
import Testing

/// `keyseal git-credential` driven the way git drives it: a request on stdin,
/// the answer on stdout. The real git is in GitCloneTests.
@Suite("git-credential: git's helper protocol on stdin and stdout")
struct GitCredentialHelperTests {
    private func helper(_ sandbox: Sandbox, _ operation: String, _ request: String, _ options: [String] = [],
                        env: [String: String?] = [:]) async throws -> RunResult {
        try await helper(sandbox, operation, Data(request.utf8), options, env: env)
    }

    private func helper(_ sandbox: Sandbox, _ operation: String, _ request: Data, _ options: [String] = [],
                        env: [String: String?] = [:]) async throws -> RunResult {
        try await sandbox.run(["git-credential", operation, "--vault", sandbox.vault] + options, stdin: request, env: env)
    }

    private func entries(_ sandbox: Sandbox) async throws -> [[String: Any]] {
        let listed = try await sandbox.run(["list", "--json", "--vault", sandbox.vault])
        try #require(listed.status == 0, "\(listed)")
        let object = try #require(try JSONSerialization.jsonObject(with: listed.stdout) as? [String: Any], "\(listed)")
        return try #require(object["entries"] as? [[String: Any]], "\(listed)")
    }

    private func value(_ sandbox: Sandbox, _ name: String, previous: Bool = false) async throws -> RunResult {
        try await sandbox.run(["get", name, "-n", "--vault", sandbox.vault] + (previous ? ["--previous"] : []))
    }

    @Test("get: the longest URL prefix wins; username from git, else --username, else keyseal; the entry's expiry as password_expiry_utc")
    func getAnswersWithTheBestEntry() async throws {
        let sandbox = try Sandbox()
        let hostToken = Sentinel.make("gc-host")
        let orgToken = Sentinel.make("gc-org")
        var runs = [try await sandbox.initVault(),
                    try await sandbox.add("host", secret: hostToken, options: ["--kind", "pat", "--url", "https://git.example"]),
                    try await sandbox.add("org", secret: orgToken, options: ["--kind", "pat", "--url", "https://git.example/org",
                                                                           "--expires", "2099-01-01T00:00:00+00:00"])]
        let inOrg = try await helper(sandbox, "get", "protocol=https\nhost=git.example\npath=org/repo.git\n\n")
        let named = try await helper(sandbox, "get", "protocol=https\nhost=git.example\npath=org/repo.git\nusername=alice\n\n",
                                     ["--username", "ignored"])
        let option = try await helper(sandbox, "get", "protocol=https\nhost=git.example\npath=organisation/r.git\n", ["--username", "oauth2"])
        let noPath = try await helper(sandbox, "get", "protocol=https\nhost=git.example\n")
        runs += [inOrg, named, option, noPath]
        for run in runs.suffix(4) { #expect(run.status == 0 && run.stderr.isEmpty, "\(run)") }
        #expect(inOrg.out == "username=keyseal\npassword=\(orgToken)\npassword_expiry_utc=4070908800\n", "\(inOrg)")
        #expect(named.out == "username=alice\npassword=\(orgToken)\npassword_expiry_utc=4070908800\n", "\(named)")
        // /organisation is not under /org: the host entry, which has no expiry.
        #expect(option.out == "username=oauth2\npassword=\(hostToken)\n", "\(option)")
        #expect(noPath.out == "username=keyseal\npassword=\(hostToken)\n", "\(noPath)")
        try sandbox.expectSealed(orgToken, runs: runs)
        try sandbox.expectSealed(hostToken, runs: runs)
    }

    @Test("get with no match prints nothing and exits 0 without unlocking; a match with no way to unlock fails (77)")
    func noMatchNeverUnlocks() async throws {
        let sandbox = try Sandbox()
        let token = Sentinel.make("gc-nomatch")
        try await sandbox.initVault()
        try await sandbox.add("org", secret: token, options: ["--kind", "pat", "--url", "https://git.example/org"])
        try await sandbox.add("api", secret: token, options: ["--kind", "bearer", "--url", "https://api.example"])
        // No passphrase file: unlocking would need a terminal, and there is none.
        let locked: [String: String?] = ["KEYSEAL_PASSPHRASE_FILE": nil]
        let requests = [
            "protocol=https\nhost=other.example\npath=org/r.git\n",
            "protocol=https\nhost=git.example:8443\npath=org/r.git\n",
            "protocol=http\nhost=git.example\npath=org/r.git\n",
            "protocol=https\nhost=git.example\npath=organisation/r.git\n",
            "protocol=https\nhost=git.example\n",
            // A bearer entry's API key is only ever exchanged, never given to git.
            "protocol=https\nhost=api.example\n",
            "protocol=ssh\nhost=git.example\npath=org/r.git\n",
            "",
        ]
        for request in requests {
            let run = try await helper(sandbox, "get", request, env: locked)
            #expect(run.status == 0 && run.stdout.isEmpty && run.stderr.isEmpty, "\(request.debugDescription): \(run)")
        }
        let matched = try await helper(sandbox, "get", "protocol=https\nhost=git.example\npath=org/r.git\n", env: locked)
        #expect(matched.status == 77 && matched.stdout.isEmpty, "\(matched)")
        #expect(matched.err.hasPrefix("keyseal: error: no terminal to ask for the passphrase\n"), "\(matched)")
    }

    @Test("plain http gets a credential only on a loopback host; elsewhere a warning and nothing")
    func plainHTTPOnlyOnLoopback() async throws {
        let sandbox = try Sandbox()
        let token = Sentinel.make("gc-http")
        try await sandbox.initVault()
        try await sandbox.add("far", secret: token, options: ["--kind", "pat", "--url", "http://git.example"])
        try await sandbox.add("near", secret: token, options: ["--kind", "token", "--url", "http://127.0.0.1:8080"])
        let far = try await helper(sandbox, "get", "protocol=http\nhost=git.example\npath=r.git\n")
        let near = try await helper(sandbox, "get", "protocol=http\nhost=127.0.0.1:8080\npath=r.git\n")
        #expect(far.status == 0 && far.stdout.isEmpty, "\(far)")
        #expect(far.err == "keyseal: warning: not giving \"far\" to http://git.example: plain http is only for this machine's own addresses\n",
                "\(far)")
        #expect(near.status == 0 && near.out == "username=keyseal\npassword=\(token)\n" && near.stderr.isEmpty, "\(near)")
    }

    @Test("two entries with the same longest URL: an error naming both, no output, exit 1")
    func ambiguousURLsAreRefused() async throws {
        let sandbox = try Sandbox()
        let token = Sentinel.make("gc-tie")
        try await sandbox.initVault()
        try await sandbox.add("one", secret: token, options: ["--kind", "pat", "--url", "https://git.example/org"])
        try await sandbox.add("two", secret: token + "2", options: ["--kind", "pat", "--url", "https://git.example/org/"])
        let tie = try await helper(sandbox, "get", "protocol=https\nhost=git.example\npath=org/r.git\n")
        #expect(tie.status == 1 && tie.stdout.isEmpty, "\(tie)")
        #expect(tie.err == """
            keyseal: error: entries "one", "two" all serve https://git.example/org/r.git equally; keyseal gives git none of them
            keyseal: hint: keep one: give the others another URL (keyseal edit NAME --url ...) or remove them

            """, "\(tie)")
    }

    @Test("bad requests: a NUL, a line without =, more than the limit, stdin as the passphrase descriptor: exit 64, nothing printed")
    func badRequestsAreUsageErrors() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.add("host", secret: Sentinel.make("gc-bad"), options: ["--kind", "pat", "--url", "https://git.example"])
        let cases: [(Data, String)] = [
            (Data("protocol=https\nhost=git.example\0\n".utf8), "keyseal: error: line 2 of the credential request holds a NUL byte\n"),
            (Data("protocol=https\nhost git.example\n".utf8), "keyseal: error: line 2 of the credential request is not key=value\n"),
            (Data(("protocol=https\nhost=git.example\npassword=" + String(repeating: "a", count: 90_000) + "\n").utf8),
             "keyseal: error: the credential request is longer than 81920 bytes\n"),
        ]
        for (request, message) in cases {
            for operation in ["get", "store", "erase"] {
                let run = try await helper(sandbox, operation, request, ["--allow-store"])
                #expect(run.status == 64 && run.stdout.isEmpty, "\(run)")
                #expect(run.err.hasPrefix(message) && run.err.contains("keyseal: hint: "), "\(run)")
            }
        }
        let fd0 = try await helper(sandbox, "get", "protocol=https\nhost=git.example\n", ["--passphrase-fd", "0"])
        #expect(fd0.status == 64 && fd0.stdout.isEmpty && fd0.err.contains("cannot carry the passphrase"), "\(fd0)")
    }

    @Test("expiry: an expiring entry is given with a warning; an expired one is refused (exit 2) with --refuse-expired")
    func expiryPolicyApplies() async throws {
        let sandbox = try Sandbox()
        let token = Sentinel.make("gc-expiry")
        try await sandbox.initVault()
        try await sandbox.add("soon", secret: token, options: ["--kind", "pat", "--url", "https://soon.example", "--expires", "3d"])
        try await sandbox.add("gone", secret: token, options: ["--kind", "pat", "--url", "https://gone.example",
                                                              "--expires", "2020-01-01", "--allow-past"])
        let soon = try await helper(sandbox, "get", "protocol=https\nhost=soon.example\n")
        let used = try await helper(sandbox, "get", "protocol=https\nhost=gone.example\n")
        let refused = try await helper(sandbox, "get", "protocol=https\nhost=gone.example\n", ["--refuse-expired"])
        #expect(soon.status == 0 && soon.out.hasPrefix("username=keyseal\npassword=\(token)\npassword_expiry_utc="), "\(soon)")
        #expect(soon.err.hasPrefix("keyseal: warning: \"soon\" expires") && soon.err.split(separator: "\n").count == 1, "\(soon)")
        #expect(used.status == 0 && used.out.hasPrefix("username=keyseal\npassword=\(token)\n"), "\(used)")
        #expect(used.err.hasPrefix("keyseal: warning: \"gone\" expired") && used.err.hasSuffix("; using it anyway\n"), "\(used)")
        #expect(refused.status == 2 && refused.stdout.isEmpty, "\(refused)")
        #expect(refused.err.hasPrefix("keyseal: error: \"gone\" expired") && refused.err.contains("refusing to use it"), "\(refused)")
    }

    @Test("store and erase without --allow-store read the request, change nothing and say nothing; unknown operations too")
    func storeAndEraseNeedOptIn() async throws {
        let sandbox = try Sandbox()
        let token = Sentinel.make("gc-optin")
        let other = Sentinel.make("gc-optin-new")
        try await sandbox.initVault()
        try await sandbox.add("host", secret: token, options: ["--kind", "pat", "--url", "https://git.example"])
        let before = try sandbox.snapshot(sandbox.work)
        var runs: [RunResult] = []
        for (operation, password) in [("store", other), ("erase", token), ("store", token), ("capability", token)] {
            for host in ["git.example", "new.example"] {
                runs.append(try await helper(sandbox, operation, "protocol=https\nhost=\(host)\nusername=u\npassword=\(password)\n\n"))
            }
        }
        for run in runs { #expect(run.status == 0 && run.stdout.isEmpty && run.stderr.isEmpty, "\(run)") }
        #expect(try sandbox.snapshot(sandbox.work) == before, "the vault changed")
        try sandbox.expectSealed(other, runs: runs)
    }

    @Test("store --allow-store: adds git/HOST/PATH as a pat, rotates a matching entry that differs (old value kept), leaves an equal one")
    func storeAddsAndRotates() async throws {
        let sandbox = try Sandbox()
        let first = Sentinel.make("gc-store-1")
        let second = Sentinel.make("gc-store-2")
        var runs = [try await sandbox.initVault()]
        let request = { (password: String) in "protocol=https\nhost=git.example:8443\npath=org/repo.git\nusername=u\npassword=\(password)\n\n" }
        let added = try await helper(sandbox, "store", request(first), ["--allow-store"])
        runs.append(added)
        #expect(added.status == 0 && added.stdout.isEmpty, "\(added)")
        #expect(added.err.hasPrefix("keyseal: stored \"git/git.example:8443/org/repo.git\" for https://git.example:8443/org/repo.git (pat, "),
                "\(added)")
        let listed = try await entries(sandbox)
        #expect(listed.count == 1, "\(listed)")
        #expect(listed.first?["name"] as? String == "git/git.example:8443/org/repo.git", "\(listed)")
        #expect(listed.first?["kind"] as? String == "pat" && listed.first?["url"] as? String == "https://git.example:8443/org/repo.git",
                "\(listed)")
        #expect(listed.first?["header_template"] as? String == "Authorization: Bearer {secret}", "\(listed)")
        let stored = try await value(sandbox, "git/git.example:8443/org/repo.git")
        #expect(stored.out == first, "\(stored)")

        // The same value again: nothing changes, not a byte.
        let before = try sandbox.snapshot(sandbox.work)
        let same = try await helper(sandbox, "store", request(first), ["--allow-store"])
        runs.append(same)
        #expect(same.status == 0 && same.stdout.isEmpty && same.stderr.isEmpty, "\(same)")
        #expect(try sandbox.snapshot(sandbox.work) == before, "an equal store changed the vault")

        // Another value: rotated, the old one kept.
        let rotated = try await helper(sandbox, "store", request(second), ["--allow-store"])
        runs.append(rotated)
        #expect(rotated.status == 0 && rotated.err.hasPrefix("keyseal: rotated \"git/git.example:8443/org/repo.git\" to the password git used"),
                "\(rotated)")
        let current = try await value(sandbox, "git/git.example:8443/org/repo.git")
        let previous = try await value(sandbox, "git/git.example:8443/org/repo.git", previous: true)
        #expect(current.out == second && previous.out == first, "\(current) \(previous)")

        // A name already taken by an entry for another URL gets a suffix.
        try await sandbox.add("git/other.example", secret: "x", options: ["--kind", "pat", "--url", "https://elsewhere.example"])
        let suffixed = try await helper(sandbox, "store", "protocol=https\nhost=other.example\npassword=\(first)\n", ["--allow-store"])
        runs.append(suffixed)
        #expect(suffixed.status == 0 && suffixed.err.hasPrefix("keyseal: stored \"git/other.example-2\" for https://other.example (pat, "),
                "\(suffixed)")
        // No password, or plain http to another host: nothing stored.
        let snapshot = try sandbox.snapshot(sandbox.work)
        for request in ["protocol=https\nhost=third.example\n", "protocol=http\nhost=third.example\npassword=\(first)\n"] {
            let run = try await helper(sandbox, "store", request, ["--allow-store"])
            #expect(run.status == 0 && run.stdout.isEmpty && run.stderr.isEmpty, "\(run)")
        }
        #expect(try sandbox.snapshot(sandbox.work) == snapshot)
        try sandbox.expectSealed(first, runs: runs)
        try sandbox.expectSealed(second, runs: runs)
    }

    @Test("erase --allow-store removes the matching entry only when its secret is the password git sent")
    func eraseOnlyTheSamePassword() async throws {
        let sandbox = try Sandbox()
        let token = Sentinel.make("gc-erase")
        try await sandbox.initVault()
        try await sandbox.add("host", secret: token, options: ["--kind", "pat", "--url", "https://git.example"])
        try await sandbox.add("kept", secret: token, options: ["--kind", "pat", "--url", "https://kept.example"])
        let before = try sandbox.snapshot(sandbox.work)
        // Another password, a prefix of it, none at all: nothing removed.
        for password in [token + "x", String(token.dropLast()), ""] {
            let run = try await helper(sandbox, "erase", "protocol=https\nhost=git.example\npassword=\(password)\n", ["--allow-store"])
            #expect(run.status == 0 && run.stdout.isEmpty && run.stderr.isEmpty, "\(run)")
        }
        #expect(try sandbox.snapshot(sandbox.work) == before, "a refused erase changed the vault")
        let erased = try await helper(sandbox, "erase", "protocol=https\nhost=git.example\npath=r.git\npassword=\(token)\n", ["--allow-store"])
        #expect(erased.status == 0 && erased.stdout.isEmpty && erased.err.hasPrefix("keyseal: removed \"host\": git erased its password; the vault as it was is kept at "), "\(erased)")
        #expect(try await entries(sandbox).compactMap { $0["name"] as? String } == ["kept"])
        // The erased PAT is still in the automatic backup.
        let kept = try FileManager.default.contentsOfDirectory(atPath: sandbox.vault + ".backups")
        #expect(kept.count == 1 && kept[0].hasSuffix("-before-git-erase.db"), "\(kept)")
        let recovered = try await sandbox.run(["get", "host", "--no-newline", "--vault", sandbox.vault + ".backups/" + (kept.first ?? "")])
        #expect(recovered.out == token, "\(recovered)")
        try sandbox.expectSealed(token, runs: [erased])
    }
}
