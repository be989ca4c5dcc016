// `keyseal calendar` (issue 4): an RFC 5545 file that Python's `icalendar`
// (installed by scripts/setup) reads, one VEVENT per expiry with a VALARM
// the warning window before it, stable UIDs, --within, --alarm, CRLF line
// ends, folding at 75 octets and TEXT escaping.
import Foundation
import Testing

/// One VEVENT as `icalendar` parsed it.
struct ParsedEvent {
    let uid: String
    let sequence: Int
    /// DTSTART in UTC, as `list --json` prints instants.
    let start: String
    /// DTEND in UTC, nil when there is none.
    let end: String?
    let stamp: String?
    let summary: String
    let description: String
    /// Each VALARM's TRIGGER as icalendar writes it back (`-P14D`), and in seconds.
    let triggers: [String]
    let triggerSeconds: [Double]
    let actions: [String]
    let alarmDescriptions: [String]
}

struct ParsedCalendar {
    let version: String
    let prodid: String
    let events: [ParsedEvent]
    /// What icalendar found wrong in any component (it parses leniently).
    let errors: [String]

    /// The events by SUMMARY's entry name (`NAME expires`).
    var byName: [String: ParsedEvent] {
        Dictionary(uniqueKeysWithValues: events.map { (String($0.summary.dropLast(" expires".count)), $0) })
    }
}

