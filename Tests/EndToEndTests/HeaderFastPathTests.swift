import ArgumentParser
import Testing
@testable import keyseal
#if canImport(Glibc)
import Glibc
#endif

/// `keyseal header` is read by hand (HeaderFastPath) to skip argument-parser's
/// start-up cost. These tests hold the two readers to one meaning: whatever
/// the fast path accepts, argument-parser reads the same way; whatever it
/// declines goes to argument-parser, which keeps its messages.
@Suite struct HeaderFastPathTests {
    /// The fast path as main calls it: on a C argv, program name first.
    func viaFastPath(_ arguments: [String]) -> HeaderRequest? {
        let argv = (["keyseal"] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        return argv.withUnsafeBufferPointer { HeaderFastPath.parse(argc: argv.count - 1, argv: $0.baseAddress!) }
    }

    /// What argument-parser makes of a command line, as a header request.
    func viaArgumentParser(_ arguments: [String]) -> HeaderRequest? {
        (try? Keyseal.parseAsRoot(arguments) as? Header)?.request
    }

    @Test(arguments: [
        ["header", "api"],
        ["header", "--vault", "v.db", "api"],
        ["header", "api", "--vault=v.db"],
        ["header", "--format", "json", "api"],
        ["header", "--format=curl", "api", "--no-agent"],
        ["header", "--refuse-expired", "--passphrase-fd", "3", "api"],
        ["header", "--passphrase-fd=7", "--format", "http", "--vault", "/tmp/x y.db", "entry.name-1"],
        ["header", "--vault=-v.db", "api"],
    ])
    func commonFormsTakeTheFastPath(arguments: [String]) throws {
        let fast = try #require(viaFastPath(arguments))
        #expect(fast == viaArgumentParser(arguments))
    }

    @Test(arguments: [
        ["header"],
        ["header", "--help"],
        ["header", "-h"],
        ["header", "api", "other"],
        ["header", "--", "api"],
        ["header", "--vault"],
        ["header", "--vault", "--no-agent", "api"],
        ["header", "--vault", "a", "--vault", "b", "api"],
        ["header", "--format", "yaml", "api"],
        ["header", "--format=", "api"],
        ["header", "--passphrase-fd", "three", "api"],
        ["header", "--passphrase-fd", "-1", "api"],
        ["header", "--passphrase-fd", "99999999999", "api"],
        ["header", "--no-agent", "--no-agent", "api"],
        ["header", "--no-agent=yes", "api"],
        ["header", "--unknown", "api"],
        ["header", "-x", "api"],
        ["header", "", "api"],
        ["header", "--vaul", "v.db", "api"],
        ["get", "api"],
        ["--vault", "v.db", "header", "api"],
    ])
    func anythingElseGoesToArgumentParser(arguments: [String]) {
        #expect(viaFastPath(arguments) == nil)
    }

    /// Random command lines from header's own words and a few that are not:
    /// the fast path never reads one differently from argument-parser, and
    /// it handles a good share of them (else this test would prove little).
    @Test func randomCommandLinesAgree() {
        let words = ["api", "b", "--vault", "--vault=v.db", "v.db", "--format", "json", "line", "--format=http",
                     "--no-agent", "--refuse-expired", "--passphrase-fd", "3", "--passphrase-fd=4", "--",
                     "-h", "--vault=", "-", "x=y", "--format=bogus", "--force"]
        var generator = SystemRandomNumberGenerator()
        var taken = 0
        for _ in 0..<4_000 {
            let arguments = ["header"] + (0..<Int.random(in: 0...6, using: &generator)).map { _ in
                words.randomElement(using: &generator)!
            }
            guard let fast = viaFastPath(arguments) else { continue }
            taken += 1
            #expect(fast == viaArgumentParser(arguments), "\(arguments)")
        }
        #expect(taken > 200)
    }
}
