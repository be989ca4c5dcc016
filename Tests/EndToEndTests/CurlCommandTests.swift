import Foundation
import Testing

@Suite("keyseal curl: the token goes only where it was stored for")
struct CurlCommandTests {
    /// A vault with `svc` (a pat for the server's origin under /api) and
    /// `bare` (no URL); returns the secret of `svc`.
    private func setUp(_ sandbox: Sandbox, _ server: LoopbackServer, tag: String) async throws -> (String, [RunResult]) {
        let secret = Sentinel.make(tag)
        var runs = [try await sandbox.initVault()]
        runs.append(try await sandbox.add("svc", secret: secret, options: ["--kind", "pat", "--url", server.origin + "/api"]))
        runs.append(try await sandbox.add("bare", secret: secret + "-bare", options: ["--kind", "token"]))
        return (secret, runs)
    }

    private func curl(_ sandbox: Sandbox, _ arguments: [String], stdin: String = "", env: [String: String?] = [:]) async throws -> RunResult {
        try await sandbox.run(["curl", "--vault", sandbox.vault] + arguments, stdin: stdin,
                              env: curlEnvironment.merging(env) { $1 })
    }

    @Test("64 for a full URL on another origin, with a hint naming --any-host, and the server hears nothing")
    func otherOriginRefused() async throws {
        let sandbox = try Sandbox()
        let server = try LoopbackServer(directory: sandbox.root + "/server")
        defer { server.stop() }
        let (secret, setup) = try await setUp(sandbox, server, tag: "curl-origin")
        var runs: [RunResult] = []
        // localhost reaches the same server, but is another origin; so are
        // another scheme and another port.
        for url in ["http://localhost:\(server.port)/x", "https://127.0.0.1:\(server.port)/x",
                    "http://127.0.0.1:\(server.port == 65535 ? 1 : server.port + 1)/x", "http://127.0.0.2:\(server.port)/x"] {
            let result = try await curl(sandbox, ["svc", url, "--", "-sS"])
            runs.append(result)
            #expect(result.status == 64, "\(result)")
            #expect(result.stdout.isEmpty, "\(result)")
            #expect(result.err.hasPrefix("keyseal: error: "), "\(result)")
            #expect(result.err.contains("keyseal: hint: ") && result.err.contains("--any-host"), "\(result)")
        }
        let refused = try server.requests()
        #expect(refused.isEmpty, "the server was called: \(refused)")

        // --any-host is the way through, and the header goes along.
        let allowed = try await curl(sandbox, ["svc", "http://localhost:\(server.port)/anywhere", "--any-host", "--", "-sS"])
        runs.append(allowed)
        #expect(allowed.status == 0, "\(allowed)")
        #expect(allowed.out == LoopbackServer.responseBody, "\(allowed)")
        #expect(allowed.stderr.isEmpty, "\(allowed)")
        let requests = try server.requests()
        #expect(requests.map(\.path) == ["/anywhere"], "\(requests)")
        #expect(requests.first?.headers(named: "Host").map(\.text) == ["localhost:\(server.port)"], "\(requests)")
        #expect(requests.first?.headers(named: "Authorization").map(\.value) == [Data("Bearer \(secret)".utf8)], "\(requests)")
        try sandbox.expectSealed(secret, runs: setup + runs)
    }

    @Test("64 for a target that is neither a path nor a URL, and for a path or no target with no stored URL", arguments: [
        (["svc", "data/connection/1"], "neither a path starting with / nor a full URL"),
        (["svc", "ftp://127.0.0.1/x"], "neither a path starting with / nor a full URL"),
        (["bare", "/data/connection/1"], "no base URL"),
        (["bare"], "no base URL"),
        (["bare", "http://127.0.0.1:1/x"], "no base URL"),
    ])
    func unusableTarget(_ arguments: [String], _ message: String) async throws {
        let sandbox = try Sandbox()
        let server = try LoopbackServer(directory: sandbox.root + "/server")
        defer { server.stop() }
        let (secret, setup) = try await setUp(sandbox, server, tag: "curl-target")
        let result = try await curl(sandbox, arguments + ["--", "-sS"])
        #expect(result.status == 64, "\(result)")
        #expect(result.stdout.isEmpty, "\(result)")
        #expect(result.err.hasPrefix("keyseal: error: ") && result.err.contains(message), "\(result)")
        #expect(result.err.contains("keyseal: hint: "), "\(result)")
        #expect(try server.requests().isEmpty)
        try sandbox.expectSealed(secret, runs: setup + [result])
    }

