import Testing
@testable import Policy

@Suite struct GitCredentialRequestTests {
    func parse(_ text: String) throws -> GitCredentialRequest {
        try parse(Array(text.utf8))
    }

    func parse(_ bytes: [UInt8]) throws -> GitCredentialRequest {
        try bytes.withUnsafeBytes { raw in try GitCredentialRequest.parse(raw) }
    }

    @Test func fieldsAndPasswordRange() throws {
        let text = "protocol=https\nhost=example.com:8443\npath=org/repo.git\nusername=me\npassword=s3=cr et\n\n"
        let request = try parse(text)
        #expect(request.protocol == "https")
        #expect(request.host == "example.com:8443")
        #expect(request.path == "org/repo.git")
        #expect(request.username == "me")
        let range = try #require(request.passwordRange)
        // The value after the first "=", other "=" and spaces included.
        #expect(String(decoding: Array(text.utf8)[range], as: UTF8.self) == "s3=cr et")
    }

    @Test func stopsAtTheBlankLineAndTakesAFinalLineWithoutLF() throws {
        let request = try parse("protocol=https\n\nhost=after.example\n")
        #expect(request.protocol == "https" && request.host == nil)
        #expect(try parse("protocol=https\nhost=last.example").host == "last.example")
        #expect(try parse("") == GitCredentialRequest())
    }

    @Test func theLastValueWinsAndUnknownKeysAreIgnored() throws {
        let request = try parse("host=a.example\nhost=b.example\ncapability[]=authtype\nwwwauth[]=Basic realm=x\npassword=one\npassword=two\n")
        #expect(request.host == "b.example")
        let range = try #require(request.passwordRange)
        #expect(range.count == 3)
    }

    @Test func anEmptyPasswordIsLocated() throws {
        let range = try #require(try parse("password=\n").passwordRange)
        #expect(range.isEmpty)
    }

    @Test func aNULIsRefusedWhereverItIs() {
        #expect(throws: GitCredentialRequest.Invalid.nul(line: 2)) { try parse(Array("host=x\npassword=a".utf8) + [0] + Array("b\n".utf8)) }
        #expect(throws: GitCredentialRequest.Invalid.nul(line: 3)) { try parse(Array("host=x\n\n".utf8) + [0]) }
    }

    @Test func aLineWithoutEqualsOrKeyIsRefused() {
        #expect(throws: GitCredentialRequest.Invalid.noEquals(line: 2)) { try parse("protocol=https\nhost example.com\n") }
        #expect(throws: GitCredentialRequest.Invalid.emptyKey(line: 1)) { try parse("=value\n") }
    }

    @Test func aKeptValueMustBeUTF8ButAPasswordNeedNot() throws {
        #expect(throws: GitCredentialRequest.Invalid.notUTF8(key: "host")) { try parse(Array("host=".utf8) + [0xFF, 0x0A]) }
        let request = try parse(Array("password=".utf8) + [0xFF, 0xFE, 0x0A])
        #expect(request.passwordRange == 9..<11)
    }
}

@Suite struct CredentialMatchTests {
    func url(_ text: String) throws -> ServiceURL { try ServiceURL(text) }

    func best(_ request: String, _ entries: [(String, String)]) throws -> CredentialMatch {
        CredentialMatch.best(for: try url(request), among: try entries.map { ($0.0, try url($0.1)) })
    }

    @Test func theLongestPrefixWins() throws {
        let entries = [("host", "https://git.example"), ("org", "https://git.example/org"), ("repo", "https://git.example/org/repo.git")]
        #expect(try best("https://git.example/org/repo.git", entries) == .one(name: "repo"))
        #expect(try best("https://git.example/org/other.git", entries) == .one(name: "org"))
        #expect(try best("https://git.example/else/x.git", entries) == .one(name: "host"))
        #expect(try best("https://git.example", entries) == .one(name: "host"))
        // Order does not matter.
        #expect(try best("https://git.example/org/repo.git", entries.reversed()) == .one(name: "repo"))
    }

    @Test func prefixesEndOnSegmentBoundaries() throws {
        let entries = [("org", "https://git.example/org")]
        #expect(try best("https://git.example/organisation/repo.git", entries) == .none)
        #expect(try best("https://git.example/org", entries) == .one(name: "org"))
        #expect(try best("https://git.example/org/", entries) == .one(name: "org"))
        // No path from git (credential.useHttpPath unset) never matches a path entry.
        #expect(try best("https://git.example", entries) == .none)
        // Paths are case-sensitive.
        #expect(try best("https://git.example/ORG/repo.git", entries) == .none)
    }

    @Test func portsMustAgreeAndTheDefaultPortIsNoPort() throws {
        let entries = [("alt", "https://git.example:8443"), ("std", "https://git.example")]
        #expect(try best("https://git.example:8443/r.git", entries) == .one(name: "alt"))
        #expect(try best("https://git.example:443/r.git", entries) == .one(name: "std"))
        #expect(try best("https://git.example:9443/r.git", entries) == .none)
    }

    @Test func schemeAndHostMustAgree() throws {
        #expect(try best("http://git.example/r.git", [("tls", "https://git.example")]) == .none)
        #expect(try best("https://git.example/r.git", [("plain", "http://git.example")]) == .none)
        #expect(try best("https://other.example/r.git", [("tls", "https://git.example")]) == .none)
        #expect(try best("https://sub.git.example/r.git", [("tls", "https://git.example")]) == .none)
        // Host names compare without case (ServiceURL lowers them).
        #expect(try best("https://GIT.Example/r.git", [("tls", "https://git.example")]) == .one(name: "tls"))
    }

    @Test func twoEntriesWithTheLongestURLAreAmbiguous() throws {
        let entries = [("b", "https://git.example/org"), ("a", "https://git.example/org/"), ("host", "https://git.example")]
        #expect(try best("https://git.example/org/r.git", entries) == .ambiguous(names: ["a", "b"]))
        // A longer match elsewhere is no tie.
        let more = entries + [("repo", "https://git.example/org/r.git")]
        #expect(try best("https://git.example/org/r.git", more) == .one(name: "repo"))
    }
}