/// Reads an .ics file with icalendar and prints what the tests compare.
private let parser = #"""
    import datetime, icalendar, json, sys
    data = open(sys.argv[1], "rb").read()
    cal = icalendar.Calendar.from_ical(data)
    errors = []
    for component in cal.walk():
        for error in getattr(component, "errors", []) or []:
            errors.append("%s: %r" % (component.name, error))
    def utc(value):
        return value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    events = []
    for event in cal.walk("VEVENT"):
        alarms = event.walk("VALARM")
        events.append({
            "uid": str(event["UID"]),
            "sequence": int(event["SEQUENCE"]),
            "start": utc(event.decoded("DTSTART")),
            "end": utc(event.decoded("DTEND")) if "DTEND" in event else None,
            "stamp": utc(event.decoded("DTSTAMP")) if "DTSTAMP" in event else None,
            "summary": str(event["SUMMARY"]),
            "description": str(event["DESCRIPTION"]),
            "triggers": [alarm["TRIGGER"].to_ical().decode() for alarm in alarms],
            "trigger_seconds": [alarm.decoded("TRIGGER").total_seconds() for alarm in alarms],
            "actions": [str(alarm["ACTION"]) for alarm in alarms],
            "alarm_descriptions": [str(alarm["DESCRIPTION"]) for alarm in alarms if "DESCRIPTION" in alarm],
        })
    print(json.dumps({"version": str(cal["VERSION"]), "prodid": str(cal["PRODID"]), "events": events, "errors": errors}))
    """#

extension Sandbox {
    /// Runs `keyseal calendar arguments…`, which must succeed with nothing on
    /// stderr, checks the raw bytes (CRLF, 75 octets, UTF-8 per line), and
    /// parses the output with icalendar.
    func calendar(_ arguments: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) async throws -> (RunResult, ParsedCalendar) {
        let result = try await ksNoPassphrase(["calendar"] + arguments)
        return (result, try parseCalendar(result, sourceLocation: sourceLocation))
    }

    /// Checks and parses what `keyseal calendar` printed.
    func parseCalendar(_ result: RunResult, sourceLocation: SourceLocation = #_sourceLocation) throws -> ParsedCalendar {
        try #require(result.status == 0, "\(result)", sourceLocation: sourceLocation)
        #expect(result.stderr.isEmpty, "\(result)", sourceLocation: sourceLocation)
        checkRawLines(result.stdout, sourceLocation: sourceLocation)
        let path = root + "/calendar-\(UUID().uuidString).ics"
        try result.stdout.write(to: URL(fileURLWithPath: path))
        let output = try pythonOutput(parser, [path])
        let object = try #require(try JSONSerialization.jsonObject(with: output) as? [String: Any], sourceLocation: sourceLocation)
        let events = try #require(object["events"] as? [[String: Any]], sourceLocation: sourceLocation).map { event in
            ParsedEvent(
                uid: event["uid"] as? String ?? "", sequence: event["sequence"] as? Int ?? -1,
                start: event["start"] as? String ?? "", end: event["end"] as? String, stamp: event["stamp"] as? String,
                summary: event["summary"] as? String ?? "", description: event["description"] as? String ?? "",
                triggers: event["triggers"] as? [String] ?? [], triggerSeconds: event["trigger_seconds"] as? [Double] ?? [],
                actions: event["actions"] as? [String] ?? [], alarmDescriptions: event["alarm_descriptions"] as? [String] ?? [])
        }
        let parsed = ParsedCalendar(version: object["version"] as? String ?? "", prodid: object["prodid"] as? String ?? "",
                                    events: events, errors: object["errors"] as? [String] ?? ["unreadable errors"])
        #expect(parsed.errors.isEmpty, "icalendar found errors: \(parsed.errors)", sourceLocation: sourceLocation)
        return parsed
    }

    /// RFC 5545 section 3.1: every line ends in CR LF, none is longer than
    /// 75 octets, and a fold never splits a UTF-8 sequence.
    func checkRawLines(_ bytes: Data, sourceLocation: SourceLocation = #_sourceLocation) {
        let raw = [UInt8](bytes)
        #expect(raw.suffix(2) == [13, 10], "the output does not end in CR LF", sourceLocation: sourceLocation)
        var lines: [[UInt8]] = []
        var current: [UInt8] = []
        var index = 0
        while index < raw.count {
            if raw[index] == 13, index + 1 < raw.count, raw[index + 1] == 10 {
                lines.append(current)
                current = []
                index += 2
                continue
            }
            current.append(raw[index])
            index += 1
        }
        #expect(current.isEmpty, "bytes after the last CR LF: \(current)", sourceLocation: sourceLocation)
        for (number, line) in lines.enumerated() {
            let text = String(decoding: line, as: UTF8.self)
            #expect(!line.contains(10) && !line.contains(13), "line \(number + 1) holds a bare CR or LF: \(text.debugDescription)",
                    sourceLocation: sourceLocation)
            #expect(line.count <= 75, "line \(number + 1) is \(line.count) octets: \(text.debugDescription)", sourceLocation: sourceLocation)
            #expect(String(validating: line, as: UTF8.self) != nil,
                    "line \(number + 1) is not UTF-8 on its own (a fold split a character)", sourceLocation: sourceLocation)
            #expect(!line.isEmpty, "line \(number + 1) is empty", sourceLocation: sourceLocation)
        }
    }
}

@Suite("keyseal calendar: an iCalendar file a real parser reads, with the right events")
struct ExpiryCalendarTests {
    /// The description keyseal writes for an entry without one of its own.
    private func description(_ name: String, _ text: String = "") -> String {
        "keyseal entry \(name) (token)\(text.isEmpty ? "" : ": " + text).\nRenew it, then: keyseal rotate \(name) --expires 90d"
    }

    @Test("one VEVENT per entry with an expiry, DTSTART at the expiry, an alarm 14 days before, or the entry's own window")
    func events() async throws {
        let sandbox = try Sandbox()
        try await sandbox.expiryVault(ExpiryEntry.allCases)
        try await sandbox.addExpiring("custom", secret: "tok-custom", options: ["--expires", "20d", "--warn-within", "5d"])
        let expiries = try await sandbox.listedEntries()

        let (first, calendar) = try await sandbox.calendar()
        #expect(calendar.version == "2.0", "\(calendar)")
        #expect(calendar.prodid.hasPrefix("-//keyseal//"), "\(calendar)")
        #expect(calendar.events.count == 5, "\(first)")
        let events = calendar.byName
        #expect(events.keys.sorted() == ["custom", "lapsed", "old", "soon", "yearly"], "no event for forever: \(events.keys.sorted())")
        #expect(Set(calendar.events.map(\.uid)).count == calendar.events.count, "UIDs repeat: \(calendar.events.map(\.uid))")
        for (name, event) in events {
            let listed = try #require(expiries[name]?["expires"] as? String, "\(name)")
            #expect(event.start == listed, "\(name): DTSTART \(event.start), list --json \(listed)")
            #expect(event.summary == "\(name) expires", "\(event)")
            #expect(event.description == description(name), "\(event.description.debugDescription)")
            #expect(event.uid.hasSuffix("@keyseal") && event.uid.count > "@keyseal".count + 16, "\(event.uid)")
            #expect(event.sequence == 0, "\(name): \(event)")
            #expect(event.actions == ["DISPLAY"], "\(event)")
            let window = name == "custom" ? "-P5D" : "-P14D"
            #expect(event.triggers == [window], "\(name): \(event.triggers)")
            #expect(event.triggerSeconds == [name == "custom" ? -5 * 86_400 : -14 * 86_400], "\(name): \(event.triggerSeconds)")
        }
        #expect(events["old"]?.start == "2020-01-31T14:59:59Z")
        #expect(events["lapsed"]?.start == ExpiryClock.lapsed.utc)

        // A second run: the same UIDs and SEQUENCEs.
        let (_, again) = try await sandbox.calendar()
        #expect(again.events.map(\.uid) == calendar.events.map(\.uid), "UIDs changed between runs")
        #expect(again.events.map(\.sequence) == calendar.events.map(\.sequence), "SEQUENCE changed with nothing edited")
        #expect(again.events.map(\.start) == calendar.events.map(\.start))

        // --alarm wins over every window; the vault's window over the default, not over an entry's.
        let (_, alarmed) = try await sandbox.calendar(["--alarm", "36h"])
        for event in alarmed.events {
            #expect(event.triggers == ["-P1DT12H"] && event.triggerSeconds == [-129_600], "\(event)")
        }
        let set = try await sandbox.ks(["config", "set", "warn-within", "7d"])
        #expect(set.status == 0, "\(set)")
        let (_, vaultWindow) = try await sandbox.calendar()
        for (name, event) in vaultWindow.byName {
            #expect(event.triggers == [name == "custom" ? "-P5D" : "-P7D"], "\(name): \(event.triggers)")
        }
        // An empty vault is a calendar with no events.
        let empty = try Sandbox()
        try await empty.initVault()
        let (emptyResult, none) = try await empty.calendar()
        #expect(none.events.isEmpty && emptyResult.out.hasPrefix("BEGIN:VCALENDAR\r\n"), "\(emptyResult)")
        #expect(emptyResult.out.hasSuffix("END:VCALENDAR\r\n"), "\(emptyResult)")
    }

    /// RFC 5545 section 3.8.2.2: DTEND "MUST be later in time than" DTSTART;
    /// an event that is an instant has no DTEND (section 3.6.1). Section
    /// 3.6.1 and 3.6.6: a VEVENT has one UID and one DTSTAMP (UTC), a DISPLAY
    /// alarm a DESCRIPTION and a TRIGGER.
    @Test("valid per RFC 5545: DTEND absent or after DTSTART, DTSTAMP in UTC, DISPLAY alarms with a DESCRIPTION")
    func rfc5545Properties() async throws {
        let sandbox = try Sandbox()
        try await sandbox.expiryVault([.soon, .old])
        let before = ExpiryClock.now()
        let (result, calendar) = try await sandbox.calendar()
        #expect(calendar.events.count == 2, "\(result)")
        #expect(result.out.hasPrefix("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:"), "\(result)")
        for event in calendar.events {
            if let end = event.end {
                #expect(end > event.start, "\(event.summary): DTEND \(end) is not later than DTSTART \(event.start)")
            }
            let stamp = try #require(event.stamp, "\(event.summary): no DTSTAMP")
            let stampDate = try #require(ExpiryClock.parseUTC(stamp), "\(stamp)")
            #expect(stampDate >= before && stampDate <= Date().addingTimeInterval(1), "\(event.summary): DTSTAMP \(stamp)")
            #expect(event.actions == ["DISPLAY"] && event.alarmDescriptions == [event.summary], "\(event)")
            #expect(event.triggers.count == 1, "\(event)")
        }
        let lines = result.out.components(separatedBy: "\r\n")
        #expect(lines.filter { $0.hasPrefix("UID:") }.count == 2 && lines.filter { $0.hasPrefix("DTSTAMP:") }.count == 2, "\(result)")
        #expect(lines.filter { $0 == "BEGIN:VEVENT" }.count == lines.filter { $0 == "END:VEVENT" }.count, "\(result)")
    }

    @Test("--within 30d keeps the entries that expire within 30 days, and the expired ones")
    func within() async throws {
        let sandbox = try Sandbox()
        try await sandbox.expiryVault(ExpiryEntry.allCases)
        try await sandbox.addExpiring("month", secret: "tok-month", options: ["--expires", "20d"])
        try await sandbox.addExpiring("quarter", secret: "tok-quarter", options: ["--expires", "40d"])
        let (_, calendar) = try await sandbox.calendar(["--within", "30d"])
        #expect(calendar.byName.keys.sorted() == ["lapsed", "month", "old", "soon"], "\(calendar.events.map(\.summary))")
        let (_, all) = try await sandbox.calendar()
        #expect(all.byName.keys.sorted() == ["lapsed", "month", "old", "quarter", "soon", "yearly"], "\(all.events.map(\.summary))")
        // The same events, not new ones: the UIDs match the full calendar's.
        for (name, event) in calendar.byName {
            #expect(all.byName[name]?.uid == event.uid, "\(name)")
        }
        let bad = try await sandbox.ks(["calendar", "--within", "soon"])
        #expect(bad.status == 64 && bad.stdout.isEmpty, "\(bad)")
        let badAlarm = try await sandbox.ks(["calendar", "--alarm", "0d"])
        #expect(badAlarm.status == 64 && badAlarm.stdout.isEmpty, "\(badAlarm)")
    }

    @Test("a long non-ASCII description with commas, semicolons and a backslash is folded at 75 octets and parses back exactly")
    func foldingAndEscaping() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        let text = "Jeton d'accès pour l'équipe données; rôle lecture, écriture — 東京のサーバー, naïve café; "
            + #"chemin C:\clés\prod, très longue description qui dépasse largement soixante-quinze octets; fin ✓"#
        try #require(text.utf8.count > 150 && text.utf8.count <= 1024)
        try await sandbox.addExpiring("données-prod", secret: "tok-donnees", options: ["--expires", "10d", "--description", text])
        let (result, calendar) = try await sandbox.calendar()
        let event = try #require(calendar.events.first, "\(result)")
        #expect(calendar.events.count == 1, "\(result)")
        #expect(event.description == description("données-prod", text), "\(event.description.debugDescription)")
        #expect(event.summary == "données-prod expires", "\(event)")

        // The raw lines: folding happened (continuation lines), TEXT escapes are there.
        let lines = result.out.components(separatedBy: "\r\n")
        #expect(lines.filter { $0.hasPrefix(" ") }.count >= 3, "no folding: \(result.out.debugDescription)")
        let unfolded = result.out.replacingOccurrences(of: "\r\n ", with: "")
        let descriptionLine = try #require(unfolded.components(separatedBy: "\r\n").first { $0.hasPrefix("DESCRIPTION:keyseal") })
        #expect(descriptionLine.contains(#"données\; rôle lecture\, écriture"#), "\(descriptionLine)")
        #expect(descriptionLine.contains(#"C:\\clés\\prod\,"#), "\(descriptionLine)")
        #expect(descriptionLine.contains(#".\nRenew it\, then"#), "\(descriptionLine)")
    }

    /// SEQUENCE must grow with each revision (RFC 5545 section 3.8.7.4), or
    /// a calendar that imported the file before the change keeps the old
    /// event. A script can rotate and then edit an entry within one second;
    /// the test starts the two changes just after a second begins, and tries
    /// again (at most five times) if a busy machine spreads them over two.
    @Test("UIDs stay the same across rotate and edit, and SEQUENCE grows with each change, even within one second")
    func stableUIDs() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.addExpiring("rolling", secret: "tok-rolling-1", options: ["--expires", "30d"])
        let added = try await sandbox.ksNoPassphrase(["calendar"])

        // The changes run in one shell, so that they fit in one second; the
        // calendars are parsed afterwards (python takes longer than they do).
        let script = #"""
            start=$(date +%s)
            printf 'tok-rolling-%s\n' "$2" | "$0" rotate rolling --expires 90d 2>"$1/rotate.err" || exit 10
            "$0" calendar >"$1/after-rotate.ics" || exit 11
            "$0" edit rolling --expires 60d 2>"$1/edit.err" || exit 12
            end=$(date +%s)
            "$0" calendar >"$1/after-edit.ics" || exit 13
            printf '%s %s' "$start" "$end"
            """#
        var changes: RunResult?
        var withinOneSecond = false
        for attempt in 1...5 {
            let now = Date().timeIntervalSince1970
            try await Task.sleep(nanoseconds: UInt64((ceil(now) - now + 0.01) * 1e9))
            let result = try await sandbox.shell(script, [sandbox.root, String(attempt + 1)], env: sandbox.expiryEnvironment())
            changes = result
            try #require(result.status == 0, "\(result)")
            let seconds = result.out.split(separator: " ")
            if seconds.count == 2 && seconds[0] == seconds[1] {
                withinOneSecond = true
                break
            }
        }
        let ran = try #require(changes)
        #expect(ran.stderr.isEmpty, "\(ran)")
        let rotateErr = try String(contentsOfFile: sandbox.root + "/rotate.err", encoding: .utf8)
        let editErr = try String(contentsOfFile: sandbox.root + "/edit.err", encoding: .utf8)
        #expect(rotateErr.hasPrefix("keyseal: rotated \"rolling\""), "\(rotateErr)")
        #expect(editErr == "keyseal: updated \"rolling\"\n", "\(editErr)")
        func calendarFile(_ name: String) throws -> RunResult {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: sandbox.root + "/" + name))
            return RunResult(arguments: ["keyseal", "calendar", ">", name], status: 0, stdout: bytes, stderr: Data())
        }
        let afterRotate = try calendarFile("after-rotate.ics")
        let afterEdit = try calendarFile("after-edit.ics")

        let events = try [added, afterRotate, afterEdit].map { try sandbox.parseCalendar($0).events.first }
        try #require(events.allSatisfy { $0 != nil }, "\(events)")
        let uids = events.compactMap { $0?.uid }
        #expect(Set(uids).count == 1, "the UID changed: \(uids)")
        let starts = events.compactMap { $0?.start }
        #expect(Set(starts).count == 3, "DTSTART did not follow the new expiries: \(starts)")
        let listed = try await sandbox.listedEntries()
        #expect(starts.last == listed["rolling"]?["expires"] as? String, "\(starts) vs \(listed)")
        let sequences = events.compactMap { $0?.sequence }
        #expect(sequences[0] == 0, "a new event's SEQUENCE is 0: \(sequences)")
        #expect(sequences[1] > sequences[0], "SEQUENCE did not grow after rotate: \(sequences)")
        #expect(sequences[2] > sequences[1], """
            SEQUENCE did not grow after edit: \(sequences) \
            (rotate and edit \(withinOneSecond ? "ran within one second" : "were in different seconds"))
            """)
    }
}
