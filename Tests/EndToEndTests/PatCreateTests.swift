import Foundation
import Testing

/// `keyseal pat create` against the loopback server's Request app: the new
/// PAT goes from the server's answer straight into the vault.
@Suite("pat create, sync, revoke: PATs made, followed and revoked through the Request app")
struct PatCreateTests {
    private func setUp(_ sandbox: Sandbox, _ server: LoopbackServer, key: String) async throws -> [RunResult] {
        try server.setExchange(key: key)
        return [try await sandbox.initVault(),
                try await sandbox.add("immuta", secret: key, options: ["--kind", "bearer", "--url", server.origin + "/base"])]
    }

    private func ks(_ sandbox: Sandbox, _ arguments: [String]) async throws -> RunResult {
        try await sandbox.run(arguments + ["--vault", sandbox.vault], env: curlEnvironment)
    }

    @Test("the PAT is stored with its description, expiry and tokenId, and header sends exactly it")
    func createAndUse() async throws {
        let sandbox = try Sandbox()
        let server = try LoopbackServer(directory: sandbox.root + "/server")
        defer { server.stop() }
        let key = Sentinel.make("pat-create")
        var runs = try await setUp(sandbox, server, key: key)
        let created = try await ks(sandbox, ["pat", "create", "nightly", "--auth", "immuta", "--description", "nightly export",
                                             "--expires", "30d"])
        let header = try await ks(sandbox, ["header", "nightly"])
        let show = try await ks(sandbox, ["show", "nightly"])
        let forever = try await ks(sandbox, ["pat", "create", "forever", "--auth", "immuta", "--description", "no end"])
        runs += [created, header, show, forever]

        #expect(created.status == 0 && created.stdout.isEmpty, "\(created)")
        #expect(created.err.contains("created PAT ") && created.err.contains("stored as \"nightly\" (pat, fingerprint ")
            && created.err.hasSuffix("read back and verified\n"), "\(created)")
        #expect(header.status == 0 && header.out == "Authorization: Bearer pat-1\n", "\(header)")
        #expect(forever.status == 0, "\(forever)")

