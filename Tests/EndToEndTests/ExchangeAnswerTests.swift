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
