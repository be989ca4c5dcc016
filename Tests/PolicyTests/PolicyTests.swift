import Testing
@testable import Policy

@Suite struct HeaderTemplateTests {
    @Test(arguments: [
        ("Authorization: {secret}", "Authorization"),
        ("Authorization: Bearer {secret}", "Authorization"),
        ("Authorization: token {secret}", "Authorization"),
        ("X-API-Key: {secret}", "X-API-Key"),
        ("PRIVATE-TOKEN: {secret}", "PRIVATE-TOKEN"),
        ("X-Custom:{secret}", "X-Custom"),
        ("X-Signed: v1={secret};alg=none", "X-Signed"),
    ])
    func validTemplates(text: String, fieldName: String) throws {
        let template = try HeaderTemplate(text)
        #expect(template.text == text)
        #expect(template.fieldName == fieldName)
        #expect(template.prefix + "{secret}" + template.suffix == text)
        #expect(template.prefix.hasSuffix(template.valuePrefix))
        #expect(!template.valuePrefix.hasPrefix(" "))
    }

    @Test(arguments: [
        ("Authorization Bearer {secret}", HeaderTemplate.Invalid.missingColon),
        (": {secret}", .badFieldName("")),
        ("Bad Name: {secret}", .badFieldName("Bad Name")),
        ("Bad(Name): {secret}", .badFieldName("Bad(Name)")),
        ("X-Key: no placeholder", .placeholderCount(0)),
        ("X-Key: {secret}{secret}", .placeholderCount(2)),
        ("X-Key: {secret}\r\nX-Injected: 1", .badCharacter),
        ("X-Key: {secret}\n", .badCharacter),
        ("X-Key: {secret}\u{0}", .badCharacter),
        ("X-Key: caf\u{E9} {secret}", .badCharacter),
        ("X-Key:\t{secret}", .badCharacter),
    ])
    func invalidTemplates(text: String, expected: HeaderTemplate.Invalid) {
        #expect(throws: expected) { try HeaderTemplate(text) }
    }

    @Test(arguments: [
        ("Authorization: Bearer {secret}", "Bearer ", ""),
        ("X-Key:   {secret}", "", ""),
        ("X-Key: {{secret}}", "{", "}"),
        ("X-Key: a{secret", nil, nil),
        ("X-Key: v={secret}; x", "v=", "; x"),
    ] as [(String, String?, String?)])
    func valuePrefixAndSuffix(text: String, valuePrefix: String?, suffix: String?) throws {
        guard let valuePrefix, let suffix else {
            #expect(throws: HeaderTemplate.Invalid.placeholderCount(0)) { try HeaderTemplate(text) }
            return
        }
        let template = try HeaderTemplate(text)
        #expect(template.valuePrefix == valuePrefix)
        #expect(template.suffix == suffix)
    }

    /// The byte scanner (written for speed) against the String algorithm it
    /// replaced, over many random templates built from the characters that
    /// matter: braces, the placeholder's letters, colons, spaces, tabs and
    /// a non-ASCII letter.
    @Test func byteScannerAgreesWithStringSplitting() {
        var generator = SystemRandomNumberGenerator()
        let pieces = ["{secret}", "{", "}", "secret", ":", " ", "\t", "X-Key", "a", "\u{E9}", "(", "{sec", "ret}"]
        for _ in 0..<20_000 {
            let text = (0..<Int.random(in: 0...6, using: &generator))
                .map { _ in pieces.randomElement(using: &generator)! }.joined()
            let expected = Result { () throws(HeaderTemplate.Invalid) in try ReferenceTemplate.parse(text) }
            let actual = Result { () throws(HeaderTemplate.Invalid) in
                let template = try HeaderTemplate(text)
                return ReferenceTemplate.Parts(fieldName: template.fieldName, prefix: template.prefix,
                                               suffix: template.suffix, valuePrefix: template.valuePrefix)
            }
            #expect(actual == expected, "\(text.debugDescription)")
        }
    }

    @Test func everyDefaultTemplateIsValid() throws {
        for kind in CredentialKind.allCases {
            _ = try HeaderTemplate(kind.defaultHeaderTemplate)
        }
        #expect(CredentialKind.apiKey.defaultHeaderTemplate == "Authorization: {secret}")
        #expect(CredentialKind.pat.defaultHeaderTemplate == "Authorization: Bearer {secret}")
        #expect(CredentialKind.bearer.defaultHeaderTemplate == "Authorization: Bearer {secret}")
        #expect(CredentialKind.storable == CredentialKind.allCases)
    }
}

@Suite struct TimestampTests {
    static let cases: [(Int64, String)] = [
        (0, "1970-01-01T00:00:00Z"),
        (951_782_400, "2000-02-29T00:00:00Z"),
        (1_798_761_599, "2026-12-31T23:59:59Z"),
        (1_798_761_600, "2027-01-01T00:00:00Z"),
        (4_107_542_400, "2100-03-01T00:00:00Z"),
        (-1, "1969-12-31T23:59:59Z"),
        (-86_400 * 365, "1969-01-01T00:00:00Z"),
    ]

    @Test(arguments: cases)
    func formatsUTC(seconds: Int64, expected: String) {
        #expect(Timestamp.iso8601(seconds) == expected)
        #expect(Timestamp.date(seconds) == String(expected.prefix(10)))
    }
}

/// HeaderTemplate's parsing as it was first written, with String.split: the
/// model the byte scanner is checked against.
enum ReferenceTemplate {
    struct Parts: Equatable {
        let fieldName: String
        let prefix: String
        let suffix: String
        let valuePrefix: String
    }

    static func parse(_ text: String) throws(HeaderTemplate.Invalid) -> Parts {
        guard let colon = text.firstIndex(of: ":") else { throw .missingColon }
        let name = String(text[..<colon])
        guard !name.isEmpty, name.utf8.allSatisfy(HeaderTemplate.isTokenCharacter) else { throw .badFieldName(name) }
        let value = text[text.index(after: colon)...]
        guard value.utf8.allSatisfy({ (0x20...0x7E).contains($0) }) else { throw .badCharacter }
        let placeholders = value.split(separator: "{secret}", omittingEmptySubsequences: false).count - 1
        guard placeholders == 1 else { throw .placeholderCount(placeholders) }
        let pieces = text.split(separator: "{secret}", omittingEmptySubsequences: false)
        let prefix = String(pieces[0])
        return Parts(fieldName: name, prefix: prefix, suffix: String(pieces[1]),
                     valuePrefix: String(prefix[prefix.index(after: colon)...].drop(while: { $0 == " " || $0 == "\t" })))
    }
}