        let all = try server.requests()
        let requests = all.filter { $0.path == "/base/api/auth/tokens" }
        // A failed expectation, not a crash of the whole test run.
        try #require(requests.count == 2, "\(all)")
        #expect(requests.allSatisfy { $0.method == "POST" && $0.headers(named: "Authorization").map(\.text) == ["Bearer tok-1"] },
                "\(requests)")
        // A failure above must not become an index out of range, which ends the whole test run.
        try #require(requests.count == 2, "\(all)")
        let first = try #require(try JSONSerialization.jsonObject(with: requests[0].body) as? [String: Any])
        #expect(first["description"] as? String == "nightly export", "\(first)")
        let date = try #require(first["expirationDate"] as? String, "\(first)")
        let expiry = try #require(ISO8601DateFormatter().date(from: date), "\(date)")
        #expect(abs(expiry.timeIntervalSinceNow - 30 * 86_400) < 3600, "\(date)")
        let second = try #require(try JSONSerialization.jsonObject(with: requests[1].body) as? [String: Any])
        #expect(second["description"] as? String == "no end" && second["expirationDate"] == nil, "\(second)")

        #expect(show.out.contains("kind:") && show.out.contains("pat") && show.out.contains("nightly export"), "\(show)")
        #expect(show.out.contains("token id:"), "\(show)")
        #expect(show.out.contains(server.origin + "/base"), "\(show)")
        let file = sandbox.bytes(sandbox.vault) ?? Data()
        #expect(file.range(of: Data("pat-1".utf8)) == nil && file.range(of: Data("pat-2".utf8)) == nil, "a PAT is in the vault in the clear")
        try sandbox.expectSealed(key, runs: runs)
    }

    @Test("refusals come before the server makes a token: an existing name (73), an unknown --auth (66); a refused credential is 77")
    func refusals() async throws {
        let sandbox = try Sandbox()
        let server = try LoopbackServer(directory: sandbox.root + "/server")
        defer { server.stop() }
        let key = Sentinel.make("pat-refused")
        var runs = try await setUp(sandbox, server, key: key)
        let taken = try await ks(sandbox, ["pat", "create", "immuta", "--auth", "immuta", "--description", "x"])
        let noAuth = try await ks(sandbox, ["pat", "create", "new", "--auth", "nope", "--description", "x"])
        runs += [taken, noAuth]
        #expect(taken.status == 73, "\(taken)")
        #expect(noAuth.status == 66, "\(noAuth)")
        #expect(try server.requests().isEmpty)

        // The credential's token is refused by the Request app.
        let header = try await ks(sandbox, ["header", "immuta"])
        try server.setExchange(key: key, revoked: ["tok-1"])
        let refused = try await ks(sandbox, ["pat", "create", "new", "--auth", "immuta", "--description", "x"])
        runs += [header, refused]
        #expect(refused.status == 77 && refused.err.contains("refused the credential \"immuta\""), "\(refused)")
        #expect(refused.err.contains("(na, eu, ap)"), "\(refused)")
        let list = try await ks(sandbox, ["list"])
        #expect(!list.out.contains("new"), "\(list)")
        try sandbox.expectSealed(key, runs: runs)
    }

    @Test("if storing fails after the server made the token, it is shown once with its tokenId, never lost silently")
    func tokenIsNeverLost() async throws {
        let sandbox = try Sandbox()
        let server = try LoopbackServer(directory: sandbox.root + "/server")
        defer { server.stop() }
        let key = Sentinel.make("pat-rescue")
        var runs = try await setUp(sandbox, server, key: key)
        // Another writer takes the name between the request and the store.
        try server.setExchange(key: key, afterCreate: (sandbox.vault, """
            INSERT INTO entries (name, entry_id, kind, header_template, description, created_at, updated_at,
                fingerprint, nonce, ciphertext) VALUES ('rescued', randomblob(16), 'pat', 'Authorization: Bearer {secret}',
                '', 0, 0, randomblob(16), randomblob(24), randomblob(32))
            """))
        let result = try await ks(sandbox, ["pat", "create", "rescued", "--auth", "immuta", "--description", "x"])
        runs.append(result)
        #expect(result.status == 1, "\(result)")
        #expect(result.out == "keyseal: the new PAT, shown once because it could not be stored:\npat-1\n", "\(result)")
        #expect(result.err.contains("created PAT ") && result.err.contains("but keyseal could not store it"), "\(result)")
        #expect(result.err.contains("keyseal: hint: store the token shown above now") && result.err.contains("tokenId"), "\(result)")
        try sandbox.expectSealed(key, runs: runs)
    }

    @Test("pat sync takes the server's expiry and state; list and check flag inactive and missing PATs; pat revoke is seen by the server")
    func syncAndRevoke() async throws {
        let sandbox = try Sandbox()
        let server = try LoopbackServer(directory: sandbox.root + "/server")
        defer { server.stop() }
        let key = Sentinel.make("pat-sync")
        var runs = try await setUp(sandbox, server, key: key)
        for (name, expires) in [("a", "30d"), ("b", "never"), ("c", "10d"), ("d", "never")] {
            let made = try await ks(sandbox, ["pat", "create", name, "--auth", "immuta", "--description", "pat \(name)", "--expires", expires])
            #expect(made.status == 0, "\(made)")
            runs.append(made)
        }
        // On the server: a's expiry moves, b is deactivated, c is deleted.
        let tokens = try server.serverTokens()
        try #require(tokens.count == 4)
        let ids = tokens.map { $0["tokenId"] as? String ?? "" }
        var changed = tokens.filter { $0["tokenId"] as? String != ids[2] }
        changed[0]["expirationDate"] = "2027-06-30T12:00:00.000Z"
        changed[1]["active"] = false
        try server.setServerTokens(changed)

        let sync = try await ks(sandbox, ["pat", "sync"])
        let showA = try await ks(sandbox, ["show", "a"])
        let list = try await ks(sandbox, ["list"])
        let check = try await ks(sandbox, ["check"])
        let useB = try await ks(sandbox, ["header", "b"])
        let refuseB = try await ks(sandbox, ["header", "b", "--refuse-expired"])
        runs += [sync, showA, list, check, useB, refuseB]
        #expect(sync.status == 0, "\(sync)")
        #expect(sync.err.contains("\"a\": active, expires 2027-06-30 (changed on the server)"), "\(sync)")
        #expect(sync.err.contains("\"b\": inactive, no expiry") && sync.err.contains("\"c\": not in the list of"), "\(sync)")
        #expect(sync.err.contains("\"d\": active, no expiry\n"), "\(sync)")
        #expect(showA.out.contains("2027-06-30"), "\(showA)")
        let states = Dictionary(uniqueKeysWithValues: list.out.split(separator: "\n").dropFirst().map { line in
            let columns = line.split(separator: " ", omittingEmptySubsequences: true)
            return (String(columns[0]), String(columns[2]))
        })
        #expect(states["a"] == "ok" && states["b"] == "revoked" && states["c"] == "revoked" && states["d"] == "never", "\(list)")
        #expect(check.status == 2, "\(check)")
        #expect(check.out.contains("b: revoked, is no longer active on its server") && check.out.contains("c: revoked, is gone from"), "\(check)")
        #expect(useB.status == 0 && useB.out == "Authorization: Bearer pat-2\n", "\(useB)")
        #expect(useB.err.contains("is no longer active on its server") && useB.err.contains("using it anyway"), "\(useB)")
        #expect(refuseB.status == 2 && refuseB.stdout.isEmpty, "\(refuseB)")

        // Revoking: a with its own token; c, already gone (404), is removed
        // all the same; d is kept, marked.
        let revokeA = try await ks(sandbox, ["pat", "revoke", "a"])
        let revokeC = try await ks(sandbox, ["pat", "revoke", "c", "--auth", "immuta"])
        let revokeD = try await ks(sandbox, ["pat", "revoke", "d", "--keep"])
        let after = try await ks(sandbox, ["list"])
        let notPat = try await ks(sandbox, ["pat", "revoke", "immuta"])
        runs += [revokeA, revokeC, revokeD, after, notPat]
        #expect(revokeA.status == 0 && revokeA.err.contains("revoked PAT \(ids[0])") && revokeA.err.contains("removed \"a\""), "\(revokeA)")
        #expect(revokeC.status == 0 && revokeC.err.contains("no longer knows PAT \(ids[2])"), "\(revokeC)")
        #expect(revokeD.status == 0 && revokeD.err.contains("kept \"d\", marked revoked"), "\(revokeD)")
        #expect(notPat.status == 64 && notPat.err.contains("has no token id"), "\(notPat)")
        let remaining = try server.serverTokens().map { $0["tokenId"] as? String ?? "" }
        #expect(remaining == [ids[1]], "\(remaining)")
        let deletes = try server.requests().filter { $0.method == "DELETE" }
        #expect(deletes.map(\.path) == ["/base/api/auth/tokens/\(ids[0])", "/base/api/auth/tokens/\(ids[2])", "/base/api/auth/tokens/\(ids[3])"],
                "\(deletes)")
        #expect(deletes.first?.headers(named: "Authorization").map(\.text) == ["Bearer pat-1"], "\(deletes)")
        #expect(!after.out.contains("\na ") && !after.out.contains("\nc ") && after.out.contains("\nd "), "\(after)")
        try sandbox.expectSealed(key, runs: runs)
    }
}
