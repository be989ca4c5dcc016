import Testing
@testable import Policy

@Suite struct ExpiryPolicyTests {
    /// 2027-01-15T12:00:00Z
    static let now: Int64 = 1_800_014_400
    static let day: Int64 = 86_400
    let utc = ExpiryPolicy(now: now, zone: FixedOffsetZone.utc)

    static let states: [(Int64?, Int64, ExpiryState)] = [
        (nil, 14 * day, .never),
        (now - 1, 14 * day, .expired),
        (now, 14 * day, .expired),
        (now + 1, 14 * day, .expiring),
        (now + 14 * day, 14 * day, .expiring),
        (now + 14 * day + 1, 14 * day, .ok),
        (now + 3 * day, 2 * day, .ok),
        (now + 3 * day, 7 * day, .expiring),
    ]

    @Test(arguments: states)
    func stateOf(expiresAt: Int64?, window: Int64, expected: ExpiryState) {
        #expect(utc.state(expiresAt: expiresAt, window: window) == expected)
    }

    static let wording: [(Int64?, String)] = [
        (nil, "never expires"),
        (now + 3 * 3600, "expires today at 15:00"),
        (now + day, "expires tomorrow (2027-01-16)"),
        (now + 2 * day, "expires in 2 days (2027-01-17)"),
        (now + 16 * day, "expires in 16 days (2027-01-31)"),
        (now - 3600, "expired today at 11:00"),
        (now - day, "expired yesterday (2027-01-14)"),
        (now - 2 * day, "expired 2 days ago (2027-01-13)"),
        (now - 365 * day, "expired 365 days ago (2026-01-15)"),
    ]

    @Test(arguments: wording)
    func describes(expiresAt: Int64?, expected: String) {
        #expect(utc.describe(expiresAt: expiresAt) == expected)
    }

    /// Days are counted on the user's calendar: late in the evening in
    /// New York, a token expiring at 03:00 UTC the next day expires "today".
    @Test func daysFollowTheUsersCalendar() {
        let newYork = ExpiryPolicy(now: 1_800_054_000, zone: FixedOffsetZone(seconds: -5 * 3600))  // 2027-01-15 18:00 -05:00
        #expect(newYork.describe(expiresAt: 1_800_067_000) == "expires today at 21:36")
        let tokyo = ExpiryPolicy(now: 1_800_054_000, zone: FixedOffsetZone(seconds: 9 * 3600))  // 2027-01-16 08:00 +09:00
        #expect(tokyo.describe(expiresAt: 1_800_067_000) == "expires today at 11:36")
        #expect(ExpiryPolicy(now: 1_800_054_000, zone: FixedOffsetZone.utc).describe(expiresAt: 1_800_100_000)
                == "expires tomorrow (2027-01-16)")
    }

    /// Across the spring DST change a day is 23 hours: 2027-03-27 12:00 +01:00
    /// to 2027-03-28 12:00 +02:00 is still "tomorrow", and a week later "in 7 days".
    @Test func countsAreRightAcrossDST() {
        let policy = ExpiryPolicy(now: 1_806_145_200, zone: berlin2027)
        #expect(policy.describe(expiresAt: 1_806_145_200 + 23 * 3600) == "expires tomorrow (2027-03-28)")
        #expect(policy.daysLeft(until: 1_806_145_200 + 23 * 3600 + 6 * Self.day) == 7)
        // An instant 24 hours later is 13:00 local on the 28th: still tomorrow.
        #expect(policy.describe(expiresAt: 1_806_145_200 + Self.day) == "expires tomorrow (2027-03-28)")
    }

    @Test func leapDayAndMonthEnds() {
        let february28: Int64 = 1_835_352_000  // 2028-02-28T12:00:00Z
        let policy = ExpiryPolicy(now: february28, zone: FixedOffsetZone.utc)
        #expect(policy.describe(expiresAt: february28 + Self.day) == "expires tomorrow (2028-02-29)")
        #expect(policy.describe(expiresAt: february28 + 2 * Self.day) == "expires in 2 days (2028-03-01)")
        let december31: Int64 = 1_830_254_400  // 2027-12-31T12:00:00Z
        #expect(ExpiryPolicy(now: december31, zone: FixedOffsetZone.utc).describe(expiresAt: december31 + Self.day)
                == "expires tomorrow (2028-01-01)")
    }

    @Test func windowPrecedence() {
        #expect(ExpiryPolicy.window(call: 1, entry: 2, vault: 3) == 1)
        #expect(ExpiryPolicy.window(call: nil, entry: 2, vault: 3) == 2)
        #expect(ExpiryPolicy.window(call: nil, entry: nil, vault: 3) == 3)
        #expect(ExpiryPolicy.window(call: nil, entry: nil, vault: nil) == 14 * Self.day)
    }

    @Test func windowsParseAsDurations() throws {
        let parser = WindowParser(now: Self.now, zone: FixedOffsetZone.utc)
        #expect(try parser.parse("7d") == 7 * Self.day)
        #expect(try parser.parse("2 weeks") == 14 * Self.day)
        #expect(try parser.parse("36h") == 36 * 3600)
        #expect(throws: ExpiryParser.Failure.self) { try parser.parse("2027-01-31") }
        #expect(throws: ExpiryParser.Failure.self) { try parser.parse("never") }
        #expect(throws: ExpiryParser.Failure.self) { try parser.parse("0d") }
    }
}

/// No input string crashes the parser, and each parse is short: inputs are
/// capped at 64 bytes and read in one pass. The time per parse is printed,
/// not asserted (machines here are noisy); scripts/bench measures it.
@Suite struct ExpiryParserFuzz {
    @Test func randomInputsNeverCrash() {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("0123456789-:+TZtz dwmoyhnevr.,/\u{0}\u{7F}é😀".unicodeScalars)
        let parser = ExpiryParser(now: 1_800_014_400, zone: FixedOffsetZone(seconds: 3600))
        var accepted = 0
        let clock = ContinuousClock()
        let start = clock.now
        var slowest = Duration.zero
        let runs = 100_000
        for _ in 0..<runs {
            let length = Int.random(in: 0...80, using: &generator)
            var text = String.UnicodeScalarView()
            for _ in 0..<length { text.append(alphabet.randomElement(using: &generator)!) }
            let input = String(text)
            let allowPast = Bool.random(using: &generator)
            let began = clock.now
            if (try? parser.parse(input, allowPast: allowPast)) != nil { accepted += 1 }
            slowest = max(slowest, clock.now - began)
        }
        let elapsed = clock.now - start
        print("expiry parser fuzz: \(runs) random inputs, \(accepted) accepted, \(elapsed / runs) per parse on average, slowest \(slowest)")
        #expect(accepted < runs)
    }

    /// Inputs near the edges: every prefix of valid inputs, huge counts.
    @Test func edgeInputs() {
        let parser = ExpiryParser(now: 1_800_014_400, zone: FixedOffsetZone.utc)
        for valid in ["2027-01-31T17:00:00+01:00", "9999-12-31", "90 days", "12w"] {
            for end in valid.indices { _ = try? parser.parse(String(valid[..<end])) }
        }
        for text in ["999999999999999999999999d", "9223372036854775807d", "0000-00-00", "9999-12-31T23:59:59-18:00",
                     "-0d", "+-5d", "5 5d", "\u{0}"] {
            _ = try? parser.parse(text)
        }
        #expect(throws: ExpiryParser.Failure.self) { try parser.parse("9999-12-31T23:59:59-18:00") }
    }
}
