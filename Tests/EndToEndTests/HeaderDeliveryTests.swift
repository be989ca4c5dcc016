import Foundation
import Testing

/// A kind or template, and the header a server must receive for it.
struct HeaderCase: Sendable, CustomTestStringConvertible {
    let label: String
    let addOptions: [String]
    let headerName: String
    /// What comes before and after the secret in the header's value.
    let before: String
    let after: String

    func value(_ secret: String) -> String { before + secret + after }
    func line(_ secret: String) -> String { "\(headerName): \(value(secret))" }
    var testDescription: String { label }

    static let all: [HeaderCase] = [
        HeaderCase(label: "kind api-key", addOptions: ["--kind", "api-key"], headerName: "Authorization", before: "", after: ""),
        HeaderCase(label: "kind pat", addOptions: ["--kind", "pat"], headerName: "Authorization", before: "Bearer ", after: ""),
        HeaderCase(label: "kind token", addOptions: ["--kind", "token"], headerName: "Authorization", before: "Bearer ", after: ""),
        HeaderCase(label: "no kind (token)", addOptions: [], headerName: "Authorization", before: "Bearer ", after: ""),
        HeaderCase(label: "X-API-Key: {secret}", addOptions: ["--header", "X-API-Key: {secret}"],
                   headerName: "X-API-Key", before: "", after: ""),
        HeaderCase(label: "PRIVATE-TOKEN: {secret}", addOptions: ["--kind", "pat", "--header", "PRIVATE-TOKEN: {secret}"],
                   headerName: "PRIVATE-TOKEN", before: "", after: ""),
        HeaderCase(label: "Authorization: token {secret}", addOptions: ["--header", "Authorization: token {secret}"],
                   headerName: "Authorization", before: "token ", after: ""),
        HeaderCase(label: "X-Auth: key={secret};v=1", addOptions: ["--kind", "api-key", "--header", "X-Auth: key={secret};v=1"],
                   headerName: "X-Auth", before: "key=", after: ";v=1"),
    ]
}

