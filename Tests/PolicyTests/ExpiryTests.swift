import Testing
@testable import Policy

/// A zone with a DST rule, for tests: +01:00 in winter, +02:00 from
/// `summerStart` (inclusive) to `summerEnd` (exclusive), both UTC instants.
struct TwoOffsetZone: LocalZone {
    let summerStart: Int64
    let summerEnd: Int64
    func utcOffset(at utc: Int64) -> Int64 { utc >= summerStart && utc < summerEnd ? 7200 : 3600 }
}

/// Central European 2027: summer time from 2027-03-28T01:00Z to 2027-10-31T01:00Z.
let berlin2027 = TwoOffsetZone(summerStart: 1_806_195_600, summerEnd: 1_824_944_400)

@Suite struct ExpiryParserTests {
    /// 2027-01-15T12:00:00Z
    static let now: Int64 = 1_800_014_400
    let utc = ExpiryParser(now: now, zone: FixedOffsetZone.utc)

    static let accepted: [(String, String)] = [
        ("2027-01-31", "2027-01-31T23:59:59Z"),
        ("2028-02-29", "2028-02-29T23:59:59Z"),
        ("2027-01-31T17:00:00Z", "2027-01-31T17:00:00Z"),
        ("2027-01-31T17:00Z", "2027-01-31T17:00:00Z"),
        ("2027-01-31T17:00:00+01:00", "2027-01-31T16:00:00Z"),
        ("2027-01-31t17:00:00-05:30", "2027-01-31T22:30:00Z"),
        ("30d", "2027-02-14T12:00:00Z"),
        ("30 days", "2027-02-14T12:00:00Z"),
        ("90 days", "2027-04-15T12:00:00Z"),
        ("1day", "2027-01-16T12:00:00Z"),
        ("12w", "2027-04-09T12:00:00Z"),
        ("2 weeks", "2027-01-29T12:00:00Z"),
        ("6mo", "2027-07-15T12:00:00Z"),
        ("1 month", "2027-02-15T12:00:00Z"),
        ("1y", "2028-01-15T12:00:00Z"),
        ("2 YEARS", "2029-01-15T12:00:00Z"),
        ("36h", "2027-01-17T00:00:00Z"),
        ("  30d  ", "2027-02-14T12:00:00Z"),
        ("+30d", "2027-02-14T12:00:00Z"),
    ]

    @Test(arguments: accepted)
    func acceptsAndComputes(input: String, expected: String) throws {
        let expiry = try utc.parse(input)
        #expect(expiry.instant.map(Timestamp.iso8601) == expected)
    }

    @Test func neverIsItsOwnAnswer() throws {
        #expect(try utc.parse("never") == .never)
        #expect(try utc.parse("Never") == .never)
    }

    static let refused: [(String, String)] = [
        ("", "unreadable"), ("soon", "unreadable"), ("2027-13-01", "unreadable"), ("2027-02-29", "unreadable"),
        ("2027-01-32", "unreadable"), ("27-01-31", "unreadable"), ("2027-1-31", "unreadable"),
        ("2027-01-31T25:00Z", "unreadable"), ("2027-01-31T17:00:00+1", "unreadable"), ("2027-01-31T17:00:00Zjunk", "unreadable"),
        ("30x", "unreadable"), ("d", "unreadable"), ("30d5", "unreadable"), ("3 0d", "unreadable"),
        ("2027-01-31T17:00:00", "ambiguous"), ("6m", "ambiguous"), ("10 minutes", "ambiguous"),
        ("0d", "notPositive"), ("-5d", "notPositive"), ("0 years", "notPositive"),
        ("9999999d", "outOfRange"), ("999999y", "outOfRange"),
        ("2026-12-31", "inThePast"), ("1970-01-01T00:00:00Z", "inThePast"), ("2027-01-15T12:00:00Z", "inThePast"),
        (String(repeating: "9", count: 65) + "d", "unreadable"),
    ]

    @Test(arguments: refused)
    func refusesWithAReason(input: String, reason: String) {
        do {
            let result = try utc.parse(input)
            Issue.record("\(input.debugDescription) was accepted as \(result)")
        } catch {
            let kind = switch error {
            case .unreadable: "unreadable"
            case .ambiguous: "ambiguous"
            case .notPositive: "notPositive"
            case .outOfRange: "outOfRange"
            case .inThePast: "inThePast"
            }
            #expect(kind == reason, "\(input.debugDescription): \(error)")
            #expect(error.description.contains("for example") || error.description.contains("expected"), "\(error)")
        }
    }

    @Test func pastInstantsAreAllowedWhenAsked() throws {
        #expect(try utc.parse("2026-12-31", allowPast: true) == .at(1_798_761_599))
    }

    @Test func aBareDateEndsInTheUsersTimeZone() throws {
        let tokyo = ExpiryParser(now: Self.now, zone: FixedOffsetZone(seconds: 9 * 3600))
        #expect(try tokyo.parse("2027-01-31").instant.map(Timestamp.iso8601) == "2027-01-31T14:59:59Z")
        let newYork = ExpiryParser(now: Self.now, zone: FixedOffsetZone(seconds: -5 * 3600))
        #expect(try newYork.parse("2027-01-31").instant.map(Timestamp.iso8601) == "2027-02-01T04:59:59Z")
    }

