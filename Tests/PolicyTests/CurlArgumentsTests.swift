import Foundation
import Testing
@testable import Policy

@Suite struct CurlArgumentsTests {
    let base = try! ServiceURL("https://immuta.example.com/api")

    static let allowed: [[String]] = [
        [],
        ["-sS"],
        ["-X", "POST", "-d", "@-"],
        ["-XPOST", "--data-binary", "@body.json", "-H", "Content-Type: application/json"],
        ["-o", "https://evil.example.net"],  // the value of -o, a file name, not a URL
        ["--url", "https://immuta.example.com/other"],
        ["https://immuta.example.com/second"],
        ["-L"],  // Authorization is dropped by curl on a redirect to another host
        ["--location"],
        ["--max-time", "5", "--retry", "2", "-w", "%{http_code}"],
        ["--no-location"],
    ]

    @Test(arguments: allowed)
    func allowsWhatStaysOnTheHost(arguments: [String]) throws {
        try CurlArguments.check(arguments, base: base, headerName: "Authorization", anyHost: false)
    }

    static let refused: [([String], String)] = [
        (["https://evil.example.net/x"], "otherURL"),
        (["-s", "http://immuta.example.com/x"], "otherURL"),
        (["evil.example.net"], "notAURL"),
        (["-X", "GET", "evil.example.net"], "notAURL"),
        (["--", "-weird"], "notAURL"),
        (["--url", "https://evil.example.net"], "otherURL"),
        (["-K", "other.conf"], "option"),
        (["-sK", "other.conf"], "option"),
        (["--config", "other.conf"], "option"),
        (["--next", "https://evil.example.net"], "option"),
        (["-:"], "option"),
        (["--location-trusted"], "redirects"),
        (["--connect-to", "immuta.example.com:443:evil.example.net:443"], "option"),
        (["--resolve", "immuta.example.com:443:203.0.113.9"], "option"),
        (["-x", "http://proxy.example:3128"], "option"),
        (["-sx", "http://proxy.example:3128"], "option"),
        (["--proxy", "http://proxy.example:3128"], "option"),
        (["--socks5-hostname", "proxy.example:1080"], "option"),
        (["--unix-socket", "/tmp/s"], "option"),
        (["--doh-url", "https://dns.example/q"], "option"),
        (["--location-t"], "option"),
        (["--conf", "x"], "option"),
        (["--prox", "http://proxy.example:3128"], "option"),
        (["--connect-t", "a:1:b:2"], "option"),
    ]

    @Test(arguments: refused)
    func refusesAnotherDestination(arguments: [String], reason: String) {
        do {
            try CurlArguments.check(arguments, base: base, headerName: "Authorization", anyHost: false)
            Issue.record("\(arguments) was allowed")
        } catch {
            let kind = switch error {
            case .otherURL: "otherURL"
            case .notAURL: "notAURL"
            case .option: "option"
            case .redirects: "redirects"
            }
            #expect(kind == reason, "\(arguments): \(error)")
        }
        // --any-host is the user saying they mean it.
        #expect(throws: Never.self) {
            try CurlArguments.check(arguments, base: base, headerName: "Authorization", anyHost: true)
        }
    }

    /// curl forwards custom headers on a redirect to another host.
    @Test func redirectsAreRefusedForCustomHeaders() {
        #expect(throws: CurlArguments.Refusal.redirects("-L")) {
            try CurlArguments.check(["-sL"], base: base, headerName: "X-API-Key", anyHost: false)
        }
        #expect(throws: CurlArguments.Refusal.redirects("--location")) {
            try CurlArguments.check(["--location"], base: base, headerName: "PRIVATE-TOKEN", anyHost: false)
        }
    }

    /// The table of options that take a value matches the installed curl's
    /// own list, so an option's value is never mistaken for a URL.
    @Test func optionTableMatchesTheInstalledCurl() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["curl", "--help", "all"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        var shorts = Set<Character>()
        var longs = Set<String>()
        for line in output.split(separator: "\n") {
            let words = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let first = words.first, first.hasPrefix("-") else { continue }
            var index = 0
            var short: Character?
            if first.count == 3, first.hasSuffix(","), !first.hasPrefix("--") {
                short = first.dropFirst().first
                index = 1
            }
            guard index < words.count, words[index].hasPrefix("--"), index + 1 < words.count else { continue }
            let next = words[index + 1]
            guard next.hasPrefix("<") || next.hasPrefix("[") else { continue }
            longs.insert(String(words[index].dropFirst(2)))
            if let short { shorts.insert(short) }
        }
        #expect(longs.count > 100, "could not read curl --help all")
        #expect(longs == CurlArguments.longOptionsWithValue)
        #expect(shorts == CurlArguments.shortOptionsWithValue)
    }
}