    @Test("69 when curl is not on PATH, with a hint to install it")
    func curlMissing() async throws {
        let sandbox = try Sandbox()
        let server = try LoopbackServer(directory: sandbox.root + "/server")
        defer { server.stop() }
        let (secret, setup) = try await setUp(sandbox, server, tag: "curl-missing")
        let empty = sandbox.root + "/empty-bin"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: false)
        let result = try await curl(sandbox, ["svc", "/x"], env: ["PATH": empty])
        #expect(result.status == 69, "\(result)")
        #expect(result.stdout.isEmpty, "\(result)")
        #expect(result.err == "keyseal: error: curl was not found on PATH\nkeyseal: hint: install it, for example: apt-get install curl\n",
                "\(result)")
        #expect(try server.requests().isEmpty)
        try sandbox.expectSealed(secret, runs: setup + [result])
    }

    @Test("curl's exit status is keyseal's: 7 for a port nobody listens on")
    func curlStatusPassesThrough() async throws {
        let sandbox = try Sandbox()
        let secret = Sentinel.make("curl-closed")
        var runs = [try await sandbox.initVault()]
        // Port 1 (tcpmux) is privileged and, on a test machine, closed.
        runs.append(try await sandbox.add("closed", secret: secret, options: ["--url", "http://127.0.0.1:1"]))
        let result = try await curl(sandbox, ["closed", "/x", "--", "-sS"])
        runs.append(result)
        #expect(result.status == 7, "\(result)")
        #expect(result.stdout.isEmpty, "\(result)")
        #expect(result.err.hasPrefix("curl: (7) "), "\(result)")
        try sandbox.expectSealed(secret, runs: runs)
    }

    @Test("arguments after -- reach curl: a POST with a body from stdin, the header along")
    func curlArgumentsPassThrough() async throws {
        let sandbox = try Sandbox()
        let server = try LoopbackServer(directory: sandbox.root + "/server")
        defer { server.stop() }
        let (secret, setup) = try await setUp(sandbox, server, tag: "curl-post")
        let body = #"{"name":"x y","n":1}"#
        let result = try await curl(sandbox, ["svc", "/items", "--", "-sS", "-X", "POST", "-H", "Content-Type: application/json",
                                              "--data-binary", "@-"], stdin: body)
        #expect(result.status == 0, "\(result)")
        #expect(result.out == LoopbackServer.responseBody, "\(result)")
        #expect(result.stderr.isEmpty, "\(result)")
        let requests = try server.requests()
        #expect(requests.count == 1, "\(requests)")
        let request = try #require(requests.first)
        #expect(request.method == "POST", "\(request)")
        #expect(request.path == "/api/items", "\(request)")
        #expect(request.body == Data(body.utf8), "\(request)")
        #expect(request.headers(named: "Content-Type").map(\.text) == ["application/json"], "\(request)")
        #expect(request.headers(named: "Authorization").map(\.value) == [Data("Bearer \(secret)".utf8)], "\(request)")
        try sandbox.expectSealed(secret, runs: setup + [result])
    }

    @Test("66 for an unknown entry, before curl runs, and the server hears nothing")
    func unknownEntry() async throws {
        let sandbox = try Sandbox()
        let server = try LoopbackServer(directory: sandbox.root + "/server")
        defer { server.stop() }
        let (secret, setup) = try await setUp(sandbox, server, tag: "curl-unknown")
        let result = try await curl(sandbox, ["nope", server.origin + "/x", "--any-host", "--", "-sS"])
        #expect(result.status == 66, "\(result)")
        #expect(result.stdout.isEmpty, "\(result)")
        #expect(result.err == "keyseal: error: no entry named \"nope\"\nkeyseal: hint: run \"keyseal list\" to see the entries\n",
                "\(result)")
        #expect(try server.requests().isEmpty)
        try sandbox.expectSealed(secret, runs: setup + [result])
    }

    /// The issue: "a full URL must be on the entry's host, so a token is
    /// never sent to a host it was not stored for (--any-host to override)".
    /// A URL among curl's own arguments gets the -K header too.
    @Test("a URL among the arguments after -- is held to the entry's origin too")
    func extraURLInCurlArguments() async throws {
        let sandbox = try Sandbox()
        let server = try LoopbackServer(directory: sandbox.root + "/server")
        defer { server.stop() }
        let (secret, setup) = try await setUp(sandbox, server, tag: "curl-extra-url")
        let elsewhere = "http://localhost:\(server.port)/elsewhere"
        let result = try await curl(sandbox, ["svc", "/ok", "--", "-sS", elsewhere])
        let requests = try server.requests()
        let offOrigin = requests.filter { request in
            request.headers(named: "Host").map(\.text) != ["127.0.0.1:\(server.port)"]
        }
        #expect(offOrigin.isEmpty || offOrigin.allSatisfy { $0.headers(named: "Authorization").isEmpty },
                "the token went to another origin without --any-host: \(offOrigin)\n\(result)")
        try sandbox.expectSealed(secret, runs: setup + [result])
    }

    /// The same rule, for curl options that keep the URL but send the
    /// request (headers included) to another server: a second loopback
    /// server on another port (another origin) stands for it.
    @Test("curl options that send the request to another server are held to the entry's origin too", arguments: [
        "--connect-to", "--proxy", "-x",
    ])
    func reroutingOption(_ option: String) async throws {
        let sandbox = try Sandbox()
        let server = try LoopbackServer(directory: sandbox.root + "/server")
        defer { server.stop() }
        let trap = try LoopbackServer(directory: sandbox.root + "/trap")
        defer { trap.stop() }
        let (secret, setup) = try await setUp(sandbox, server, tag: "curl-reroute")
        let value = option == "--connect-to" ? "127.0.0.1:\(server.port):127.0.0.1:\(trap.port)" : trap.origin
        let result = try await curl(sandbox, ["svc", "/ok", "--", "-sS", option, value])
        let trapped = try trap.requests()
        #expect(!trapped.contains { request in request.headers.contains { $0.value.contains("sentinel-") } },
                "the token went to another server without --any-host: \(trapped)\n\(result)")
        try sandbox.expectSealed(secret, runs: setup + [result])
    }
}