    /// Across the spring change a day is 23 hours, yet "1d" keeps the wall
    /// clock: 12:00 local the day before is 12:00 local the day after.
    @Test func durationsKeepTheWallClockAcrossDST() throws {
        let beforeChange: Int64 = 1_806_145_200  // 2027-03-27T11:00:00Z = 12:00 +01:00
        let parser = ExpiryParser(now: beforeChange, zone: berlin2027)
        let next = try #require(try parser.parse("1d").instant)
        #expect(Timestamp.iso8601(next) == "2027-03-28T10:00:00Z")  // 12:00 +02:00
        #expect(next - beforeChange == 23 * 3600)
        #expect(try parser.parse("24h").instant == beforeChange + 86_400)
        #expect(Timestamp.local(next, in: berlin2027) == "2027-03-28 12:00:00 +02:00")
    }

    @Test func monthsClampToTheMonthsEnd() throws {
        let january31: Int64 = 1_801_396_800  // 2027-01-31T12:00:00Z
        let parser = ExpiryParser(now: january31, zone: FixedOffsetZone.utc)
        #expect(try parser.parse("1mo").instant.map(Timestamp.iso8601) == "2027-02-28T12:00:00Z")
        #expect(try parser.parse("13mo").instant.map(Timestamp.iso8601) == "2028-02-29T12:00:00Z")
        let leapDay: Int64 = 1_835_438_400  // 2028-02-29T12:00:00Z
        #expect(try ExpiryParser(now: leapDay, zone: FixedOffsetZone.utc).parse("1y").instant.map(Timestamp.iso8601)
                == "2029-02-28T12:00:00Z")
    }

    /// Formatting an instant and parsing the text gives the instant back, in
    /// several zones.
    @Test(arguments: [Int64(1_800_014_401), 1_806_195_600, 1_824_944_399, 1_900_000_000, 253_402_000_000])
    func formatThenParseRoundTrips(instant: Int64) throws {
        for zone in [FixedOffsetZone.utc, FixedOffsetZone(seconds: 19_800), FixedOffsetZone(seconds: -34_200)] as [LocalZone] {
            let parser = ExpiryParser(now: Self.now, zone: zone)
            #expect(try parser.parse(Timestamp.iso8601(instant)) == .at(instant))
            let local = Timestamp.local(instant, in: zone)  // "2027-01-31 23:59:59 +05:30"
            let isoLocal = String(local.prefix(10)) + "T" + String(local.dropFirst(11).prefix(8)) + String(local.suffix(6))
            #expect(try parser.parse(isoLocal) == .at(instant), "\(isoLocal)")
        }
    }
}

@Suite struct ServiceURLTests {
    @Test func normalisesBaseURLs() throws {
        #expect(try ServiceURL("https://Immuta.Example.com/").text == "https://immuta.example.com")
        #expect(try ServiceURL("https://immuta.example.com:443/api/").text == "https://immuta.example.com/api")
        #expect(try ServiceURL("http://127.0.0.1:8080").text == "http://127.0.0.1:8080")
    }

    @Test(arguments: ["ftp://host", "immuta.example.com", "https://user:pw@host", "https://host/?q=1", "https://host/#f",
                      "https://", "https://ho st", "https://host:0", "https://host:99999", "https://host:abc"])
    func refusesBadBaseURLs(text: String) {
        #expect(throws: ServiceURL.Invalid.self) { try ServiceURL(text) }
    }

    @Test func resolvesPathsAndGuardsTheHost() throws {
        let base = try ServiceURL("https://immuta.example.com/api")
        #expect(try ServiceURL.resolve(nil, base: base, anyHost: false) == "https://immuta.example.com/api")
        #expect(try ServiceURL.resolve("/bim/user", base: base, anyHost: false) == "https://immuta.example.com/api/bim/user")
        #expect(try ServiceURL.resolve("https://IMMUTA.example.com:443/x?y=1", base: base, anyHost: false)
                == "https://IMMUTA.example.com:443/x?y=1")
        #expect(throws: ServiceURL.Invalid.otherHost(url: "https://evil.example.net/x", expected: "https://immuta.example.com")) {
            try ServiceURL.resolve("https://evil.example.net/x", base: base, anyHost: false)
        }
        // A lookalike that only starts with the host's name.
        #expect(throws: ServiceURL.Invalid.self) {
            try ServiceURL.resolve("https://immuta.example.com.evil.net/x", base: base, anyHost: false)
        }
        #expect(throws: ServiceURL.Invalid.self) {
            try ServiceURL.resolve("https://immuta.example.com@evil.net/x", base: base, anyHost: false)
        }
        #expect(throws: ServiceURL.Invalid.self) { try ServiceURL.resolve("http://immuta.example.com/x", base: base, anyHost: false) }
        #expect(throws: ServiceURL.Invalid.relative("bim/user")) { try ServiceURL.resolve("bim/user", base: base, anyHost: false) }
        #expect(throws: ServiceURL.Invalid.noBase) { try ServiceURL.resolve("/x", base: nil, anyHost: true) }
        #expect(try ServiceURL.resolve("https://other.example/x", base: nil, anyHost: true) == "https://other.example/x")
    }
}