@Suite("the header reaches a real HTTP server through curl, byte for byte")
struct HeaderDeliveryTests {
    @Test("header | curl -H @-, header --format curl | curl -K -, and keyseal curl all deliver exactly the header",
          arguments: HeaderCase.all)
    func deliversHeader(_ header: HeaderCase) async throws {
        let sandbox = try Sandbox()
        let server = try LoopbackServer(directory: sandbox.root + "/server")
        defer { server.stop() }
        let secret = Sentinel.make("deliver-\(header.headerName)-\(header.before.count)-\(header.addOptions.count)")
        let vault = sandbox.vault
        var runs: [RunResult] = [try await sandbox.initVault()]
        runs.append(try await sandbox.add("svc", secret: secret, options: header.addOptions + ["--url", server.origin + "/api"]))

        let viaLine = try await sandbox.shell(#""$0" header svc --vault "$1" | curl -sS -H @- "$2""#,
                                              [vault, server.origin + "/line"], env: curlEnvironment)
        let viaConfig = try await sandbox.shell(#""$0" header svc --vault "$1" --format curl | curl -sS -K - "$2""#,
                                                [vault, server.origin + "/config"], env: curlEnvironment)
        // -sS: without it curl draws its progress meter on stderr.
        let viaPath = try await sandbox.run(["curl", "svc", "/path", "--vault", vault, "--", "-sS"], env: curlEnvironment)
        let viaURL = try await sandbox.run(["curl", "svc", server.origin + "/full/url?x=1", "--vault", vault, "--", "-sS"],
                                           env: curlEnvironment)
        let viaBase = try await sandbox.run(["curl", "--vault", vault, "svc", "--", "-sS"], env: curlEnvironment)
        let calls = [viaLine, viaConfig, viaPath, viaURL, viaBase]
        runs += calls
        for call in calls {
            #expect(call.status == 0, "\(call)")
            #expect(call.out == LoopbackServer.responseBody, "\(call)")
            #expect(call.stderr.isEmpty, "\(call)")
        }

        let requests = try server.requests()
        #expect(requests.map(\.path) == ["/line", "/config", "/api/path", "/full/url?x=1", "/api"], "\(requests)")
        for request in requests {
            #expect(request.method == "GET", "\(request)")
            let matching = request.headers(named: header.headerName)
            #expect(matching.count == 1, "\(request)")
            #expect(matching.first?.name == header.headerName, "\(request)")
            #expect(matching.first?.value == Data(header.value(secret).utf8), "\(request)")
            if header.headerName != "Authorization" {
                #expect(request.headers(named: "Authorization").isEmpty, "\(request)")
            }
            let others = request.headers.filter { $0.name.lowercased() != header.headerName.lowercased() }
            #expect(!others.contains { $0.value.contains("sentinel-") }, "the secret went out in another header: \(request)")
        }

        // The other formats, for the same entry.
        let line = try await sandbox.run(["header", "svc", "--vault", vault, "--format", "line"])
        let http = try await sandbox.run(["header", "svc", "--vault", vault, "--format", "http"])
        let json = try await sandbox.run(["header", "svc", "--vault", vault, "--format", "json"])
        runs += [line, http, json]
        for result in [line, http, json] {
            #expect(result.status == 0, "\(result)")
            #expect(result.stderr.isEmpty, "\(result)")
        }
        #expect(line.out == header.line(secret) + "\n", "\(line)")
        #expect(http.stdout == Data((header.line(secret) + "\r\n").utf8), "\(http)")
        let object = try #require(try JSONSerialization.jsonObject(with: json.stdout) as? [String: Any], "\(json)")
        #expect(object.count == 2, "\(json)")
        #expect(object["name"] as? String == header.headerName, "\(json)")
        #expect(object["value"] as? String == header.value(secret), "\(json)")
        #expect(json.out.hasSuffix("}\n"), "\(json)")

        try sandbox.expectSealed(secret, runs: runs)
    }

    @Test("--format curl is one correctly escaped config line; the default is line")
    func curlConfigLine() async throws {
        let sandbox = try Sandbox()
        let secret = Sentinel.make("format")
        var runs: [RunResult] = [try await sandbox.initVault()]
        runs.append(try await sandbox.add("svc", secret: secret, options: ["--kind", "pat"]))
        let config = try await sandbox.run(["header", "svc", "--format", "curl", "--vault", sandbox.vault])
        let plain = try await sandbox.run(["header", "svc", "--vault", sandbox.vault])
        runs += [config, plain]
        #expect(config.status == 0 && config.stderr.isEmpty, "\(config)")
        #expect(config.out == #"header = "Authorization: Bearer sentinel-format-tok\"en\\$ x;é""# + "\n", "\(config)")
        #expect(plain.status == 0 && plain.stderr.isEmpty, "\(plain)")
        #expect(plain.out == "Authorization: Bearer \(secret)\n", "\(plain)")
        try sandbox.expectSealed(secret, runs: runs)
    }

    @Test("64 for an unknown --format, naming the formats, nothing printed", arguments: ["xml", "LINE", "", "jsonl"])
    func unknownFormat(_ format: String) async throws {
        let sandbox = try Sandbox()
        let secret = Sentinel.make("badformat")
        var runs: [RunResult] = [try await sandbox.initVault()]
        runs.append(try await sandbox.add("svc", secret: secret))
        let result = try await sandbox.run(["header", "svc", "--format", format, "--vault", sandbox.vault])
        runs.append(result)
        #expect(result.status == 64, "\(result)")
        #expect(result.stdout.isEmpty, "\(result)")
        #expect(result.err.hasPrefix("keyseal: error: "), "\(result)")
        #expect(result.err.contains("'line', 'curl', 'http' or 'json'"), "\(result)")
        #expect(result.err.contains("keyseal: hint: "), "\(result)")
        try sandbox.expectSealed(secret, runs: runs)
    }
}
