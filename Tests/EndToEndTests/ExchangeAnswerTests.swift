import Testing
@testable import keyseal

/// The reader of exchange answers: the token is decoded from JSON into
/// guarded memory, anything that is not one JSON object is refused.
@Suite struct ExchangeAnswerTests {
    private func read(_ text: String) -> (authenticated: Bool?, token: String?, message: String?)? {
        Array(text.utf8).withUnsafeBytes { bytes -> (Bool?, String?, String?)? in
            guard let answer = ExchangeAnswer.read(bytes) else { return nil }
            let token = answer.token?.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
            return (answer.authenticated, token, answer.message)
        }
    }

    @Test(arguments: [
        (#"{"authenticated": true, "token": "abc"}"#, true, "abc", nil),
        (#" { "token" : "a\"b\\c\/d" , "authenticated":true } "#, true, #"a"b\c/d"#, nil),
        (#"{"token": "\u0041\u00e9\ud83d\ude00", "authenticated": true}"#, true, "Aé😀", nil),
        (#"{"authenticated": false}"#, false, nil, nil),
        (#"{"message":"Not authenticated."}"#, nil, nil, "Not authenticated."),
        (#"{"extra": {"nested": [1, -2.5e3, null, "x", {"a": true}]}, "token": "t", "authenticated": true}"#, true, "t", nil),
        (#"{}"#, nil, nil, nil),
    ] as [(String, Bool?, String?, String?)])
    func wellFormedAnswers(text: String, authenticated: Bool?, token: String?, message: String?) throws {
        let answer = try #require(read(text))
        #expect(answer.authenticated == authenticated)
        #expect(answer.token == token)
        #expect(answer.message == message)
    }

    @Test(arguments: [
        "", "null", "[]", #""token""#, "<html>not json</html>",
        #"{"token": "abc"} trailing"#, #"{"token": "abc""#, #"{"token": "a\qb"}"#, #"{"token": "\ud83d"}"#,
        "{\"token\": \"line\nbreak\"}", #"{"token": abc}"#, #"{"authenticated": yes}"#, #"{"a" 1}"#, #"{"a": 1,}"#,
        String(repeating: "[", count: 40) + String(repeating: "]", count: 40),
        "{\"a\":" + String(repeating: "[", count: 40) + String(repeating: "]", count: 40) + "}",
    ])
    func anythingElseIsRefused(text: String) {
        #expect(read(text) == nil, "\(text.debugDescription)")
    }
}

/// How `keyseal curl` reads the status of the answer it watches, and which
/// requests it may make twice.
@Suite struct WatchedCurlTests {
    @Test(arguments: [
        ("HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\n\r\n", 401),
        ("HTTP/2 200 \r\ncontent-type: text/plain\r\n\r\n", 200),
        ("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 401 Unauthorized\r\n\r\n", 401),
        ("HTTP/1.1 301 Moved\r\nLocation: /x\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", 200),
        ("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\n", nil),
        ("", nil),
        ("garbage\r\n\r\n", nil),
    ] as [(String, Int?)])
    func finalStatus(text: String, expected: Int?) {
        #expect(WatchedCurl.finalStatus(Array(text.utf8)) == expected)
    }

    @Test func onlyRequestsThatReadNoStdinAndDumpNoHeadersAreRepeated() {
        #expect(Curl.canRepeat([]))
        #expect(Curl.canRepeat(["-sS", "-X", "DELETE", "-H", "Accept: application/json", "-d", "@body.json", "-o", "out"]))
        for arguments in [["--data-binary", "@-"], ["-d@-"], ["-T", "-"], ["-F", "file=<-"], ["-D", "h.txt"], ["-sD", "h"],
                          ["--dump-header", "h"], ["--json", "@-"]] {
            #expect(!Curl.canRepeat(arguments), "\(arguments)")
        }
    }
}
