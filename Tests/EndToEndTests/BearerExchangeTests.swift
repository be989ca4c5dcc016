import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A `bearer` entry holds an Immuta API key; header, curl, run and login
/// exchange it for a token at <url>/bim/apikey/authenticate, through the real
/// curl, against the loopback server's implementation of that endpoint.
@Suite("bearer entries: the API key exchanged for a token, through curl, against a loopback Immuta")
struct BearerExchangeTests {
    private func setUp(_ sandbox: Sandbox, _ server: LoopbackServer, key: String) async throws -> [RunResult] {
        try server.setExchange(key: key)
        return [try await sandbox.initVault(),
                try await sandbox.add("immuta", secret: key, options: ["--kind", "bearer", "--url", server.origin + "/base"])]
    }

    private func ks(_ sandbox: Sandbox, _ arguments: [String]) async throws -> RunResult {
        // --vault right after the subcommand: curl's arguments come after "--".
        try await sandbox.run([arguments[0], "--vault", sandbox.vault] + arguments.dropFirst(), env: curlEnvironment)
    }

    private func exchanges(_ server: LoopbackServer) throws -> [RecordedRequest] {
        try server.requests().filter { $0.path == "/base/bim/apikey/authenticate" }
    }

    @Test("header exchanges the key and keeps the token; curl, login and run reuse it; login --refresh gets a new one; the key travels in the body, never in argv")
    func exchangeKeepAndUse() async throws {
        let sandbox = try Sandbox()
        let server = try LoopbackServer(directory: sandbox.root + "/server")
        defer { server.stop() }
        let key = Sentinel.make("bearer-key")
        var runs = try await setUp(sandbox, server, key: key)
        #expect(runs.allSatisfy { $0.status == 0 }, "\(runs)")
        // Tokens unique to this test, so the /proc sampler below (which reads
        // every process) cannot mistake another test's token for ours.
        let tok = Sentinel.make("bearer-token") + "-"
        try server.setExchange(key: key, tokenPrefix: tok)
        // The key and the tokens, in every process's argv and environment.
        // `run`, whose command gets the token in its environment by design,
        // comes after the sampling.
        let sampler = SecretsSampler(needles: [("the API key", Data(key.utf8)), ("a token", Data(tok.utf8))]) { view in
            view.arguments.first.map { $0.hasSuffix("curl") || $0.hasSuffix("keyseal") } ?? false
        }

        let header = try await ks(sandbox, ["header", "immuta"])
        let curl = try await ks(sandbox, ["curl", "immuta", "/data/connection/123", "--", "-sS"])
        let login = try await ks(sandbox, ["login", "immuta"])
        let refreshed = try await ks(sandbox, ["login", "immuta", "--refresh"])
        let after = try await ks(sandbox, ["header", "immuta"])
        let show = try await ks(sandbox, ["show", "immuta"])
        let report = sampler.stop()
        let run = try await sandbox.run(["run", "--vault", sandbox.vault, "--env", "TOKEN=immuta", "--", "/bin/sh", "-c", "printf %s \"$TOKEN\""],
                                        env: curlEnvironment)
        runs += [header, curl, run, login, refreshed, after, show]

        #expect(header.status == 0 && header.out == "Authorization: Bearer \(tok)1\n" && header.stderr.isEmpty, "\(header)")
        #expect(curl.status == 0 && curl.out == LoopbackServer.responseBody, "\(curl)")
        #expect(run.status == 0 && run.out == "\(tok)2", "\(run)")
        #expect(login.status == 0 && login.out.isEmpty && login.err.hasPrefix("keyseal: \"immuta\" has a token from "), "\(login)")
        #expect(refreshed.status == 0 && refreshed.out.isEmpty, "\(refreshed)")
        #expect(refreshed.err == "keyseal: \(server.origin) accepted the API key of \"immuta\" and issued a bearer token "
            + "(\((tok + "2").utf8.count) bytes)\n", "\(refreshed)")
        #expect(after.status == 0 && after.out == "Authorization: Bearer \(tok)2\n", "\(after)")
        #expect(show.status == 0 && show.out.contains("token:") && show.out.contains(" ago"), "\(show)")
        #expect(show.out.contains("max age:") && show.out.contains("none (kept until a server refuses it)"), "\(show)")
        #expect(!show.out.contains(tok), "\(show)")

