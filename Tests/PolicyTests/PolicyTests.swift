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

    @Test func everyDefaultTemplateIsValid() throws {
        for kind in CredentialKind.allCases {
            _ = try HeaderTemplate(kind.defaultHeaderTemplate)
        }
        #expect(CredentialKind.apiKey.defaultHeaderTemplate == "Authorization: {secret}")
        #expect(CredentialKind.pat.defaultHeaderTemplate == "Authorization: Bearer {secret}")
        #expect(!CredentialKind.storable.contains(.bearer))
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