        let requests = try server.requests()
        let exchanges = try exchanges(server)
        #expect(exchanges.count == 2, "\(requests)")
        for exchange in exchanges {
            #expect(exchange.method == "POST")
            #expect(exchange.headers(named: "Content-Type").map(\.text) == ["application/json"], "\(exchange)")
            let body = try #require(try JSONSerialization.jsonObject(with: exchange.body) as? [String: Any], "\(exchange)")
            #expect(body["apikey"] as? String == key, "\(exchange)")
            #expect(exchange.headers(named: "Authorization").isEmpty, "\(exchange)")
        }
        // The data request carried the kept token, not the key.
        let data = requests.filter { $0.path == "/base/data/connection/123" }
        #expect(data.map { $0.headers(named: "Authorization").map(\.text) } == [["Bearer \(tok)1"]], "\(requests)")
        #expect(report.samples > 0)
        #expect(report.leaks.isEmpty, "the API key or a token was in a command line or environment: \(report.leaks)")
        let file = sandbox.bytes(sandbox.vault) ?? Data()
        #expect(file.range(of: Data(tok.utf8)) == nil, "a token is in the vault in the clear")
        try sandbox.expectSealed(key, runs: runs)
    }

    @Test("a token older than --max-age is exchanged anew; rotate drops the kept token")
    func maxAgeAndRotation() async throws {
        let sandbox = try Sandbox()
        let server = try LoopbackServer(directory: sandbox.root + "/server")
        defer { server.stop() }
        let key = Sentinel.make("bearer-age")
        var runs = try await setUp(sandbox, server, key: key)
        // An hour while the token is young (however slow the machine, the
        // second header comes within it); then 1 s, and a wait longer than
        // that: load can only make the token older, never younger.
        let maxAge = try await sandbox.run(["edit", "immuta", "--max-age", "1h", "--vault", sandbox.vault])
        #expect(maxAge.status == 0, "\(maxAge)")
        let first = try await ks(sandbox, ["header", "immuta"])
        let soon = try await ks(sandbox, ["header", "immuta"])
        let shortened = try await sandbox.run(["edit", "immuta", "--max-age", "1s", "--vault", sandbox.vault])
        #expect(shortened.status == 0, "\(shortened)")
        try await Task.sleep(for: .milliseconds(1500))
        let later = try await ks(sandbox, ["header", "immuta"])
        runs += [maxAge, first, soon, shortened, later]
        #expect(first.out == "Authorization: Bearer tok-1\n" && soon.out == first.out, "\(first) \(soon)")
        #expect(later.out == "Authorization: Bearer tok-2\n", "\(later)")
        let show = try await ks(sandbox, ["show", "immuta"])
        #expect(show.out.contains("max age:") && show.out.contains("1s"), "\(show)")

        let rotated = try await sandbox.run(["rotate", "immuta", "--vault", sandbox.vault], stdin: key + "-new\n")
        try server.setExchange(key: key + "-new")
        let afterRotation = try await ks(sandbox, ["header", "immuta"])
        runs += [show, rotated, afterRotation]
        #expect(rotated.status == 0, "\(rotated)")
        #expect(afterRotation.out == "Authorization: Bearer tok-3\n", "\(afterRotation)")
        #expect(try exchanges(server).count == 3)

        let notBearer = try await sandbox.run(["add", "pat", "--kind", "pat", "--vault", sandbox.vault], stdin: "p\n")
        let refused = try await sandbox.run(["edit", "pat", "--max-age", "1h", "--vault", sandbox.vault])
        let badAge = try await sandbox.run(["edit", "immuta", "--max-age", "soon", "--vault", sandbox.vault])
        #expect(notBearer.status == 0 && refused.status == 64 && refused.err.contains("bearer entries"), "\(refused)")
        #expect(badAge.status == 64 && badAge.err.contains("is not a maximum token age"), "\(badAge)")
        try sandbox.expectSealed(key, runs: runs)
    }

    @Test("curl: a kept token the server refuses (401) is replaced and the request repeated once: one warning, the answer once")
    func refusedKeptTokenIsRenewedOnce() async throws {
        let sandbox = try Sandbox()
        let server = try LoopbackServer(directory: sandbox.root + "/server")
        defer { server.stop() }
        let key = Sentinel.make("bearer-retry")
        var runs = try await setUp(sandbox, server, key: key)
        let first = try await ks(sandbox, ["header", "immuta"])
        #expect(first.out == "Authorization: Bearer tok-1\n", "\(first)")
        try server.setExchange(key: key, revoked: ["tok-1"])

        let retried = try await ks(sandbox, ["curl", "immuta", "/data/connection/123", "--", "-sS"])
        runs += [first, retried]
        #expect(retried.status == 0, "\(retried)")
        #expect(retried.out == LoopbackServer.responseBody, "\(retried)")
        #expect(retried.err == "keyseal: warning: \(server.origin)/base/data/connection/123 refused the kept token of \"immuta\" (401); "
            + "exchanged the API key again and repeated the request\n", "\(retried)")
        let requests = try server.requests()
        #expect(requests.map(\.path) == ["/base/bim/apikey/authenticate", "/base/data/connection/123",
                                         "/base/bim/apikey/authenticate", "/base/data/connection/123"], "\(requests)")
        #expect(requests.last?.headers(named: "Authorization").map(\.text) == ["Bearer tok-2"], "\(requests)")
        let show = try await ks(sandbox, ["show", "immuta"])
        #expect(show.out.contains("1 observed"), "\(show)")

        // The new token works on: no more exchanges.
        let again = try await ks(sandbox, ["curl", "immuta", "/again", "--", "-sS"])
        #expect(again.status == 0 && again.out == LoopbackServer.responseBody && again.stderr.isEmpty, "\(again)")

        // A request that reads its body from stdin cannot be repeated: the
        // 401 answer is the user's, as curl gives it, and nothing is retried.
        try server.setExchange(key: key, revoked: ["tok-1", "tok-2"])
        let once = try await sandbox.run(["curl", "--vault", sandbox.vault, "immuta", "/upload", "--", "-sS", "--data-binary", "@-"],
                                         stdin: "payload", env: curlEnvironment)
        // And a token obtained in this very call is not retried either: the
        // edit drops the kept one, and the next one issued (tok-3) is refused.
        let edited = try await sandbox.run(["edit", "immuta", "--description", "drops the token", "--vault", sandbox.vault])
        try server.setExchange(key: key, revoked: ["tok-1", "tok-2", "tok-3"])
        let stillRefused = try await ks(sandbox, ["curl", "immuta", "/after", "--", "-sS"])
        runs += [show, again, once, edited, stillRefused]
        #expect(once.status == 0 && once.out == "{\"message\":\"token expired\"}" && once.stderr.isEmpty, "\(once)")
        #expect(edited.status == 0, "\(edited)")
        #expect(stillRefused.status == 0 && stillRefused.out == "{\"message\":\"token expired\"}" && stillRefused.stderr.isEmpty,
                "\(stillRefused)")
        let allRequests = try server.requests()
        #expect(try exchanges(server).count == 3, "\(allRequests)")
        try sandbox.expectSealed(key, runs: runs)
    }

    @Test("https: --cacert makes a private CA's server trusted for the exchange and for curl; without it TLS fails (69); the path is sealed")
    func privateCertificateAuthority() async throws {
        let sandbox = try Sandbox()
        let certificates = try await sandbox.makeCertificates(in: sandbox.root + "/pki")
        let server = try LoopbackServer(directory: sandbox.root + "/server", tls: (certificates.chain, certificates.key))
        defer { server.stop() }
        let key = Sentinel.make("bearer-tls")
        try server.setExchange(key: key)
        var runs = [try await sandbox.initVault(),
                    try await sandbox.add("trusted", secret: key, options: ["--kind", "bearer", "--url", server.origin + "/base",
                                                                          "--cacert", certificates.ca]),
                    try await sandbox.add("untrusted", secret: key, options: ["--kind", "bearer", "--url", server.origin + "/base"])]
        let header = try await ks(sandbox, ["header", "trusted"])
        let curl = try await ks(sandbox, ["curl", "trusted", "/data", "--", "-sS"])
        let refused = try await ks(sandbox, ["header", "untrusted"])
        let show = try await ks(sandbox, ["show", "trusted"])
        runs += [header, curl, refused, show]
        #expect(header.status == 0 && header.out == "Authorization: Bearer tok-1\n", "\(header)")
        #expect(curl.status == 0 && curl.out == LoopbackServer.responseBody, "\(curl)")
        #expect(refused.status == 69 && refused.err.hasPrefix("keyseal: error: TLS with \(server.origin) failed"), "\(refused)")
        #expect(show.out.contains("ca certificates:") && show.out.contains(certificates.ca), "\(show)")
        #expect(try server.requests().map(\.path) == ["/base/bim/apikey/authenticate", "/base/data"])

        // --cacert only with an https URL.
        let plain = try await sandbox.run(["add", "plain", "--kind", "pat", "--url", "http://127.0.0.1:9", "--cacert", certificates.ca,
                                           "--vault", sandbox.vault], stdin: "p\n")
        #expect(plain.status == 64 && plain.err.contains("--cacert is for an entry whose URL is https://"), "\(plain)")

        // Pointing the entry at another CA outside keyseal breaks its seal.
        try sandbox.python("""
            import sqlite3; c = sqlite3.connect('vault.db')
            c.execute("UPDATE entries SET ca_certificates = '/tmp/attacker-ca.pem' WHERE name = 'trusted'")
            c.execute("UPDATE entries SET ca_certificates = '/tmp/attacker-ca.pem' WHERE name = 'untrusted'")
            c.commit(); c.close()
            """)
        let tampered = try await ks(sandbox, ["header", "trusted"])
        let added = try await ks(sandbox, ["header", "untrusted"])
        runs += [tampered, added]
        #expect(tampered.status == 65 && tampered.err.contains("trusted"), "\(tampered)")
        #expect(added.status == 65 && added.err.contains("untrusted"), "\(added)")
        try sandbox.expectSealed(key, runs: runs)
    }

    @Test("tokens that the server stops taking after 2 requests: every third curl renews the token behind the scenes, and every call gets through")
    func tokensExpiringAfterNRequests() async throws {
        let sandbox = try Sandbox()
        let server = try LoopbackServer(directory: sandbox.root + "/server")
        defer { server.stop() }
        let key = Sentinel.make("bearer-expiring")
        var runs = try await setUp(sandbox, server, key: key)
        try server.setExchange(key: key, expireAfter: 2)
        var warnings = 0
        for call in 1...6 {
            let result = try await ks(sandbox, ["curl", "immuta", "/data/connection/\(call)", "--", "-sS"])
            runs.append(result)
            #expect(result.status == 0 && result.out == LoopbackServer.responseBody, "call \(call): \(result)")
            if !result.stderr.isEmpty {
                warnings += 1
                #expect(result.err.hasSuffix("(401); exchanged the API key again and repeated the request\n"), "\(result)")
            }
        }
        // tok-1 serves calls 1 and 2; call 3 is refused, renewed (tok-2) and
        // repeated; tok-2 serves it and call 4; call 5 renews again.
        let data = try server.requests().filter { $0.path.hasPrefix("/base/data/") }
        let used = data.map { $0.headers(named: "Authorization").first?.text ?? "" }
        #expect(used == ["Bearer tok-1", "Bearer tok-1", "Bearer tok-1", "Bearer tok-2", "Bearer tok-2", "Bearer tok-2",
                         "Bearer tok-3", "Bearer tok-3"], "\(data)")
        #expect(warnings == 2)
        #expect(try exchanges(server).count == 3)
        let show = try await ks(sandbox, ["show", "immuta"])
        // Lifetimes are keyed by the second a token was obtained: these came
        // within one second, so at least one was recorded.
        #expect(show.out.contains("lifetimes:") && show.out.contains(" observed, shortest "), "\(show)")
        try sandbox.expectSealed(key, runs: runs + [show])
    }

    @Test("a command run after an exchange gets SIGPIPE as the default, not ignored (it would be inherited through exec)")
    func sigpipeIsNotLeftIgnored() async throws {
        let sandbox = try Sandbox()
        let server = try LoopbackServer(directory: sandbox.root + "/server")
        defer { server.stop() }
        let key = Sentinel.make("bearer-sigpipe")
        var runs = try await setUp(sandbox, server, key: key)
        // keyseal starts with SIGPIPE at its default (the test process may
        // ignore it, and a shell cannot undo that), and its first use of the
        // entry exchanges (curl on a pipe) in that same process.
        let result = try await sandbox.python3("""
            import os, signal, sys
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)
            os.execv(sys.argv[1], sys.argv[1:])
            """, [sandbox.keyseal, "run", "--vault", sandbox.vault, "--env", "TOKEN=immuta", "--",
                  "/bin/sh", "-c", "grep '^SigIgn:' /proc/self/status"], env: curlEnvironment)
        runs.append(result)
        #expect(result.status == 0, "\(result)")
        let mask = try #require(UInt64(result.out.dropFirst("SigIgn:".count).trimmingCharacters(in: .whitespacesAndNewlines), radix: 16),
                                "\(result)")
        #expect(mask & (1 << (UInt64(SIGPIPE) - 1)) == 0, "SIGPIPE is ignored in the command: \(result)")
        #expect(try exchanges(server).count == 1)
        try sandbox.expectSealed(key, runs: runs)
    }

    @Test("each way an exchange fails has its own message and exit status, and nothing is sent elsewhere", arguments: [
        ("401", 77, "the API key was refused by"),
        ("false", 77, "the API key was refused by"),
        ("401-region", 77, "answered 401 \"Not authenticated.\""),
        ("500", 76, "answered HTTP 500 to the API key exchange"),
        ("garbage", 76, "is not the expected JSON"),
    ])
    func refusalsAndBadAnswers(mode: String, status: Int32, message: String) async throws {
        let sandbox = try Sandbox()
        let server = try LoopbackServer(directory: sandbox.root + "/server")
        defer { server.stop() }
        let key = Sentinel.make("bearer-\(mode)")
        var runs = try await setUp(sandbox, server, key: key)
        try server.setExchange(key: key, mode: mode)
        let header = try await ks(sandbox, ["header", "immuta"])
        let curl = try await ks(sandbox, ["curl", "immuta", "/data", "--", "-sS"])
        runs += [header, curl]
        for result in [header, curl] {
            #expect(result.status == status, "\(result)")
            #expect(result.stdout.isEmpty, "\(result)")
            #expect(result.err.hasPrefix("keyseal: error: ") && result.err.contains(message), "\(result)")
            #expect(result.err.contains("keyseal: hint: "), "\(result)")
        }
        if mode == "401-region" { #expect(header.err.contains("(na, eu, ap)"), "\(header)") }
        // Only exchanges reached the server: no data request went out.
        #expect(try server.requests().map(\.path) == Array(repeating: "/base/bim/apikey/authenticate", count: 2))
        try sandbox.expectSealed(key, runs: runs)
    }

    @Test("a closed port is unreachable (69); a server that never answers times out after exchange-timeout (69)")
    func unreachableAndTimeout() async throws {
        let sandbox = try Sandbox()
        let server = try LoopbackServer(directory: sandbox.root + "/server")
        defer { server.stop() }
        let key = Sentinel.make("bearer-timeout")
        var runs = try await setUp(sandbox, server, key: key)
        try server.setExchange(key: key, mode: "hang")
        let configured = try await sandbox.run(["config", "set", "exchange-timeout", "1s", "--vault", sandbox.vault])
        #expect(configured.status == 0 && configured.err == "keyseal: exchange-timeout = 1s\n", "\(configured)")
        runs.append(configured)
        let started = Date()
        let slow = try await ks(sandbox, ["header", "immuta"])
        let waited = Date().timeIntervalSince(started)
        runs.append(slow)
        #expect(slow.status == 69 && slow.stdout.isEmpty, "\(slow)")
        #expect(slow.err.contains("did not answer within 1 s") && slow.err.contains("exchange-timeout"), "\(slow)")
        // Well short of a hang (the harness ends a child after 30 s), with
        // room for a loaded machine: 1 s of timeout plus keyseal's start.
        #expect(waited < 20, "the exchange took \(waited) s")

        // Nothing listens on the server's port once it is stopped.
        server.stop()
        let closed = try await ks(sandbox, ["login", "immuta"])
        runs.append(closed)
        #expect(closed.status == 69, "\(closed)")
        #expect(closed.err.hasPrefix("keyseal: error: cannot reach http://127.0.0.1:\(server.port)"), "\(closed)")
        try sandbox.expectSealed(key, runs: runs)
    }

    @Test("a bearer entry needs a base URL, https unless it is a loopback address; login refuses other kinds")
    func bearerEntriesAreChecked() async throws {
        let sandbox = try Sandbox()
        _ = try await sandbox.initVault()
        let noURL = try await sandbox.run(["add", "a", "--kind", "bearer", "--vault", sandbox.vault], stdin: "k1\n")
        let plainHTTP = try await sandbox.run(["add", "b", "--kind", "bearer", "--url", "http://immuta.example.com", "--vault", sandbox.vault],
                                              stdin: "k2\n")
        let https = try await sandbox.add("c", secret: "k3", options: ["--kind", "bearer", "--url", "https://immuta.example.com"])
        let loopback = try await sandbox.add("d", secret: "k4", options: ["--kind", "bearer", "--url", "http://localhost:9"])
        #expect(noURL.status == 64 && noURL.err.contains("needs the base URL"), "\(noURL)")
        #expect(plainHTTP.status == 64 && plainHTTP.err.contains("plain http"), "\(plainHTTP)")
        #expect(https.status == 0 && loopback.status == 0, "\(https) \(loopback)")
        let list = try await sandbox.run(["list", "--vault", sandbox.vault])
        #expect(list.out.contains("c ") && list.out.contains("d ") && !list.out.contains("a ") && !list.out.contains("b "), "\(list)")

        // edit cannot turn c into plain http, nor d's URL away.
        let toHTTP = try await sandbox.run(["edit", "c", "--url", "http://immuta.example.com", "--vault", sandbox.vault])
        let noURLAnymore = try await sandbox.run(["edit", "d", "--no-url", "--vault", sandbox.vault])
        #expect(toHTTP.status == 64 && noURLAnymore.status == 64, "\(toHTTP) \(noURLAnymore)")

        _ = try await sandbox.add("pat", secret: "p1", options: ["--kind", "pat"])
        let login = try await sandbox.run(["login", "pat", "--vault", sandbox.vault])
        #expect(login.status == 64 && login.err.contains("only bearer entries"), "\(login)")
    }
}
